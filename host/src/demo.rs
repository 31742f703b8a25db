//! `capdesk demo`: a fresh temporary data dir, a demo tenant with a small directory, the
//! bundled plugins granted, and a scripted set of tickets that shows every bundled
//! category resolved, approvals (the demo answers as the approver), an identity
//! challenge (the demo reads the code from the sandbox), escalation for each kind of
//! reason, an unmatched ticket, and a new tenant's shadow run.

use serde_json::json;

use crate::connectors::sandbox::{NewUser, SignIn};
use crate::connectors::{NewTicket, Person};
use crate::engine::{Desk, Submission};
use crate::mode::Mode;

const TENANT: &str = "demo";

struct Step {
    what: &'static str,
    from: &'static str,
    subject: &'static str,
    body: &'static str,
    verified: bool,
    fields: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        what: "a verified user locked out of her account",
        from: "ann@demo.test",
        subject: "Locked out of my account",
        body: "I typed my password wrong too many times and now I'm locked out.",
        verified: true,
        fields: &[],
    },
    Step {
        what: "a verified user who forgot his password",
        from: "bob@demo.test",
        subject: "Forgot my password",
        body: "Back from holiday and I can't remember my password. Can you reset it?",
        verified: true,
        fields: &[],
    },
    Step {
        what: "a locked-out administrator (privileged: never automated)",
        from: "carol@demo.test",
        subject: "Account locked",
        body: "My admin account is locked out, please unlock.",
        verified: true,
        fields: &[],
    },
    Step {
        what: "a password reset by email from someone with no second contact method on file (cannot be verified)",
        from: "erin@demo.test",
        subject: "Password reset please",
        body: "Please reset my password, I forgot it.",
        verified: false,
        fields: &[],
    },
    Step {
        what: "a ticket no playbook claims",
        from: "erin@demo.test",
        subject: "Printer on floor 2 is jammed",
        body: "Paper jam again in the big printer.",
        verified: true,
        fields: &[],
    },
    Step {
        what: "a verified user with a new phone who needs MFA set up again",
        from: "ann@demo.test",
        subject: "New phone - authenticator app",
        body: "I got a new phone and the authenticator app is gone. Can you reset my MFA so I can set it up again?",
        verified: true,
        fields: &[],
    },
    Step {
        what: "full access to the finance shared mailbox (the manager approves)",
        from: "erin@demo.test",
        subject: "Access to the finance shared mailbox",
        body: "Please give me full access to the finance shared mailbox.",
        verified: true,
        fields: &[("mailbox", "finance@demo.test"), ("right", "full-access")],
    },
    Step {
        what: "an upgrade to E5 (the finance approvers approve)",
        from: "bob@demo.test",
        subject: "Upgrade my license to E5",
        body: "I need Power BI Pro and Teams Phone, please upgrade me from E3 to E5.",
        verified: true,
        fields: &[("license", "M365-E5")],
    },
    Step {
        what: "joining a distribution list by email: an identity challenge, then the manager approves",
        from: "dave@demo.test",
        subject: "Add me to the marketing DL",
        body: "Hi, please add me to the marketing distribution list. Thanks, Dave",
        verified: false,
        fields: &[("group", "marketing"), ("action", "add")],
    },
];

/// Set up the demo tenant in `desk`: the tenant (in auto mode), the bundled plugins
/// installed and granted everything they ask for, and a small sandbox directory.
/// Returns what was done, a line each. `capdesk serve` seeds a fresh data dir with it.
pub async fn seed(desk: &Desk) -> anyhow::Result<Vec<String>> {
    let mut said = Vec::new();
    desk.store.add_tenant(TENANT, "Demo Co").await?;
    for p in desk.install_bundled().await? {
        desk.grant_all(TENANT, &p.id).await?;
        said.push(format!(
            "installed plugin {} {} and granted it everything it asks for",
            p.id, p.version
        ));
    }
    // New tenants start in shadow mode; the demo shows what auto mode does.
    desk.store.set_mode(TENANT, "*", Mode::Auto).await?;
    said.push(format!(
        "set every category of {TENANT} to auto mode: the default policy decides each action\n"
    ));
    let sandbox = desk.sandbox(TENANT);
    let users = [
        ("ann@demo.test", "Ann Archer", true, false, false),
        ("bob@demo.test", "Bob Baker", false, false, false),
        (
            "carol@demo.test",
            "Carol Chen (IT admin)",
            true,
            true,
            false,
        ),
        ("dave@demo.test", "Dave Diaz", false, false, false),
        ("erin@demo.test", "Erin Evans", false, false, false),
    ];
    for (email, name, locked, privileged, disabled) in users {
        sandbox
            .add_user(&NewUser {
                email: email.into(),
                name: name.into(),
                locked,
                privileged,
                disabled,
                password: Some("Winter2026!".into()),
                manager: Some("carol@demo.test".into()).filter(|m| m != email),
                department: Some("Operations".into()),
                groups: vec!["all-staff".into()],
                licenses: vec!["M365-E3".into()],
                mfa_methods: vec!["authenticator-app".into()],
                // Erin has no second contact method, so she cannot be verified.
                contacts: match email {
                    "ann@demo.test" => vec!["sms:+15550101".into()],
                    "bob@demo.test" => vec!["sms:+15550102".into()],
                    "carol@demo.test" => vec!["sms:+15550103".into()],
                    "dave@demo.test" => vec!["sms:+15550199".into()],
                    _ => vec![],
                },
            })
            .await?;
    }
    sandbox
        .add_user(&NewUser {
            email: "finance@demo.test".into(),
            name: "Finance (shared mailbox)".into(),
            ..NewUser::default()
        })
        .await?;
    sandbox
        .add_user(&NewUser {
            email: "fiona@demo.test".into(),
            name: "Fiona Fox (finance)".into(),
            groups: vec!["Finance Approvers".into()],
            ..NewUser::default()
        })
        .await?;
    said.push(format!(
        "seeded {} users in the sandbox directory (ann and carol are locked out; carol manages \
         everyone; fiona approves licenses; everyone but erin has a phone on file for identity codes), and \
         the finance shared mailbox\n",
        users.len() + 1
    ));
    Ok(said)
}

/// Run the demo and print what happened to each ticket.
pub async fn run(json: bool) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("capdesk-demo-{}", uuid::Uuid::now_v7()));
    let desk = Desk::open(&dir).await?;
    let say = |s: String| {
        if !json {
            println!("{s}");
        }
    };
    say(format!("capdesk demo, data dir {}\n", dir.display()));

    for line in seed(&desk).await? {
        say(line);
    }
    let sandbox = desk.sandbox(TENANT);

    let mut results = Vec::new();
    for step in STEPS {
        let s = submit(&desk, step).await?;
        let s = drive(&desk, s, &say).await?;
        say(format!(
            "{}: {}\n  {} {} via {}: {}\n",
            s.ticket,
            step.what,
            s.status.name().to_uppercase(),
            s.run,
            s.plugin.as_deref().unwrap_or("no plugin"),
            s.reason
        ));
        results.push(json!({ "what": step.what, "submission": s }));
    }

    // Take idp.unlock away and lock Ann out again: the same ticket now escalates.
    desk.store
        .revoke(
            TENANT,
            "account-unlock",
            &[crate::capability::Capability::IdpUnlock],
        )
        .await?;
    for _ in 0..crate::connectors::sandbox::LOCKOUT_THRESHOLD {
        sandbox.sign_in("ann@demo.test", "wrong guess").await?;
    }
    let again = Step {
        what: "ann locked out again, after an admin revoked idp.unlock",
        ..STEPS[0]
    };
    let s = submit(&desk, &again).await?;
    say(format!(
        "{}: {}\n  {} {} via {}: {}\n",
        s.ticket,
        again.what,
        s.status.name().to_uppercase(),
        s.run,
        s.plugin.as_deref().unwrap_or("no plugin"),
        s.reason
    ));
    results.push(json!({ "what": again.what, "submission": s }));

    // A new client starts in shadow mode: the plugin runs, nothing changes, and the
    // proposal waits on the ticket for a technician.
    const NEWCO: &str = "newco";
    desk.store
        .add_tenant(NEWCO, "New Co (just onboarded)")
        .await?;
    for p in desk.store.plugins().await? {
        desk.grant_all(NEWCO, &p.id).await?;
    }
    desk.sandbox(NEWCO)
        .add_user(&NewUser {
            email: "nina@newco.test".into(),
            name: "Nina Novak".into(),
            locked: true,
            ..NewUser::default()
        })
        .await?;
    let shadow = desk
        .submit(
            NEWCO,
            NewTicket {
                subject: "Locked out".into(),
                body: "My account is locked, can you unlock it?".into(),
                requester: Person {
                    email: "nina@newco.test".into(),
                    name: String::new(),
                },
                channel: "chat".into(),
                requester_verified: true,
                fields: Vec::new(),
            },
        )
        .await?;
    say(format!(
        "{} ({NEWCO}, a new tenant in shadow mode): {} {}: {}\n  proposed: {}\n",
        shadow.ticket,
        shadow.status.name().to_uppercase(),
        shadow.run,
        shadow.reason,
        shadow.proposed.join("; ")
    ));
    results.push(
        json!({ "what": "a new tenant's first ticket, in shadow mode", "submission": shadow }),
    );

    let bob_signin = sandbox.sign_in("bob@demo.test", "Winter2026!").await?;
    let ann_now = sandbox.sign_in("ann@demo.test", "Winter2026!").await?;
    say(format!(
        "bob's old password now: {} (he received a temporary one in chat: `capdesk --data {} sandbox outbox {TENANT}`)",
        describe(&bob_signin),
        dir.display()
    ));
    say(format!("ann's sign-in now: {}", describe(&ann_now)));
    say(format!(
        "\nlook around: capdesk --data {} ticket show T-1 | run show R-2 | sandbox user show {TENANT} ann@demo.test",
        dir.display()
    ));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "data_dir": dir, "tickets": results }))?
        );
    }
    Ok(())
}

fn describe(s: &SignIn) -> &'static str {
    match s {
        SignIn::Ok => "signs in",
        SignIn::MustChangePassword => "signs in, must change password",
        SignIn::BadPassword => "refused (wrong password)",
        SignIn::Locked => "refused (locked out)",
        SignIn::Disabled => "refused (disabled)",
        SignIn::NoPasswordSet => "refused (no password)",
    }
}

async fn submit(desk: &Desk, step: &Step) -> anyhow::Result<Submission> {
    desk.submit(
        TENANT,
        NewTicket {
            subject: step.subject.into(),
            body: step.body.into(),
            requester: Person {
                email: step.from.into(),
                name: String::new(),
            },
            channel: if step.verified {
                "chat".into()
            } else {
                "email".into()
            },
            requester_verified: step.verified,
            fields: step
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    )
    .await
}

/// Play the people a waiting run waits for: approve as the first approver it names,
/// give the identity code the sandbox delivered, or pick the first offered choice.
async fn drive(
    desk: &Desk,
    mut s: Submission,
    say: &impl Fn(String),
) -> anyhow::Result<Submission> {
    for _ in 0..6 {
        let run = crate::store::parse_run_id(&s.run)?;
        s = if let Some(approval) = &s.approval {
            let by = approval.approvers[0].clone();
            say(format!(
                "  waits for approval {} ({}; rule {}) — approving as {by}",
                approval.id, approval.summary, approval.rule
            ));
            let id = crate::store::parse_approval_id(&approval.id)?;
            let answer = crate::store::approvals::Answer::Approve;
            desk.decide_approval(id, &by, answer, Some("approved in the demo"))
                .await?
        } else if let Some(waiting) = &s.waiting_for {
            let answer = if waiting.question.contains("code") {
                let tenant = desk.store.run(run).await?.tenant;
                let outbox = desk.sandbox(&tenant).outbox().await?;
                outbox
                    .iter()
                    .rev()
                    .find_map(|m| {
                        let rest = m.text.split("verification code is ").nth(1)?;
                        Some(rest.chars().take(6).collect::<String>())
                    })
                    .unwrap_or_default()
            } else {
                waiting.choices.first().cloned().unwrap_or_default()
            };
            say(format!(
                "  asks {}: {} — answering {answer:?}",
                waiting.to, waiting.question
            ));
            desk.answer(run, &waiting.to, &answer).await?
        } else {
            break;
        };
    }
    Ok(s)
}
