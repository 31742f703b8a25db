//! Guardrails end to end, through the real `capdesk` binary as separate processes:
//! the default policy (ask and deny; allow is in `end_to_end`), approvals (entitled approver, refusals,
//! reject, timeout), modes (shadow, off, supervised) and policy files with mistakes.

mod support;

use serde_json::{Value, json};
use support::{Desk, guest, locked_user};

const ANN: &str = "ann@acme.test";
const MAX: &str = "max@acme.test";

/// A tenant in auto mode with the group-changing test guest, and ann (managed by max).
fn group_desk() -> Desk {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&[
        "plugin",
        "install",
        guest("changes-a-group").to_str().unwrap(),
    ]);
    desk.ok(&["grant", "acme", "changes-a-group", "--all"]);
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        ANN,
        "--name",
        "Ann Archer",
        "--manager",
        MAX,
        "--department",
        "Sales",
    ]);
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        MAX,
        "--name",
        "Max Miller",
    ]);
    desk.ok(&["sandbox", "user", "add", "acme", "eve@acme.test"]);
    desk
}

fn ask_for_group(desk: &Desk, member: &str) -> Value {
    desk.json(&[
        "ticket",
        "submit",
        "acme",
        "--from",
        ANN,
        "--subject",
        "add me to the Sales group",
        "--verified",
        "--field",
        "group=Sales",
        "--field",
        &format!("member={member}"),
    ])
}

fn events(desk: &Desk, email: &str, action: &str) -> usize {
    let user = desk.json(&["sandbox", "user", "show", "acme", email]);
    user["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

fn notes(desk: &Desk, ticket: &Value) -> Vec<String> {
    let shown = desk.json(&["ticket", "show", ticket.as_str().unwrap()]);
    shown["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_group_change_asks_the_manager_and_only_the_manager_can_approve_it() {
    let desk = group_desk();
    let s = ask_for_group(&desk, ANN);
    assert_eq!(s["status"], "waiting", "{s}");
    let approval = &s["approval"];
    assert_eq!(approval["rule"], "group-membership");
    assert_eq!(approval["approvers"], json!([MAX]));
    assert_eq!(approval["summary"], "add ann@acme.test to the group Sales");
    let id = approval["id"].as_str().unwrap();

    // The manager was asked by chat, the ticket says so, nothing changed yet.
    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    assert!(
        outbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["recipient"] == MAX
                && m["text"].as_str().unwrap().contains(id)
                && m["text"].as_str().unwrap().contains("group-membership")),
        "{outbox}"
    );
    assert!(
        notes(&desk, &s["ticket"])
            .iter()
            .any(|n| n.contains(&format!("asked for approval {id}")))
    );
    assert_eq!(events(&desk, ANN, "group-added"), 0);
    let pending = desk.json(&["approvals", "--tenant", "acme"]);
    assert_eq!(pending[0]["id"], id, "{pending}");

    // The requester cannot approve their own request; a stranger cannot either.
    let own = desk.run(&["approve", id, "--as", ANN]);
    assert!(
        !own.ok && own.stderr.contains("cannot approve their own request"),
        "{}",
        own.stderr
    );
    let stranger = desk.run(&["approve", id, "--as", "eve@acme.test"]);
    assert!(
        !stranger.ok
            && stranger
                .stderr
                .contains("is not an approver for this request"),
        "{}",
        stranger.stderr
    );
    assert_eq!(events(&desk, ANN, "group-added"), 0);

    let done = desk.json(&["approve", id, "--as", MAX, "--comment", "fine by me"]);
    assert_eq!(done["status"], "resolved", "{done}");
    assert_eq!(events(&desk, ANN, "group-added"), 1);
    let user = desk.json(&["sandbox", "user", "show", "acme", ANN]);
    assert_eq!(user["groups"], json!(["Sales"]));
    assert!(
        notes(&desk, &s["ticket"])
            .iter()
            .any(|n| n.contains(&format!("{id} approved by {MAX}")) && n.contains("fine by me"))
    );
    let run = desk.json(&["run", "show", s["run"].as_str().unwrap()]);
    let add = run["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["function"] == "idp.add-group-member")
        .unwrap();
    assert!(
        add["decision"]
            .as_str()
            .unwrap()
            .starts_with("approved by max@acme.test"),
        "{add}"
    );

    let twice = desk.run(&["approve", id, "--as", MAX]);
    assert!(
        !twice.ok && twice.stderr.contains("approved already"),
        "{}",
        twice.stderr
    );
    assert_eq!(events(&desk, ANN, "group-added"), 1);
    assert_eq!(desk.json(&["approvals"]), json!([]));

    let audit = desk.ok(&["audit", "export", "--tenant", "acme"]);
    for kind in ["approval.request", "approval.refused", "approval.answer"] {
        assert!(
            audit.contains(&format!("\"{kind}\"")),
            "no {kind} in the audit log"
        );
    }
    assert_eq!(desk.json(&["audit", "verify"])["intact"], true);
}

#[test]
fn a_rejected_group_change_escalates_and_changes_nothing() {
    let desk = group_desk();
    let s = ask_for_group(&desk, ANN);
    let id = s["approval"]["id"].as_str().unwrap();
    let done = desk.json(&["reject", id, "--as", MAX, "--comment", "not in your role"]);
    assert_eq!(done["status"], "escalated", "{done}");
    assert!(
        done["reason"].as_str().unwrap().contains("rejected"),
        "{done}"
    );
    assert_eq!(events(&desk, ANN, "group-added"), 0);
    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "escalated");
    assert!(
        notes(&desk, &s["ticket"])
            .iter()
            .any(|n| n.contains(&format!("{id} rejected by {MAX}"))
                && n.contains("not in your role"))
    );
}

#[test]
fn any_action_on_a_privileged_account_is_denied_by_the_default_policy() {
    let desk = group_desk();
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        "root@acme.test",
        "--privileged",
        "--manager",
        MAX,
    ]);
    let s = ask_for_group(&desk, "root@acme.test");
    assert_eq!(s["status"], "escalated", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("privileged-accounts"),
        "{s}"
    );
    assert_eq!(events(&desk, "root@acme.test", "group-added"), 0);
    assert_eq!(desk.json(&["approvals"]), json!([]), "a denial asks nobody");
    let run = desk.json(&["run", "show", s["run"].as_str().unwrap()]);
    let call = &run["calls"][0];
    assert!(
        call["decision"]
            .as_str()
            .unwrap()
            .contains("privileged-accounts"),
        "{call}"
    );
}

#[test]
fn shadow_mode_changes_nothing_and_writes_the_proposal() {
    let desk = Desk::new();
    desk.ok(&["plugin", "install", "--bundled"]);
    desk.ok(&["tenant", "add", "fresh"]);
    desk.ok(&["grant", "fresh", "account-unlock", "--all"]);
    locked_user(&desk, "fresh", "ann@fresh.test");
    let modes = desk.json(&["mode", "show", "fresh"]);
    assert_eq!(
        modes,
        json!([{ "category": "*", "mode": "shadow" }]),
        "new tenants start in shadow"
    );

    let s = desk.submit("fresh", "ann@fresh.test", "I'm locked out of my account");
    assert_eq!(s["status"], "shadowed", "{s}");
    assert!(
        s["proposed"][0]
            .as_str()
            .unwrap()
            .contains("unlock the account ann@fresh.test"),
        "{s}"
    );
    let user = desk.json(&["sandbox", "user", "show", "fresh", "ann@fresh.test"]);
    assert_eq!(
        user["locked"], true,
        "shadow mode changed the directory: {user}"
    );
    assert_eq!(
        desk.json(&["sandbox", "outbox", "fresh"]),
        json!([]),
        "shadow mode sent chat"
    );
    let ticket = desk.json(&["ticket", "show", s["ticket"].as_str().unwrap()]);
    assert_eq!(ticket["status"], "escalated");
    let proposal = ticket["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["text"].as_str().unwrap().starts_with("Shadow run"))
        .expect("a proposal note");
    assert_eq!(proposal["visibility"], "internal");
    assert!(
        proposal["text"]
            .as_str()
            .unwrap()
            .contains("1. unlock the account ann@fresh.test")
    );

    // Switching the category to auto lets the same ticket through.
    desk.ok(&["mode", "set", "fresh", "account-unlock", "auto"]);
    let s = desk.submit("fresh", "ann@fresh.test", "I'm locked out of my account");
    assert_eq!(s["status"], "resolved", "{s}");
    let audit = desk.ok(&["audit", "export", "--tenant", "fresh"]);
    assert!(audit.contains("\"mode.set\""), "{audit}");
}

#[test]
fn mode_off_sends_the_category_to_a_technician() {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&["mode", "set", "acme", "account-unlock", "off"]);
    locked_user(&desk, "acme", ANN);
    let s = desk.submit("acme", ANN, "I'm locked out of my account");
    assert_eq!(s["status"], "escalated", "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("capdesk is off"),
        "{s}"
    );
    let user = desk.json(&["sandbox", "user", "show", "acme", ANN]);
    assert_eq!(user["locked"], true);
    let bad = desk.run(&["mode", "set", "acme", "*", "yolo"]);
    assert!(
        !bad.ok && bad.stderr.contains("off, shadow, supervised, auto"),
        "{}",
        bad.stderr
    );
}

#[test]
fn supervised_mode_asks_a_technician_before_each_directory_change() {
    let desk = Desk::new().with_tenant("acme");
    desk.ok(&["mode", "set", "acme", "*", "supervised"]);
    desk.ok(&[
        "sandbox",
        "user",
        "add",
        "acme",
        "tess@acme.test",
        "--group",
        "IT Technicians",
    ]);
    locked_user(&desk, "acme", ANN);
    let s = desk.submit("acme", ANN, "I'm locked out of my account");
    assert_eq!(s["status"], "waiting", "{s}");
    assert_eq!(s["approval"]["rule"], "supervised-mode");
    assert_eq!(s["approval"]["approvers"], json!(["tess@acme.test"]));
    let user = desk.json(&["sandbox", "user", "show", "acme", ANN]);
    assert_eq!(user["locked"], true);
    let done = desk.json(&[
        "approve",
        s["approval"]["id"].as_str().unwrap(),
        "--as",
        "tess@acme.test",
    ]);
    assert_eq!(done["status"], "resolved", "{done}");
    let user = desk.json(&["sandbox", "user", "show", "acme", ANN]);
    assert_eq!(user["locked"], false);
}

#[test]
fn an_unanswered_approval_escalates_after_the_timeout_and_tells_the_requester() {
    let desk = group_desk();
    let policy = desk.dir.path().join("quick.toml");
    let default = desk.ok(&["policy", "default"]);
    let quick = default.replacen("approval_timeout = \"4h\"", "approval_timeout = \"1s\"", 1);
    assert_ne!(
        quick, default,
        "the default policy sets approval_timeout = \"4h\""
    );
    std::fs::write(&policy, quick).unwrap();
    desk.ok(&["policy", "set", "acme", policy.to_str().unwrap()]);

    let s = ask_for_group(&desk, ANN);
    let id = s["approval"]["id"].as_str().unwrap();
    assert!(
        desk.json(&["sweep"]).as_array().unwrap().is_empty(),
        "nothing is due yet"
    );
    // The wait is over once a full second has passed since the request.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let swept = desk.json(&["sweep"]);
    assert_eq!(swept[0]["status"], "escalated", "{swept}");
    assert!(
        swept[0]["reason"]
            .as_str()
            .unwrap()
            .contains("nobody answered in time"),
        "{swept}"
    );
    let outbox = desk.json(&["sandbox", "outbox", "acme"]);
    assert!(
        outbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["recipient"] == ANN && m["text"].as_str().unwrap().contains("technician")),
        "{outbox}"
    );
    let late = desk.run(&["approve", id, "--as", MAX]);
    assert!(
        !late.ok && late.stderr.contains("expired"),
        "{}",
        late.stderr
    );
    assert_eq!(events(&desk, ANN, "group-added"), 0);
}

#[test]
fn a_policy_with_a_mistake_is_rejected_with_its_line_and_the_old_one_stays() {
    let desk = Desk::new().with_tenant("acme");
    let before = desk.json(&["policy", "show", "acme"]);
    assert_eq!(before["default"], true);

    let bad = desk.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nname = \"oops\"\nallow = [\"idp.unlock\"]\nwhen = \"context.requester.verifed\"\n",
    )
    .unwrap();
    let out = desk.run(&["policy", "set", "acme", bad.to_str().unwrap()]);
    assert!(!out.ok, "{}", out.stdout);
    assert!(out.stderr.contains("line 4"), "{}", out.stderr);
    assert!(out.stderr.contains("verifed"), "{}", out.stderr);
    assert_eq!(
        desk.json(&["policy", "show", "acme"]),
        before,
        "the old policy stays in force"
    );

    let good = desk.dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[rule]]\nname = \"unlock-anyone-verified\"\nallow = [\"idp.unlock\", \"psa.*\", \"chat.*\"]\nwhen = \"context.requester.verified\"\n",
    )
    .unwrap();
    desk.ok(&["policy", "set", "acme", good.to_str().unwrap()]);
    let after = desk.json(&["policy", "show", "acme"]);
    assert_eq!(after["default"], false);
    assert_eq!(after["rules"], json!(["unlock-anyone-verified"]));
    let audit = desk.ok(&["audit", "export", "--tenant", "acme"]);
    assert!(audit.contains("\"policy.set\""), "{audit}");
}
