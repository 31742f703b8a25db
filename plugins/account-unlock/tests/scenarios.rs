//! account-unlock in the real runtime against the sandbox directory.

use capdesk_sdk::harness::{Scenario, Visibility, ticket, user};

fn ann_locked_out() -> Scenario {
    Scenario::new().user(
        user("ann@acme.test")
            .name("Ann Archer")
            .locked()
            .password("Old-pass-1"),
    )
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
        .assert_note(Visibility::Internal, "Requester ann@acme.test verified")
        .assert_note(Visibility::Public, "is unlocked")
        .assert_message_to("ann@acme.test", "Hi Ann Archer")
        .assert_user("ann@acme.test", |u| {
            assert!(!u.user.locked);
            assert!(u.events.iter().any(|e| e.action == "unlocked"));
        });
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
        .assert_user("root@acme.test", |u| assert!(u.user.locked));
}

#[tokio::test]
async fn an_unknown_user_is_escalated() {
    Scenario::new()
        .ticket(ticket("ghost@acme.test").subject("locked out").verified())
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test");
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
        .assert_message_to("ann@acme.test", "not locked");
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    Scenario::new()
        .user(user("ann@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("The printer on floor 3 is locked")
                .verified(),
        )
        .run()
        .await
        .assert_status("unmatched");
}
