//! account-unlock in the real runtime against the sandbox directory.

// The plugin's triage has unit tests in its module. The crate is a cdylib without a
// unit-test target, so the module is compiled into this test binary and its tests run
// here.
#[allow(dead_code)]
#[path = "../src/triage.rs"]
mod triage;

use capdesk_sdk::harness::{Report, Scenario, Visibility, ticket, user};

fn ann_locked_out() -> Scenario {
    Scenario::new().user(
        user("ann@acme.test")
            .name("Ann Archer")
            .locked()
            .password("Old-pass-1")
            .manager("boss@acme.test"),
    )
}

/// This plugin's triage score for the scenario's ticket.
fn score(report: &Report) -> f32 {
    report
        .submission
        .scores
        .iter()
        .find(|s| s.plugin == "account-unlock")
        .map(|s| s.score)
        .expect("account-unlock scored the ticket")
}

#[tokio::test]
async fn unlocks_the_verified_owner_and_sends_the_closeout() {
    ann_locked_out()
        .ticket(
            ticket("ann@acme.test")
                .subject("Locked out of my account")
                .verified(),
        )
        .run()
        .await
        .assert_status("resolved")
        .assert_called("idp.unlock-account")
        .assert_not_called("chat.ask")
        .assert_note(
            Visibility::Internal,
            "Checked: requester ann@acme.test verified by the chat channel; account \
             ann@acme.test (the requester's own) found and enabled, locked, not privileged.\n\
             Done: ann@acme.test unlocked.",
        )
        .assert_note(Visibility::Public, "is unlocked")
        .assert_message_to("ann@acme.test", "Hi Ann Archer")
        .assert_message_to("ann@acme.test", "you can sign in again now")
        .assert_message_to("ann@acme.test", "a device is still trying an old password")
        .assert_user("ann@acme.test", |u| {
            assert!(!u.user.locked);
            assert!(u.events.iter().any(|e| e.action == "unlocked"));
        });
}

#[tokio::test]
async fn a_ticket_naming_another_address_asks_whose_account_and_unlocks_the_owners() {
    ann_locked_out()
        .ticket(
            ticket("ann@acme.test")
                .subject("locked out")
                .body("Locked out since 9. My manager boss@acme.test asked me to raise this.")
                .verified(),
        )
        .answer("ann@acme.test")
        .run()
        .await
        .assert_asked("Whose account is locked out")
        .assert_status("resolved")
        .assert_called("idp.unlock-account")
        .assert_note(
            Visibility::Internal,
            "asked ann@acme.test whose account it is: ann@acme.test",
        )
        .assert_user("ann@acme.test", |u| assert!(!u.user.locked));
}

#[tokio::test]
async fn a_colleagues_account_is_clarified_then_denied_by_the_default_policy() {
    let report = ann_locked_out()
        .user(user("bob@acme.test"))
        .ticket(
            ticket("bob@acme.test")
                .subject("colleague locked out")
                .body("My colleague is locked out of her account, can you unlock it?")
                .verified(),
        )
        .answer("someone else's account")
        .answer("ann@acme.test")
        .run()
        .await;
    report
        .assert_asked("Whose account is locked out")
        .assert_asked("email address")
        .assert_status("escalated")
        .assert_reason_contains("no rule allows")
        .assert_not_called("idp.unlock-account")
        .assert_message_to(
            "bob@acme.test",
            "Only the owner of ann@acme.test can have the account unlocked",
        )
        .assert_note(Visibility::Internal, "not the requester's own")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
    assert_eq!(
        report.questions[0].choices,
        ["bob@acme.test", "someone else's account"]
    );
}

#[tokio::test]
async fn without_idp_unlock_it_escalates_and_the_user_stays_locked() {
    ann_locked_out()
        .ticket(ticket("ann@acme.test").subject("account locked").verified())
        .revoke("idp.unlock")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("idp.unlock")
        .assert_denied("idp.unlock")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn an_unverified_requester_without_a_contact_method_is_escalated_untouched() {
    ann_locked_out()
        .ticket(
            ticket("ann@acme.test")
                .subject("I'm locked out")
                .channel("email"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("could not be verified")
        .assert_not_called("idp.unlock-account")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_is_unlocked() {
    Scenario::new()
        .user(user("ann@acme.test").locked().contact("sms:+15550142"))
        .ticket(
            ticket("ann@acme.test")
                .subject("I'm locked out")
                .channel("email"),
        )
        .pass_challenge()
        .run()
        .await
        .assert_asked("code")
        .assert_message_to("sms:+15550142", "verification code")
        .assert_status("resolved")
        .assert_called("idp.unlock-account")
        .assert_note(Visibility::Internal, "verified by a one-time code")
        .assert_user("ann@acme.test", |u| assert!(!u.user.locked));
}

#[tokio::test]
async fn three_wrong_codes_escalate_and_change_nothing() {
    Scenario::new()
        .user(user("ann@acme.test").locked().contact("sms:+15550142"))
        .ticket(
            ticket("ann@acme.test")
                .subject("I'm locked out")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("wrong verification code 3 times")
        .assert_not_called("idp.unlock-account")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn a_privileged_account_is_denied_by_the_default_policy() {
    Scenario::new()
        .user(user("root@acme.test").locked().privileged())
        .ticket(
            ticket("root@acme.test")
                .subject("admin account locked out")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_not_called("idp.unlock-account")
        .assert_note(Visibility::Internal, "privileged")
        .assert_user("root@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn someone_elses_account_is_denied_by_the_default_policy() {
    ann_locked_out()
        .user(user("bob@acme.test"))
        .ticket(
            ticket("bob@acme.test")
                .subject("Ann is locked out")
                .verified()
                .field("target", "ann@acme.test"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no rule allows")
        .assert_not_called("chat.ask")
        .assert_not_called("idp.unlock-account")
        .assert_message_to("bob@acme.test", "Only the owner of ann@acme.test")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

/// The default policy asks nobody about unlocks; a tenant may.
const MANAGER_APPROVES_UNLOCKS: &str = r#"
[[rule]]
name = "privileged-accounts"
deny = ["*"]
when = "context.target.privileged"

[[rule]]
name = "identity-checks"
allow = ["idp.verify"]

[[rule]]
name = "unlocks-need-the-manager"
ask = ["idp.unlock"]
approvers = ["manager"]

[[rule]]
name = "tickets-and-chat"
allow = ["psa.write", "chat.send", "chat.ask"]
"#;

#[tokio::test]
async fn an_unlock_the_manager_rejects_is_escalated_and_changes_nothing() {
    ann_locked_out()
        .policy(MANAGER_APPROVES_UNLOCKS)
        .ticket(ticket("ann@acme.test").subject("locked out").verified())
        .reject()
        .run()
        .await
        .assert_approval_asked("unlocks-need-the-manager")
        .assert_status("escalated")
        .assert_reason_contains("an unlock was not approved")
        .assert_not_called("idp.unlock-account")
        .assert_note(Visibility::Internal, "tried an unlock of ann@acme.test")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn an_unlock_the_manager_approves_goes_ahead() {
    ann_locked_out()
        .policy(MANAGER_APPROVES_UNLOCKS)
        .ticket(ticket("ann@acme.test").subject("locked out").verified())
        .approve()
        .run()
        .await
        .assert_approval_asked("unlocks-need-the-manager")
        .assert_status("resolved")
        .assert_called("idp.unlock-account")
        .assert_user("ann@acme.test", |u| assert!(!u.user.locked));
}

#[tokio::test]
async fn an_unknown_user_is_escalated() {
    Scenario::new()
        .ticket(ticket("ghost@acme.test").subject("locked out").verified())
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.unlock-account");
}

#[tokio::test]
async fn a_directory_failure_escalates_and_says_nothing_changed() {
    ann_locked_out()
        .ticket(ticket("ann@acme.test").subject("locked out").verified())
        .upstream_failure("idp.unlock-account")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("the directory failed during an unlock of ann@acme.test")
        .assert_reason_contains("nothing was changed")
        .assert_note(Visibility::Internal, "tried an unlock of ann@acme.test")
        .assert_user("ann@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn an_account_that_is_not_locked_gets_advice_not_changes() {
    Scenario::new()
        .user(user("ann@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("locked out?")
                .body("it says my account is locked")
                .verified(),
        )
        .run()
        .await
        .assert_status("resolved")
        .assert_not_called("idp.unlock-account")
        .assert_note(Visibility::Internal, "nothing to unlock")
        .assert_message_to("ann@acme.test", "it is not locked")
        .assert_message_to("ann@acme.test", "please reset my password");
}

#[tokio::test]
async fn real_phrasings_of_a_lockout_are_claimed() {
    for (subject, body) in [
        ("again", "user locked again, same as last week"),
        ("lcoked out", "lcoked out of my acount"),
        (
            "Outlook",
            "It says 'Your account is temporarily locked to prevent unauthorized use. Try again \
             later.'",
        ),
        (
            "blocked",
            "my user is blocked after I typed the password wrong many times, please unblock",
        ),
        (
            "suspended?",
            "account suspended temporarily after too many sign in attempts",
        ),
        (
            "Can't log in",
            "Unable to log in, message says locked.\n\nSent from my iPhone",
        ),
    ] {
        let report = ann_locked_out()
            .ticket(
                ticket("ann@acme.test")
                    .subject(subject)
                    .body(body)
                    .verified(),
            )
            .run()
            .await;
        assert!(
            score(&report) >= 0.5,
            "{subject}: {body}: {}",
            score(&report)
        );
        report
            .assert_status("resolved")
            .assert_user("ann@acme.test", |u| assert!(!u.user.locked));
    }
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        ("The printer on floor 3 is locked", ""),
        (
            "drawer",
            "can someone unlock my desk drawer? I lost the little key",
        ),
        (
            "Sage",
            "Locked out of Sage, it says user in use by another session",
        ),
        (
            "side door",
            "locked out of the office, my fob isn't working",
        ),
        (
            "Sign-in blocked",
            "Sign-in was blocked because of unusual activity from another country",
        ),
        (
            "RE: account locked - resolved",
            "All sorted, thanks!\n\n> Hi Ann, your account has been unlocked.",
        ),
        ("Excel", "The file is locked for editing by another user"),
    ] {
        let report = ann_locked_out()
            .ticket(
                ticket("ann@acme.test")
                    .subject(subject)
                    .body(body)
                    .verified(),
            )
            .run()
            .await;
        assert!(
            score(&report) < 0.5,
            "{subject}: {body}: {}",
            score(&report)
        );
        report
            .assert_status("unmatched")
            .assert_user("ann@acme.test", |u| assert!(u.user.locked));
    }
}
