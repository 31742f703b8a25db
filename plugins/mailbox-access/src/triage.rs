//! How sure this plugin is that a ticket asks for mailbox access: the words people use
//! for shared and colleagues' mailboxes and their rights, against the look-alikes
//! (quota, creating a mailbox, signatures, forwarding, calendars, distribution lists,
//! access reports, whole offboarding lists). Pure: no host calls.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::{Signals, normalize};

use crate::words::{addresses, own_words, says_send_as};

/// Mailbox permissions named outright.
const EXPLICIT: &[&str] = &[
    "shared mailbox",
    "shared inbox",
    "shared mailboxes",
    "mailbox access",
    "access to the mailbox",
    "access to mailbox",
    "access to his mailbox",
    "access to her mailbox",
    "access to my mailbox",
    "access to their mailbox",
    "mailbox permission",
    "mailbox permissions",
    "full access",
    "fullaccess",
    "full-access",
    "sendas",
    "send-as",
    "send emails as",
    "send email as",
    "send mail as",
    "send on behalf",
    "send-on-behalf",
    "on behalf of",
    "behalf",
    "delegate access",
];

/// A mailbox by its usual names.
const MAILBOX: &[&str] = &["mailbox", "inbox", "mailboxes", "inboxes"];

/// Asking to get in, see, send from, or stop having access.
const ACCESS: &[&str] = &[
    "access",
    "permission",
    "permissions",
    "rights",
    "add me to",
    "added to",
    "add it to my outlook",
    "added to my outlook",
    "let me into",
    "get into",
    "see",
    "monitor",
    "manage",
    "keep an eye on",
    "keep on top of",
    "send from",
    "send emails from",
    "send email from",
    "sending from",
    "delegate",
];

/// Creating or configuring mailboxes, reports, mail flow, quota, licences, groups,
/// offboarding, security: not a mailbox access change.
const NOT_ACCESS: &[&str] = &[
    "mailbox is full",
    "full mailbox",
    "almost full",
    "is full",
    "quota",
    "make it bigger",
    "create a new shared mailbox",
    "new shared mailbox",
    "create a shared mailbox",
    "set up a new shared mailbox",
    "signature",
    "out of office",
    "automatic reply",
    "forward",
    "forwarding",
    "junk",
    "spam",
    "who has access",
    "list of everyone",
    "not updating",
    "hasn't updated",
    "isn't updating",
    "do have access",
    "already have access",
    "deleted",
    "recover",
    "recovered",
    "voicemail",
    "post box",
    "parcel",
    "distribution list",
    "distribution lists",
    "distribution group",
    "mailing list",
    "dl",
    "licence",
    "licences",
    "license",
    "licenses",
    "calendar",
    "disable his account",
    "disable her account",
    "disable the account",
    "remove him from all groups",
    "remove her from all groups",
    "collect his laptop",
    "collect her laptop",
    "phishing",
    "suspicious",
];

/// A colleague's mailbox by possession: `karen's emails`, `dave's email`, `richard's
/// inbox`.
fn says_someones_mailbox(normalized: &str) -> bool {
    let words: Vec<&str> = normalized.split_whitespace().collect();
    words.windows(2).any(|w| {
        (w[0].ends_with("'s") || w[0].ends_with("s'"))
            && w[0].len() > 2
            && matches!(
                w[1],
                "email" | "emails" | "e-mail" | "e-mails" | "mailbox" | "inbox" | "mail"
            )
    })
}

/// The confidence that `ticket` asks for mailbox access, at most 0.95.
pub fn score(ticket: &Ticket) -> f32 {
    let s = Signals::new(ticket);
    let text = format!("{}\n{}", ticket.subject, ticket.body);
    let requester = ticket.requester.email.to_ascii_lowercase();
    // Evidence the phrase lists cannot express, combined the way Signals combines.
    let extra = [
        (says_send_as(&s), 0.85),
        (says_someones_mailbox(&normalize(&text)), 0.45),
        (
            addresses(&own_words(&text), "requester.domain")
                .iter()
                .any(|(a, _)| *a != requester),
            0.3,
        ),
    ];
    let doubt = s.clone().any(NOT_ACCESS, 0.9).score();
    let phrases = s
        .any(EXPLICIT, 0.85)
        .any(MAILBOX, 0.45)
        .any(ACCESS, 0.45)
        .score();
    let evidence = extra
        .iter()
        .filter(|(said, _)| *said)
        .fold(phrases, |e, (_, weight)| 1.0 - (1.0 - e) * (1.0 - weight));
    (evidence * (1.0 - doubt)).min(0.95)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capdesk_sdk::Person;

    fn score_of(subject: &str, body: &str) -> f32 {
        score(&Ticket {
            id: "T-1".into(),
            subject: subject.into(),
            body: body.into(),
            requester: Person {
                email: "ann@acme.test".into(),
                name: String::new(),
            },
            channel: "email".into(),
            requester_verified: false,
            fields: Vec::new(),
        })
    }

    #[test]
    fn real_phrasings_are_claimed() {
        for (subject, body) in [
            ("", "need access to the finance shared mailbox"),
            (
                "finance mailbox",
                "add me to the finance shared mailbox please",
            ),
            ("", "Could you give me access to Richard's mailbox?"),
            (
                "newsletter",
                "i need to send emails as marketing@ for the newsletter",
            ),
            (
                "Send as permission",
                "I need to be able to send as info@company",
            ),
            ("", "Please remove my access to the complaints mailbox"),
            ("help@", "can I get the help@ mailbox added to my account?"),
            ("Dave's email", "Let me into Dave's email pls he's off sick"),
            (
                "",
                "When I send emails for my boss they should say 'on behalf of' him",
            ),
            ("", "could i have access to the jobs@ inbox?"),
            (
                "",
                "Can I get access to accounts@brightwater.example? I'm covering for Lisa",
            ),
            (
                "",
                "My boss wants me to manage his inbox while he's travelling",
            ),
        ] {
            let s = score_of(subject, body);
            assert!((0.5..=0.95).contains(&s), "{s} for {subject:?} {body:?}");
        }
    }

    #[test]
    fn look_alikes_stay_low() {
        for (subject, body) in [
            ("Your mailbox is almost full", "Can you make it bigger?"),
            (
                "Mailbox quota increase",
                "Please increase the quota for accounts@",
            ),
            (
                "New shared mailbox",
                "Please create a new shared mailbox called projects-north@",
            ),
            (
                "",
                "For our audit, a list of everyone who has access to the CEO's mailbox",
            ),
            ("Post room", "There's a parcel notice in our mailbox"),
            (
                "Signature",
                "When I send from the sales@ mailbox it uses my personal signature",
            ),
            (
                "calendar",
                "can you give me access to the meeting room calendar?",
            ),
            (
                "Group meeting room",
                "Can you book the big group meeting room?",
            ),
            ("", "Please add me to the sales@ distribution list"),
            (
                "Finance folder",
                "I need access to the Finance folder on the S: drive",
            ),
            (
                "licence plate",
                "please update my license plate for the car park",
            ),
            ("Windows activation", "Windows says it isn't activated"),
            ("", "I'm locked out of my account"),
            ("", "Can you send as soon as possible the invoice?"),
            (
                "Leaver",
                "Please disable his account, remove licences, give his manager access to his \
                 mailbox and remove him from all groups",
            ),
        ] {
            let s = score_of(subject, body);
            assert!(s < 0.5, "{s} for {subject:?} {body:?}");
        }
    }
}
