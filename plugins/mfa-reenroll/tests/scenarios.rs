//! mfa-reenroll in the real runtime against the sandbox directory, under the default
//! policy (owner-self-service allows idp.mfa and idp.sessions for a verified owner).

use capdesk_sdk::harness::{Mode, Scenario, Visibility, ticket, user};

/// Ann, with the authenticator app on her old phone.
fn ann() -> Scenario {
    Scenario::new().user(
        user("ann@acme.test")
            .name("Ann Archer")
            .mfa("authenticator-app")
            .contact("sms:+15550142"),
    )
}

#[tokio::test]
async fn a_new_phone_gets_mfa_reset_sessions_revoked_and_instructions() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("New phone authenticator")
                .body("Got a new phone and the authenticator app didn't carry over.")
                .verified(),
        )
        .run()
        .await
        .assert_status("resolved")
        .assert_called("idp.require-mfa-reregistration")
        .assert_called("idp.revoke-sessions")
        .assert_note(
            Visibility::Internal,
            "Requester ann@acme.test verified by the channel",
        )
        .assert_note(
            Visibility::Internal,
            "removed the registered MFA methods (authenticator-app)",
        )
        .assert_message_to("ann@acme.test", "Hi Ann Archer")
        .assert_message_to("ann@acme.test", "https://aka.ms/mfasetup")
        .assert_message_to("ann@acme.test", "4. Scan the QR code")
        .assert_message_to("ann@acme.test", "Approve the test prompt")
        .assert_message_to("ann@acme.test", "signed out everywhere else")
        .assert_user("ann@acme.test", |u| {
            assert!(u.user.mfa_methods.is_empty(), "{:?}", u.user.mfa_methods);
            assert!(u.events.iter().any(|e| e.action == "mfa-reset"));
        });
}

/// The default policy lets a verified owner re-enroll; a tenant may want the manager
/// to approve every MFA reset.
const MANAGER_APPROVES_MFA_RESETS: &str = r#"
[[rule]]
name = "privileged-accounts"
deny = ["*"]
when = "context.target.privileged"

[[rule]]
name = "mfa-resets-need-the-manager"
ask = ["idp.mfa"]
approvers = ["manager"]

[[rule]]
name = "sign-outs-and-closeouts"
allow = ["idp.sessions", "idp.verify", "psa.write", "chat.send", "chat.ask"]
"#;

#[tokio::test]
async fn an_mfa_reset_the_manager_rejects_is_escalated_and_changes_nothing() {
    Scenario::new()
        .user(
            user("ann@acme.test")
                .name("Ann Archer")
                .mfa("authenticator-app")
                .manager("max@acme.test"),
        )
        .user(user("max@acme.test").name("Max Mole"))
        .policy(MANAGER_APPROVES_MFA_RESETS)
        .ticket(
            ticket("ann@acme.test")
                .subject("New phone authenticator")
                .body("Got a new phone and the authenticator app didn't carry over.")
                .verified(),
        )
        .reject()
        .run()
        .await
        .assert_approval_asked("mfa-resets-need-the-manager")
        .assert_status("escalated")
        .assert_reason_contains("not approved")
        .assert_not_called("idp.revoke-sessions")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"]);
        });
}

#[tokio::test]
async fn a_stolen_phone_also_gets_a_security_review_note() {
    let report = ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("phone stolen")
                .body("My phone was stolen on Saturday. I have a new one and need my authenticator again.")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_called("idp.require-mfa-reregistration")
        .assert_called("idp.revoke-sessions")
        .assert_note(Visibility::Internal, "SECURITY")
        .assert_note(Visibility::Internal, "security review")
        .assert_message_to("ann@acme.test", "because your phone was stolen");
    assert!(report.questions.is_empty(), "{:?}", report.questions);
}

#[tokio::test]
async fn an_unclear_device_story_is_asked_about() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("MFA")
                .body("I am not receiving the MFA notifications any more.")
                .verified(),
        )
        .answer("same phone, app stopped working")
        .run()
        .await
        .assert_asked("What happened to the phone")
        .assert_status("resolved")
        .assert_called("idp.require-mfa-reregistration")
        .assert_note(
            Visibility::Internal,
            "same phone, the authenticator stopped working",
        )
        .assert_user("ann@acme.test", |u| assert!(u.user.mfa_methods.is_empty()));
}

#[tokio::test]
async fn something_else_goes_to_a_technician_unchanged() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("2FA")
                .body("2FA is not working for me")
                .verified(),
        )
        .answer("something else")
        .run()
        .await
        .assert_asked("What happened to the phone")
        .assert_status("escalated")
        .assert_reason_contains("re-registration may not be the fix")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn without_an_answer_the_run_waits() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("authenticator")
                .body("The authenticator doesn't show the approve notification any more")
                .verified(),
        )
        .run()
        .await
        .assert_status("waiting")
        .assert_asked("What happened to the phone")
        .assert_not_called("idp.require-mfa-reregistration");
}

#[tokio::test]
async fn a_phone_that_has_not_arrived_yet_changes_nothing() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("Getting a new phone tomorrow")
                .body("I'm getting a new phone tomorrow. Can you move the authenticator for me?")
                .verified(),
        )
        .answer("not yet")
        .run()
        .await
        .assert_asked("Do you have the new phone with you now?")
        .assert_status("resolved")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_not_called("idp.revoke-sessions")
        .assert_message_to("ann@acme.test", "We have not changed anything")
        .assert_message_to("ann@acme.test", "https://aka.ms/mfasetup")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_is_reenrolled() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("lost my phone can't get codes")
                .body("Lost my phone on the train, can't do the 2 step thing")
                .channel("email"),
        )
        .pass_challenge()
        .run()
        .await
        .assert_asked("code")
        .assert_message_to("sms:+15550142", "verification code")
        .assert_status("resolved")
        .assert_called("idp.require-mfa-reregistration")
        .assert_called("idp.revoke-sessions")
        .assert_note(Visibility::Internal, "verified by a one-time code")
        .assert_note(Visibility::Internal, "the phone was lost")
        .assert_user("ann@acme.test", |u| assert!(u.user.mfa_methods.is_empty()));
}

#[tokio::test]
async fn three_wrong_codes_escalate_and_change_nothing() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("lost my phone can't get codes")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("wrong verification code 3 times")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn a_privileged_account_is_denied_by_the_default_policy() {
    Scenario::new()
        .user(user("root@acme.test").privileged().mfa("fido2"))
        .ticket(
            ticket("root@acme.test")
                .subject("MFA reset please - new phone")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_denied("idp.mfa")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_user("root@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["fido2"])
        });
}

#[tokio::test]
async fn someone_elses_account_is_denied_by_the_default_policy() {
    ann()
        .user(user("sandra@acme.test").name("Sandra Ops"))
        .ticket(
            ticket("sandra@acme.test")
                .subject("Ann - new phone")
                .body("Ann has a new phone and can't get the sign-in codes, please reset her MFA")
                .verified()
                .field("target", "ann@acme.test"),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no rule allows")
        .assert_denied("idp.mfa")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn a_request_worded_for_someone_else_is_checked_with_the_requester() {
    Scenario::new()
        .user(user("sandra@acme.test").mfa("authenticator-app"))
        .ticket(
            ticket("sandra@acme.test")
                .subject("Tom - new phone")
                .body("Staff member Tom has a new phone and can't get the sign-in codes. Can you reset his registration?")
                .verified(),
        )
        .answer("someone else's account")
        .run()
        .await
        .assert_asked("Is this request about your own account (sandra@acme.test)?")
        .assert_status("escalated")
        .assert_reason_contains("someone else's account")
        .assert_not_called("idp.require-mfa-reregistration")
        .assert_user("sandra@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn an_unknown_user_is_escalated() {
    Scenario::new()
        .ticket(
            ticket("ghost@acme.test")
                .subject("new phone authenticator")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_not_called("idp.require-mfa-reregistration");
}

#[tokio::test]
async fn a_disabled_account_is_escalated() {
    Scenario::new()
        .user(user("gone@acme.test").disabled().mfa("sms"))
        .ticket(
            ticket("gone@acme.test")
                .subject("new phone authenticator")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("disabled")
        .assert_not_called("idp.require-mfa-reregistration");
}

#[tokio::test]
async fn an_identity_provider_outage_escalates_with_nothing_changed() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("please reset my MFA")
                .body("new handset")
                .verified(),
        )
        .upstream_failure("idp.require-mfa-reregistration")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("the identity provider failed")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.revoke-sessions")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn a_failed_sign_out_says_what_was_already_done() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("please reset my MFA")
                .body("new handset")
                .verified(),
        )
        .upstream_failure("idp.revoke-sessions")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("removed the registered MFA methods")
        .assert_reason_contains("NOT signed out")
        .assert_called("idp.require-mfa-reregistration")
        .assert_user("ann@acme.test", |u| assert!(u.user.mfa_methods.is_empty()));
}

#[tokio::test]
async fn shadow_mode_proposes_and_changes_nothing() {
    ann()
        .ticket(
            ticket("ann@acme.test")
                .subject("new phone authenticator")
                .verified(),
        )
        .mode(Mode::Shadow)
        .run()
        .await
        .assert_status("shadowed")
        .assert_note(
            Visibility::Internal,
            "require ann@acme.test to register MFA again",
        )
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.mfa_methods, ["authenticator-app"])
        });
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        (
            "Can we turn off MFA?",
            "MFA is really annoying. Can we turn it off for everyone in the office?",
        ),
        (
            "weird prompts",
            "I keep getting authenticator prompts on my phone that I didn't trigger",
        ),
        (
            "New work phone request",
            "My work phone battery dies by lunchtime. Can I get a new phone?",
        ),
        ("Suspicious email", "Phishing email asking for my password"),
        (
            "license plate",
            "I've got a new car, please update my license plate",
        ),
    ] {
        ann()
            .ticket(
                ticket("ann@acme.test")
                    .subject(subject)
                    .body(body)
                    .verified(),
            )
            .run()
            .await
            .assert_status("unmatched")
            .assert_not_called("idp.require-mfa-reregistration");
    }
}
