//! Adds, removes or moves a per-user license ("upgrade me to E5", "need a Visio
//! license", "remove Power BI Pro from the leaver") the way a careful L1 technician
//! does: prove who is asking, find whose account it is and that it can take the change,
//! work out which licenses (asking the requester when the ticket does not say), then
//! make each change through the directory — the tenant's policy asks its approvers
//! (finance, by default) for every one. A move assigns the new license first and only
//! then removes the old one, so nobody is left without a license. Anything it cannot
//! finish goes to a technician saying what was and was not changed.
//!
//! Owns only this crate; everything outside it goes through host calls.

mod catalogue;
mod request;
mod triage;

use capdesk_sdk::checks;
use capdesk_sdk::idp::User;
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::{
    Effect, Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log,
};

use crate::request::{Action, License, Request};
use capdesk_sdk::people::{self, Whom};

/// The change, for notes and escalations.
const ACTION: &str = "a license change";

/// The choice for a license the catalogue does not offer.
const SOMETHING_ELSE: &str = "Something else";

/// How requesters say the license is for themselves.
const FOR_ME: &[&str] = &[
    "i need",
    "i'd like",
    "i would like",
    "i want",
    "can i get",
    "can i have",
    "could i get",
    "could i have",
    "may i have",
    "can i be",
    "could i be",
    "give me",
    "get me",
    "for me",
    "to me",
    "me a",
    "my account",
    "my licence",
    "my license",
    "my subscription",
    "my own",
    "move me",
    "upgrade me",
    "downgrade me",
    "switch me",
    "swap my",
    "upgrade my",
    "i only have",
    "i can only",
    "i don't have",
    "i do not have",
    "i'm not using",
    "i am not using",
];

struct LicenseChange;

impl Playbook for LicenseChange {
    fn manifest() -> Manifest {
        Manifest::new(
            "license-change",
            env!("CARGO_PKG_VERSION"),
            "license-change",
        )
        .description(
            "Assigns, removes or moves a user's license (E3/E5, Business Premium, Visio, \
                 Project, Power BI Pro, Teams Phone, Copilot) for a verified requester, each \
                 change approved per the tenant's policy",
        )
        .capabilities(&[
            "idp.read",
            "idp.verify",
            "idp.licenses",
            "psa.write",
            "chat.send",
            "chat.ask",
        ])
        .template("assigned", include_str!("../templates/assigned.j2"))
        .template("removed", include_str!("../templates/removed.j2"))
        .template("unchanged", include_str!("../templates/unchanged.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        Ok(resolve(ticket))
    }
}

export_playbook!(LicenseChange);

/// One directory change.
#[derive(Debug, Clone)]
enum Step {
    Assign(License),
    Remove(License),
}

impl Step {
    /// "assigning Visio Plan 2 (VISIO-PLAN2) to ann@acme.test"
    fn doing(&self, account: &str) -> String {
        match self {
            Step::Assign(l) => format!("assigning {} to {account}", l.label()),
            Step::Remove(l) => format!("removing {} from {account}", l.label()),
        }
    }

    /// "assigned VISIO-PLAN2"
    fn done(&self, effect: Effect) -> String {
        let already = if effect == Effect::Unchanged {
            " (it already was)"
        } else {
            ""
        };
        match self {
            Step::Assign(l) => format!("assigned {}{already}", l.id()),
            Step::Remove(l) => format!("removed {}{already}", l.id()),
        }
    }

    /// The noun phrase `checks::denied_outcome` puts in its sentence.
    fn noun(&self, account: &str) -> String {
        match self {
            Step::Assign(l) => format!("a license assignment ({} to {account})", l.id()),
            Step::Remove(l) => format!("a license removal ({} from {account})", l.id()),
        }
    }
}

fn resolve(ticket: &Ticket) -> Outcome {
    let requester = ticket.requester.email.trim().to_ascii_lowercase();

    // Who is asking.
    match checks::verify_requester(ticket, ACTION) {
        Ok(None) => {}
        Ok(Some(escalation)) => return escalation,
        Err(failure) => return system_failed(&failure, "verifying the requester"),
    }
    let verified_by = if ticket.requester_verified {
        format!("verified by the {} channel", ticket.channel)
    } else {
        "verified with a one-time code".to_string()
    };

    let request = request::read(ticket);
    if request.between_people {
        return Outcome::escalated(format!(
            "{requester} asks to move a license from one person to another; capdesk changes one \
             account per ticket, so a technician should remove it from the previous holder and \
             assign it to the new one"
        ));
    }

    // Whose account.
    let target = match ticket.field("target") {
        Some(t) if !t.trim().is_empty() => t.trim().to_ascii_lowercase(),
        _ => match people::whom(ticket, FOR_ME, &[], false) {
            Whom::Requester => requester.clone(),
            Whom::Named(email) => email,
            Whom::Unclear => {
                let question = "Whose account is this license change for? Reply with their email \
                                address, or \"me\" for your own account.";
                let answer = match ask(&requester, question, &[], "whose account it is for") {
                    Ok(answer) => answer,
                    Err(escalation) => return escalation,
                };
                match people::from_answer(&answer, &requester) {
                    Ok(email) => email,
                    Err(why) => {
                        return Outcome::escalated(format!(
                            "could not tell whose account the license change is for: {why}; a \
                             technician should confirm with {requester}"
                        ));
                    }
                }
            }
        },
    };

    // The account.
    let user = match idp::find_user(&target) {
        Ok(user) => user,
        Err(Failure::NotFound(_)) => {
            return Outcome::escalated(format!(
                "no account {target} in the directory; check the address with {requester}"
            ));
        }
        Err(failure) => {
            return system_failed(&failure, &format!("looking up {target}"));
        }
    };
    let who = if target == requester {
        "your account".to_string()
    } else {
        target.clone()
    };

    // Which licenses.
    let Request {
        action, mut wanted, ..
    } = request.clone();
    let action = action.unwrap_or(Action::Add);
    let suites_wanted = wanted.iter().filter(|l| l.is_suite()).count();
    if action == Action::Remove && wanted.is_empty() {
        if user.licenses.is_empty() {
            return unchanged(
                ticket,
                &user,
                &verified_by,
                &format!("{target} holds no licenses, so there is nothing to remove"),
            );
        }
        let choices: Vec<String> = user.licenses.iter().map(|id| display(id)).collect();
        let question = format!("Which license should be removed from {who}?");
        match ask(&requester, &question, &choices, "which license to remove") {
            Ok(answer) => {
                let at = choices.iter().position(|c| c.eq_ignore_ascii_case(&answer));
                let id = at.map_or(answer.as_str(), |i| user.licenses[i].as_str());
                wanted.extend(License::named(id));
            }
            Err(escalation) => return escalation,
        }
    } else if action != Action::Remove && (wanted.is_empty() || suites_wanted > 1) {
        let choices: Vec<String> = if suites_wanted > 1 {
            wanted
                .iter()
                .filter(|l| l.is_suite())
                .map(|l| l.name().to_string())
                .collect()
        } else {
            catalogue::CATALOGUE
                .iter()
                .filter(|s| request.from.as_ref().is_none_or(|f| !f.is(s.id)))
                .map(|s| s.name.to_string())
                .chain([SOMETHING_ELSE.to_string()])
                .collect()
        };
        let question = match (&request.from, suites_wanted > 1) {
            (_, true) => format!("Which license should {who} get: {}?", choices.join(" or ")),
            (Some(from), false) => {
                format!("Which license should {who} move to from {}?", from.name())
            }
            (None, false) => format!("Which license should {who} get?"),
        };
        match ask(&requester, &question, &choices, "which license is needed") {
            Ok(answer) if answer.eq_ignore_ascii_case(SOMETHING_ELSE) => {
                return Outcome::escalated(format!(
                    "{requester} needs a license for {target} that capdesk's catalogue does not \
                     name; a technician should find the right subscription"
                ));
            }
            Ok(answer) => {
                wanted.retain(|l| !l.is_suite());
                wanted.extend(License::named(&answer));
            }
            Err(escalation) => return escalation,
        }
    }

    let plan = plan(action, &wanted, request.from.as_ref(), &user);
    if plan.is_empty() {
        let names = names(&wanted);
        let state = match action {
            Action::Remove => format!("{target} does not have {names}"),
            _ => format!("{target} already has {names}"),
        };
        return unchanged(ticket, &user, &verified_by, &state);
    }
    if !user.enabled && plan.iter().any(|s| matches!(s, Step::Assign(_))) {
        return Outcome::escalated(format!(
            "the account {target} is disabled; assigning a license to it is a technician's \
             decision"
        ));
    }

    // The changes, each decided by the tenant's policy (by default, finance approves).
    let mut done = Vec::new();
    for (i, step) in plan.iter().enumerate() {
        let result = match step {
            Step::Assign(l) => idp::assign_license(&target, l.id()),
            Step::Remove(l) => idp::remove_license(&target, l.id()),
        };
        match result {
            Ok(effect) => {
                log::info(
                    "license changed",
                    &[("account", &target), ("change", &step.done(effect))],
                );
                done.push(step.done(effect));
            }
            Err(failure) => {
                return stopped(&failure, step, &target, &done, &plan[i + 1..]);
            }
        }
    }
    finish(ticket, &user, &verified_by, &plan, &done)
}

/// Ask the requester by chat; a refusal to ask becomes the escalation.
fn ask(to: &str, question: &str, choices: &[String], what: &str) -> Result<String, Outcome> {
    chat::ask(to, question, choices).map_err(|failure| {
        Outcome::escalated(format!(
            "the ticket does not say {what}, and capdesk could not ask {to} ({})",
            failure.describe()
        ))
    })
}

/// A license id as the requester knows it, for a choice.
fn display(id: &str) -> String {
    catalogue::by_id(id).map_or_else(|| id.to_string(), |s| s.name.to_string())
}

/// "Visio Plan 2 and Project Plan 3"
fn names(licenses: &[License]) -> String {
    join(licenses.iter().map(|l| l.name().to_string()).collect())
}

fn join(items: Vec<String>) -> String {
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn holds(user: &User, license: &License) -> bool {
    user.licenses.iter().any(|l| license.is(l))
}

/// The directory changes that carry out `action`: assignments first, then removals, so
/// a move never leaves the user without a license.
fn plan(action: Action, wanted: &[License], from: Option<&License>, user: &User) -> Vec<Step> {
    if action == Action::Remove {
        return wanted
            .iter()
            .filter(|l| holds(user, l))
            .map(|l| Step::Remove(l.clone()))
            .collect();
    }
    let mut steps: Vec<Step> = wanted
        .iter()
        .filter(|l| !holds(user, l))
        .map(|l| Step::Assign(l.clone()))
        .collect();
    let new_suite = wanted.iter().find(|l| l.is_suite());
    let old: Vec<License> = match (from, new_suite) {
        (Some(from), _) => vec![from.clone()],
        // A user holds one suite: the new one replaces the one they have (E3 → E5).
        (None, Some(new)) => user
            .licenses
            .iter()
            .filter_map(|id| catalogue::by_id(id))
            .filter(|s| s.suite && !new.is(s.id))
            .map(License::Known)
            .collect(),
        (None, None) => Vec::new(),
    };
    steps.extend(
        old.into_iter()
            .filter(|l| holds(user, l) && !wanted.contains(l))
            .map(Step::Remove),
    );
    steps
}

/// The escalation for a directory call that did not go through: what failed, what
/// was already done and what was left undone.
fn stopped(
    failure: &Failure,
    step: &Step,
    account: &str,
    done: &[String],
    left: &[Step],
) -> Outcome {
    if let Some(mut refusal) = checks::denied_outcome(failure, &step.noun(account)) {
        refusal.note = format!(
            "{}{}",
            refusal.note,
            progress(account, done, Some(step), left)
        );
        return refusal;
    }
    if let Failure::NotFound(what) = failure {
        return Outcome::escalated(format!(
            "{} failed: the directory does not know it ({what}){}",
            step.doing(account),
            progress(account, done, Some(step), left)
        ));
    }
    Outcome::escalated(format!(
        "the directory failed while {} ({}){}",
        step.doing(account),
        failure.describe(),
        progress(account, done, Some(step), left)
    ))
}

/// The connected system failed (or refused the arguments) while `doing`, before any
/// change.
fn system_failed(failure: &Failure, doing: &str) -> Outcome {
    Outcome::escalated(format!(
        "the directory failed while {doing} ({}); nothing was changed",
        failure.describe()
    ))
}

/// "; already done: assigned M365-E5; not done: ...; ann@acme.test still holds M365-E3"
/// after `failed` did not go through (the account's state in words for the technician).
fn progress(account: &str, done: &[String], failed: Option<&Step>, left: &[Step]) -> String {
    let account = if account.is_empty() {
        "the account"
    } else {
        account
    };
    let mut s = String::new();
    if done.is_empty() {
        s.push_str("; nothing was changed");
    } else {
        s.push_str(&format!("; already done: {}", done.join(", ")));
    }
    if !left.is_empty() {
        let rest: Vec<String> = left.iter().map(|step| step.doing(account)).collect();
        s.push_str(&format!("; not done: {}", rest.join(", ")));
    }
    if !done.is_empty() {
        let kept: Vec<&str> = failed
            .into_iter()
            .chain(left)
            .filter_map(|step| match step {
                Step::Remove(l) => Some(l.id()),
                Step::Assign(_) => None,
            })
            .collect();
        if !kept.is_empty() {
            s.push_str(&format!("; {account} still holds {}", kept.join(", ")));
        }
        s.push_str("; a technician should finish or undo the change");
    }
    s
}

/// Nothing needed to change: say so on the ticket and to the requester.
fn unchanged(ticket: &Ticket, user: &User, verified_by: &str, state: &str) -> Outcome {
    internal_note(
        ticket,
        &format!(
            "Requester {} {verified_by}. Account {} found ({}); licenses held: {}. {state}; \
             nothing was changed.",
            ticket.requester.email,
            user.email,
            if user.enabled { "enabled" } else { "disabled" },
            held(&user.licenses),
        ),
    );
    Outcome::resolved(format!("{state}; nothing changed"))
        .closeout("unchanged")
        .var("account", &user.email)
        .var("state", state)
}

fn held(licenses: &[String]) -> String {
    if licenses.is_empty() {
        "none".into()
    } else {
        licenses.join(", ")
    }
}

/// Every change went through: note it, tell the account owner when someone else asked,
/// and close out with what changes in which apps and when.
fn finish(
    ticket: &Ticket,
    user: &User,
    verified_by: &str,
    plan: &[Step],
    done: &[String],
) -> Outcome {
    let account = &user.email;
    let assigned: Vec<License> = plan
        .iter()
        .filter_map(|s| match s {
            Step::Assign(l) => Some(l.clone()),
            Step::Remove(_) => None,
        })
        .collect();
    let removed: Vec<License> = plan
        .iter()
        .filter_map(|s| match s {
            Step::Remove(l) => Some(l.clone()),
            Step::Assign(_) => None,
        })
        .collect();
    // A standalone add-on the new suite already includes costs money for nothing.
    let redundant: Vec<&String> = user
        .licenses
        .iter()
        .filter(|id| {
            assigned.iter().any(|a| {
                catalogue::by_id(id).is_some_and(|addon| a.includes(&License::Known(addon)))
            })
        })
        .collect();
    let mut note = format!(
        "Requester {} {verified_by}. Account {account} found, {}; licenses held before: {}. \
         Done: {} — each change approved per policy (the approver is named on this ticket).",
        ticket.requester.email,
        if user.enabled { "enabled" } else { "disabled" },
        held(&user.licenses),
        done.join(", "),
    );
    if !redundant.is_empty() {
        note.push_str(&format!(
            " {account} also holds {}, which the new license includes: a technician may remove \
             it to save its cost.",
            redundant
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    internal_note(ticket, &note);

    let requester = ticket.requester.email.trim();
    if !account.eq_ignore_ascii_case(requester) {
        let what = if assigned.is_empty() {
            format!("{} was removed from your account", names(&removed))
        } else {
            format!("{} is now assigned to your account", names(&assigned))
        };
        let message = format!(
            "{what} (requested by {requester} in ticket {}, approved per policy). The change \
             reaches your apps within about an hour; then sign out of Office and Teams and sign \
             in again.",
            ticket.id
        );
        if let Err(failure) = chat::send(account, &message) {
            log::warn(
                "could not tell the account owner",
                &[("to", account), ("why", &failure.describe())],
            );
        }
    }

    let summary = format!("{} for {account}", done.join(", "));
    if assigned.is_empty() {
        let gives: Vec<String> = removed.iter().map(License::gives).collect();
        return Outcome::resolved(summary)
            .closeout("removed")
            .var("account", account)
            .var("license", names(&removed))
            .var("gives", gives.join("; "));
    }
    let gives: Vec<String> = assigned.iter().map(License::gives).collect();
    let downgrade = assigned
        .iter()
        .any(|new| removed.iter().any(|old| new.is_below(old)));
    let replaced_gave: Vec<String> = removed.iter().map(License::gives).collect();
    Outcome::resolved(summary)
        .closeout("assigned")
        .var("account", account)
        .var("license", names(&assigned))
        .var("gives", gives.join("; "))
        .var("replaced", names(&removed))
        .var("downgrade", if downgrade { "yes" } else { "" })
        .var("replaced_gave", replaced_gave.join("; "))
}

/// A note for the technician; a failure to write it does not undo what was done.
fn internal_note(ticket: &Ticket, text: &str) {
    if let Err(failure) = psa::add_note(&ticket.id, text, Visibility::Internal) {
        log::warn(
            "could not add the internal note",
            &[("why", &failure.describe())],
        );
    }
}
