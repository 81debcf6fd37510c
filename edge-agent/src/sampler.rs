//! Readings the load meter takes at every heartbeat that no request counter
//! gives: the CPU time of the process, and its open connections.
//!
//! CPU time is user + system time from `getrusage(RUSAGE_SELF)`, in
//! microseconds whatever the kernel's clock tick; [`cpu_share`], pure, turns
//! two readings into a share of all cores. Connections are the count the
//! server loop keeps ([`runtime::server::Connections`]): from accept to
//! close, idle keep-alive connections included, as each holds a slot.

use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;
use runtime::server::Connections;

/// CPU time (user + system) this process has used so far; `None` if the
/// kernel does not say.
pub fn cpu_time() -> Option<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    u64::try_from(micros).ok().map(Duration::from_micros)
}

/// The share of `cores` cores used between two `(instant, CPU time)`
/// readings, 0 to 1 (0 when no time passed).
pub fn cpu_share(before: (Instant, Duration), after: (Instant, Duration), cores: f64) -> f64 {
    let wall = after.0.saturating_duration_since(before.0).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let used = after.1.saturating_sub(before.1).as_secs_f64();
    (used / (wall * cores.max(1.0))).clamp(0.0, 1.0)
}

/// Reads CPU and connection figures; remembers the previous CPU reading.
#[derive(Debug)]
pub struct Sampler {
    connections: Connections,
    cores: f64,
    last_cpu: Option<(Instant, Duration)>,
}

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Open connections.
    pub connections: u64,
    /// CPU use since the previous reading, 0 to 1 of all cores (0 for the first).
    pub cpu: f64,
}

impl Sampler {
    /// A sampler for the server that keeps `connections`.
    pub fn new(connections: Connections) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Sampler {
            connections,
            cores: cores as f64,
            last_cpu: None,
        }
    }

    /// Reads at `now`: one system call, fine on an async thread.
    pub fn read(&mut self, now: Instant) -> Reading {
        let cpu = match cpu_time() {
            Some(used) => {
                let share = self
                    .last_cpu
                    .map_or(0.0, |before| cpu_share(before, (now, used), self.cores));
                self.last_cpu = Some((now, used));
                share
            }
            None => 0.0,
        };
        Reading {
            connections: self.connections.open(),
            cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn cpu_share_is_cpu_time_over_wall_time_and_cores() {
        let t0 = Instant::now();
        let t1 = t0 + 1000 * MS;
        assert_eq!(cpu_share((t0, 100 * MS), (t1, 600 * MS), 1.0), 0.5);
        assert_eq!(cpu_share((t0, 100 * MS), (t1, 600 * MS), 4.0), 0.125);
        assert_eq!(
            cpu_share((t0, Duration::ZERO), (t1, 3000 * MS), 2.0),
            1.0,
            "clamped"
        );
        assert_eq!(
            cpu_share((t0, 600 * MS), (t1, 100 * MS), 1.0),
            0.0,
            "never negative"
        );
        assert_eq!(
            cpu_share((t1, Duration::ZERO), (t1, 100 * MS), 1.0),
            0.0,
            "no time passed"
        );
        assert_eq!(
            cpu_share((t1, Duration::ZERO), (t0, 100 * MS), 1.0),
            0.0,
            "time went back"
        );
    }

    #[test]
    fn reads_this_process() {
        let connections = Connections::new(Some(10));
        let mut sampler = Sampler::new(connections);
        let before = cpu_time().expect("getrusage");
        let t0 = Instant::now();
        assert_eq!(sampler.read(t0).cpu, 0.0, "the first reading has no interval");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time().expect("getrusage") > before, "the loop took CPU time");
        let r = sampler.read(t0 + Duration::from_secs(1));
        assert!((0.0..=1.0).contains(&r.cpu));
        assert_eq!(r.connections, 0);
    }
}
