//! Durability under `kill -9`: a capdesk process is stopped at a crash point (the
//! `FAILPOINTS` variable of this test build) and killed with SIGKILL; `capdesk recover`
//! in a new process then finishes the run from its journal. Checks that every action
//! lands exactly once, and that an action that may or may not have happened and is not
//! safe to repeat goes to a technician instead of being repeated.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::{Desk, guest, locked_user};

const ANN: &str = "ann@acme.test";
const MAX: &str = "max@acme.test";

/// Spawn `cmd` with the crash point armed, wait until it stops there, and kill it.
fn kill_at(mut cmd: Command, point: &str) {
    let mut child = cmd
        .env("FAILPOINTS", format!("{point}=return"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning capdesk");
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let reached = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|line| {
            seen += &line;
            seen.push('\n');
            line.contains(&format!("stopped at failpoint {point}"))
        });
    assert!(
        reached,
        "capdesk never reached {point}; it printed:\n{seen}"
    );
    child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix: no cleanup runs
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed, not finished");
}

fn user(desk: &Desk, email: &str) -> Value {
    desk.json(&["sandbox", "user", "show", "acme", email])
}

fn count(user: &Value, action: &str) -> usize {
    user["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

fn run_of_only_ticket(desk: &Desk) -> Value {
    let tickets = desk.json(&["ticket", "list", "acme"]);
    let id = tickets[0]["ticket"]["id"].as_str().unwrap().to_string();
    let shown = desk.json(&["ticket", "show", &id]);
    shown["runs"][0].clone()
}

#[test]
fn an_approved_run_killed_after_the_directory_change_completes_once_on_recovery() {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&[
        "plugin",
        "install",
        guest("changes-a-group").to_str().unwrap(),
    ]);
    desk.ok(&["grant", "acme", "changes-a-group", "--all"]);
    desk.ok(&["sandbox", "user", "add", "acme", ANN, "--manager", MAX]);
    desk.ok(&["sandbox", "user", "add", "acme", MAX]);
    let s = desk.json(&[
        "ticket",
        "submit",
        "acme",
        "--from",
        ANN,
        "--subject",
        "add me to Sales",
        "--verified",
        "--field",
        "group=Sales",
    ]);
    assert_eq!(s["status"], "waiting", "{s}");
    let id = s["approval"]["id"].as_str().unwrap();

    // The approver's process dies right after the directory changed, before the
    // journal recorded the result.
    kill_at(
        desk.command(&["approve", id, "--as", MAX]),
        "capdesk-after-connector",
    );
    assert_eq!(count(&user(&desk, ANN), "group-added"), 1);
    let run = desk.json(&["run", "show", s["run"].as_str().unwrap()]);
    assert_eq!(run["status"], "running", "{run}");

    // Adding a member twice changes nothing, so recovery repeats the call safely.
    let recovered = desk.json(&["recover"]);
    assert_eq!(recovered[0]["status"], "resolved", "{recovered}");
    let ann = user(&desk, ANN);
    assert_eq!(ann["groups"], json!(["Sales"]));
    assert_eq!(count(&ann, "group-added"), 1, "applied exactly once: {ann}");
    assert_eq!(
        desk.json(&["recover"]),
        json!([]),
        "nothing is left to recover"
    );
    assert!(
        desk.ok(&["audit", "export", "--tenant", "acme"])
            .contains("\"run.recovered\"")
    );
}

#[test]
fn an_unlock_killed_before_or_after_the_connector_is_finished_once_by_recovery() {
    for point in ["capdesk-after-intent", "capdesk-after-connector"] {
        let desk = Desk::new().with_tenant("acme");
        locked_user(&desk, "acme", ANN);
        kill_at(
            desk.command(&[
                "ticket",
                "submit",
                "acme",
                "--from",
                ANN,
                "--subject",
                "I'm locked out",
                "--verified",
            ]),
            point,
        );
        let unlocked_before = count(&user(&desk, ANN), "unlocked");
        assert_eq!(
            unlocked_before,
            usize::from(point == "capdesk-after-connector"),
            "at {point}"
        );
        let recovered = desk.json(&["recover"]);
        assert_eq!(
            recovered[0]["status"], "resolved",
            "at {point}: {recovered}"
        );
        let ann = user(&desk, ANN);
        assert_eq!(ann["locked"], false);
        assert_eq!(count(&ann, "unlocked"), 1, "at {point}: {ann}");
    }
}

#[test]
fn a_password_reset_in_doubt_is_escalated_not_repeated() {
    for point in ["capdesk-after-intent", "capdesk-after-connector"] {
        let desk = Desk::new().with_tenant("acme");
        desk.ok(&[
            "sandbox",
            "user",
            "add",
            "acme",
            ANN,
            "--password",
            "Old-pass-1",
        ]);
        kill_at(
            desk.command(&[
                "ticket",
                "submit",
                "acme",
                "--from",
                ANN,
                "--subject",
                "I forgot my password",
                "--verified",
            ]),
            point,
        );
        let credentials = |desk: &Desk| {
            let outbox = desk.json(&["sandbox", "outbox", "acme"]);
            outbox
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| {
                    m["text"]
                        .as_str()
                        .unwrap()
                        .contains("temporary password is")
                })
                .count()
        };
        let sent = credentials(&desk);
        assert_eq!(
            sent,
            usize::from(point == "capdesk-after-connector"),
            "at {point}"
        );

        let recovered = desk.json(&["recover"]);
        assert_eq!(
            recovered[0]["status"], "escalated",
            "at {point}: {recovered}"
        );
        let reason = recovered[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("in doubt") && reason.contains("idp.reset-password"),
            "{reason}"
        );
        assert_eq!(
            credentials(&desk),
            sent,
            "at {point}: the reset was repeated"
        );
        let run = run_of_only_ticket(&desk);
        assert_eq!(run["status"], "escalated", "{run}");
    }
}
