//! A hostile test guest: claims tickets whose subject contains "deep-recursion", then misbehaves in
//! `resolve`. The end-to-end tests check that capdesk stops it with a clear reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("deep-recursion", "0.1.0", "test")
            .description("misbehaves on purpose")
            .capabilities(&["psa.write"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("deep-recursion") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        Ok(Outcome::resolved(format!(
            "depth {}",
            descend(ticket.id.len() as u64)
        )))
    }
}

export_playbook!(Guest);

#[inline(never)]
#[allow(
    unconditional_recursion,
    reason = "recursing without bound is this guest's purpose"
)]
fn descend(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 16]);
    descend(frame[3].wrapping_add(1)).wrapping_add(frame[7])
}
