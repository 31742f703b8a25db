//! A hostile test guest: claims tickets whose subject contains "memory-bomb", then misbehaves in
//! `resolve`. The end-to-end tests check that capdesk stops it with a clear reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("memory-bomb", "0.1.0", "test")
            .description("misbehaves on purpose")
            .capabilities(&["psa.write"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("memory-bomb") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![ticket.id.len() as u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_playbook!(Guest);
