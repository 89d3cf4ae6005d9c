//! The desktop app launched as a user launches it (no WebDriver), in its own process group so the
//! web view's helper processes go with it.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `countersign-console`; killed with its process group when dropped.
#[derive(Debug)]
pub struct AppProcess {
    pub child: Child,
}

impl AppProcess {
    /// Start the app on the profile at `home`, its log to `stderr`.
    pub fn spawn(home: &Path, stderr: Stdio) -> AppProcess {
        let mut cmd = Command::new(crate::bin("countersign-console"));
        cmd.env("COUNTERSIGN_HOME", home)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(stderr);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        AppProcess { child: cmd.spawn().expect("spawn countersign-console") }
    }

    /// Its exit status, when it exits within `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        if self.wait_exit(5).is_none() {
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = self.child.wait();
        }
    }
}
