//! How sure this playbook is that a ticket asks to add someone to, or remove them
//! from, a group or distribution list: read from the words users write ("add me to the
//! marketing DL", "take me off the Fun Committee email list", "put me in the VPN-Users
//! group") and the intake's fields. Groups that are not directory groups (group
//! meetings, chats, photos, policies, Outlook contact groups, WhatsApp), creating or
//! renaming lists, questions about who is on a list, delivery problems, shared
//! mailboxes and whole-account on- and offboarding stay low. Pure: no host calls.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::Signals;

/// The highest score this playbook gives: a test guest with a structured field must be
/// able to outbid it.
const CEILING: f32 = 0.95;

/// Words that name a directory group or list.
const GROUP_WORDS: &[&str] = &[
    "group",
    "groups",
    "dl",
    "dls",
    "distribution list",
    "distribution lists",
    "distribution group",
    "mailing list",
    "email list",
    "e-mail list",
    "email group",
    "security group",
    "m365 group",
    "microsoft 365 group",
    "office 365 group",
    "teams team",
    "team in teams",
];

/// Lists in everyday words ("the Leeds office list"): weaker than `GROUP_WORDS`.
const LIST_WORDS: &[&str] = &["list", "lists", "mailing", "emails sent to"];

/// Joining or leaving.
const MEMBERSHIP_VERBS: &[&str] = &[
    "add me",
    "add him",
    "add her",
    "add them",
    "add user",
    "added",
    "add",
    "adding",
    "put me",
    "put him",
    "put her",
    "put",
    "put in",
    "put on",
    "be in",
    "be on",
    "join",
    "remove me",
    "remove him",
    "remove her",
    "remove",
    "removed",
    "take me off",
    "take him off",
    "take her off",
    "take off",
    "get me off",
    "taken off",
    "unsubscribe",
    "member of",
    "members of",
    "membership",
    "memberships",
    "owner of",
    "include me",
    "sign me up",
];

/// Strong on their own: only group membership reads like this.
const MEMBERSHIP_PHRASES: &[&str] = &[
    "group membership",
    "group memberships",
    "add me to the group",
    "add me to group",
    "add me to the dl",
    "remove me from the dl",
    "remove me from the group",
];

/// Things called a group or list that are not directory groups, or requests that are
/// not membership changes.
const NOT_MEMBERSHIP: &[&str] = &[
    "group meeting",
    "group chat",
    "group chats",
    "group photo",
    "group policy",
    "group policies",
    "gpo",
    "contact group",
    "whatsapp",
    "group calendar",
    "group call",
    "group booking",
    "meeting room",
    "lunch",
    "rename",
    "renamed",
    "create a new",
    "create a",
    "create new",
    "new distribution list",
    "new dl",
    "set up a new",
    "who is on",
    "who's on",
    "who is in",
    "who's in",
    "list of members",
    "bounce",
    "bounces",
    "bouncing",
    "not allowed to send",
    "mailbox full",
    "out of office",
    "channel",
    "price list",
    "to-do list",
    "todo list",
    "waiting list",
    "playlist",
    "phishing",
    "suspicious",
    "scam",
];

/// Whole-account on- and offboarding lists groups among many steps.
const WHOLE_ACCOUNT: &[&str] = &[
    "set up her account",
    "set up his account",
    "set up their account",
    "set up the account",
    "disable his account",
    "disable her account",
    "disable their account",
    "disable the account",
    "laptop ready",
    "collect his laptop",
    "collect her laptop",
    "onboarding",
    "offboarding",
    "starter checklist",
    "leaver checklist",
    "remove him from all groups",
    "remove her from all groups",
];

/// A shared mailbox is another playbook's, unless the ticket says it is a list.
const MAILBOX: &[&str] = &["shared mailbox", "mailbox", "send as", "full access"];
const LIST_NOT_MAILBOX: &[&str] = &["distribution group", "distribution list", "dl"];

fn noisy_or(evidence: f32, weight: f32) -> f32 {
    1.0 - (1.0 - evidence) * (1.0 - weight)
}

fn any(text: &Signals, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| text.contains(p))
}

/// The confidence, 0..=0.95.
pub fn score(ticket: &Ticket) -> f32 {
    let text = Signals::new(ticket);
    let group = any(&text, GROUP_WORDS);
    let list = any(&text, LIST_WORDS);
    let verb = any(&text, MEMBERSHIP_VERBS);

    let mut evidence = 0.0;
    if group {
        evidence = noisy_or(evidence, 0.35);
        if verb {
            evidence = noisy_or(evidence, 0.8);
        }
    }
    if list && verb {
        evidence = noisy_or(evidence, 0.6);
    }
    if any(&text, MEMBERSHIP_PHRASES) {
        evidence = noisy_or(evidence, 0.8);
    }
    if ticket.field("group").is_some() {
        evidence = noisy_or(evidence, 0.9);
    }
    if ticket
        .field("request_type")
        .is_some_and(|t| Signals::from_text(t).contains("access request"))
    {
        evidence = noisy_or(evidence, 0.2);
    }

    let mut doubt = 0.0;
    if any(&text, NOT_MEMBERSHIP) {
        doubt = noisy_or(doubt, 0.85);
    }
    if any(&text, WHOLE_ACCOUNT) {
        doubt = noisy_or(doubt, 0.7);
    }
    if any(&text, MAILBOX) && !any(&text, LIST_NOT_MAILBOX) {
        doubt = noisy_or(doubt, 0.6);
    }
    (evidence * (1.0 - doubt)).min(CEILING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capdesk_sdk::Person;

    fn ticket(subject: &str, body: &str) -> Ticket {
        Ticket {
            id: "T-1".into(),
            subject: subject.into(),
            body: body.into(),
            requester: Person {
                email: "ann@acme.test".into(),
                name: String::new(),
            },
            channel: "chat".into(),
            requester_verified: true,
            fields: Vec::new(),
        }
    }

    #[test]
    fn real_phrasings_are_claimed() {
        for (subject, body) in [
            ("DL", "add me to the marketing DL"),
            ("", "remove me from the Ireland distribution list please"),
            (
                "fun committee",
                "get me off the Fun Committee email list please",
            ),
            (
                "VPN",
                "I need to be added to the VPN-Users group so I can work from home",
            ),
            ("ADD TO GROUP", "PLEASE ADD ME TO THE ESTIMATING GROUP"),
            (
                "Security group",
                "Add j.patel to the SG-Finance-ReadOnly security group.",
            ),
            (
                "Sales emails",
                "Could you add me to the sales team email list please?",
            ),
        ] {
            let s = score(&ticket(subject, body));
            assert!(s >= 0.5, "{subject:?} {body:?}: {s}");
            assert!(s <= CEILING);
        }
    }

    #[test]
    fn look_alikes_stay_low() {
        for (subject, body) in [
            (
                "Group meeting room",
                "Can you book the big group meeting room for Thursday?",
            ),
            ("Team lunch", "add me to the team lunch group for Friday"),
            ("Group policy", "The wallpaper group policy isn't applying"),
            ("Mailbox full", "My mailbox is full, please add space"),
            (
                "Who's on the sales DL?",
                "Can you tell me who's on the sales DL?",
            ),
            (
                "New DL",
                "Please create a new distribution list called events-team@",
            ),
            ("Shared mailbox", "add me to the finance shared mailbox"),
            ("Reset my laptop", "please reset my laptop"),
            (
                "Phishing",
                "suspicious email to the all staff group asking for passwords",
            ),
            ("Printer locked", "the printer is locked"),
        ] {
            let s = score(&ticket(subject, body));
            assert!(s < 0.5, "{subject:?} {body:?}: {s}");
        }
    }

    #[test]
    fn a_group_field_is_strong_but_capped() {
        let mut t = ticket("access", "");
        t.fields.push(("group".into(), "Marketing".into()));
        let s = score(&t);
        assert!((0.85..=CEILING).contains(&s), "{s}");
    }
}
