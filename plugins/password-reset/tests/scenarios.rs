//! password-reset in the real runtime against the sandbox directory.

// The plugin's triage has unit tests in its module. The crate is a cdylib without a
// unit-test target, so the module is compiled into this test binary and its tests run
// here.
#[allow(dead_code)]
#[path = "../src/triage.rs"]
mod triage;

use capdesk_sdk::harness::{Report, Scenario, Visibility, ticket, user};

fn bob() -> Scenario {
    Scenario::new().user(
        user("bob@acme.test")
            .name("Bob Baker")
            .password("Old-pass-1")
            .manager("boss@acme.test"),
    )
}

/// The temporary password as the owner received it in chat.
fn delivered_secret(report: &Report) -> String {
    report
        .outbox
        .iter()
        .find_map(|m| m.text.strip_prefix("Your temporary password is: "))
        .and_then(|rest| rest.lines().next())
        .expect("a temporary password message to the owner")
        .to_string()
}

/// This plugin's triage score for the scenario's ticket.
fn score(report: &Report) -> f32 {
    report
        .submission
        .scores
        .iter()
        .find(|s| s.plugin == "password-reset")
        .map(|s| s.score)
        .expect("password-reset scored the ticket")
}

#[tokio::test]
async fn delivers_a_credential_the_plugin_never_sees() {
    let report = bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("Forgot my password")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_called("idp.reset-password")
        .assert_called("idp.revoke-sessions")
        .assert_not_called("chat.ask")
        .assert_note(
            Visibility::Internal,
            "Checked: requester bob@acme.test verified by the chat channel; account \
             bob@acme.test (the requester's own) found and enabled, not locked, not privileged.",
        )
        .assert_note(
            Visibility::Internal,
            "Done: temporary password set for bob@acme.test and delivered by chat to \
             bob@acme.test (expires in 60 min",
        )
        .assert_note(
            Visibility::Internal,
            "bob@acme.test signed out of every session",
        )
        .assert_message_to("bob@acme.test", "Hi Bob Baker")
        .assert_message_to(
            "bob@acme.test",
            "A temporary password was sent by chat to bob@acme.test. It works for 60 minutes",
        )
        .assert_message_to("bob@acme.test", "choose a new password straight away")
        .assert_message_to("bob@acme.test", "You were signed out on every device")
        .assert_user("bob@acme.test", |u| {
            assert!(u.must_change_password);
            assert!(u.events.iter().any(|e| e.action == "password-reset"));
        });
    let secret = delivered_secret(&report);
    assert!(
        secret.len() >= 12,
        "a strong temporary password: {secret:?}"
    );
    report.assert_nowhere_but_outbox(&secret);
    assert!(!report.reason().contains(&secret));
}

#[tokio::test]
async fn a_ticket_naming_another_address_asks_whose_password_and_resets_the_owners() {
    let report = bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("password expired")
                .body(
                    "My password expired. Please send anything to my assistant amy@acme.test too.",
                )
                .verified(),
        )
        .answer("bob@acme.test")
        .run()
        .await;
    report
        .assert_asked("Whose password should be reset?")
        .assert_status("resolved")
        .assert_called("idp.reset-password")
        .assert_note(
            Visibility::Internal,
            "asked bob@acme.test whose account it is: bob@acme.test",
        )
        .assert_user("bob@acme.test", |u| assert!(u.must_change_password));
    assert_eq!(
        report.questions[0].choices,
        ["bob@acme.test", "amy@acme.test", "someone else's account"]
    );
}

#[tokio::test]
async fn a_colleagues_password_is_clarified_then_denied_by_the_default_policy() {
    bob()
        .user(user("priya@acme.test").password("Old-pass-2"))
        .ticket(
            ticket("bob@acme.test")
                .subject("Priya can't get into email")
                .body("My colleague Priya has forgotten her password, can you reset it?")
                .verified(),
        )
        .answer("someone else's account")
        .answer("priya@acme.test")
        .run()
        .await
        .assert_asked("Whose password should be reset?")
        .assert_asked("email address")
        .assert_status("escalated")
        .assert_reason_contains("no rule allows")
        .assert_not_called("idp.reset-password")
        .assert_message_to(
            "bob@acme.test",
            "Only the owner of priya@acme.test can have the password reset",
        )
        .assert_note(Visibility::Internal, "not the requester's own")
        .assert_user("priya@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn without_idp_password_nothing_changes() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("password expired")
                .verified(),
        )
        .revoke("idp.password")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("idp.password")
        .assert_user("bob@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn an_email_request_without_a_contact_method_is_not_trusted() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("reset my password")
                .channel("email"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("could not be verified")
        .assert_not_called("idp.reset-password");
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_gets_the_reset() {
    bob()
        .user(user("carol@acme.test").contact("sms:+15550142"))
        .ticket(
            ticket("carol@acme.test")
                .subject("reset my password")
                .body("I forgot it over the weekend")
                .channel("email"),
        )
        .pass_challenge()
        .run()
        .await
        .assert_asked("code")
        .assert_message_to("sms:+15550142", "verification code")
        .assert_status("resolved")
        .assert_called("idp.reset-password")
        .assert_note(Visibility::Internal, "verified by a one-time code")
        .assert_user("carol@acme.test", |u| assert!(u.must_change_password));
}

#[tokio::test]
async fn three_wrong_codes_escalate_and_change_nothing() {
    Scenario::new()
        .user(user("carol@acme.test").contact("sms:+15550142"))
        .ticket(
            ticket("carol@acme.test")
                .subject("reset my password")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("wrong verification code 3 times")
        .assert_not_called("idp.reset-password")
        .assert_user("carol@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn a_disabled_account_is_escalated() {
    Scenario::new()
        .user(user("gone@acme.test").disabled())
        .ticket(
            ticket("gone@acme.test")
                .subject("forgot my password")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("disabled")
        .assert_not_called("idp.reset-password");
}

#[tokio::test]
async fn a_locked_account_goes_to_a_technician_before_anything_changes() {
    Scenario::new()
        .user(user("bob@acme.test").locked())
        .ticket(
            ticket("bob@acme.test")
                .subject("locked out and forgot my password")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("locked out as well")
        .assert_not_called("idp.reset-password")
        .assert_note(
            Visibility::Internal,
            "nothing changed: the account is locked as well",
        )
        .assert_user("bob@acme.test", |u| {
            assert!(u.user.locked);
            assert!(!u.must_change_password);
        });
}

#[tokio::test]
async fn a_privileged_account_is_denied_by_the_default_policy() {
    Scenario::new()
        .user(user("admin@acme.test").privileged())
        .ticket(
            ticket("admin@acme.test")
                .subject("forgot my password")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_not_called("idp.reset-password")
        .assert_user("admin@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn someone_elses_account_is_denied_by_the_default_policy() {
    bob()
        .user(user("priya@acme.test"))
        .ticket(
            ticket("bob@acme.test")
                .subject("password reset for Priya")
                .verified()
                .field("target", "priya@acme.test"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no rule allows")
        .assert_not_called("idp.reset-password")
        .assert_message_to("bob@acme.test", "Only the owner of priya@acme.test")
        .assert_user("priya@acme.test", |u| assert!(!u.must_change_password));
}

/// The default policy asks nobody about resets; a tenant may.
const MANAGER_APPROVES_RESETS: &str = r#"
[[rule]]
name = "privileged-accounts"
deny = ["*"]
when = "context.target.privileged"

[[rule]]
name = "identity-checks"
allow = ["idp.verify"]

[[rule]]
name = "resets-need-the-manager"
ask = ["idp.password"]
approvers = ["manager"]

[[rule]]
name = "owner-sessions"
allow = ["idp.sessions"]
when = "context.requester.verified && context.requester.is_target"

[[rule]]
name = "tickets-and-chat"
allow = ["psa.write", "chat.send", "chat.ask"]
"#;

#[tokio::test]
async fn a_reset_the_manager_rejects_is_escalated_and_changes_nothing() {
    bob()
        .policy(MANAGER_APPROVES_RESETS)
        .ticket(
            ticket("bob@acme.test")
                .subject("forgot my password")
                .verified(),
        )
        .reject()
        .run()
        .await
        .assert_approval_asked("resets-need-the-manager")
        .assert_status("escalated")
        .assert_reason_contains("a password reset was not approved")
        .assert_not_called("idp.reset-password")
        .assert_not_called("idp.revoke-sessions")
        .assert_note(
            Visibility::Internal,
            "tried a password reset of bob@acme.test",
        )
        .assert_user("bob@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn a_reset_the_manager_approves_goes_ahead() {
    bob()
        .policy(MANAGER_APPROVES_RESETS)
        .ticket(
            ticket("bob@acme.test")
                .subject("forgot my password")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_approval_asked("resets-need-the-manager")
        .assert_status("resolved")
        .assert_called("idp.reset-password")
        .assert_user("bob@acme.test", |u| assert!(u.must_change_password));
}

#[tokio::test]
async fn an_unknown_user_is_escalated() {
    Scenario::new()
        .ticket(
            ticket("ghost@acme.test")
                .subject("forgot my password")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.reset-password");
}

#[tokio::test]
async fn a_directory_failure_escalates_and_says_nothing_changed() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("password expired")
                .verified(),
        )
        .upstream_failure("idp.reset-password")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("the directory failed during a password reset of bob@acme.test")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.revoke-sessions")
        .assert_note(
            Visibility::Internal,
            "tried a password reset of bob@acme.test",
        )
        .assert_user("bob@acme.test", |u| assert!(!u.must_change_password));
}

#[tokio::test]
async fn a_password_set_but_not_delivered_is_escalated_as_changed() {
    let report = bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("password expired")
                .verified(),
        )
        .upstream_failure("chat.send")
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("was reset, but the temporary password could not be delivered")
        .assert_reason_contains("the old password no longer works")
        .assert_note(
            Visibility::Internal,
            "a password reset of bob@acme.test: done only in part",
        )
        .assert_user("bob@acme.test", |u| assert!(u.must_change_password));
    assert!(
        !report.reason().contains("nothing was changed"),
        "the password did change: {}",
        report.reason()
    );
}

#[tokio::test]
async fn a_reset_whose_sign_out_fails_is_resolved_with_a_follow_up_for_the_technician() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("password expired")
                .verified(),
        )
        .upstream_failure("idp.revoke-sessions")
        .run()
        .await
        .assert_status("resolved")
        .assert_reason_contains("sessions NOT revoked")
        .assert_called("idp.reset-password")
        .assert_note(
            Visibility::Internal,
            "FOLLOW-UP: bob@acme.test was NOT signed out of other sessions",
        )
        .assert_message_to(
            "bob@acme.test",
            "sign in again with your new password on your phone",
        )
        .assert_user("bob@acme.test", |u| assert!(u.must_change_password));
}

#[tokio::test]
async fn real_phrasings_of_a_forgotten_or_expired_password_are_claimed() {
    for (subject, body) in [
        (
            "Password not accepted",
            "since this morning my password is not more accepted",
        ),
        (
            "login",
            "I think the password might have expired while I was on leave",
        ),
        (
            "temp password",
            "can you send me a temporary password please",
        ),
        (
            "Microsoft password",
            "forgot my microsoft password, the work one",
        ),
        ("Reset", "reset pw pls"),
        ("Pasword resett", "pasword resett pls i fogot it"),
        ("cant login", "it keeps saying my credentials are wrong"),
        ("VPN", "it says my credentials have expired"),
        (
            "passcode",
            "can't remember the passcode for my work account",
        ),
        ("password", ""),
        (
            "Help",
            "can't log in, password expired\n\nSent from my iPhone",
        ),
    ] {
        let report = bob()
            .ticket(
                ticket("bob@acme.test")
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
            .assert_user("bob@acme.test", |u| assert!(u.must_change_password));
    }
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        (
            "Suspicious email asking for my password",
            "I got a phishing mail that says my password expires today",
        ),
        (
            "Loads of password reset emails",
            "I'm getting password reset emails I didn't request. Should I be worried?",
        ),
        (
            "RE: [Ticket #1] Password reset - Resolved",
            "Thanks, that worked!\n\n> We have reset your password and sent a temporary one.",
        ),
        ("wifi", "what's the guest wifi password?"),
        ("PDF", "the password for this PDF doesn't work"),
        (
            "How do I change my password?",
            "I can log in fine, I just want a new one",
        ),
        ("reset my laptop", "please factory reset my laptop"),
        (
            "Locked out",
            "locked out, too many attempts; I know my password",
        ),
    ] {
        let report = bob()
            .ticket(
                ticket("bob@acme.test")
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
            .assert_user("bob@acme.test", |u| assert!(!u.must_change_password));
    }
}
