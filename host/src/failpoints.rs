//! Crash points for the durability tests, compiled in only with the `failpoints`
//! feature (which `cargo test` turns on). A test names a point in the `FAILPOINTS`
//! environment variable (`capdesk-after-connector=return`); the process stops there,
//! says so on stderr and waits for the test to kill it with a real signal.

use std::io::Write as _;
use std::time::Duration;

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
