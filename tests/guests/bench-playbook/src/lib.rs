//! The benchmark playbook: an onboarding-style fix making ten host calls. Its native-Rust
//! twin is in `host/benches/runtime.rs`; keep the two doing the same calls.

use capdesk_sdk::idp::MailboxRight;
use capdesk_sdk::psa::{self, Status, Visibility};
use capdesk_sdk::triage::Signals;
use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log};

struct Bench;

impl Playbook for Bench {
    fn manifest() -> Manifest {
        Manifest::new("bench-playbook", "0.1.0", "bench")
            .description("benchmark workload")
            .capabilities(&[
                "idp.read",
                "idp.unlock",
                "idp.sessions",
                "idp.groups",
                "idp.licenses",
                "idp.mailbox",
                "psa.write",
                "chat.send",
            ])
    }

    fn triage(ticket: &Ticket) -> f32 {
        Signals::new(ticket)
            .any(&["locked out", "account locked"], 0.85)
            .phrase("unlock", 0.5)
            .against(&["printer", "phishing"], 0.8)
            .score()
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let email = &ticket.requester.email;
        let user = idp::find_user(email)?;
        log::info("found user", &[("email", email)]);
        idp::unlock_account(email)?;
        idp::revoke_sessions(email)?;
        idp::add_group_member("vpn-users", email)?;
        idp::assign_license(email, "M365-E3")?;
        idp::grant_mailbox_access("shared@acme.test", email, MailboxRight::FullAccess)?;
        psa::add_note(
            &ticket.id,
            &format!("onboarded {}", user.name),
            Visibility::Internal,
        )?;
        psa::set_status(&ticket.id, Status::InProgress)?;
        chat::send(email, "You're all set.")?;
        Ok(Outcome::resolved(format!("done for {}", user.name)))
    }
}

export_playbook!(Bench);
