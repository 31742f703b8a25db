//! End to end: the real `capdesk` binary, as separate processes, with the bundled
//! plugins and hostile guest components built for these tests from `tests/guests/`.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Desk, guest, locked_user};

#[test]
fn a_verified_lockout_is_resolved_end_to_end() {
    let desk = Desk::new().with_tenant("acme");
    locked_user(&desk, "acme", "ann@acme.test");

    let s = desk.submit("acme", "ann@acme.test", "I'm locked out of my account");
    assert_eq!(s["status"], "resolved", "{s}");
    assert_eq!(s["plugin"], "account-unlock");
    assert!(s["ticket"].as_str().unwrap().starts_with("T-"));
    assert!(s["run"].as_str().unwrap().starts_with("R-"));
    assert!(s["reason"].as_str().unwrap().contains("unlocked"), "{s}");

    let user = desk.json(&["sandbox", "user", "show", "acme", "ann@acme.test"]);
    assert_eq!(user["locked"], false);
    assert_eq!(user["enabled"], true);
    for field in ["groups", "licenses", "mfa_methods", "events"] {
        assert!(user[field].is_array(), "user show lacks {field}: {user}");
    }
    assert!(
        user["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "unlocked")
    );

    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "resolved");
    let notes = ticket["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(
            |n| n["visibility"] == "public" && n["text"].as_str().unwrap().contains("unlocked")
        )
    );

    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    assert!(outbox.as_array().unwrap().iter().any(|m| {
        m["recipient"] == "ann@acme.test"
            && m["text"]
                .as_str()
                .unwrap()
                .contains("you can sign in again now")
    }));

    let run = desk.json(&["run", "show", s["run"].as_str().unwrap()]);
    let calls = run["calls"].as_array().unwrap();
    let unlock = calls
        .iter()
        .find(|c| c["function"] == "idp.unlock-account")
        .expect("an unlock call");
    assert_eq!(unlock["decision"], "allowed by rule owner-self-service");
    assert_eq!(unlock["state"], "done");
    assert_eq!(unlock["capability"], "idp.unlock");
    assert_eq!(unlock["arguments"]["email"], "ann@acme.test");
    assert_eq!(unlock["result"]["ok"], "changed");
}

#[test]
fn revoking_idp_unlock_escalates_naming_the_capability() {
    let desk = Desk::new().with_tenant("acme");
    locked_user(&desk, "acme", "ann@acme.test");
    desk.ok(&["revoke", "acme", "account-unlock", "idp.unlock"]);
    let grants = desk.json(&["grants", "acme"]);
    let unlock = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["plugin"] == "account-unlock")
        .unwrap();
    assert!(
        unlock["requested_not_granted"]
            .as_array()
            .unwrap()
            .contains(&Value::from("idp.unlock"))
    );

    let s = desk.submit("acme", "ann@acme.test", "account locked");
    assert_eq!(s["status"], "escalated", "{s}");
    assert!(s["reason"].as_str().unwrap().contains("idp.unlock"), "{s}");

    let user = desk.json(&["sandbox", "user", "show", "acme", "ann@acme.test"]);
    assert_eq!(
        user["locked"], true,
        "the connector must never have been reached"
    );
    assert!(
        !user["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "unlocked")
    );
    let run = desk.json(&["run", "show", s["run"].as_str().unwrap()]);
    let denied = run["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["function"] == "idp.unlock-account")
        .unwrap();
    assert!(
        denied["decision"].as_str().unwrap().starts_with("denied"),
        "{denied}"
    );
    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "escalated");
}

#[test]
fn a_password_reset_delivers_a_credential_the_plugin_never_sees() {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        "bob@acme.test",
        "--password",
        "Old-pass-1",
    ]);
    let s = desk.submit("acme", "bob@acme.test", "Forgot my password");
    assert_eq!(s["status"], "resolved", "{s}");
    assert_eq!(s["plugin"], "password-reset");

    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    let secret = outbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == "bob@acme.test")
        .find_map(|m| {
            m["text"]
                .as_str()
                .unwrap()
                .strip_prefix("Your temporary password is: ")
                .map(|r| r.lines().next().unwrap().to_string())
        })
        .expect("the owner received a temporary password");

    // The plugin saw only where it went: the journal, notes and outcome never hold it.
    let run = desk.ok(&["--json", "run", "show", s["run"].as_str().unwrap()]);
    assert!(!run.contains(&secret), "the secret reached the run journal");
    assert!(run.contains("\"recipient\": \"bob@acme.test\""), "{run}");
    let ticket = desk.ok(&["--json", "ticket", "show", s["ticket"].as_str().unwrap()]);
    assert!(!ticket.contains(&secret), "the secret reached the ticket");
    assert!(!s.to_string().contains(&secret));

    // And it works, once: the old password does not, the new one must be changed.
    let old = desk.json(&["sandbox", "sign-in", "acme", "bob@acme.test", "Old-pass-1"]);
    assert_eq!(old["result"], "bad-password");
    let new = desk.json(&["sandbox", "sign-in", "acme", "bob@acme.test", &secret]);
    assert_eq!(new["result"], "must-change-password");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let desk = Desk::new().with_tenant("acme");
    let out = desk.run(&["grant", "acme", "account-unlock", "idp.everything"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("unknown capability `idp.everything`")
            && out.stderr.contains("idp.unlock"),
        "{}",
        out.stderr
    );
    let out = desk.run(&["grant", "acme", "account-unlock", "idp.mailbox"]);
    assert!(
        !out.ok && out.stderr.contains("does not ask for idp.mailbox"),
        "{}",
        out.stderr
    );
    let out = desk.run(&[
        "ticket",
        "submit",
        "nobody",
        "--from",
        "a@b.test",
        "--subject",
        "x",
    ]);
    assert!(
        !out.ok && out.stderr.contains("tenant `nobody` does not exist"),
        "{}",
        out.stderr
    );
    let out = desk.run(&["tenant", "add", "Bad Name"]);
    assert!(
        !out.ok && out.stderr.contains("not a valid tenant id"),
        "{}",
        out.stderr
    );
    let out = desk.run(&[
        "ticket",
        "submit",
        "acme",
        "--from",
        "not-an-email",
        "--subject",
        "locked out",
    ]);
    assert!(
        !out.ok && out.stderr.contains("not an email address"),
        "{}",
        out.stderr
    );
    let out = desk.run(&["run", "show", "R-999"]);
    assert!(
        !out.ok && out.stderr.contains("run `R-999` does not exist"),
        "{}",
        out.stderr
    );
    let bogus = desk.dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm at all").unwrap();
    let out = desk.run(&["plugin", "install", bogus.to_str().unwrap()]);
    assert!(
        !out.ok && out.stderr.contains("not a WebAssembly component"),
        "{}",
        out.stderr
    );
}

// ---- hostile guests ------------------------------------------------------------------

/// Install a hostile guest beside the bundled plugins, let it claim a ticket for one
/// tenant, and check that a normal ticket for another tenant still resolves right after.
fn misbehaves_then_host_keeps_serving(name: &str, expected_reason: &str) {
    let desk = Desk::new().with_tenant("victim");
    let desk = desk.with_tenant("bystander");
    desk.ok(&["plugin", "install", guest(name).to_str().unwrap()]);
    desk.ok(&["grant", "victim", name, "--all"]);
    locked_user(&desk, "victim", "eve@victim.test");
    locked_user(&desk, "bystander", "ann@bystander.test");

    let s = desk.submit("victim", "eve@victim.test", &format!("please {name}"));
    assert_eq!(s["plugin"], name, "{s}");
    assert_eq!(s["status"], "escalated", "{s}");
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains(expected_reason),
        "reason for {name}: {reason}"
    );
    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "escalated");

    let normal = desk.submit(
        "bystander",
        "ann@bystander.test",
        "locked out of my account",
    );
    assert_eq!(normal["status"], "resolved", "{normal}");
}

#[test]
fn an_endless_loop_is_stopped_by_the_guest_time_budget() {
    misbehaves_then_host_keeps_serving("spin-forever", "2000 ms of guest time");
}

#[test]
fn unbounded_memory_growth_is_stopped_at_the_limit() {
    misbehaves_then_host_keeps_serving("memory-bomb", "more than its 64 MiB of memory");
}

#[test]
fn unbounded_recursion_is_stopped() {
    misbehaves_then_host_keeps_serving("deep-recursion", "stack");
}

#[test]
fn a_panic_is_reported_with_its_message() {
    misbehaves_then_host_keeps_serving("panicker", "playbook bug: cannot handle ticket");
}

#[test]
fn limits_are_configurable_per_tenant_and_plugin() {
    let desk = Desk::new().with_tenant("victim");
    desk.ok(&["plugin", "install", guest("spin-forever").to_str().unwrap()]);
    desk.ok(&["grant", "victim", "spin-forever", "--all"]);
    desk.ok(&[
        "limits",
        "set",
        "victim",
        "spin-forever",
        "--guest-ms",
        "150",
        "--memory-mib",
        "16",
    ]);
    let limits = desk.json(&["limits", "show", "victim", "spin-forever"]);
    assert_eq!(limits["guest_ms"], 150);
    assert_eq!(limits["memory_mib"], 16);
    let other = desk.json(&["limits", "show", "victim", "account-unlock"]);
    assert_eq!(other["guest_ms"], 2000, "other plugins keep the default");
    let s = desk.submit("victim", "eve@victim.test", "spin-forever");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("150 ms of guest time"),
        "{s}"
    );
}

#[test]
fn a_component_importing_the_filesystem_is_refused_by_name() {
    let desk = Desk::new();
    let file = guest("reads-files");
    let out = desk.run(&["plugin", "install", file.to_str().unwrap()]);
    assert!(!out.ok, "installing must fail");
    assert!(
        out.stderr.contains("wasi:filesystem/"),
        "the refusal names the import: {}",
        out.stderr
    );
    let inspect = desk.json(&["plugin", "inspect", file.to_str().unwrap()]);
    assert!(
        inspect["refused"]
            .as_str()
            .unwrap()
            .contains("wasi:filesystem/")
    );
    assert!(
        inspect["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:filesystem/"))
    );
    assert!(
        desk.json(&["plugin", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was installed"
    );
}

#[test]
fn inspect_shows_manifest_capabilities_and_imports() {
    let desk = Desk::new();
    let inspect = desk.json(&["plugin", "inspect", guest("panicker").to_str().unwrap()]);
    assert_eq!(inspect["manifest"]["id"], "panicker");
    assert_eq!(
        inspect["manifest"]["capabilities"],
        serde_json::json!(["psa.write"])
    );
    assert!(inspect["refused"].is_null());
    let imports: Vec<&str> = inspect["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports.iter().any(|i| i.starts_with("capdesk:playbook/")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .all(|i| i.starts_with("capdesk:playbook/") || i.starts_with("wasi:")),
        "{imports:?}"
    );
}

#[test]
fn demo_runs_in_a_fresh_data_dir() {
    let out = Command::new(env!("CARGO_BIN_EXE_capdesk"))
        .args(["--json", "demo"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = report["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["submission"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "resolved",
            "resolved",
            "escalated",
            "escalated",
            "unmatched",
            // MFA, mailbox (approved), license (approved twice), group (challenge, then
            // approved): every bundled category resolves.
            "resolved",
            "resolved",
            "resolved",
            "resolved",
            "escalated",
            "shadowed"
        ]
    );
    std::fs::remove_dir_all(report["data_dir"].as_str().unwrap()).ok();
}

#[test]
fn the_audit_log_records_changes_and_calls_and_detects_tampering() {
    let desk = Desk::new().with_tenant("acme");
    locked_user(&desk, "acme", "ann@acme.test");
    desk.ok(&["revoke", "acme", "account-unlock", "idp.unlock"]);
    let s = desk.submit("acme", "ann@acme.test", "locked out");
    assert_eq!(s["status"], "escalated");

    let verified = desk.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], true, "{verified}");
    let lines: Vec<Value> = desk
        .ok(&["audit", "export", "--tenant", "acme"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for kind in [
        "tenant.add",
        "grant.add",
        "grant.revoke",
        "run.call",
        "run.finished",
    ] {
        assert!(kinds.contains(&kind), "no {kind} entry in {kinds:?}");
    }
    let denied = lines
        .iter()
        .find(|l| l["kind"] == "run.call" && l["detail"]["function"] == "idp.unlock-account")
        .expect("the denied unlock is audited");
    assert!(
        denied["detail"]["decision"]
            .as_str()
            .unwrap()
            .starts_with("denied")
    );
    assert_eq!(denied["actor"], "plugin:account-unlock");

    // Change one byte of the revoke entry in the database file: verify names it.
    // SQLite may keep stale copies of a page in free pages, so every copy of the
    // entry's text is changed, not just the first one in the file.
    let revoke = lines.iter().find(|l| l["kind"] == "grant.revoke").unwrap();
    let db = desk.dir.path().join("capdesk.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = br#"["idp.unlock"]"#;
    let copies: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == needle)
        .map(|(at, _)| at)
        .collect();
    assert!(!copies.is_empty(), "the entry is in the file");
    for at in copies {
        bytes[at + 2] = b'I';
    }
    std::fs::write(&db, bytes).unwrap();
    let out = desk.run(&["audit", "verify"]);
    assert!(!out.ok, "verify must fail on a tampered log");
    assert!(
        out.stderr
            .contains(&format!("audit entry {} ", revoke["id"])),
        "names the first bad entry: {}",
        out.stderr
    );
}

#[test]
fn a_question_waits_durably_and_the_answer_resumes_the_run_once() {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&[
        "plugin",
        "install",
        guest("asks-a-question").to_str().unwrap(),
    ]);
    desk.ok(&["grant", "acme", "asks-a-question", "--all"]);
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        "ann@acme.test",
        "--name",
        "Ann Archer",
        "--manager",
        "max@acme.test",
    ]);
    desk.ok(&["sandbox", "user", "add", "acme", "bob@acme.test"]);
    desk.ok(&["sandbox", "user", "add", "acme", "max@acme.test"]);

    let s = desk.submit("acme", "ann@acme.test", "asks-a-question please");
    assert_eq!(s["status"], "waiting", "{s}");
    assert_eq!(s["waiting_for"]["to"], "ann@acme.test");
    assert_eq!(
        s["waiting_for"]["choices"],
        serde_json::json!(["marketing", "sales"])
    );
    let run = s["run"].as_str().unwrap();
    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "waiting");
    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    assert!(
        outbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["recipient"] == "ann@acme.test"
                && m["text"].as_str().unwrap().contains("Which group"))
    );

    // Each CLI call is a new process: the waiting run lives only in the database.
    let stranger = desk.run(&["answer", run, "--as", "bob@acme.test", "sales"]);
    assert!(
        !stranger.ok && stranger.stderr.contains("only ann@acme.test can answer"),
        "{}",
        stranger.stderr
    );
    let wrong = desk.run(&["answer", run, "--as", "ann@acme.test", "finance"]);
    assert!(
        !wrong.ok
            && wrong
                .stderr
                .contains("not one of the choices: marketing, sales"),
        "{}",
        wrong.stderr
    );

    // The answer resumes the run, which now wants a group change: the default policy
    // asks ann's manager, so the run waits again, this time for an approval.
    let asked = desk.json(&["answer", run, "--as", "ann@acme.test", "Marketing"]);
    assert_eq!(asked["status"], "waiting", "{asked}");
    assert_eq!(
        asked["approval"]["approvers"],
        serde_json::json!(["max@acme.test"])
    );
    let approval = asked["approval"]["id"].as_str().unwrap();
    let done = desk.json(&["approve", approval, "--as", "max@acme.test"]);
    assert_eq!(done["status"], "resolved", "{done}");
    assert_eq!(done["reason"], "added Ann Archer to marketing");
    let user = desk.json(&["sandbox", "user", "show", "acme", "ann@acme.test"]);
    assert_eq!(user["groups"], serde_json::json!(["marketing"]));

    let shown = desk.json(&["run", "show", run]);
    let calls = shown["calls"].as_array().unwrap();
    let count = |f: &str| calls.iter().filter(|c| c["function"] == f).count();
    assert_eq!(
        count("idp.find-user"),
        1,
        "replayed calls are not repeated: {calls:?}"
    );
    assert_eq!(count("log.emit"), 1);
    assert_eq!(count("idp.add-group-member"), 1);
    let ask = calls.iter().find(|c| c["function"] == "chat.ask").unwrap();
    assert_eq!(ask["decision"], "answered by ann@acme.test");
    assert_eq!(ask["result"]["ok"], "marketing");

    let again = desk.run(&["answer", run, "--as", "ann@acme.test", "sales"]);
    assert!(
        !again.ok && again.stderr.contains("not waiting"),
        "{}",
        again.stderr
    );
    let audit = desk.ok(&["audit", "export", "--tenant", "acme"]);
    assert!(
        audit.contains("run.answer-refused") && audit.contains("\"run.answer\""),
        "{audit}"
    );
    assert_eq!(desk.json(&["audit", "verify"])["intact"], true);
}

#[test]
fn a_tenant_can_word_a_closeout_its_own_way() {
    let desk = Desk::new().with_tenant("acme");
    locked_user(&desk, "acme", "ann@acme.test");
    let own = desk.dir.path().join("unlocked.j2");

    std::fs::write(
        &own,
        "Hi {{ requester.name }}, {{ account }} works again. {% if %}",
    )
    .unwrap();
    let bad = desk.run(&[
        "template",
        "set",
        "acme",
        "account-unlock",
        "unlocked",
        own.to_str().unwrap(),
    ]);
    assert!(!bad.ok && bad.stderr.contains("line 1"), "{}", bad.stderr);
    let missing = desk.run(&[
        "template",
        "set",
        "acme",
        "account-unlock",
        "nope",
        own.to_str().unwrap(),
    ]);
    assert!(
        !missing.ok && missing.stderr.contains("its templates are"),
        "{}",
        missing.stderr
    );

    std::fs::write(
        &own,
        "Hi {{ requester.name }}, {{ account }} works again. -- Acme IT",
    )
    .unwrap();
    desk.ok(&[
        "template",
        "set",
        "acme",
        "account-unlock",
        "unlocked",
        own.to_str().unwrap(),
    ]);
    let shown = desk.json(&["template", "show", "acme", "account-unlock", "unlocked"]);
    assert_eq!(shown["own"], true);

    let s = desk.submit("acme", "ann@acme.test", "I'm locked out of my account");
    assert_eq!(s["status"], "resolved", "{s}");
    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    assert!(
        outbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "Hi Ann Archer, ann@acme.test works again. -- Acme IT"),
        "{outbox}"
    );
    desk.ok(&["template", "reset", "acme", "account-unlock", "unlocked"]);
    assert_eq!(
        desk.json(&["template", "show", "acme", "account-unlock", "unlocked"])["own"],
        false
    );
}

#[test]
fn the_triage_threshold_decides_what_is_unmatched() {
    let desk = Desk::new().with_tenant("acme");
    locked_user(&desk, "acme", "ann@acme.test");
    let strict = desk.json(&[
        "--triage-threshold",
        "0.99",
        "ticket",
        "submit",
        "acme",
        "--from",
        "ann@acme.test",
        "--subject",
        "locked out",
        "--verified",
    ]);
    assert_eq!(strict["status"], "unmatched", "{strict}");
    let best = strict["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(best > 0.5 && best < 0.99, "{strict}");
    let user = desk.json(&["sandbox", "user", "show", "acme", "ann@acme.test"]);
    assert_eq!(user["locked"], true, "an unmatched ticket changes nothing");

    let normal = desk.submit("acme", "ann@acme.test", "locked out");
    assert_eq!(normal["status"], "resolved", "{normal}");

    let out = desk.run(&["--triage-threshold", "1.5", "tenant", "list"]);
    assert!(!out.ok);
    assert!(out.stderr.contains("between 0 and 1"), "{}", out.stderr);
}
