//! The checks a careful L1 technician makes before changing an account on request: who
//! is asking is proven (by the channel, or else by a one-time code the host sends to a
//! contact method the directory holds for them), and the account the ticket is about
//! exists and is enabled. A plugin calls [`requester_account`] first and escalates with
//! the reason it gives when a check fails.
//!
//! Whether the change is allowed at all — on someone else's account, on a privileged
//! account — is not the plugin's call: the host decides it by the tenant's policy when
//! the plugin makes the call, and the plugin gets `denied` (see [`denied_outcome`]).

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

/// The account a ticket is about: its `target` field, else the requester's own.
pub fn target_of(ticket: &Ticket) -> String {
    ticket
        .field("target")
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_else(|| ticket.requester.email.to_ascii_lowercase())
}

/// Prove who is asking: done when the channel verified the requester; otherwise the
/// host challenges them with a one-time code (the run waits for their answer). Needs
/// `idp.verify` when the channel did not verify them.
pub fn verify_requester(ticket: &Ticket, action: &str) -> Result<Option<Outcome>, Failure> {
    if ticket.requester_verified {
        return Ok(None);
    }
    let requester = ticket.requester.email.to_ascii_lowercase();
    match idp::verify_identity(&requester) {
        Ok(_) => Ok(None),
        Err(Failure::Denied(why) | Failure::NotFound(why)) => {
            Ok(Some(Outcome::escalated(format!(
                "the request came over {} and {requester} could not be verified ({why}); confirm \
                 who is asking before {action}",
                ticket.channel
            ))))
        }
        Err(other) => Err(other),
    }
}

/// Run the standard checks for `action` (a noun phrase for the note, e.g. "a password
/// reset") on the account the ticket is about ([`target_of`]): verify the requester,
/// then find the account and check it is enabled. Needs `idp.read` (and `idp.verify`
/// for requesters the channel did not verify).
pub fn requester_account(ticket: &Ticket, action: &str) -> Result<Check, Failure> {
    if let Some(outcome) = verify_requester(ticket, action)? {
        return Ok(Check::Escalate(outcome));
    }
    let target = target_of(ticket);
    let escalate = |why| Ok(Check::Escalate(Outcome::escalated(why)));
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
    Ok(Check::Proceed(user))
}

/// The escalation for a call the host refused: `denied` (grants or the tenant's policy)
/// or `rejected` (an approver said no). Other failures are not refusals: `None`.
pub fn denied_outcome(failure: &Failure, action: &str) -> Option<Outcome> {
    match failure {
        Failure::Denied(why) => Some(Outcome::escalated(format!(
            "capdesk may not do {action} here: {why}"
        ))),
        Failure::Rejected(why) => Some(Outcome::escalated(format!(
            "{action} was not approved: {why}"
        ))),
        _ => None,
    }
}
