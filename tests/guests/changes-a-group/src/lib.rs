//! A test guest that changes a group membership without checks of its own, so the
//! tenant's policy is all that stands between it and the directory: it adds the user in
//! the ticket's `member` field (default: the requester) to the group in its `group`
//! field. The end-to-end tests drive approvals, rejections, denials and crashes with it.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook, idp};

struct Guest;

fn field<'a>(ticket: &'a Ticket, key: &str) -> Option<&'a str> {
    ticket
        .fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Playbook for Guest {
    fn manifest() -> Manifest {
        Manifest::new("changes-a-group", "0.1.0", "group-membership")
            .description("adds a user to a group, with no checks of its own")
            .capabilities(&["idp.read", "idp.groups"])
    }

    fn triage(ticket: &Ticket) -> f32 {
        if field(ticket, "group").is_some() {
            1.0
        } else {
            0.0
        }
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let group = field(ticket, "group").unwrap_or_default();
        let member = field(ticket, "member").unwrap_or(&ticket.requester.email);
        match idp::add_group_member(group, member) {
            Ok(_) => Ok(Outcome::resolved(format!("added {member} to {group}"))),
            Err(Failure::Rejected(why)) => Ok(Outcome::escalated(format!(
                "the change was rejected: {why}"
            ))),
            Err(Failure::Denied(why)) => {
                Ok(Outcome::escalated(format!("the change was denied: {why}")))
            }
            Err(other) => Err(other),
        }
    }
}

export_playbook!(Guest);
