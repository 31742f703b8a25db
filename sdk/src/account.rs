//! Whose account a ticket is about, and the checks a careful technician makes before
//! changing it: who is asking is proven (the channel, or the host's one-time code), the
//! account is settled (the intake's `target` field; else the requester's own, after
//! asking the requester when the ticket names another address or someone else's
//! account), and it exists and is enabled. Also the escalation for each way a directory
//! call can fail, and the technician's work log.
//!
//! Whether the change is allowed (someone else's account, a privileged one, an
//! approval) is never decided here: the host's policy decides when the plugin calls.
//! [`crate::checks`] is the smaller set (verify, then the `target` field or the
//! requester's own account) for playbooks that never ask whose account it is.

use crate::checks;
use crate::idp::{self, User};
use crate::psa::{self, Visibility};
use crate::wording::{Wording, is_reply_history};
use crate::{Failure, Outcome, Ticket, chat, log};

/// The choice that means "neither of these addresses".
pub const SOMEONE_ELSE: &str = "someone else's account";

/// An account the checks cleared for the change.
pub struct Account {
    pub user: User,
    /// The requester asks about someone else's account.
    pub on_behalf: bool,
    /// What was checked, for the technician.
    pub log: WorkLog,
}

/// What the checks concluded.
pub enum Settled {
    Proceed(Account),
    Escalate(Outcome),
}

/// Verify the requester, settle whose account it is (asking them when the ticket is not
/// clear), find the account and check it is enabled. `action` is a noun phrase for
/// notes ("an unlock"); `question` asks the requester whose account it is. Needs
/// `idp.read`, `idp.verify` (requesters the channel did not verify) and `chat.ask`
/// (tickets that name someone else).
pub fn settle(ticket: &Ticket, action: &str, question: &str) -> Settled {
    let requester = ticket.requester.email.trim().to_ascii_lowercase();
    let mut log = WorkLog::default();
    match checks::verify_requester(ticket, action) {
        Ok(None) if ticket.requester_verified => log.checked(format!(
            "requester {requester} verified by the {} channel",
            ticket.channel
        )),
        Ok(None) => log.checked(format!(
            "requester {requester} verified by a one-time code sent to a contact method on file"
        )),
        Ok(Some(unverified)) => return Settled::Escalate(unverified),
        Err(failure) => {
            return Settled::Escalate(failure_outcome(&failure, "the identity check", &requester));
        }
    }

    let target = match whose_account(ticket, &requester, question, &mut log) {
        Ok(target) => target,
        Err(outcome) => return Settled::Escalate(outcome),
    };
    let user = match idp::find_user(&target) {
        Ok(user) => user,
        Err(Failure::NotFound(_)) => {
            return Settled::Escalate(Outcome::escalated(format!(
                "no account {target} in the directory; check the address with the requester \
                 (nothing was changed)"
            )));
        }
        Err(failure) => {
            return Settled::Escalate(failure_outcome(&failure, "the lookup", &target));
        }
    };
    let target = user.email.to_ascii_lowercase();
    if !user.enabled {
        return Settled::Escalate(Outcome::escalated(format!(
            "the account {target} is disabled; re-enabling it is a technician's decision \
             (nothing was changed)"
        )));
    }
    let on_behalf = target != requester;
    log.checked(format!(
        "account {target} ({}) found and enabled, {}, {}",
        if on_behalf {
            "not the requester's own"
        } else {
            "the requester's own"
        },
        if user.locked { "locked" } else { "not locked" },
        if user.privileged {
            "privileged"
        } else {
            "not privileged"
        },
    ));
    Settled::Proceed(Account {
        user,
        on_behalf,
        log,
    })
}

/// The account the ticket is about: the intake's `target` field; otherwise the
/// requester's own, unless the ticket names another address or speaks of someone
/// else's account: then the requester is asked, and answers with one of the addresses
/// or "someone else's account" (and then the address).
fn whose_account(
    ticket: &Ticket,
    requester: &str,
    question: &str,
    log: &mut WorkLog,
) -> Result<String, Outcome> {
    if let Some(target) = ticket.field("target") {
        let target = target.trim().to_ascii_lowercase();
        log.checked(format!("the ticket's target field names {target}"));
        return Ok(target);
    }
    let others = other_addresses(ticket, requester);
    if others.is_empty() && !Wording::new(ticket).any(SOMEONE_ELSES_ACCOUNT) {
        return Ok(requester.to_string());
    }
    let mut choices = vec![requester.to_string()];
    choices.extend(others.iter().cloned());
    choices.push(SOMEONE_ELSE.to_string());
    let could_not_ask = |failure: Failure| {
        Outcome::escalated(format!(
            "the ticket may be about someone else's account and capdesk could not ask \
             {requester} whose it is ({}); confirm with them (nothing was changed)",
            failure.describe()
        ))
    };
    let answer = chat::ask(requester, question, &choices).map_err(could_not_ask)?;
    let answer = answer.trim().to_ascii_lowercase();
    if answer != SOMEONE_ELSE {
        log.checked(format!("asked {requester} whose account it is: {answer}"));
        return Ok(answer);
    }
    let address = chat::ask(requester, "What is the email address of that account?", &[])
        .map_err(could_not_ask)?;
    let address = address.trim().to_ascii_lowercase();
    if !is_address(&address) {
        return Err(Outcome::escalated(format!(
            "{requester} says the ticket is about someone else's account but gave no usable \
             address ({address:?}); find out whose account it is (nothing was changed)"
        )));
    }
    log.checked(format!("asked {requester} whose account it is: {address}"));
    Ok(address)
}

/// Ways of saying the account is someone else's: "my colleague", "John's account",
/// "her password", "he is locked out", "on behalf of".
const SOMEONE_ELSES_ACCOUNT: &[&str] = &[
    "colleague|colleague's|colleagues|coworker|coworker's|co-worker|co-worker's",
    "on behalf of",
    "his|her|their|*'s account|acct|password|pw|login|logon|user|username",
    "he|she|they is|are|was|has|have|keeps|got locked|forgotten|forgot|blocked",
    "he's|she's|they're|they've locked|forgotten|blocked",
    "he|she|they can't|cant|cannot|isn't|isnt log|sign|get",
    "new starter|temp|employee|hire|joiner",
    "team|staff member",
];

/// Addresses the requester wrote (not in quoted history or mail headers), other than
/// their own, at most three.
fn other_addresses(ticket: &Ticket, requester: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let lines = ticket
        .body
        .lines()
        .take_while(|l| !is_reply_history(l.trim_start()));
    for line in std::iter::once(ticket.subject.as_str()).chain(lines) {
        let line = line.trim_start();
        if line.starts_with('>') || is_mail_header(line) {
            continue;
        }
        for word in line.split(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c)) {
            let address = word.trim_end_matches(['.', '?', '!']).to_ascii_lowercase();
            if is_address(&address) && address != requester && !found.contains(&address) {
                found.push(address);
            }
        }
        if found.len() >= 3 {
            break;
        }
    }
    found.truncate(3);
    found
}

fn is_mail_header(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "from:",
        "to:",
        "cc:",
        "sent:",
        "date:",
        "subject:",
        "reply-to:",
    ]
    .iter()
    .any(|h| lower.starts_with(h))
}

/// `local@domain.tld`, roughly: enough to tell an address from a word.
fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.-_+'".contains(c))
}

/// The escalation for a directory call that failed: refusals (grants, policy, an
/// approver) as `checks::denied_outcome` words them; otherwise what failed, and that
/// nothing was changed. `action` is a noun phrase ("an unlock"), `account` the address.
pub fn failure_outcome(failure: &Failure, action: &str, account: &str) -> Outcome {
    if let Some(refused) = checks::denied_outcome(failure, action) {
        return refused;
    }
    Outcome::escalated(match failure {
        Failure::NotFound(why) => format!(
            "no account {account} in the directory ({why}); nothing was changed, check the \
             address with the requester"
        ),
        Failure::Upstream(why) => format!(
            "the directory failed during {action} of {account} ({why}); nothing was changed, \
             retry later or do it by hand"
        ),
        Failure::Invalid(why) => format!(
            "the directory refused {action} of {account} as invalid ({why}); nothing was changed"
        ),
        Failure::Incomplete(why) => format!("{action} of {account} was done only in part: {why}"),
        Failure::Denied(_) | Failure::Rejected(_) => failure.describe(),
    })
}

/// What the run checked and did, written to the ticket as one internal note.
#[derive(Debug, Default)]
pub struct WorkLog {
    checked: Vec<String>,
    done: Vec<String>,
}

impl WorkLog {
    pub fn checked(&mut self, what: impl Into<String>) {
        self.checked.push(what.into());
    }

    pub fn done(&mut self, what: impl Into<String>) {
        self.done.push(what.into());
    }

    /// Add the note; a note that cannot be written is logged, not fatal (the outcome's
    /// note still reaches the technician).
    pub fn write(&self, ticket: &Ticket) {
        let mut text = format!("Checked: {}.", self.checked.join("; "));
        if !self.done.is_empty() {
            text.push_str(&format!("\nDone: {}.", self.done.join("; ")));
        }
        if let Err(failure) = psa::add_note(&ticket.id, &text, Visibility::Internal) {
            log::warn(
                "could not add the internal note",
                &[("failure", &failure.describe())],
            );
        }
    }
}

/// Tell `to` something by chat; a message that cannot be sent is logged, not fatal.
pub fn tell(to: &str, text: &str) -> bool {
    match chat::send(to, text) {
        Ok(()) => true,
        Err(failure) => {
            log::warn(
                "could not send a chat message",
                &[("to", to), ("failure", &failure.describe())],
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Person;

    fn ticket(subject: &str, body: &str) -> Ticket {
        Ticket {
            id: "T-1".into(),
            subject: subject.into(),
            body: body.into(),
            requester: Person {
                email: "Ann@acme.test".into(),
                name: String::new(),
            },
            channel: "chat".into(),
            requester_verified: true,
            fields: Vec::new(),
        }
    }

    #[test]
    fn addresses_are_found_outside_headers_and_history() {
        let t = ticket(
            "Locked out: bob@acme.test",
            "Please help (carl.d@acme.test). Mine is ann@acme.test.\nFrom: x <noreply@acme.test>\n\
             -----Original Message-----\ndan@acme.test",
        );
        assert_eq!(
            other_addresses(&t, "ann@acme.test"),
            ["bob@acme.test", "carl.d@acme.test"]
        );
        assert!(other_addresses(&ticket("frontdesk@ login", "x"), "ann@acme.test").is_empty());
    }

    #[test]
    fn someone_elses_account_is_recognised() {
        crate::wording::assert_well_formed(&[SOMEONE_ELSES_ACCOUNT]);
        for (subject, body) in [
            ("John at reception", "Can you unlock John Smith's account?"),
            ("Priya", "My colleague has forgotten her password"),
            ("", "he is locked out again"),
            ("", "on behalf of our new starter"),
        ] {
            assert!(
                Wording::new(&ticket(subject, body)).any(SOMEONE_ELSES_ACCOUNT),
                "{subject} {body}"
            );
        }
        for body in [
            "I'm locked out of my account",
            "my password expired, it's the account I use for payroll",
        ] {
            assert!(
                !Wording::new(&ticket("", body)).any(SOMEONE_ELSES_ACCOUNT),
                "{body}"
            );
        }
    }

    #[test]
    fn addresses_are_told_from_words() {
        assert!(is_address("ann@acme.test"));
        assert!(is_address("o'neil@acme.co.uk"));
        assert!(!is_address("ann@"));
        assert!(!is_address("@acme.test"));
        assert!(!is_address("ann@acme"));
        assert!(!is_address("mine"));
    }
}
