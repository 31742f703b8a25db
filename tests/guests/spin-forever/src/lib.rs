//! A hostile test guest: claims tickets whose subject contains "spin-forever", then misbehaves in
//! `resolve`. The end-to-end tests check that capdesk stops it with a clear reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("spin-forever", "0.1.0", "test")
            .description("misbehaves on purpose")
            .capabilities(&["psa.write"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("spin-forever") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let mut n: u64 = ticket.id.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export_playbook!(Guest);
