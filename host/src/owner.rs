//! Which process is executing a run, and whether that process is still alive. A run's
//! owner is `host:pid:start` (the kernel's start time of the process, so a reused pid
//! is not mistaken for the owner). Recovery resumes a `running` run only when its owner
//! is gone: dead on this host, or silent for longer than a lease on another.

use std::sync::OnceLock;
use std::time::Duration;

/// How long a run's owner on another host may stay silent before its run counts as
/// abandoned. A run writes its journal at least before every side effect.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

/// This process, as a run owner.
pub fn this_process() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0))
    })
}

/// Whether the owner is known to be alive (`Some(true)`), known to be gone
/// (`Some(false)`), or on another host and so unknown (`None`).
pub fn is_alive(owner: &str) -> Option<bool> {
    let mut parts = owner.rsplitn(3, ':');
    let (start, pid, host) = (parts.next()?, parts.next()?, parts.next()?);
    if host != hostname() {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    Some(start_time(pid) == Some(start))
}

fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into())
    })
}

/// The start time (clock ticks since boot) of a live process, from `/proc/PID/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields resume after it.
    let after = &stat[stat.rfind(')')? + 2..];
    // Field 22 overall is the 20th after the name (state is the 3rd field).
    let start = after.split_whitespace().nth(19)?;
    // A zombie has exited: it is not executing anything.
    if after.starts_with('Z') {
        return None;
    }
    start.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_child_is_not() {
        assert_eq!(is_alive(this_process()), Some(true));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let owner = format!(
            "{}:{}:{}",
            hostname(),
            child.id(),
            start_time(child.id()).unwrap_or(1)
        );
        child.wait().unwrap();
        assert_eq!(is_alive(&owner), Some(false));
        assert_eq!(is_alive("elsewhere:1:1"), None);
    }
}
