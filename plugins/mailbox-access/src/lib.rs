//! Gives someone access to a shared mailbox or a colleague's mailbox (full access, send
//! as, send on behalf), or takes it away.
//!
//! Works out, in order: add or remove (the `action` field, else the words, else it
//! asks); who gets the access (the `member` or `target` field, else the requester when
//! the words speak for themself, else it asks); which mailbox (the `mailbox` field, else
//! an address in the text, else a mailbox the text names and the directory knows, else
//! it asks); which rights (the `right` field, else the words, else it asks). Who is
//! asking is proven first, the member and the mailbox are looked up, and each change is
//! made through the host, where the tenant's policy decides (by default the member's
//! manager or department head approves). A privileged account's mailbox is left to a
//! technician: the policy sees the member, not the mailbox.

mod triage;
mod words;

use capdesk_sdk::checks;
use capdesk_sdk::idp::{self, MailboxRight, User};
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::triage::{Signals, normalize};
use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, log};

use words::{
    Action, Member, RIGHTS, action_of, address_in, addresses, list_rights, mailbox_by_name,
    member_in_text, named_mailbox, own_words, parse_right, parse_rights, right_name, right_words,
    rights_held, rights_in_text,
};

struct MailboxAccess;

/// A step either goes on with a value or ends the run with this outcome.
type Step<T> = Result<T, Outcome>;

/// Ask the requester; a refusal (chat.ask not granted, or a failed chat) ends the run.
fn ask(ticket: &Ticket, question: &str, choices: &[&str]) -> Step<String> {
    let to = &ticket.requester.email;
    let choices: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
    chat::ask(to, question, &choices).map_err(|failure| {
        Outcome::escalated(format!(
            "could not ask {to} about the mailbox request ({}); nothing was changed",
            failure.describe()
        ))
    })
}

/// The escalation for a failed call doing `what`; `done` says what had already changed.
fn failed(failure: Failure, what: &str, done: &str) -> Outcome {
    if let Some(refused) = checks::denied_outcome(&failure, what) {
        return Outcome::escalated(format!("{}; {done}", refused.note));
    }
    Outcome::escalated(match failure {
        Failure::NotFound(m) => format!("{what} failed: not found: {m}; {done}"),
        Failure::Upstream(m) => format!("the identity provider failed during {what} ({m}); {done}"),
        other => format!("{what} failed: {}; {done}", other.describe()),
    })
}

/// Add an internal note; a PSA failure is logged, not fatal (the outcome's note reaches
/// the ticket anyway).
fn note(ticket: &Ticket, text: &str) {
    if let Err(f) = psa::add_note(&ticket.id, text, Visibility::Internal) {
        log::warn(
            "could not add the internal note",
            &[("error", &f.describe())],
        );
    }
}

/// The request once worked out: what to do, for whom, on which mailbox.
struct Request {
    requester: String,
    action: Action,
    member: User,
    mailbox: User,
}

impl Request {
    fn for_self(&self) -> bool {
        self.member.email.eq_ignore_ascii_case(&self.requester)
    }

    fn mailbox(&self) -> String {
        self.mailbox.email.to_ascii_lowercase()
    }

    fn member(&self) -> String {
        self.member.email.to_ascii_lowercase()
    }

    /// A resolution with its closeout and the vars every template of this plugin uses.
    fn closeout(&self, note: String, template: &str, rights: &[MailboxRight]) -> Outcome {
        self.closeout_saying(note, template, rights, list_rights(rights))
    }

    /// [`Request::closeout`] with the `rights` var worded by the caller.
    fn closeout_saying(
        &self,
        note: String,
        template: &str,
        rights: &[MailboxRight],
        rights_words: String,
    ) -> Outcome {
        let has = |r| if rights.contains(&r) { "yes" } else { "no" };
        Outcome::resolved(note)
            .closeout(template)
            .var("mailbox", self.mailbox())
            .var("mailbox_name", &self.mailbox.name)
            .var("member", self.member())
            .var("for_self", if self.for_self() { "yes" } else { "no" })
            .var("rights", rights_words)
            .var("full_access", has(MailboxRight::FullAccess))
            .var("send_as", has(MailboxRight::SendAs))
            .var("send_on_behalf", has(MailboxRight::SendOnBehalf))
    }
}

/// What the ticket says, read once.
struct Reading<'t> {
    ticket: &'t Ticket,
    requester: String,
    /// The requester's mail domain, for `finance@` and `the finance mailbox`.
    domain: String,
    signals: Signals,
    normalized: String,
}

impl<'t> Reading<'t> {
    fn new(ticket: &'t Ticket) -> Reading<'t> {
        let requester = ticket.requester.email.to_ascii_lowercase();
        let domain = requester
            .split_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        Reading {
            ticket,
            requester,
            domain,
            signals: Signals::new(ticket),
            normalized: normalize(&format!("{}\n{}", ticket.subject, ticket.body)),
        }
    }

    /// Add or remove: the field, the words, or the requester's answer.
    fn action(&self) -> Step<Action> {
        if let Some(action) = action_of(self.ticket, &self.signals) {
            return Ok(action);
        }
        let give = "give access";
        let answer = ask(
            self.ticket,
            "Your request mentions both giving and removing mailbox access. Which should we do \
             on this ticket? (Raise another ticket for the other.)",
            &[give, "remove access"],
        )?;
        Ok(if answer == give {
            Action::Grant
        } else {
            Action::Remove
        })
    }

    /// Who gets (or loses) the access: the field, the requester, or the requester's answer.
    fn member(&self, action: Action) -> Step<String> {
        let requester = &self.requester;
        if let Some(field) = self
            .ticket
            .field("member")
            .or_else(|| self.ticket.field("target"))
        {
            return address_in(field, &self.domain).ok_or_else(|| {
                Outcome::escalated(format!(
                    "the ticket's member field {field:?} is not an email address; nothing was \
                     changed"
                ))
            });
        }
        match member_in_text(&self.signals, &self.normalized, action) {
            Member::Requester => Ok(requester.clone()),
            Member::Several => Err(Outcome::escalated(format!(
                "{requester} asks for mailbox access for several people in one ticket; capdesk \
                 changes one person per ticket, so a technician should do these (or split the \
                 ticket). Nothing was changed."
            ))),
            Member::SomeoneElse | Member::Unclear => {
                let answer = ask(
                    self.ticket,
                    "Who should get this mailbox access? Reply \"me\", or the person's email \
                     address.",
                    &[],
                )?;
                let me = answer.trim().trim_end_matches('.').to_ascii_lowercase();
                if ["me", "myself", "i", "for me", "me please"].contains(&me.as_str()) {
                    return Ok(requester.clone());
                }
                address_in(&answer, &self.domain).ok_or_else(|| {
                    Outcome::escalated(format!(
                        "asked who should get the mailbox access; {requester} answered \
                         {answer:?}, which is not an email address. Nothing was changed."
                    ))
                })
            }
        }
    }

    /// The mailbox the requester answers with (after `why`, when there is one).
    fn ask_mailbox(&self, why: &str) -> Step<String> {
        let answer = ask(
            self.ticket,
            &format!("{why}Which mailbox is it? Reply with its email address."),
            &[],
        )?;
        address_in(&answer, &self.domain).ok_or_else(|| {
            Outcome::escalated(format!(
                "asked which mailbox; {} answered {answer:?}, which is not an email address. \
                 Nothing was changed.",
                self.requester
            ))
        })
    }

    /// Candidate mailbox addresses, each with whether it was guessed (completed from a
    /// name or a bare `name@`), from the field or the words.
    fn mailbox_candidates(&self, member: &str) -> Vec<(String, bool)> {
        if let Some(field) = self.ticket.field("mailbox") {
            return match addresses(field, &self.domain).into_iter().next() {
                Some(found) => vec![found],
                None => mailbox_by_name(field, &self.domain)
                    .map(|a| vec![(a, true)])
                    .unwrap_or_default(),
            };
        }
        let text = format!("{}\n{}", self.ticket.subject, self.ticket.body);
        let found: Vec<(String, bool)> = addresses(&own_words(&text), &self.domain)
            .into_iter()
            .filter(|(a, _)| *a != self.requester && a != member)
            .collect();
        if !found.is_empty() {
            return found;
        }
        let own = ["my mailbox", "my inbox", "my emails", "my email"]
            .iter()
            .any(|p| self.signals.contains(p));
        if own && member != self.requester {
            return vec![(self.requester.clone(), false)];
        }
        named_mailbox(&self.normalized)
            .map(|name| vec![(format!("{name}@{}", self.domain), true)])
            .unwrap_or_default()
    }

    /// Which mailbox, looked up in the directory; asks when the words do not say or
    /// name more than one, and once more when a guessed address does not exist.
    fn mailbox(&self, member: &str) -> Step<User> {
        let mut candidates = self.mailbox_candidates(member);
        let (address, guessed) = match candidates.len() {
            0 => (self.ask_mailbox("")?, true),
            1 => candidates.remove(0),
            _ => {
                let mut choices: Vec<&str> = candidates.iter().map(|(a, _)| a.as_str()).collect();
                choices.push("a different mailbox");
                let answer = ask(
                    self.ticket,
                    "Your request mentions more than one address. Which mailbox is the access \
                     for?",
                    &choices,
                )?;
                match candidates.iter().find(|(a, _)| *a == answer) {
                    Some(found) => found.clone(),
                    None => (self.ask_mailbox("")?, true),
                }
            }
        };
        let not_found = |address: &str| {
            Outcome::escalated(format!(
                "no mailbox {address} in the directory; check the address. Nothing was changed."
            ))
        };
        match idp::find_user(&address) {
            Ok(mailbox) => Ok(mailbox),
            Err(Failure::NotFound(_)) if guessed => {
                let address = self.ask_mailbox(&format!(
                    "We could not find a mailbox {address} in the directory. "
                ))?;
                idp::find_user(&address).map_err(|f| match f {
                    Failure::NotFound(_) => not_found(&address),
                    f => failed(f, "looking up the mailbox", "nothing was changed"),
                })
            }
            Err(Failure::NotFound(_)) => Err(not_found(&address)),
            Err(f) => Err(failed(f, "looking up the mailbox", "nothing was changed")),
        }
    }

    /// Which rights to give: the field, the words, or the requester's answer.
    fn rights_to_grant(&self, mailbox: &str) -> Step<Vec<MailboxRight>> {
        let field = self.ticket.field("right");
        if let Some(rights) = field.and_then(parse_rights) {
            return Ok(rights);
        }
        let said = rights_in_text(&self.signals);
        let both_sends =
            said.contains(&MailboxRight::SendAs) && said.contains(&MailboxRight::SendOnBehalf);
        if field.is_none() && !said.is_empty() && !both_sends {
            return Ok(said);
        }
        self.ask_right(&format!(
            "What access is needed to {mailbox}? full-access: open and read it in Outlook; \
             send-as: send mail that appears to come from it; send-on-behalf: send mail marked \
             \"on behalf of\" it."
        ))
    }

    /// Which rights to take away: the field, the words, else every right held (asks when
    /// the directory lists the mailbox without rights it can read).
    fn rights_to_remove(&self, request: &Request) -> Step<Vec<MailboxRight>> {
        let mailbox = request.mailbox();
        let asked = self.rights_named();
        match (asked.is_empty(), rights_held(&request.member, &mailbox)) {
            (false, Some(held)) => Ok(asked.into_iter().filter(|r| held.contains(r)).collect()),
            (false, None) => Ok(asked),
            (true, Some(held)) => Ok(held),
            (true, None) => self.ask_right(&format!("Which access to {mailbox} should we remove?")),
        }
    }

    /// The rights the `right` field or the words name (none: not said).
    fn rights_named(&self) -> Vec<MailboxRight> {
        self.ticket
            .field("right")
            .and_then(parse_rights)
            .unwrap_or_else(|| rights_in_text(&self.signals))
    }

    fn ask_right(&self, question: &str) -> Step<Vec<MailboxRight>> {
        let choices: Vec<&str> = RIGHTS.iter().map(|r| right_name(*r)).collect();
        let answer = ask(self.ticket, question, &choices)?;
        parse_right(&answer).map(|r| vec![r]).ok_or_else(|| {
            Outcome::escalated(format!("could not read the access right from {answer:?}"))
        })
    }

    /// Action, member, mailbox: read, asked and looked up.
    fn request(&self) -> Step<Request> {
        let action = self.action()?;
        let member = self.member(action)?;
        let member = match idp::find_user(&member) {
            Ok(user) => user,
            Err(Failure::NotFound(_)) => {
                return Err(Outcome::escalated(format!(
                    "no account {member} in the directory to change mailbox access for; check \
                     the address. Nothing was changed."
                )));
            }
            Err(f) => return Err(failed(f, "looking up the member", "nothing was changed")),
        };
        let member_email = member.email.to_ascii_lowercase();
        if !member.enabled {
            return Err(Outcome::escalated(format!(
                "the account {member_email} is disabled; access for a disabled account is a \
                 technician's decision. Nothing was changed."
            )));
        }
        let mailbox = self.mailbox(&member_email)?;
        let mailbox_email = mailbox.email.to_ascii_lowercase();
        if mailbox_email == member_email {
            return Err(Outcome::escalated(format!(
                "{mailbox_email} is {member_email}'s own mailbox, so there is no delegated \
                 access to change; a technician should read the request. Nothing was changed."
            )));
        }
        if mailbox.privileged && action == Action::Grant {
            return Err(Outcome::escalated(format!(
                "{mailbox_email} belongs to a privileged account; access to it is a technician's \
                 decision. Nothing was changed."
            )));
        }
        Ok(Request {
            requester: self.requester.clone(),
            action,
            member,
            mailbox,
        })
    }
}

/// Give the rights the member lacks.
fn grant(reading: &Reading, request: &Request, checked: &str) -> Step<Outcome> {
    let ticket = reading.ticket;
    let (mailbox, member, requester) = (request.mailbox(), request.member(), &request.requester);
    let wanted = reading.rights_to_grant(&mailbox)?;
    let held = rights_held(&request.member, &mailbox).unwrap_or_default();
    let missing: Vec<MailboxRight> = wanted
        .iter()
        .copied()
        .filter(|r| !held.contains(r))
        .collect();
    if missing.is_empty() {
        let rights = list_rights(&wanted);
        note(
            ticket,
            &format!("{checked}. {member} already has {rights} on {mailbox}; nothing changed."),
        );
        return Ok(request.closeout(
            format!("{member} already had {rights} on {mailbox}; nothing changed"),
            "already",
            &wanted,
        ));
    }
    let mut granted: Vec<MailboxRight> = Vec::new();
    for right in missing {
        if let Err(failure) = idp::grant_mailbox_access(&mailbox, &member, right) {
            let what = format!("giving {member} {} on {mailbox}", right_words(right));
            let done = if granted.is_empty() {
                "nothing was changed".to_string()
            } else {
                format!("{} was already given", list_rights(&granted))
            };
            return Err(failed(failure, &what, &done));
        }
        granted.push(right);
    }
    let given = list_rights(&granted);
    let already = if held.is_empty() {
        String::new()
    } else {
        format!(" (already held: {})", list_rights(&held))
    };
    note(
        ticket,
        &format!(
            "{checked}. Gave {member} {given} on {mailbox}{already}, approved per policy (the approver is named on the ticket)."
        ),
    );
    let mut told = !request.for_self();
    if !request.for_self() {
        let message = format!(
            "{requester} asked the service desk to give you {given} on the mailbox {mailbox} \
             (ticket {}). It is done; it can take up to 60 minutes to show in Outlook.",
            ticket.id
        );
        if let Err(f) = chat::send(&member, &message) {
            log::warn("could not tell the member", &[("error", &f.describe())]);
            told = false;
        }
    }
    log::info(
        "mailbox access given",
        &[
            ("mailbox", &mailbox),
            ("member", &member),
            ("rights", &given),
        ],
    );
    let now: Vec<MailboxRight> = RIGHTS.into_iter().filter(|r| wanted.contains(r)).collect();
    Ok(request
        .closeout(
            format!("gave {member} {given} on {mailbox}"),
            "granted",
            &now,
        )
        .var("member_told", if told { "yes" } else { "no" }))
}

/// Take the asked (or all held) rights away.
fn remove(reading: &Reading, request: &Request, checked: &str) -> Step<Outcome> {
    let ticket = reading.ticket;
    let (mailbox, member) = (request.mailbox(), request.member());
    let rights = reading.rights_to_remove(request)?;
    if rights.is_empty() {
        let asked = reading.rights_named();
        let what = if asked.is_empty() {
            "access".to_string()
        } else {
            list_rights(&asked)
        };
        note(
            ticket,
            &format!("{checked}. {member} has no {what} on {mailbox} to remove; nothing changed."),
        );
        return Ok(request.closeout_saying(
            format!("{member} had no {what} on {mailbox}; nothing to remove"),
            "nothing-to-remove",
            &[],
            what,
        ));
    }
    let mut removed: Vec<MailboxRight> = Vec::new();
    for right in rights {
        if let Err(failure) = idp::remove_mailbox_access(&mailbox, &member, right) {
            let what = format!("removing {member}'s {} on {mailbox}", right_words(right));
            let done = if removed.is_empty() {
                "nothing was changed".to_string()
            } else {
                format!("{} was already removed", list_rights(&removed))
            };
            return Err(failed(failure, &what, &done));
        }
        removed.push(right);
    }
    let taken = list_rights(&removed);
    note(
        ticket,
        &format!(
            "{checked}. Removed {member}'s {taken} on {mailbox}, approved per policy (the approver is named on the ticket)."
        ),
    );
    log::info(
        "mailbox access removed",
        &[
            ("mailbox", &mailbox),
            ("member", &member),
            ("rights", &taken),
        ],
    );
    Ok(request.closeout(
        format!("removed {member}'s {taken} on {mailbox}"),
        "removed",
        &removed,
    ))
}

fn run(ticket: &Ticket) -> Step<Outcome> {
    match checks::verify_requester(ticket, "changing mailbox access") {
        Ok(None) => {}
        Ok(Some(escalation)) => return Err(escalation),
        Err(f) => return Err(failed(f, "verifying the requester", "nothing was changed")),
    }
    let reading = Reading::new(ticket);
    let request = reading.request()?;
    let how = if ticket.requester_verified {
        "by the channel"
    } else {
        "by a one-time code"
    };
    let checked = format!(
        "Requester {} verified {how}; member {} enabled; mailbox {} found",
        request.requester,
        request.member(),
        request.mailbox()
    );
    match request.action {
        Action::Grant => grant(&reading, &request, &checked),
        Action::Remove => remove(&reading, &request, &checked),
    }
}

impl Playbook for MailboxAccess {
    fn manifest() -> Manifest {
        Manifest::new(
            "mailbox-access",
            env!("CARGO_PKG_VERSION"),
            "mailbox-access",
        )
        .description(
            "Gives or removes access to a shared or colleague's mailbox (full access, send \
                 as, send on behalf) for a verified requester; the tenant's policy decides who \
                 approves",
        )
        .capabilities(&[
            "idp.read",
            "idp.verify",
            "idp.mailbox",
            "psa.write",
            "chat.send",
            "chat.ask",
        ])
        .template("granted", include_str!("../templates/granted.j2"))
        .template("already", include_str!("../templates/already.j2"))
        .template("removed", include_str!("../templates/removed.j2"))
        .template(
            "nothing-to-remove",
            include_str!("../templates/nothing-to-remove.j2"),
        )
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        Ok(run(ticket).unwrap_or_else(|escalation| escalation))
    }
}

export_playbook!(MailboxAccess);
