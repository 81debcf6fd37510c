//! The stable hash and the score of weighted rendezvous hashing.
//!
//! Every router must rank edges the same way, today and after any upgrade, so
//! nothing here depends on the platform, the compiler or a library version:
//!
//! - [`stable_hash`]: FNV-1a (64 bit) over the bytes, then the splitmix64
//!   finalizer, which gives FNV's weak low bits full avalanche.
//! - [`pair_hash`]: the finalizer over the XOR of a stream key's hash and an
//!   edge's hash (the edge's is computed once per snapshot).
//! - [`score`]: `-weight / ln(u)` with `u` the top 52 bits of the pair hash
//!   mapped into the open interval (0, 1). The logarithm is [`ln`], a port of
//!   fdlibm's `__ieee754_log` that uses only IEEE-754 additions,
//!   multiplications and divisions, which are exactly rounded everywhere; the
//!   platform's `f64::ln` may differ in the last bit between libm versions and
//!   would let two routers disagree on a near tie.
//!
//! The top score wins; `docs/SELECTION.md` gives test vectors.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// The splitmix64 finalizer: a bijection on `u64` with full avalanche.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stable hash of a stream key or an edge id.
pub const fn stable_hash(bytes: &[u8]) -> u64 {
    mix64(fnv1a64(bytes))
}

/// The hash of one (stream key, edge) pair, from their [`stable_hash`]es.
pub const fn pair_hash(key_hash: u64, edge_hash: u64) -> u64 {
    mix64(key_hash ^ edge_hash)
}

/// Maps a hash to the open interval (0, 1): the top 52 bits, plus one half,
/// over 2^52. Exact in `f64` and never 0 nor 1, so the logarithm is finite
/// and negative.
pub fn unit_interval(h: u64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 52) as f64;
    ((h >> 12) as f64 + 0.5) * SCALE
}

/// The rendezvous score of an edge of `weight` for a pair hash `h`:
/// `-weight / ln(u)`. Higher wins. For weights `w_i` the top-scoring edge is
/// edge `i` with probability `w_i / Σ w` over random keys.
pub fn score(weight: f64, h: u64) -> f64 {
    -weight / ln(unit_interval(h))
}

// fdlibm's constants, by bit pattern: ln(2) split in a high part with trailing
// zero bits and the rest, and the coefficients of the polynomial for
// ln((1 + s) / (1 - s)) on [0, 0.1716].
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593); // 6.666666666666735130e-01
const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04); // 3.999999999940941908e-01
const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359); // 2.857142874366239149e-01
const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af); // 2.222219843214978396e-01
const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de); // 1.818357216161805012e-01
const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f); // 1.531383769920937332e-01
const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244); // 1.479819860511658591e-01

/// Natural logarithm of a positive, normal, finite `x`, bit-for-bit the same on
/// every IEEE-754 platform (fdlibm's algorithm, error below 1 ulp). Other
/// inputs give an unspecified finite or infinite value; [`unit_interval`]
/// never produces them.
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut k = ((bits >> 52) & 0x7ff) as i32 - 1023;
    // Mantissa in [1, 2), then brought into [sqrt(2)/2, sqrt(2)).
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m >= std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = f64::from(k);
    dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_vectors() {
        // Frozen: a change here changes every router's ranking.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(mix64(0), 0);
        assert_eq!(stable_hash(b"edge-1"), STABLE_EDGE_1);
        assert_eq!(stable_hash(b"live/demo-1|720p"), STABLE_DEMO_720P);
        let h = pair_hash(STABLE_DEMO_720P, STABLE_EDGE_1);
        assert_eq!(h, PAIR_DEMO_720P_EDGE_1);
        assert_eq!(score(1e9, h).to_bits(), SCORE_DEMO_720P_EDGE_1_1G);
    }

    const STABLE_EDGE_1: u64 = 0x92d8_34aa_4183_7f2e;
    const STABLE_DEMO_720P: u64 = 0x4c34_b23c_682b_82b7;
    const PAIR_DEMO_720P_EDGE_1: u64 = 0x79ab_a949_e5bf_231e;
    /// 1344338181.1633291
    const SCORE_DEMO_720P_EDGE_1_1G: u64 = 0x41d4_083e_414a_73fc;

    #[test]
    fn unit_interval_is_open() {
        assert!(unit_interval(0) > 0.0);
        assert!(unit_interval(u64::MAX) < 1.0);
        assert!(score(1.0, 0).is_finite() && score(1.0, 0) > 0.0);
        assert!(score(1.0, u64::MAX).is_finite());
    }

    #[test]
    fn ln_matches_std_on_edges() {
        for x in [
            unit_interval(0),
            0.5,
            std::f64::consts::FRAC_1_SQRT_2,
            0.999_999,
            unit_interval(u64::MAX),
            1.0,
            2.0,
            10.0,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= std.abs() * 2e-16 + 1e-300,
                "{x}: {ours} vs {std}"
            );
        }
    }

    proptest! {
        #[test]
        fn ln_matches_std(h in any::<u64>()) {
            let x = unit_interval(h);
            let (ours, std) = (ln(x), x.ln());
            prop_assert!((ours - std).abs() <= std.abs() * 2.5e-16, "{}: {} vs {}", x, ours, std);
        }
    }
}
