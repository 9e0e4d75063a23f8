//! The CPU time a server process spends, read from `/proc/<pid>/stat`: with
//! `--server-pid`, each measured operation also reports the server's CPU
//! per successful request. Unlike throughput, this figure does not depend
//! on how the machine's cores are shared between the server and this
//! client, so it compares two configurations of one server (or two
//! servers) on a busy machine.

use std::time::Duration;

use anyhow::Context;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`,
/// fixed at 100 in Linux's user-space ABI).
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time of process `pid` so far (all its threads).
/// Errors: no such process, or a `stat` line that does not parse.
pub fn used(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (is the server's pid right?)"))?;
    let ticks = parse_ticks(&stat).with_context(|| format!("no CPU times in /proc/{pid}/stat"))?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted after the last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 3.. follow the name: state is field 3, utime field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Microseconds of server CPU per request: `spent` over `requests`
/// (`None` when nothing succeeded).
pub fn per_request(spent: Duration, requests: u64) -> Option<f64> {
    (requests > 0).then(|| spent.as_secs_f64() * 1e6 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_the_name() {
        let stat = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 9 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_ticks(stat), Some(300));
        assert_eq!(parse_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(used(std::process::id()).is_ok());
    }

    #[test]
    fn per_request_needs_requests() {
        assert_eq!(per_request(Duration::from_millis(10), 0), None);
        assert_eq!(per_request(Duration::from_millis(10), 1000), Some(10.0));
    }
}
