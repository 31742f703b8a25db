//! The waiting-run benchmark playbook: twenty directory look-ups, then a question. Resuming it
//! replays those twenty calls from the journal before the answer comes back
//! (`host/benches/waiting.rs`).

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log};

struct Bench;

impl Playbook for Bench {
    fn manifest() -> Manifest {
        Manifest::new("bench-asks", "0.1.0", "bench")
            .description("benchmark workload: twenty calls, then a question")
            .capabilities(&["idp.read", "idp.groups", "chat.ask"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("bench-asks") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let email = &ticket.requester.email;
        for round in 0..20 {
            idp::find_user(email)?;
            log::info("checked", &[("round", &round.to_string())]);
        }
        let choices = ["marketing".to_string(), "sales".to_string()];
        let group = chat::ask(email, "Which group?", &choices)?;
        idp::add_group_member(&group, email)?;
        Ok(Outcome::resolved(format!("added to {group}")))
    }
}

export_playbook!(Bench);
