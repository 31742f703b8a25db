//! `capdesk demo`: a fresh temporary data dir, a demo tenant with a small directory, the
//! bundled plugins granted, and a scripted set of tickets that shows resolution,
//! escalation for each kind of reason, and an unmatched ticket.

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
}

const STEPS: &[Step] = &[
    Step {
        what: "a verified user locked out of her account",
        from: "ann@demo.test",
        subject: "Locked out of my account",
        body: "I typed my password wrong too many times and now I'm locked out.",
        verified: true,
    },
    Step {
        what: "a verified user who forgot his password",
        from: "bob@demo.test",
        subject: "Forgot my password",
        body: "Back from holiday and I can't remember my password. Can you reset it?",
        verified: true,
    },
    Step {
        what: "a locked-out administrator (privileged: never automated)",
        from: "carol@demo.test",
        subject: "Account locked",
        body: "My admin account is locked out, please unlock.",
        verified: true,
    },
    Step {
        what: "a password reset asked by email (identity not verified)",
        from: "dave@demo.test",
        subject: "Password reset please",
        body: "Please reset my password, I forgot it.",
        verified: false,
    },
    Step {
        what: "a ticket no playbook claims",
        from: "erin@demo.test",
        subject: "Printer on floor 2 is jammed",
        body: "Paper jam again in the big printer.",
        verified: true,
    },
];

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

    desk.store.add_tenant(TENANT, "Demo Co").await?;
    for p in desk.install_bundled().await? {
        desk.grant_all(TENANT, &p.id).await?;
        say(format!(
            "installed plugin {} {} and granted it everything it asks for",
            p.id, p.version
        ));
    }
    // New tenants start in shadow mode; the demo shows what auto mode does.
    desk.store.set_mode(TENANT, "*", Mode::Auto).await?;
    say(format!(
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
                contacts: vec![],
            })
            .await?;
    }
    say(format!(
        "seeded {} users in the sandbox directory (ann and carol are locked out)\n",
        users.len()
    ));

    let mut results = Vec::new();
    for step in STEPS {
        let s = submit(&desk, step).await?;
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
            fields: Vec::new(),
        },
    )
    .await
}
