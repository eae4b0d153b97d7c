//! Client CPU per message: this process's user+sys time over a span,
//! divided by the messages handled in it.
//!
//! The time is read from `/proc/self/stat` (Linux only): its `utime` and
//! `stime` fields count the whole process, threads that have exited
//! included, in clock ticks of `sysconf(_SC_CLK_TCK)`. That is 100 per
//! second on every Linux this runs on (the kernel's `USER_HZ`, fixed for
//! user space), and calling `sysconf` would take `unsafe`, which the
//! workspace forbids, so 100 is taken as given. A tick is 10 ms: a span
//! of 0.2 s is measured to about 5 %, which is why the figure is a median
//! over rounds like every other. Redis runs in a process of its own, so
//! only the client's work is counted. Elsewhere than Linux the figure is
//! NaN and the table shows it as such.

use std::time::Duration;

/// Clock ticks per second in `/proc/self/stat` (Linux's `USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// This process's user+sys CPU time so far, when the platform says.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// `utime` + `stime` of a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted from
/// the last `)`: `state` is field 3, `utime` and `stime` are 14 and 15.
fn parse_stat(stat: &str) -> Option<Duration> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The CPU time at the start of a span.
#[derive(Debug, Clone, Copy)]
pub struct CpuSpan {
    /// [`process_cpu`] when the span began.
    started: Option<Duration>,
}

impl CpuSpan {
    /// Starts a span now.
    pub fn start() -> CpuSpan {
        CpuSpan {
            started: process_cpu(),
        }
    }

    /// CPU µs per message for `n` messages since the span began; NaN when
    /// the platform gives no CPU time.
    pub fn per_message(&self, n: usize) -> f64 {
        match (self.started, process_cpu()) {
            (Some(started), Some(now)) => {
                now.saturating_sub(started).as_secs_f64() * 1e6 / n.max(1) as f64
            }
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        // A command name with a space and a parenthesis, as the kernel
        // writes it; utime 250 ticks, stime 30.
        let stat = "4242 (my (odd) bench) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 30 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(2800)));
        assert_eq!(parse_stat("garbage"), None);
        if cfg!(target_os = "linux") {
            assert!(process_cpu().is_some());
        }
    }
}
