//! Shared by the end-to-end test files: a scratch data dir driven through the real
//! `capdesk` binary as separate processes, and the test guest components.

#![allow(dead_code, reason = "each test file uses its own subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

pub mod browser;
pub mod fake;
pub mod server;

/// A scratch data dir and the commands to drive capdesk in it.
pub struct Desk {
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Desk {
    pub fn new() -> Desk {
        Desk {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The capdesk command for this data dir, to run or spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_capdesk"));
        cmd.arg("--data").arg(self.dir.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("running capdesk");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.ok,
            "capdesk {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Run a command with `--json` that must succeed, and parse its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("capdesk {args:?} printed no JSON ({e}):\n{text}"))
    }

    /// A tenant with the bundled plugins granted everything they ask for.
    pub fn with_tenant(self, tenant: &str) -> Desk {
        if !self.ok(&["plugin", "list"]).contains("account-unlock") {
            self.ok(&["plugin", "install", "--bundled"]);
        }
        self.ok(&["tenant", "add", tenant, "--name", "Test Co"]);
        self.ok(&["mode", "set", tenant, "*", "auto"]);
        self.ok(&["grant", tenant, "account-unlock", "--all"]);
        self.ok(&["grant", tenant, "password-reset", "--all"]);
        self
    }

    pub fn submit(&self, tenant: &str, from: &str, subject: &str) -> Value {
        self.json(&[
            "ticket",
            "submit",
            tenant,
            "--from",
            from,
            "--subject",
            subject,
            "--verified",
        ])
    }
}

pub fn locked_user(desk: &Desk, tenant: &str, email: &str) {
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        tenant,
        email,
        "--name",
        "Ann Archer",
        "--locked",
    ]);
}

pub const GUESTS: &[&str] = &[
    "spin-forever",
    "memory-bomb",
    "deep-recursion",
    "panicker",
    "reads-files",
    "asks-a-question",
    "changes-a-group",
];

/// The test guest components, built once for this test process.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let target = capdesk_build::workspace_target_dir(&root).join("capdesk-wasm");
        capdesk_build::build_components(&root.join("Cargo.toml"), GUESTS, &target)
            .unwrap_or_else(|e| panic!("building the test guests: {e}"))
    });
    built[GUESTS.iter().position(|g| *g == name).unwrap()].clone()
}
