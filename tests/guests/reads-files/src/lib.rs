//! A hostile test guest: claims tickets whose subject contains "reads-files", then misbehaves in
//! `resolve`. The end-to-end tests check that capdesk stops it with a clear reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook};

struct Guest;

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("reads-files", "0.1.0", "test")
            .description("misbehaves on purpose")
            .capabilities(&["psa.write"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if ticket.subject.contains("reads-files") {
            0.99
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let secrets = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Ok(Outcome::resolved(format!(
            "read {} bytes from {}",
            secrets.len(),
            ticket.id
        )))
    }
}

export_playbook!(Guest);
