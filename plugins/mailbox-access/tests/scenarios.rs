//! mailbox-access in the real runtime against the sandbox directory, under the default
//! policy: `idp.mailbox` asks the member's manager (rule mailbox-delegation).

use capdesk_sdk::harness::{Mode, Scenario, Visibility, ticket, user};

/// Ann (managed by Max), Max, Richard, and the finance shared mailbox.
fn acme() -> Scenario {
    Scenario::new()
        .user(
            user("ann@acme.test")
                .name("Ann Archer")
                .manager("max@acme.test")
                .contact("sms:+15550142"),
        )
        .user(user("max@acme.test").name("Max Manager"))
        .user(user("richard@acme.test").name("Richard Roe"))
        .user(user("finance@acme.test").name("Finance shared mailbox"))
}

fn mailboxes_of(report: &capdesk_sdk::harness::Report, email: &str) -> Vec<String> {
    let mut m = report.users[email].user.mailboxes.clone();
    m.sort();
    m
}

#[tokio::test]
async fn full_access_is_given_after_the_managers_approval() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Finance mailbox")
                .body("Please give me full access to finance@acme.test, I'm covering month end.")
                .verified(),
        )
        .approve()
        .run()
        .await;
    report
        .assert_approval_asked("mailbox-delegation")
        .assert_status("resolved")
        .assert_called("idp.grant-mailbox-access")
        .assert_note(
            Visibility::Internal,
            "Requester ann@acme.test verified by the channel",
        )
        .assert_note(
            Visibility::Internal,
            "Gave ann@acme.test full access on finance@acme.test",
        )
        .assert_message_to(
            "ann@acme.test",
            "You now have full access on the mailbox finance@acme.test (Finance shared mailbox)",
        )
        .assert_message_to("ann@acme.test", "adds finance@acme.test to the folder list")
        .assert_message_to("ann@acme.test", "under your own mailbox")
        .assert_message_to("ann@acme.test", "up to 60 minutes")
        .assert_message_to("ann@acme.test", "open it again")
        .assert_user("ann@acme.test", |u| {
            assert!(u.events.iter().any(|e| e.action == "mailbox-granted"))
        });
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access"]
    );
    assert_eq!(report.approvals[0].approvers, ["max@acme.test"]);
}

#[tokio::test]
async fn a_named_shared_mailbox_is_found_and_the_right_is_asked() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("need access to the finance shared mailbox")
                .verified(),
        )
        .answer("send-as")
        .approve()
        .run()
        .await;
    report
        .assert_asked("What access is needed to finance@acme.test?")
        .assert_approval_asked("mailbox-delegation")
        .assert_status("resolved")
        .assert_message_to("ann@acme.test", "choose From")
        .assert_message_to("ann@acme.test", "up to 60 minutes");
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:send-as"]
    );
}

#[tokio::test]
async fn a_colleagues_mailbox_without_an_address_is_asked_for() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Richard's mailbox")
                .body("Could I get access to Richard's mailbox while he is in hospital?")
                .verified(),
        )
        .answer("richard@acme.test")
        .answer("full-access")
        .approve()
        .run()
        .await;
    report
        .assert_asked("Which mailbox is it?")
        .assert_asked("What access is needed to richard@acme.test?")
        .assert_status("resolved");
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["richard@acme.test:full-access"]
    );
}

#[tokio::test]
async fn several_rights_in_one_request_are_each_approved() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Mailbox permission")
                .body("I need FullAccess and SendAs on finance@ please.")
                .verified(),
        )
        .approve()
        .approve()
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_message_to("ann@acme.test", "full access and send as")
        .assert_message_to("ann@acme.test", "folder list")
        .assert_message_to("ann@acme.test", "choose From");
    assert_eq!(report.approvals.len(), 2, "{:?}", report.approvals);
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access", "finance@acme.test:send-as"]
    );
}

#[tokio::test]
async fn access_for_someone_else_is_approved_by_their_manager_and_they_are_told() {
    let report = acme()
        .user(user("sam@acme.test").name("Sam Smith"))
        .ticket(
            ticket("sam@acme.test")
                .subject("finance mailbox for Ann")
                .body("Please give Ann send on behalf rights on finance@acme.test")
                .verified(),
        )
        .answer("ann@acme.test")
        .approve_as("max@acme.test")
        .run()
        .await;
    report
        .assert_asked("Who should get this mailbox access?")
        .assert_approval_asked("mailbox-delegation")
        .assert_status("resolved")
        .assert_message_to(
            "ann@acme.test",
            "sam@acme.test asked the service desk to give you send on behalf",
        )
        .assert_message_to("sam@acme.test", "ann@acme.test now has send on behalf")
        .assert_message_to("sam@acme.test", "we let them know too")
        .assert_message_to("sam@acme.test", r#""on behalf of" finance@acme.test"#);
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:send-on-behalf"]
    );
    assert!(mailboxes_of(&report, "sam@acme.test").is_empty());
}

#[tokio::test]
async fn the_member_field_is_used_without_asking() {
    let report = acme()
        .user(user("sam@acme.test"))
        .ticket(
            ticket("sam@acme.test")
                .subject("Mailbox access request")
                .body("Access to the finance shared mailbox")
                .field("member", "ann@acme.test")
                .field("right", "full-access")
                .verified(),
        )
        .approve()
        .run()
        .await;
    report.assert_status("resolved");
    assert!(report.questions.is_empty(), "{:?}", report.questions);
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access"]
    );
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_gets_access() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .channel("email"),
        )
        .pass_challenge()
        .approve()
        .run()
        .await;
    report
        .assert_asked("code")
        .assert_message_to("sms:+15550142", "verification code")
        .assert_status("resolved")
        .assert_called("idp.grant-mailbox-access")
        .assert_note(Visibility::Internal, "verified by a one-time code");
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access"]
    );
}

#[tokio::test]
async fn three_wrong_codes_escalate_and_change_nothing() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("wrong verification code 3 times")
        .assert_not_called("idp.grant-mailbox-access");
    assert!(report.approvals.is_empty());
    assert!(mailboxes_of(&report, "ann@acme.test").is_empty());
}

#[tokio::test]
async fn a_privileged_member_is_denied_by_the_default_policy() {
    let report = acme()
        .user(user("root@acme.test").privileged().manager("max@acme.test"))
        .ticket(
            ticket("root@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_denied("idp.mailbox")
        .assert_not_called("idp.grant-mailbox-access");
    assert!(report.approvals.is_empty());
    assert!(mailboxes_of(&report, "root@acme.test").is_empty());
}

#[tokio::test]
async fn a_privileged_accounts_mailbox_is_left_to_a_technician() {
    let report = acme()
        .user(user("ceo@acme.test").privileged())
        .ticket(
            ticket("ann@acme.test")
                .subject("CEO mailbox")
                .body("I need full access to ceo@acme.test")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("privileged account")
        .assert_not_called("idp.grant-mailbox-access");
    assert!(report.approvals.is_empty());
}

#[tokio::test]
async fn a_rejected_approval_escalates_and_changes_nothing() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .verified(),
        )
        .reject()
        .run()
        .await;
    report
        .assert_approval_asked("mailbox-delegation")
        .assert_status("escalated")
        .assert_reason_contains("was not approved")
        .assert_not_called("idp.grant-mailbox-access");
    assert!(mailboxes_of(&report, "ann@acme.test").is_empty());
}

#[tokio::test]
async fn an_unknown_member_is_escalated() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("full access to the finance shared mailbox")
                .field("member", "ghost@acme.test")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_not_called("idp.grant-mailbox-access");
}

#[tokio::test]
async fn an_unknown_mailbox_is_escalated() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("mailbox access")
                .body("I need full access to nosuch@acme.test")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no mailbox nosuch@acme.test")
        .assert_not_called("idp.grant-mailbox-access");
}

#[tokio::test]
async fn a_guessed_mailbox_that_does_not_exist_is_asked_about() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("tenders mailbox")
                .body("Please give me full access to the 'Tenders' shared mailbox")
                .verified(),
        )
        .answer("finance@acme.test")
        .approve()
        .run()
        .await;
    report
        .assert_asked("We could not find a mailbox tenders@acme.test")
        .assert_status("resolved");
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access"]
    );
}

#[tokio::test]
async fn an_identity_provider_outage_escalates_with_nothing_changed() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .verified(),
        )
        .upstream_failure("idp.grant-mailbox-access")
        .approve()
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("the identity provider failed")
        .assert_reason_contains("nothing was changed");
    assert!(mailboxes_of(&report, "ann@acme.test").is_empty());
}

#[tokio::test]
async fn removing_access_that_is_not_there_changes_nothing() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Access removal")
                .body("Please remove my access to the finance mailbox, I changed role.")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_not_called("idp.remove-mailbox-access")
        .assert_message_to("ann@acme.test", "nothing to remove");
    assert!(report.approvals.is_empty());
}

#[tokio::test]
async fn removing_a_right_that_is_not_held_says_which() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("send as")
                .body("Please take away my send as on finance@acme.test, I no longer need it.")
                .verified(),
        )
        .run()
        .await
        .assert_status("resolved")
        .assert_not_called("idp.remove-mailbox-access")
        .assert_note(
            Visibility::Internal,
            "ann@acme.test has no send as on finance@acme.test",
        )
        .assert_message_to("ann@acme.test", "you have no send as on it");
}

#[tokio::test]
async fn giving_and_removing_in_one_ticket_is_asked_about() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("Please remove Richard's access to finance@acme.test and give me full access instead")
                .verified(),
        )
        .answer("give access")
        .approve()
        .run()
        .await;
    report
        .assert_asked("both giving and removing")
        .assert_status("resolved");
    assert_eq!(
        mailboxes_of(&report, "ann@acme.test"),
        ["finance@acme.test:full-access"]
    );
}

#[tokio::test]
async fn several_people_in_one_ticket_go_to_a_technician() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("SHARED MAILBOX PERMISSION")
                .body("NEED PERMISSION TO THE FINANCE SHARED MAILBOX FOR ME AND KEV.")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("several people")
        .assert_not_called("idp.grant-mailbox-access");
}

#[tokio::test]
async fn without_a_manager_nobody_can_approve_and_it_escalates() {
    let report = Scenario::new()
        .user(user("ann@acme.test"))
        .user(user("finance@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("escalated")
        .assert_reason_contains("nobody could be found to ask")
        .assert_not_called("idp.grant-mailbox-access");
}

#[tokio::test]
async fn shadow_mode_proposes_and_changes_nothing() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("finance mailbox")
                .body("I need full access to the finance shared mailbox")
                .verified(),
        )
        .mode(Mode::Shadow)
        .run()
        .await;
    report.assert_status("shadowed").assert_note(
        Visibility::Internal,
        "give ann@acme.test full-access access to the mailbox finance@acme.test",
    );
    assert!(mailboxes_of(&report, "ann@acme.test").is_empty());
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        (
            "Your mailbox is almost full",
            "I keep getting 'Your mailbox is almost full' warnings.",
        ),
        (
            "New shared mailbox",
            "Please create a new shared mailbox called projects-north@",
        ),
        (
            "Who has access to the CEO mailbox?",
            "For our audit, send me a list of everyone who has access to the CEO's mailbox",
        ),
        (
            "Post room",
            "There's a parcel notice in our mailbox and reception is closed.",
        ),
        (
            "Group meeting room",
            "Can you book the big group meeting room for Thursday?",
        ),
        ("Locked out", "I'm locked out of my account"),
        ("sales DL", "Please add me to the sales@ distribution list"),
    ] {
        acme()
            .ticket(
                ticket("ann@acme.test")
                    .subject(subject)
                    .body(body)
                    .verified(),
            )
            .run()
            .await
            .assert_status("unmatched")
            .assert_not_called("idp.grant-mailbox-access");
    }
}
