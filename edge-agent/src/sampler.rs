//! Readings the load meter needs from the operating system (Linux `/proc`):
//! CPU time of the process, and open connections to the listening port.
//! The parsers are pure; [`Sampler::read`] does the (quick, blocking) reads.
//!
//! Connections are counted in the kernel's socket tables (`/proc/net/tcp`,
//! `/proc/net/tcp6`): sockets whose local port is the listening port, in any
//! state but `LISTEN`, `TIME_WAIT` and `CLOSE`. Idle keep-alive connections
//! count too, as they hold a slot, and no per-connection hook is needed in
//! the server.

use std::time::Instant;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
pub const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) from the text of `/proc/self/stat`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: state (3) … utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Open connections to local `port` in the text of `/proc/net/tcp` or `tcp6`.
pub fn open_connections(table: &str, port: u16) -> u64 {
    const LISTEN: &str = "0A";
    const TIME_WAIT: &str = "06";
    const CLOSE: &str = "07";
    let mut count = 0;
    for line in table.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_slot), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if local_port == Some(port) && ![LISTEN, TIME_WAIT, CLOSE].contains(&state) {
            count += 1;
        }
    }
    count
}

/// Reads CPU and connection figures; remembers the previous CPU reading.
#[derive(Debug)]
pub struct Sampler {
    port: u16,
    cores: f64,
    last_cpu: Option<(Instant, f64)>,
}

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Open connections (0 when the tables cannot be read).
    pub connections: u64,
    /// CPU use since the previous reading, 0 to 1 of all cores (0 for the first).
    pub cpu: f64,
}

impl Sampler {
    /// A sampler for a server listening on `port`.
    pub fn new(port: u16) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Sampler {
            port,
            cores: cores as f64,
            last_cpu: None,
        }
    }

    /// Reads `/proc` at `now`. Blocking, but quick: run it off the async threads.
    pub fn read(&mut self, now: Instant) -> Reading {
        let connections = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|table| open_connections(&table, self.port))
            .sum();
        let cpu_now = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| cpu_seconds(&text));
        let cpu = match (cpu_now, self.last_cpu) {
            (Some(secs), Some((then, before))) => {
                let wall = now.saturating_duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    ((secs - before) / (wall * self.cores)).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        if let Some(secs) = cpu_now {
            self.last_cpu = Some((now, secs));
        }
        Reading { connections, cpu }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let stat = "4242 (hlscdn (edge) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 9 0 \
                    123 456 789 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(cpu_seconds("1 (x) S 1 2"), None);
    }

    #[test]
    fn connections_by_local_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n\
           1: 0100007F:2329 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2\n\
           2: 0100007F:2329 0100007F:C351 08 00000000:00000000 00:00000000 00000000     0        0 3\n\
           3: 0100007F:2329 0100007F:C352 06 00000000:00000000 00:00000000 00000000     0        0 0\n\
           4: 0100007F:C353 0100007F:2329 01 00000000:00000000 00:00000000 00000000     0        0 4\n\
           5: 0100007F:1F90 0100007F:C354 01 00000000:00000000 00:00000000 00000000     0        0 5\n";
        // Port 0x2329 = 9001: one established, one closing; not the listener,
        // not TIME_WAIT, not the client side of a connection to 9001.
        assert_eq!(open_connections(table, 9001), 2);
        let v6 =
            "header\n 0: 00000000000000000000000001000000:2329 00000000000000000000000001000000:D000 01 x\n";
        assert_eq!(open_connections(v6, 9001), 1);
    }

    #[test]
    fn reads_this_process() {
        let mut sampler = Sampler::new(1);
        let t0 = Instant::now();
        assert_eq!(sampler.read(t0).cpu, 0.0, "the first reading has no interval");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let r = sampler.read(t0 + std::time::Duration::from_secs(1));
        assert!((0.0..=1.0).contains(&r.cpu));
    }
}
