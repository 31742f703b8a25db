//! license-change in the real runtime against the sandbox directory, under the default
//! policy: every license call asks the "Finance Approvers" group.

use capdesk_sdk::harness::{Mode, Scenario, Visibility, ticket, user};

/// Ann holds E3; fin approves licenses.
fn acme() -> Scenario {
    Scenario::new()
        .user(
            user("ann@acme.test")
                .name("Ann Archer")
                .manager("max@acme.test")
                .license("M365-E3")
                .contact("sms:+15550142"),
        )
        .user(user("max@acme.test").name("Max Mole"))
        .user(
            user("fin@acme.test")
                .name("Fiona Finch")
                .group("Finance Approvers"),
        )
}

fn has(u: &capdesk_sdk::harness::UserReport, sku: &str) -> bool {
    u.user.licenses.iter().any(|l| l == sku)
}

#[tokio::test]
async fn an_upgrade_assigns_e5_then_removes_e3_with_two_finance_approvals() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Upgrade to E5")
                .body("Hi, can my account be upgraded to E5? I need the Teams phone system features for the new sales line.")
                .verified(),
        )
        .approve()
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_approval_asked("license-changes")
        .assert_called("idp.assign-license")
        .assert_called("idp.remove-license")
        .assert_note(Visibility::Internal, "assigned M365-E5, removed M365-E3")
        .assert_note(Visibility::Internal, "approved per policy")
        .assert_message_to("ann@acme.test", "We assigned Microsoft 365 E5 to ann@acme.test, replacing Microsoft 365 E3")
        .assert_message_to("ann@acme.test", "Teams Phone")
        .assert_message_to("ann@acme.test", "within about an hour")
        .assert_message_to("ann@acme.test", "sign in again")
        .assert_message_to("ann@acme.test", "Approved by the finance approvers per policy")
        .assert_user("ann@acme.test", |u| {
            assert!(has(u, "M365-E5") && !has(u, "M365-E3"), "{:?}", u.user.licenses);
            let actions: Vec<&str> = u.events.iter().map(|e| e.action.as_str()).collect();
            let assigned = actions.iter().position(|a| *a == "license-assigned");
            let removed = actions.iter().position(|a| *a == "license-removed");
            assert!(assigned < removed, "assign first, then remove: {actions:?}");
        });
}

#[tokio::test]
async fn an_add_on_is_assigned_beside_the_suite() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("visio")
                .body("need a Visio license please, manager approved")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_approval_asked("license-changes")
        .assert_called("idp.assign-license")
        .assert_not_called("idp.remove-license")
        .assert_message_to(
            "ann@acme.test",
            "We assigned Visio Plan 2 to ann@acme.test.",
        )
        .assert_message_to("ann@acme.test", "Visio desktop app")
        .assert_user("ann@acme.test", |u| {
            assert!(
                has(u, "VISIO-PLAN2") && has(u, "M365-E3"),
                "{:?}",
                u.user.licenses
            );
        });
}

#[tokio::test]
async fn the_license_field_wins_over_the_words() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Software request")
                .body("need visio I think")
                .field("sku", "POWERBI-PRO")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_user("ann@acme.test", |u| {
            assert!(
                has(u, "POWERBI-PRO") && !has(u, "VISIO-PLAN2"),
                "{:?}",
                u.user.licenses
            );
        });
}

#[tokio::test]
async fn an_unclear_license_is_asked_with_choices_from_the_catalogue() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("licence")
                .body("I need a licence for the new planning work, my manager is agree")
                .verified(),
        )
        .answer("Project Plan 3")
        .approve()
        .run()
        .await;
    report
        .assert_asked("Which license should your account get?")
        .assert_status("resolved")
        .assert_message_to("ann@acme.test", "Project desktop app")
        .assert_user("ann@acme.test", |u| assert!(has(u, "PROJECT-PLAN3")));
    let choices = &report.questions[0].choices;
    assert!(
        choices.iter().any(|c| c == "Microsoft 365 E5"),
        "{choices:?}"
    );
    assert!(choices.iter().any(|c| c == "Something else"), "{choices:?}");
}

#[tokio::test]
async fn a_license_outside_the_catalogue_goes_to_a_technician() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("licence")
                .body("I need a licence for the expenses app")
                .verified(),
        )
        .answer("Something else")
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("catalogue does not name")
        .assert_not_called("idp.assign-license");
}

#[tokio::test]
async fn a_leaver_named_in_words_is_asked_for_and_a_disabled_account_can_lose_a_license() {
    acme()
        .user(
            user("steve@acme.test")
                .disabled()
                .license("M365-E3")
                .license("POWERBI-PRO"),
        )
        .ticket(
            ticket("max@acme.test")
                .subject("Leaver - Power BI Pro")
                .body("Steve Hart left last week, please remove his Power BI Pro license so we stop paying for it.")
                .verified(),
        )
        .answer("steve@acme.test")
        .approve()
        .run()
        .await
        .assert_asked("Whose account")
        .assert_status("resolved")
        .assert_called("idp.remove-license")
        .assert_not_called("idp.assign-license")
        .assert_message_to("max@acme.test", "We removed Power BI Pro from steve@acme.test")
        .assert_message_to("steve@acme.test", "Power BI Pro was removed from your account")
        .assert_user("steve@acme.test", |u| {
            assert!(!has(u, "POWERBI-PRO") && has(u, "M365-E3"), "{:?}", u.user.licenses);
        });
}

#[tokio::test]
async fn a_removal_without_a_named_license_asks_which_of_the_held_ones() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("licence")
                .body("please remove a licence from my account, I'm not using it")
                .verified(),
        )
        .answer("Microsoft 365 E3")
        .approve()
        .run()
        .await
        .assert_asked("Which license should be removed from your account?")
        .assert_status("resolved")
        .assert_user("ann@acme.test", |u| assert!(u.user.licenses.is_empty()));
}

#[tokio::test]
async fn a_license_already_held_changes_nothing_and_asks_nobody() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("E3")
                .body("Can I get an E3 licence?")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_not_called("idp.assign-license")
        .assert_message_to("ann@acme.test", "already has Microsoft 365 E3");
    assert!(report.approvals.is_empty(), "{:?}", report.approvals);
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_gets_the_license() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Visio Plan 2")
                .body("Please assign Visio Plan 2 to me.")
                .channel("email"),
        )
        .pass_challenge()
        .approve()
        .run()
        .await
        .assert_asked("code")
        .assert_message_to("sms:+15550142", "verification code")
        .assert_status("resolved")
        .assert_note(Visibility::Internal, "verified with a one-time code")
        .assert_user("ann@acme.test", |u| assert!(has(u, "VISIO-PLAN2")));
}

#[tokio::test]
async fn an_unverified_requester_who_fails_the_challenge_is_escalated_untouched() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Visio Plan 2")
                .body("Please assign Visio Plan 2 to me.")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("could not be verified")
        .assert_not_called("idp.assign-license")
        .assert_user("ann@acme.test", |u| assert!(!has(u, "VISIO-PLAN2")));
}

#[tokio::test]
async fn a_privileged_account_is_denied_by_the_default_policy() {
    acme()
        .user(user("root@acme.test").privileged().license("M365-E3"))
        .ticket(
            ticket("root@acme.test")
                .subject("e5")
                .body("E5 for me pls, need the advanced eDiscovery")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_reason_contains("nothing was changed")
        .assert_denied("idp.licenses")
        .assert_user("root@acme.test", |u| {
            assert_eq!(u.user.licenses, ["M365-E3"]);
        });
}

#[tokio::test]
async fn a_rejected_approval_is_escalated_and_nothing_changes() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("copilot")
                .body("Can I get a Copilot license? My manager said it's ok")
                .verified(),
        )
        .reject()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("was not approved")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.assign-license")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.licenses, ["M365-E3"])
        });
}

#[tokio::test]
async fn a_rejected_removal_after_an_upgrade_says_the_account_holds_both() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Licence change")
                .body("please upgrade me from E3 to E5")
                .verified(),
        )
        .approve()
        .reject()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("was not approved")
        .assert_reason_contains("already done: assigned M365-E5")
        .assert_reason_contains("ann@acme.test still holds M365-E3")
        .assert_user("ann@acme.test", |u| {
            assert!(
                has(u, "M365-E5") && has(u, "M365-E3"),
                "{:?}",
                u.user.licenses
            );
        });
}

#[tokio::test]
async fn a_downgrade_says_what_stops_working() {
    Scenario::new()
        .user(user("bea@acme.test").license("M365-E5"))
        .user(user("fin@acme.test").group("Finance Approvers"))
        .ticket(
            ticket("bea@acme.test")
                .subject("Downgrade")
                .body("I'm going part time, please downgrade me from E5 to E3")
                .verified(),
        )
        .approve()
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_message_to("bea@acme.test", "replacing Microsoft 365 E5")
        .assert_message_to(
            "bea@acme.test",
            "What Microsoft 365 E5 gave beyond that stops working",
        )
        .assert_user("bea@acme.test", |u| {
            assert_eq!(u.user.licenses, ["M365-E3"])
        });
}

#[tokio::test]
async fn an_unknown_target_is_escalated() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Visio request")
                .body("Visio for our new starter please")
                .field("target", "ghost@acme.test")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_not_called("idp.assign-license");
}

#[tokio::test]
async fn a_disabled_account_gets_no_new_license() {
    acme()
        .user(user("gone@acme.test").disabled())
        .ticket(
            ticket("gone@acme.test")
                .subject("visio")
                .body("I need Visio")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("disabled")
        .assert_not_called("idp.assign-license");
}

#[tokio::test]
async fn an_upstream_failure_on_assignment_changes_nothing() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("power bi")
                .body("power bi keeps saying upgrade to pro to do that. can i get pro?")
                .verified(),
        )
        .upstream_failure("idp.assign-license")
        .approve()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("the directory failed while assigning Power BI Pro")
        .assert_reason_contains("nothing was changed")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.licenses, ["M365-E3"])
        });
}

#[tokio::test]
async fn an_upstream_failure_on_the_removal_says_what_was_assigned() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Upgrade to E5")
                .body("Can my account be upgraded to E5?")
                .verified(),
        )
        .upstream_failure("idp.remove-license")
        .approve()
        .approve()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("removing Microsoft 365 E3 (M365-E3)")
        .assert_reason_contains("already done: assigned M365-E5")
        .assert_reason_contains("ann@acme.test still holds M365-E3")
        .assert_user("ann@acme.test", |u| {
            assert!(
                has(u, "M365-E5") && has(u, "M365-E3"),
                "{:?}",
                u.user.licenses
            );
        });
}

#[tokio::test]
async fn shadow_mode_proposes_the_move_and_changes_nothing() {
    acme()
        .mode(Mode::Shadow)
        .ticket(
            ticket("ann@acme.test")
                .subject("Upgrade to E5")
                .body("please upgrade me to E5")
                .verified(),
        )
        .run()
        .await
        .assert_status("shadowed")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.licenses, ["M365-E3"])
        });
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        (
            "Parking permit",
            "Can you update my license plate for the car park permit?",
        ),
        (
            "Windows activation",
            "Windows says 'Windows isn't activated'. Is my license broken?",
        ),
        (
            "Office product key",
            "Can I have a product key for Office 2019 for my home PC?",
        ),
        (
            "Driving licence copy",
            "HR want a copy of my driver's license for the van insurance",
        ),
        (
            "Licence audit",
            "Software license audit question: how many Adobe licenses do we own?",
        ),
        (
            "Suspicious email",
            "Phishing? It says my password and licence expire today",
        ),
        ("Printer locked", "The printer on floor 3 is locked"),
        ("Mailbox full", "my mailbox is full"),
        (
            "Reset my laptop",
            "please reset my laptop, it's really slow",
        ),
        (
            "Group meeting",
            "Can we get a group meeting room with Teams for Thursday?",
        ),
        (
            "Team lunch group",
            "add me to the team lunch group for Friday",
        ),
        ("Locked out", "I forgot my password and now I'm locked out"),
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
            .assert_status("unmatched");
    }
}

#[tokio::test]
async fn real_phrasings_are_claimed() {
    for (subject, body) in [
        ("visio", "need a Visio license please"),
        (
            "NEED PROJECT LICENCE TODAY",
            "THE PLAN IS DUE TO THE CLIENT TOMORROW",
        ),
        (
            "Licence change",
            "Move me from Business Standard to Business Premium please",
        ),
        (
            "copilot off",
            "please take Copilot off my account, I'm not using it",
        ),
        (
            "Only have web version",
            "I only have the web versions of Word and Excel. I need the desktop apps.",
        ),
    ] {
        let report = acme()
            .ticket(
                ticket("ann@acme.test")
                    .subject(subject)
                    .body(body)
                    .verified(),
            )
            .run()
            .await;
        assert_ne!(report.status(), "unmatched", "{subject}: {body}");
    }
}
