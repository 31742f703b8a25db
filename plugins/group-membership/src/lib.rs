//! Adds someone to, or removes them from, a group or distribution list ("add me to the
//! marketing DL", "take me off the Fun Committee list", "put j.patel in
//! SG-Finance-ReadOnly") the way a careful L1 technician does: prove who is asking,
//! find the member and that their account can take the change, work out which groups
//! and whether to add or remove (asking the requester when the ticket does not say),
//! then change each membership through the directory — the tenant's policy asks the
//! member's manager (by default) for every one. Anything it cannot finish goes to a
//! technician saying what was and was not changed. Ownership changes and creating or
//! renaming groups are a technician's.
//!
//! Owns only this crate; everything outside it goes through host calls.

mod request;
mod triage;

use capdesk_sdk::checks;
use capdesk_sdk::idp::User;
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::{
    Effect, Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log,
};

use crate::request::{Action, Kind};
use capdesk_sdk::people::{self, Whom};

/// The change, for notes and escalations.
const ACTION: &str = "a group membership change";

/// How requesters say the change is for themselves.
const FOR_ME: &[&str] = &[
    "add me",
    "put me",
    "take me",
    "remove me",
    "get me",
    "include me",
    "move me",
    "sign me up",
    "subscribe me",
    "unsubscribe me",
    "me added",
    "me removed",
    "me on",
    "me in",
    "me off",
    "i be added",
    "i be put",
    "i be removed",
    "i be taken",
    "i need to be",
    "i want to join",
    "i'd like to join",
    "can i join",
    "let me join",
    "i don't get",
    "i'm not getting",
    "i am not getting",
    "i keep getting",
    "my account",
];

struct GroupMembership;

impl Playbook for GroupMembership {
    fn manifest() -> Manifest {
        Manifest::new(
            "group-membership",
            env!("CARGO_PKG_VERSION"),
            "group-membership",
        )
        .description(
            "Adds a user to, or removes them from, a group or distribution list for a verified \
             requester, each change approved per the tenant's policy",
        )
        .capabilities(&[
            "idp.read",
            "idp.verify",
            "idp.groups",
            "psa.write",
            "chat.send",
            "chat.ask",
        ])
        .template("added", include_str!("../templates/added.j2"))
        .template("removed", include_str!("../templates/removed.j2"))
        .template("changed", include_str!("../templates/changed.j2"))
        .template("unchanged", include_str!("../templates/unchanged.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        Ok(resolve(ticket))
    }
}

export_playbook!(GroupMembership);

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    action: Action,
    group: String,
}

impl Step {
    /// "adding ann@acme.test to Marketing"
    fn doing(&self, member: &str) -> String {
        match self.action {
            Action::Add => format!("adding {member} to {}", self.group),
            Action::Remove => format!("removing {member} from {}", self.group),
        }
    }

    /// "added to Marketing"
    fn done(&self, effect: Effect) -> String {
        let already = if effect == Effect::Unchanged {
            " (it already was)"
        } else {
            ""
        };
        match self.action {
            Action::Add => format!("added to {}{already}", self.group),
            Action::Remove => format!("removed from {}{already}", self.group),
        }
    }

    /// The noun phrase `checks::denied_outcome` puts in its sentence.
    fn noun(&self, member: &str) -> String {
        match self.action {
            Action::Add => format!(
                "a group membership change (adding {member} to {})",
                self.group
            ),
            Action::Remove => format!(
                "a group membership change (removing {member} from {})",
                self.group
            ),
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
    let named: Vec<&str> = request.groups.iter().map(|g| g.group.as_str()).collect();
    if request.owner {
        let which = if named.is_empty() {
            "a group".to_string()
        } else {
            join(named.iter().map(|g| g.to_string()).collect())
        };
        return Outcome::escalated(format!(
            "{requester} asks about ownership of {which}; capdesk changes memberships only, so a \
             technician should change the owners"
        ));
    }
    let overall = request.action;

    // Who the member is.
    let member = match ticket
        .field("member")
        .or_else(|| ticket.field("target"))
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) => m.to_ascii_lowercase(),
        None => match people::whom(ticket, FOR_ME, &request.list_addresses, true) {
            Whom::Requester => requester.clone(),
            Whom::Named(email) => email,
            Whom::Unclear => {
                let what = match (overall, named.is_empty()) {
                    (Some(Action::Add), false) => format!("added to {}", join_str(&named)),
                    (Some(Action::Remove), false) => format!("removed from {}", join_str(&named)),
                    (Some(Action::Add), true) => "added to the group".to_string(),
                    (Some(Action::Remove), true) => "removed from the group".to_string(),
                    (None, _) => "changed in the group".to_string(),
                };
                let question = format!(
                    "Who should be {what}? Reply with their email address, or \"me\" for yourself."
                );
                let answer = match ask(&requester, &question, &[], "who the member is") {
                    Ok(answer) => answer,
                    Err(escalation) => return escalation,
                };
                match people::from_answer(&answer, &requester) {
                    Ok(email) => email,
                    Err(why) => {
                        return Outcome::escalated(format!(
                            "could not tell whose membership to change: {why}; a technician \
                             should confirm with {requester}"
                        ));
                    }
                }
            }
        },
    };

    // The member's account.
    let user = match idp::find_user(&member) {
        Ok(user) => user,
        Err(Failure::NotFound(_)) => {
            return Outcome::escalated(format!(
                "no account {member} in the directory; check the address with {requester}"
            ));
        }
        Err(failure) => return system_failed(&failure, &format!("looking up {member}")),
    };
    let who = if member == requester {
        "you".to_string()
    } else {
        member.clone()
    };

    // Which groups.
    let mut wanted: Vec<(String, Option<Action>)> = request
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.action))
        .collect();
    if wanted.is_empty() {
        let offer_current =
            overall == Some(Action::Remove) && member == requester && !user.groups.is_empty();
        let choices: Vec<String> = if offer_current {
            user.groups.clone()
        } else {
            Vec::new()
        };
        let question = match overall {
            Some(Action::Remove) => {
                format!("Which group or distribution list should {who} be removed from?")
            }
            _ => format!(
                "Which group or distribution list should {who} be added to? Please give its exact \
                 name as it appears in Outlook or Teams (for example \"Marketing\" or \
                 \"SG-Finance-ReadOnly\")."
            ),
        };
        let answer = match ask(&requester, &question, &choices, "which group") {
            Ok(answer) => answer,
            Err(escalation) => return escalation,
        };
        let unsure = ["don't know", "dont know", "not sure", "no idea", "unsure"]
            .iter()
            .any(|p| answer.to_ascii_lowercase().contains(p));
        if unsure {
            return Outcome::escalated(format!(
                "{requester} could not name the group ({answer:?}); a technician should find which \
                 group gives what they need"
            ));
        }
        let group = request::group_in_answer(&answer);
        if request::is_generic(&group) {
            return Outcome::escalated(format!(
                "{requester} answered {answer:?} when asked which group; a technician should \
                 confirm"
            ));
        }
        wanted.push((group, overall));
    }

    // Add or remove.
    if wanted.iter().any(|(_, action)| action.is_none()) {
        let unsure: Vec<String> = wanted
            .iter()
            .filter(|(_, a)| a.is_none())
            .map(|(g, _)| g.clone())
            .collect();
        let question = format!(
            "Should we add {who} to {groups} or remove {them} from it?",
            groups = join(unsure),
            them = if who == "you" { "you" } else { "them" }
        );
        let choices = ["add".to_string(), "remove".to_string()];
        let answer = match ask(&requester, &question, &choices, "whether to add or remove") {
            Ok(answer) => answer,
            Err(escalation) => return escalation,
        };
        let Some(action) = Action::named(&answer) else {
            return Outcome::escalated(format!(
                "{requester} answered {answer:?} to add or remove; a technician should confirm"
            ));
        };
        for (_, a) in wanted.iter_mut().filter(|(_, a)| a.is_none()) {
            *a = Some(action);
        }
    }

    // What changes: only what is not so already.
    let mut plan: Vec<Step> = Vec::new();
    let mut already: Vec<String> = Vec::new();
    let mut not_member: Vec<String> = Vec::new();
    for (group, action) in wanted {
        let action = action.unwrap_or(Action::Add);
        let current = user.groups.iter().find(|g| g.eq_ignore_ascii_case(&group));
        match (action, current) {
            (Action::Add, Some(g)) => already.push(format!("already a member of {g}")),
            (Action::Add, None) => plan.push(Step { action, group }),
            (Action::Remove, Some(g)) => plan.push(Step {
                action,
                group: g.clone(),
            }),
            (Action::Remove, None) => {
                // "the Ireland list" for the directory's "Ireland-DL"
                let close: Vec<String> = user
                    .groups
                    .iter()
                    .filter(|g| resembles(g, &group))
                    .cloned()
                    .collect();
                match close.as_slice() {
                    [] => not_member.push(group),
                    [one] => plan.push(Step {
                        action,
                        group: one.clone(),
                    }),
                    _ => {
                        let question = format!("Which of these should {who} be removed from?");
                        match ask(&requester, &question, &close, "which group to leave") {
                            Ok(answer) => plan.push(Step {
                                action,
                                group: answer,
                            }),
                            Err(escalation) => return escalation,
                        }
                    }
                }
            }
        }
    }
    plan.dedup();
    // Joins before removals: someone moving between groups never loses both.
    plan.sort_by_key(|step| step.action == Action::Remove);
    if plan.is_empty() {
        if !not_member.is_empty() {
            return Outcome::escalated(format!(
                "{requester} asks to remove {member} from {}, but the directory shows no such \
                 membership (member of: {}); they may get it through a nested group or a list \
                 with another name, so a technician should check",
                join(not_member),
                listed(&user.groups)
            ));
        }
        let state = if member == requester {
            format!("you are {}", already.join(", "))
        } else {
            format!("{member} is {}", already.join(", "))
        };
        return unchanged(ticket, &user, &verified_by, &state, request.kind);
    }
    if !user.enabled && plan.iter().any(|s| s.action == Action::Add) {
        return Outcome::escalated(format!(
            "the account {member} is disabled; adding it to a group is a technician's decision"
        ));
    }

    // The changes, each decided by the tenant's policy (by default, the manager approves).
    let mut done = Vec::new();
    for (i, step) in plan.iter().enumerate() {
        let result = match step.action {
            Action::Add => idp::add_group_member(&step.group, &member),
            Action::Remove => idp::remove_group_member(&step.group, &member),
        };
        match result {
            Ok(effect) => {
                log::info(
                    "membership changed",
                    &[("member", &member), ("change", &step.done(effect))],
                );
                done.push(step.done(effect));
            }
            Err(failure) => return stopped(&failure, step, &member, &done, &plan[i + 1..]),
        }
    }
    finish(
        ticket,
        &user,
        &verified_by,
        &plan,
        &done,
        &not_member,
        request.kind,
    )
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

/// True when the directory's group name `actual` is what the requester called `said`
/// ("Ireland" for "Ireland-DL"), ignoring case and punctuation.
fn resembles(actual: &str, said: &str) -> bool {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let (actual, said) = (key(actual), key(said));
    said.len() >= 3 && (actual.contains(&said) || (said.contains(&actual) && actual.len() >= 3))
}

fn join(items: Vec<String>) -> String {
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn join_str(items: &[&str]) -> String {
    join(items.iter().map(|s| s.to_string()).collect())
}

fn listed(groups: &[String]) -> String {
    if groups.is_empty() {
        "none".into()
    } else {
        groups.join(", ")
    }
}

/// The escalation for a directory call that did not go through: what failed, what
/// was already done and what was left undone.
fn stopped(
    failure: &Failure,
    step: &Step,
    member: &str,
    done: &[String],
    left: &[Step],
) -> Outcome {
    if let Some(mut refusal) = checks::denied_outcome(failure, &step.noun(member)) {
        refusal.note = format!("{}{}", refusal.note, progress(member, done, left));
        return refusal;
    }
    if let Failure::NotFound(what) = failure {
        return Outcome::escalated(format!(
            "{} failed: the directory does not know it ({what}); check the group's exact name{}",
            step.doing(member),
            progress(member, done, left)
        ));
    }
    Outcome::escalated(format!(
        "the directory failed while {} ({}){}",
        step.doing(member),
        failure.describe(),
        progress(member, done, left)
    ))
}

/// The connected system failed before any change.
fn system_failed(failure: &Failure, doing: &str) -> Outcome {
    Outcome::escalated(format!(
        "the directory failed while {doing} ({}); nothing was changed",
        failure.describe()
    ))
}

/// "; already done: added to Marketing; not done: removing ann@acme.test from Sales".
fn progress(member: &str, done: &[String], left: &[Step]) -> String {
    let mut s = if done.is_empty() {
        "; nothing was changed".to_string()
    } else {
        format!("; already done: {member} {}", done.join(", "))
    };
    if !left.is_empty() {
        let rest: Vec<String> = left.iter().map(|step| step.doing(member)).collect();
        s.push_str(&format!("; not done: {}", rest.join(", ")));
    }
    if !done.is_empty() {
        s.push_str("; a technician should finish or undo the change");
    }
    s
}

/// Nothing needed to change: say so on the ticket and to the requester.
fn unchanged(ticket: &Ticket, user: &User, verified_by: &str, state: &str, kind: Kind) -> Outcome {
    internal_note(
        ticket,
        &format!(
            "Requester {} {verified_by}. Member {} found ({}); groups: {}. {state}; nothing was \
             changed.",
            ticket.requester.email,
            user.email,
            if user.enabled { "enabled" } else { "disabled" },
            listed(&user.groups),
        ),
    );
    Outcome::resolved(format!("{state}; nothing changed"))
        .closeout("unchanged")
        .var("account", &user.email)
        .var("state", state)
        .var("kind", kind.name())
}

/// Every change went through: note it, tell the member when someone else asked, and
/// close out with what the membership gives and when.
fn finish(
    ticket: &Ticket,
    user: &User,
    verified_by: &str,
    plan: &[Step],
    done: &[String],
    not_member: &[String],
    kind: Kind,
) -> Outcome {
    let member = &user.email;
    let groups_of = |action: Action| -> Vec<String> {
        plan.iter()
            .filter(|s| s.action == action)
            .map(|s| s.group.clone())
            .collect()
    };
    let (added, removed) = (groups_of(Action::Add), groups_of(Action::Remove));
    let mut note = format!(
        "Requester {} {verified_by}. Member {member} found, {}; groups before: {}. Done: {member} \
         {} — each change approved per policy (the approver is named on this ticket).",
        ticket.requester.email,
        if user.enabled { "enabled" } else { "disabled" },
        listed(&user.groups),
        done.join(", "),
    );
    if !not_member.is_empty() {
        note.push_str(&format!(
            " Not a member of {}, so nothing was removed there.",
            join(not_member.to_vec())
        ));
    }
    internal_note(ticket, &note);

    let requester = ticket.requester.email.trim();
    if !member.eq_ignore_ascii_case(requester) {
        let mut what = Vec::new();
        if !added.is_empty() {
            what.push(format!("added to {}", join(added.clone())));
        }
        if !removed.is_empty() {
            what.push(format!("removed from {}", join(removed.clone())));
        }
        let message = format!(
            "You were {} (requested by {requester} in ticket {}, approved per policy). Allow up \
             to an hour for mail to follow, and sign out and in again for access to change.",
            what.join(" and "),
            ticket.id
        );
        if let Err(failure) = chat::send(member, &message) {
            log::warn(
                "could not tell the member",
                &[("to", member), ("why", &failure.describe())],
            );
        }
    }

    let summary = format!("{member} {}", done.join(", "));
    let outcome = Outcome::resolved(summary)
        .var("account", member)
        .var("kind", kind.name());
    match (added.is_empty(), removed.is_empty()) {
        (false, true) => outcome.closeout("added").var("groups", join(added)),
        (true, false) => outcome.closeout("removed").var("groups", join(removed)),
        _ => outcome
            .closeout("changed")
            .var("added", join(added))
            .var("removed", join(removed)),
    }
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
