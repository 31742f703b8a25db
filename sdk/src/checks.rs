//! The checks a careful L1 technician makes before changing an account on request:
//! the request is about the requester's own account, the channel verified who is
//! asking, and the account exists, is enabled and is not privileged. A plugin calls
//! [`requester_account`] first and escalates with the reason it gives when a check fails.

use crate::idp::{self, User};
use crate::{Failure, Outcome, Ticket};

/// What the checks concluded.
#[derive(Debug, Clone)]
pub enum Check {
    /// Go ahead on this account.
    Proceed(User),
    /// Hand the ticket to a technician with this outcome.
    Escalate(Outcome),
}

/// Run the standard checks for `action` (a noun phrase for the note, e.g. "a password reset")
/// on the account the ticket is about: the `target` field, else the requester's own.
/// Needs `idp.read`.
pub fn requester_account(ticket: &Ticket, action: &str) -> Result<Check, Failure> {
    let requester = ticket.requester.email.to_ascii_lowercase();
    let target = ticket
        .field("target")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| requester.clone());
    let escalate = |why| Ok(Check::Escalate(Outcome::escalated(why)));
    if target != requester {
        return escalate(format!(
            "{requester} asked about someone else's account ({target}); a technician must confirm with the owner before {action}"
        ));
    }
    if !ticket.requester_verified {
        return escalate(format!(
            "the request came over {} without a verified identity; confirm it is {requester} before {action}",
            ticket.channel
        ));
    }
    let user = match idp::find_user(&target) {
        Ok(u) => u,
        Err(Failure::NotFound(_)) => {
            return escalate(format!(
                "no account {target} in the directory; check the address"
            ));
        }
        Err(other) => return Err(other),
    };
    if !user.enabled {
        return escalate(format!(
            "the account {target} is disabled; re-enabling it is a technician's decision"
        ));
    }
    if user.privileged {
        return escalate(format!(
            "{target} is a privileged account; capdesk leaves {action} of a privileged account to a technician"
        ));
    }
    Ok(Check::Proceed(user))
}
