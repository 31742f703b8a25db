//! password-reset in the real runtime against the sandbox directory.

use capdesk_sdk::harness::{Scenario, Visibility, ticket, user};

fn bob() -> Scenario {
    Scenario::new().user(
        user("bob@acme.test")
            .name("Bob Baker")
            .password("Old-pass-1"),
    )
}

/// The temporary password as the owner received it in chat.
fn delivered_secret(report: &capdesk_sdk::harness::Report) -> String {
    report
        .outbox
        .iter()
        .find_map(|m| m.text.strip_prefix("Your temporary password is: "))
        .and_then(|rest| rest.lines().next())
        .expect("a temporary password message to the owner")
        .to_string()
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
        .assert_note(Visibility::Internal, "delivered by chat to bob@acme.test")
        .assert_message_to("bob@acme.test", "choose a new password")
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
async fn an_email_request_is_not_trusted() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("reset my password")
                .channel("email"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_not_called("idp.reset-password");
}

#[tokio::test]
async fn disabled_and_privileged_accounts_are_escalated() {
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
        .assert_not_called("idp.reset-password");
}

#[tokio::test]
async fn a_phishing_report_is_not_claimed() {
    bob()
        .ticket(
            ticket("bob@acme.test")
                .subject("Suspicious email asking for my password")
                .body("I got a phishing mail that says my password expires today")
                .verified(),
        )
        .run()
        .await
        .assert_status("unmatched");
}
