//! group-membership in the real runtime against the sandbox directory, under the
//! default policy: every membership change asks the member's manager.

use capdesk_sdk::harness::{Scenario, UserReport, Visibility, ticket, user};

/// Ann (managed by Max) is in "All Staff"; Max approves her changes.
fn acme() -> Scenario {
    Scenario::new()
        .user(
            user("ann@acme.test")
                .name("Ann Archer")
                .manager("max@acme.test")
                .group("All Staff")
                .contact("sms:+15550142"),
        )
        .user(user("max@acme.test").name("Max Mole"))
}

fn in_group(u: &UserReport, group: &str) -> bool {
    u.user.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

#[tokio::test]
async fn adds_the_requester_to_a_named_dl_with_the_managers_approval() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("DL")
                .body("add me to the marketing DL")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_approval_asked("group-membership")
        .assert_called("idp.add-group-member")
        .assert_note(Visibility::Internal, "added to marketing")
        .assert_note(Visibility::Internal, "approved per policy")
        .assert_message_to("max@acme.test", "Approval needed")
        .assert_message_to("ann@acme.test", "We added ann@acme.test to marketing.")
        .assert_message_to("ann@acme.test", "mail sent to marketing now reaches")
        .assert_message_to("ann@acme.test", "up to an hour")
        .assert_message_to(
            "ann@acme.test",
            "Approved per policy by ann@acme.test's manager",
        )
        .assert_user("ann@acme.test", |u| {
            assert!(in_group(u, "marketing"), "{:?}", u.user.groups);
            assert!(u.events.iter().any(|e| e.action == "group-added"));
        });
}

#[tokio::test]
async fn removes_the_requester_from_a_list_they_are_on() {
    acme()
        .user(
            user("bo@acme.test")
                .manager("max@acme.test")
                .group("Fun Committee"),
        )
        .ticket(
            ticket("bo@acme.test")
                .subject("fun committee")
                .body("get me off the Fun Committee email list please, way too many emails")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_called("idp.remove-group-member")
        .assert_message_to(
            "bo@acme.test",
            "We removed bo@acme.test from Fun Committee.",
        )
        .assert_message_to("bo@acme.test", "stops reaching")
        .assert_user("bo@acme.test", |u| {
            assert!(!in_group(u, "Fun Committee"));
            assert!(u.events.iter().any(|e| e.action == "group-removed"));
        });
}

#[tokio::test]
async fn a_security_group_closeout_says_access_follows_after_signing_in_again() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("VPN-Users group")
                .body(
                    "I need to be added to the VPN-Users group so I can work from home on Fridays.",
                )
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_message_to("ann@acme.test", "the access that comes with VPN-Users")
        .assert_message_to("ann@acme.test", "sign in again")
        .assert_user("ann@acme.test", |u| assert!(in_group(u, "VPN-Users")));
}

#[tokio::test]
async fn fields_name_the_group_the_action_and_the_member() {
    acme()
        .user(
            user("bob@acme.test")
                .manager("max@acme.test")
                .group("Sales"),
        )
        .ticket(
            ticket("ann@acme.test")
                .subject("Access request")
                .field("group", "Sales")
                .field("action", "remove")
                .field("member", "bob@acme.test")
                .verified(),
        )
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_called("idp.remove-group-member")
        .assert_message_to("ann@acme.test", "We removed bob@acme.test from Sales")
        .assert_message_to("bob@acme.test", "You were removed from Sales")
        .assert_user("bob@acme.test", |u| assert!(!in_group(u, "Sales")));
}

#[tokio::test]
async fn a_vague_group_is_asked_for() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("all staff emails")
                .body(
                    "I don't get the emails the others get. Can you add me to whatever list it is?",
                )
                .verified(),
        )
        .answer("Sales-UK")
        .approve()
        .run()
        .await
        .assert_asked("Which group or distribution list should you be added to?")
        .assert_status("resolved")
        .assert_user("ann@acme.test", |u| assert!(in_group(u, "Sales-UK")));
}

#[tokio::test]
async fn add_or_remove_is_asked_when_the_words_disagree() {
    acme()
        .user(
            user("abdul@acme.test")
                .manager("max@acme.test")
                .group("Leeds office"),
        )
        .ticket(
            ticket("abdul@acme.test")
                .subject("Leeds office emails")
                .body("I keep getting emails sent to the Leeds office list but I moved to Manchester. Take me off please and put me on the Manchester one.")
                .verified(),
        )
        .answer("remove")
        .approve()
        .run()
        .await
        .assert_asked("Should we add you to Leeds office or remove you from it?")
        .assert_status("resolved")
        .assert_user("abdul@acme.test", |u| assert!(!in_group(u, "Leeds office")));
}

#[tokio::test]
async fn someone_named_in_words_is_asked_for_and_told() {
    acme()
        .user(user("jay@acme.test").manager("max@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("Security group")
                .body("Add j.patel to the SG-Finance-ReadOnly security group.")
                .verified(),
        )
        .answer("jay@acme.test")
        .approve()
        .run()
        .await
        .assert_asked("Who should be added to SG-Finance-ReadOnly?")
        .assert_status("resolved")
        .assert_message_to("jay@acme.test", "You were added to SG-Finance-ReadOnly")
        .assert_user("jay@acme.test", |u| {
            assert!(in_group(u, "SG-Finance-ReadOnly"))
        });
}

#[tokio::test]
async fn a_manager_asking_for_their_report_is_approved_one_level_up() {
    Scenario::new()
        .user(
            user("max@acme.test")
                .name("Max Mole")
                .manager("ceo@acme.test"),
        )
        .user(user("jay@acme.test").manager("max@acme.test"))
        .ticket(
            ticket("max@acme.test")
                .subject("Security group")
                .body("Please add jay@acme.test to the SG-Finance-ReadOnly security group.")
                .verified(),
        )
        .approve_as("ceo@acme.test")
        .run()
        .await
        .assert_approval_asked("group-membership")
        .assert_status("resolved")
        .assert_user("jay@acme.test", |u| {
            assert!(in_group(u, "SG-Finance-ReadOnly"))
        });
}

#[tokio::test]
async fn each_named_group_gets_its_own_change_and_approval() {
    acme()
        .user(
            user("tom@acme.test")
                .manager("max@acme.test")
                .group("Finance")
                .group("Payroll"),
        )
        .ticket(
            ticket("ann@acme.test")
                .subject("Tom Reed - groups")
                .body("Tom has moved to Operations. Remove him from the Finance and Payroll groups please and add him to Ops-Staff.")
                .field("member", "tom@acme.test")
                .verified(),
        )
        .approve()
        .approve()
        .approve()
        .run()
        .await
        .assert_status("resolved")
        .assert_message_to("ann@acme.test", "We added tom@acme.test to Ops-Staff and removed tom@acme.test from Finance and Payroll.")
        .assert_user("tom@acme.test", |u| {
            assert_eq!(u.user.groups, ["Ops-Staff"]);
        });
}

#[tokio::test]
async fn already_a_member_changes_nothing_and_asks_nobody() {
    let report = acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("All Staff")
                .body("please add me to the 'All Staff' distribution list")
                .verified(),
        )
        .run()
        .await;
    report
        .assert_status("resolved")
        .assert_not_called("idp.add-group-member")
        .assert_message_to("ann@acme.test", "you are already a member of All Staff");
    assert!(report.approvals.is_empty(), "{:?}", report.approvals);
}

#[tokio::test]
async fn a_removal_from_a_group_they_are_not_in_goes_to_a_technician() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("ireland list")
                .body("remove me from the Ireland distribution list, I've never worked there")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no such membership")
        .assert_not_called("idp.remove-group-member");
}

#[tokio::test]
async fn ownership_goes_to_a_technician() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("Make me owner")
                .body("can you make me an owner of the Project Falcon group? Raj is leaving")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("ownership of Project Falcon")
        .assert_not_called("idp.add-group-member");
}

#[tokio::test]
async fn an_unverified_requester_who_gives_the_code_is_added() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("ops dl")
                .body("pls add me 2 the ops dl")
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
        .assert_user("ann@acme.test", |u| assert!(in_group(u, "ops")));
}

#[tokio::test]
async fn an_unverified_requester_who_fails_the_challenge_is_escalated_untouched() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("ops dl")
                .body("pls add me 2 the ops dl")
                .channel("email"),
        )
        .fail_challenge()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("could not be verified")
        .assert_not_called("idp.add-group-member")
        .assert_user("ann@acme.test", |u| assert!(!in_group(u, "ops")));
}

#[tokio::test]
async fn a_privileged_member_is_denied_by_the_default_policy() {
    acme()
        .user(user("root@acme.test").privileged().manager("max@acme.test"))
        .ticket(
            ticket("root@acme.test")
                .subject("ADD TO GROUP")
                .body("PLEASE ADD ME TO THE ESTIMATING GROUP.")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("privileged-accounts")
        .assert_reason_contains("nothing was changed")
        .assert_denied("idp.groups")
        .assert_user("root@acme.test", |u| assert!(u.user.groups.is_empty()));
}

#[tokio::test]
async fn a_rejected_approval_is_escalated_and_nothing_changes() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("intune pilot")
                .body("can you put me in the Intune pilot group? Gary asked for volunteers")
                .verified(),
        )
        .reject()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("was not approved")
        .assert_reason_contains("nothing was changed")
        .assert_not_called("idp.add-group-member")
        .assert_user("ann@acme.test", |u| assert!(!in_group(u, "Intune pilot")));
}

#[tokio::test]
async fn an_unknown_member_is_escalated() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("DL")
                .body("please add our new starter to the marketing DL")
                .field("member", "ghost@acme.test")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("no account ghost@acme.test")
        .assert_not_called("idp.add-group-member");
}

#[tokio::test]
async fn a_disabled_member_is_not_added() {
    acme()
        .user(user("gone@acme.test").disabled().manager("max@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("DL")
                .body("add gone@acme.test to the marketing DL")
                .verified(),
        )
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("disabled")
        .assert_not_called("idp.add-group-member");
}

#[tokio::test]
async fn an_upstream_failure_is_escalated_saying_nothing_changed() {
    acme()
        .ticket(
            ticket("ann@acme.test")
                .subject("CRM-Users group")
                .body("Could you add me to the 'CRM-Users' group?")
                .verified(),
        )
        .upstream_failure("idp.add-group-member")
        .approve()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("the directory failed while adding ann@acme.test to CRM-Users")
        .assert_reason_contains("nothing was changed")
        .assert_user("ann@acme.test", |u| assert!(!in_group(u, "CRM-Users")));
}

#[tokio::test]
async fn an_upstream_failure_half_way_says_what_was_done() {
    acme()
        .user(
            user("tom@acme.test")
                .manager("max@acme.test")
                .group("Finance"),
        )
        .ticket(
            ticket("ann@acme.test")
                .subject("move")
                .body("Remove him from the Finance group and add him to Ops-Staff.")
                .field("member", "tom@acme.test")
                .verified(),
        )
        .upstream_failure("idp.remove-group-member")
        .approve()
        .approve()
        .run()
        .await
        .assert_status("escalated")
        .assert_reason_contains("already done: tom@acme.test added to Ops-Staff")
        .assert_reason_contains("removing tom@acme.test from Finance")
        .assert_user("tom@acme.test", |u| {
            assert!(in_group(u, "Ops-Staff") && in_group(u, "Finance"));
        });
}

#[tokio::test]
async fn look_alikes_are_not_claimed() {
    for (subject, body) in [
        (
            "Group meeting room",
            "Can you book the big group meeting room for Thursday 2-4?",
        ),
        (
            "Team lunch group",
            "Who is organising the team lunch group on Friday? Add me please",
        ),
        ("Mailbox full", "My mailbox is full and I can't send"),
        (
            "Group policy not applying",
            "The wallpaper group policy isn't applying to reception",
        ),
        (
            "Who's in the sales DL?",
            "Can you tell me who's on the sales DL?",
        ),
        (
            "New distribution list",
            "Please create a new distribution list called events-team@",
        ),
        (
            "Suspicious email",
            "Phishing email to the whole group asking for my password",
        ),
        ("Reset my laptop", "please reset my laptop, it is slow"),
        ("Printer locked", "The printer on floor 3 is locked"),
        (
            "Parking permit",
            "Can you update my license plate for the car park permit?",
        ),
        (
            "Windows activation",
            "Windows isn't activated, is my product key wrong?",
        ),
        ("Driving licence", "HR need a copy of my driver's license"),
        (
            "Licence audit",
            "Software license audit question: how many licenses do we own?",
        ),
        ("Visio", "need a Visio license please"),
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
        ("DL", "add me to the marketing DL"),
        (
            "ireland list",
            "remove me from the Ireland distribution list",
        ),
        (
            "Corp WiFi group",
            "My account needs to be in the Corp-WiFi group",
        ),
        (
            "teams team",
            "Can you add me to the 'Project Falcon' team in Teams?",
        ),
        (
            "Sales team emails",
            "Could you add me to the sales team email list please?",
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
