//! Zipf popularity: rank `k` (0-based) is chosen with probability
//! proportional to `1 / (k + 1)^s`. Pure; the random source is an argument.

use rand::Rng;

use crate::error::{Error, Result};

/// A Zipf distribution over `n` ranks, sampled by inverting its CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// `cdf[k]` = P(rank ≤ k); the last entry is 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n ≥ 1` ranks with exponent `s ≥ 0` (0: uniform).
    pub fn new(n: usize, s: f64) -> Result<Self> {
        if n == 0 {
            return Err(Error::BadInput(
                "Zipf popularity needs at least one stream".into(),
            ));
        }
        if !(s.is_finite() && s >= 0.0) {
            return Err(Error::BadInput(format!(
                "`--zipf` must be a finite number >= 0 (got {s})"
            )));
        }
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Ok(Zipf { cdf })
    }

    /// Number of ranks.
    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    /// Always false: a distribution has at least one rank.
    pub fn is_empty(&self) -> bool {
        self.cdf.is_empty()
    }

    /// Probability of rank `k` (0 outside the ranks).
    pub fn probability(&self, k: usize) -> f64 {
        match k {
            0 => self.cdf.first().copied().unwrap_or(0.0),
            _ if k < self.cdf.len() => self.cdf[k] - self.cdf[k - 1],
            _ => 0.0,
        }
    }

    /// A rank drawn from `rng`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.random();
        self.rank_of(u)
    }

    /// The rank at cumulative probability `u` in `[0, 1)`.
    pub fn rank_of(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn probabilities_follow_the_power_law() {
        let z = Zipf::new(4, 1.0).expect("zipf");
        let h = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        for k in 0..4 {
            let expected = 1.0 / (k as f64 + 1.0) / h;
            assert!((z.probability(k) - expected).abs() < 1e-12, "rank {k}");
        }
        assert_eq!(z.probability(4), 0.0);
        let uniform = Zipf::new(5, 0.0).expect("zipf");
        assert!((uniform.probability(3) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn samples_match_the_probabilities() {
        let z = Zipf::new(10, 1.2).expect("zipf");
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u32; 10];
        let n = 200_000;
        for _ in 0..n {
            counts[z.sample(&mut rng)] += 1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let share = f64::from(c) / f64::from(n);
            assert!((share - z.probability(k)).abs() < 0.005, "rank {k}: {share}");
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Zipf::new(0, 1.0).is_err());
        assert!(Zipf::new(3, -1.0).is_err());
        assert!(Zipf::new(3, f64::NAN).is_err());
    }

    proptest! {
        #[test]
        fn every_draw_is_a_rank(n in 1usize..500, s in 0.0f64..3.0, u in 0.0f64..1.0) {
            let z = Zipf::new(n, s).expect("zipf");
            prop_assert!(z.rank_of(u) < n);
            // More popular ranks never have lower probability.
            for k in 1..n.min(50) {
                prop_assert!(z.probability(k) <= z.probability(k - 1) + 1e-15);
            }
        }
    }
}
