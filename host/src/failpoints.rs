//! Crash points for the durability tests, compiled in only with the `failpoints`
//! feature (which `cargo test` turns on). A test names a point in the `FAILPOINTS`
//! environment variable (`capdesk-after-connector=return`); the process stops there,
//! says so on stderr and waits for the test to kill it with a real signal.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether `FAILPOINTS` named any point when the process started.
static ARMED: AtomicBool = AtomicBool::new(false);

/// Arm the points `FAILPOINTS` names, for as long as the returned scenario lives. A
/// process that names none (every process but a crash test's) skips the registry
/// look-up at each point, so a test build runs at the speed of a shipped one.
pub fn setup() -> fail::FailScenario<'static> {
    ARMED.store(std::env::var_os("FAILPOINTS").is_some(), Ordering::Relaxed);
    fail::FailScenario::setup()
}

/// True when the process was started with some point named.
#[inline]
pub fn armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

/// Announce the point on stderr and block this thread until the process is killed.
pub fn hold(name: &str) -> ! {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "capdesk: stopped at failpoint {name}; waiting to be killed"
    );
    let _ = stderr.flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
