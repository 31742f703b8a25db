//! A test guest that needs an answer: it asks the requester which group they want,
//! waits (durably) for the answer, then adds them. The end-to-end tests drive the wait,
//! the answer and the replay that follows.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("asks-a-question", "0.1.0", "test")
            .description("asks which group, then adds the requester")
            .capabilities(&["idp.read", "idp.groups", "chat.ask"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("asks-a-question") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let email = &ticket.requester.email;
        let user = idp::find_user(email)?;
        log::info("asking", &[("to", email)]);
        let choices = ["marketing".to_string(), "sales".to_string()];
        let group = chat::ask(email, "Which group should we add you to?", &choices)?;
        idp::add_group_member(&group, email)?;
        Ok(Outcome::resolved(format!("added {} to {group}", user.name)))
    }
}

export_playbook!(Guest);
