//! The SDK harness answering a plugin's question: the scenario's `.answer(...)` is given
//! by the person asked, and the run resumes by replay.

use capdesk_sdk::harness::{Scenario, ticket, user};

#[tokio::test]
async fn an_answered_question_resumes_and_finishes() {
    Scenario::new()
        .user(
            user("ann@acme.test")
                .name("Ann Archer")
                .manager("max@acme.test"),
        )
        .user(user("max@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("asks-a-question")
                .verified(),
        )
        .answer("sales")
        // The default policy asks the manager before a group change.
        .approve()
        .run()
        .await
        .assert_asked("Which group")
        .assert_approval_asked("group-membership")
        .assert_status("resolved")
        .assert_reason_contains("added Ann Archer to sales")
        .assert_user("ann@acme.test", |u| {
            assert_eq!(u.user.groups, ["sales"]);
            assert_eq!(
                u.events
                    .iter()
                    .filter(|e| e.action == "group-added")
                    .count(),
                1
            );
        });
}

#[tokio::test]
async fn without_an_answer_the_run_waits() {
    Scenario::new()
        .user(user("ann@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("asks-a-question")
                .verified(),
        )
        .run()
        .await
        .assert_status("waiting")
        .assert_asked("Which group")
        .assert_not_called("idp.add-group-member");
}

#[tokio::test]
async fn without_chat_ask_it_escalates() {
    Scenario::new()
        .user(user("ann@acme.test"))
        .ticket(
            ticket("ann@acme.test")
                .subject("asks-a-question")
                .verified(),
        )
        .revoke("chat.ask")
        .run()
        .await
        .assert_status("escalated")
        .assert_denied("chat.ask");
}
