//! A hostile test guest: claims tickets whose subject contains "panicker", then misbehaves in
//! `resolve`. The end-to-end tests check that capdesk stops it with a clear reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("panicker", "0.1.0", "test")
            .description("misbehaves on purpose")
            .capabilities(&["psa.write"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("panicker") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        panic!("playbook bug: cannot handle ticket {}", ticket.id)
    }
}

export_playbook!(Guest);
