//! Reading a mailbox request from what the requester wrote: add or remove, for whom,
//! which mailbox, which rights. Everything here is pure and deterministic (the same
//! ticket reads the same on every replay); when the words do not settle a question, the
//! caller asks the requester instead of guessing.

use capdesk_sdk::Ticket;
use capdesk_sdk::idp::{MailboxRight, User};
use capdesk_sdk::triage::Signals;

/// The rights, in the order notes, closeouts and questions list them.
pub const RIGHTS: [MailboxRight; 3] = [
    MailboxRight::FullAccess,
    MailboxRight::SendAs,
    MailboxRight::SendOnBehalf,
];

/// Add or remove access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Grant,
    Remove,
}

/// Whom the words are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// The requester themself.
    Requester,
    /// Someone named or described in the words: ask who.
    SomeoneElse,
    /// Several people: more than one change.
    Several,
    /// Nothing says: ask.
    Unclear,
}

/// A right as choices and fields spell it.
pub fn right_name(right: MailboxRight) -> &'static str {
    match right {
        MailboxRight::FullAccess => "full-access",
        MailboxRight::SendAs => "send-as",
        MailboxRight::SendOnBehalf => "send-on-behalf",
    }
}

/// A right in a sentence.
pub fn right_words(right: MailboxRight) -> &'static str {
    match right {
        MailboxRight::FullAccess => "full access",
        MailboxRight::SendAs => "send as",
        MailboxRight::SendOnBehalf => "send on behalf",
    }
}

/// `full access and send as`.
pub fn list_rights(rights: &[MailboxRight]) -> String {
    let words: Vec<&str> = rights.iter().map(|r| right_words(*r)).collect();
    match words.as_slice() {
        [] => "no rights".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A right as a field or an answer writes it (`full-access`, `Send As`, `SendOnBehalf`).
pub fn parse_right(text: &str) -> Option<MailboxRight> {
    let squashed: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match squashed.as_str() {
        "fullaccess" | "full" | "read" | "readonly" | "open" => Some(MailboxRight::FullAccess),
        "sendas" => Some(MailboxRight::SendAs),
        "sendonbehalf" | "sendonbehalfof" | "onbehalf" | "onbehalfof" | "behalf" => {
            Some(MailboxRight::SendOnBehalf)
        }
        _ => None,
    }
}

/// The rights a field lists (`full-access, send-as`); `None` when a part is not a right.
pub fn parse_rights(text: &str) -> Option<Vec<MailboxRight>> {
    let mut rights = Vec::new();
    for part in text
        .split([',', ';', '+', '&'])
        .flat_map(|p| p.split(" and "))
    {
        if part.trim().is_empty() {
            continue;
        }
        let right = parse_right(part)?;
        if !rights.contains(&right) {
            rights.push(right);
        }
    }
    (!rights.is_empty()).then_some(rights)
}

/// `send as` as a right, not "send as soon as possible".
pub fn says_send_as(s: &Signals) -> bool {
    s.contains("send as")
        && [
            "send as soon",
            "send as well",
            "send as quickly",
            "send as many",
        ]
        .iter()
        .all(|p| !s.contains(p))
}

/// The rights the words ask for, in [`RIGHTS`] order.
pub fn rights_in_text(s: &Signals) -> Vec<MailboxRight> {
    let any = |phrases: &[&str]| phrases.iter().any(|p| s.contains(p));
    let full = any(&[
        "full access",
        "fullaccess",
        "full-access",
        "read",
        "read only",
        "read-only",
        "open",
        "see",
        "view",
        "monitor",
        "keep an eye on",
        "keep on top of",
        "let me into",
        "get into",
        "look at",
        "go through",
    ]);
    let send_as = says_send_as(s)
        || any(&[
            "sendas",
            "send-as",
            "send emails as",
            "send email as",
            "send mail as",
            "send from",
            "send emails from",
            "send email from",
            "send mail from",
            "sending from",
        ]);
    let behalf = any(&["on behalf", "behalf", "send-on-behalf", "sendonbehalf"]);
    RIGHTS
        .into_iter()
        .zip([full, send_as, behalf])
        .filter_map(|(right, said)| said.then_some(right))
        .collect()
}

/// Add or remove, from the `action` field or the words; `None` when the words say both.
pub fn action_of(ticket: &Ticket, s: &Signals) -> Option<Action> {
    if let Some(action) = ticket.field("action") {
        match action.trim().to_ascii_lowercase().as_str() {
            "remove" | "revoke" | "delete" | "take away" => return Some(Action::Remove),
            "add" | "grant" | "give" => return Some(Action::Grant),
            _ => {}
        }
    }
    let remove = [
        "remove",
        "revoke",
        "take away",
        "take off",
        "no longer need",
        "no longer needs",
        "don't need",
        "doesn't need",
        "do not need",
        "does not need",
        "removal",
        "withdraw",
    ]
    .iter()
    .any(|p| s.contains(p));
    let grant = [
        "give",
        "grant",
        "instead",
        "and add",
        "transfer",
        "hand over",
    ]
    .iter()
    .any(|p| s.contains(p));
    match (remove, grant) {
        (true, true) => None,
        (true, false) => Some(Action::Remove),
        (false, _) => Some(Action::Grant),
    }
}

/// Words after `give`/`grant`/`add` that are not a person's name.
const NOT_A_NAME: &[&str] = &[
    "me",
    "us",
    "my",
    "our",
    "the",
    "a",
    "an",
    "it",
    "them",
    "this",
    "that",
    "access",
    "full",
    "send",
    "permission",
    "permissions",
    "rights",
    "right",
    "read",
    "mailbox",
    "inbox",
    "on",
    "to",
    "for",
    "from",
    "of",
    "all",
    "any",
    "some",
    "back",
    "away",
    "up",
    "in",
    "into",
    "please",
    "pls",
    "plz",
    "new",
    "her",
    "his",
    "their",
];

/// Whom the request is for, from the (normalized) words. Possessives count only for a
/// removal (`remove jake's access`): when giving, `richard's` names a mailbox.
pub fn member_in_text(s: &Signals, normalized: &str, action: Action) -> Member {
    let several = [
        "of us",
        "for us",
        "me and",
        "and me",
        "both of",
        "all of",
        "three of",
        "two of",
        "the team",
        "everyone in",
        "each of",
    ];
    if several.iter().any(|p| s.contains(p)) {
        return Member::Several;
    }
    let words: Vec<&str> = normalized.split_whitespace().collect();
    // A verb followed by a name: `grant sam access`, `give maria costa send on behalf`.
    let named = words.windows(2).any(|w| {
        matches!(w[0], "give" | "grant" | "add" | "let" | "allow" | "set")
            && !NOT_A_NAME.contains(&w[1])
            && w[1]
                .chars()
                .all(|c| c.is_alphabetic() || c == '.' || c == '-')
    });
    // A person's access, when taking it away: `remove jake miller's access`, `take away
    // lucy's send as`, `the auditors' full access`.
    let possessed = action == Action::Remove
        && words.windows(2).any(|w| {
            (w[0].ends_with("'s") || w[0].ends_with("s'"))
                && matches!(
                    w[1],
                    "access" | "send" | "full" | "permission" | "permissions" | "rights"
                )
        });
    let described = [
        "new receptionist",
        "new starter",
        "new joiner",
        "new hire",
        "staff member",
        "colleague",
        "his manager",
        "her manager",
        "the user",
        "users",
        "employee",
    ]
    .iter()
    .any(|p| s.contains(p));
    if named || possessed || described {
        return Member::SomeoneElse;
    }
    // Also a subject-less `need access to ...`: the requester speaking for themself.
    let for_self = [
        "i",
        "me",
        "i'm",
        "im",
        "i've",
        "ive",
        "i'd",
        "myself",
        "my access",
        "need access",
        "need to",
        "need permission",
        "need full",
        "need send",
    ]
    .iter()
    .any(|p| s.contains(p));
    if for_self {
        Member::Requester
    } else {
        Member::Unclear
    }
}

/// The requester's own words: without quoted lines (`> ...`), forwarded or replied
/// mail headers (`From: ...`) and `<address>` spans, whose addresses are not what the
/// request is about.
pub fn own_words(text: &str) -> String {
    const HEADERS: &[&str] = &[
        "from:",
        "to:",
        "cc:",
        "sent:",
        "date:",
        "subject:",
        "reply-to:",
    ];
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start().to_ascii_lowercase();
        if trimmed.starts_with('>') || HEADERS.iter().any(|h| trimmed.starts_with(h)) {
            continue;
        }
        let mut depth = 0usize;
        for c in line.chars() {
            match c {
                '<' => depth += 1,
                '>' if depth > 0 => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.push('\n');
    }
    out
}

/// Email addresses in `text`, lower-cased, in order and without repeats, each with
/// whether it was completed: a bare `reception@` or an `info@company` without a dot gets
/// the requester's `domain`.
pub fn addresses(text: &str, domain: &str) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = Vec::new();
    let tokens = text.split(|c: char| !(c.is_alphanumeric() || "@.-_+'".contains(c)));
    for token in tokens {
        let token = token.trim_matches(['.', '\'', '-']);
        let Some((local, host)) = token.split_once('@') else {
            continue;
        };
        let local_ok = !local.is_empty()
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c));
        if !local_ok || host.contains('@') {
            continue;
        }
        let (address, completed) = if host.contains('.') {
            let tld = host.rsplit('.').next().unwrap_or("");
            let host_ok = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !host_ok || tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
                continue; // `image001.png@01DA1234.56789AB0` and the like
            }
            (format!("{local}@{host}"), false)
        } else if !domain.is_empty() {
            (format!("{local}@{domain}"), true)
        } else {
            continue;
        };
        let address = address.to_ascii_lowercase();
        if !found.iter().any(|(a, _)| *a == address) {
            found.push((address, completed));
        }
    }
    found
}

/// A mailbox the (normalized) words name without an address: `the finance shared
/// mailbox`, `the 'Tenders' mailbox`, `the HR shared inbox`; not `Richard's mailbox`.
pub fn named_mailbox(normalized: &str) -> Option<String> {
    const QUALIFIERS: &[&str] = &[
        "shared",
        "team",
        "group",
        "generic",
        "main",
        "general",
        "common",
        "department",
        "dept",
        "functional",
    ];
    const NOT_NAMES: &[&str] = &[
        "the", "a", "an", "my", "your", "his", "her", "their", "our", "its", "this", "that", "to",
        "of", "for", "on", "in", "into", "me", "us", "new", "old", "own", "personal", "outlook",
        "exchange", "office", "email", "e-mail", "access", "full", "send", "as", "and", "or",
        "with", "from", "same", "whole", "which", "what", "whose", "any", "every", "each",
        "another", "other", "user", "users",
    ];
    let words: Vec<&str> = normalized.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        if !matches!(*word, "mailbox" | "inbox") {
            continue;
        }
        let mut j = i;
        while j > 0 && QUALIFIERS.contains(&words[j - 1]) {
            j -= 1;
        }
        let Some(before) = j.checked_sub(1).map(|k| words[k]) else {
            continue;
        };
        let quoted = before.starts_with('\'');
        let core = before.trim_start_matches('\'');
        if core.ends_with("'s") || (core.ends_with('\'') && !quoted) {
            continue; // someone's mailbox: no address to guess
        }
        let name = core.trim_end_matches('\'');
        let plausible = name.len() >= 2
            && !NOT_NAMES.contains(&name)
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        if plausible {
            return Some(name.to_string());
        }
    }
    None
}

/// The first address in an answer or field (a bare `m.ahmed@` is completed with the
/// requester's `domain`). A name without `@` is not an address: people are not guessed.
pub fn address_in(text: &str, domain: &str) -> Option<String> {
    addresses(text, domain)
        .into_iter()
        .next()
        .map(|(address, _)| address)
}

/// A mailbox field that names the mailbox without an address (`Finance`): the address
/// it would have in the requester's `domain`.
pub fn mailbox_by_name(name: &str, domain: &str) -> Option<String> {
    let name = name
        .trim()
        .trim_matches(['.', '\'', '"'])
        .to_ascii_lowercase();
    let plausible = !name.is_empty()
        && !domain.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    plausible.then(|| format!("{name}@{domain}"))
}

/// The rights `user` holds on `mailbox`, from the directory's `mailbox:right` entries;
/// `None` when an entry names the mailbox without a right this plugin can read.
pub fn rights_held(user: &User, mailbox: &str) -> Option<Vec<MailboxRight>> {
    let mut held = Vec::new();
    for entry in &user.mailboxes {
        let entry = entry.trim().to_ascii_lowercase();
        match entry.rsplit_once(':') {
            Some((m, right)) if m == mailbox => held.push(parse_right(right)?),
            None if entry == mailbox => return None,
            _ => {}
        }
    }
    Some(RIGHTS.into_iter().filter(|r| held.contains(r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capdesk_sdk::triage::normalize;

    fn signals(text: &str) -> Signals {
        Signals::from_text(text)
    }

    #[test]
    fn addresses_are_found_completed_and_filtered() {
        let text = "Give full access on mailbox projects@ to d.okafor@acme.test, and 'help@'. \
                    [cid:image001.png@01DA1234.56789AB0] info@company";
        let found: Vec<String> = addresses(text, "acme.test")
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            found,
            [
                "projects@acme.test",
                "d.okafor@acme.test",
                "help@acme.test",
                "info@acme.test"
            ]
        );
        assert_eq!(
            addresses("ANN@Acme.Test.", "x.test"),
            [("ann@acme.test".to_string(), false)]
        );
        assert_eq!(
            address_in("it's m.ahmed@ I think", "acme.test").as_deref(),
            Some("m.ahmed@acme.test")
        );
        assert_eq!(address_in("Sam", "acme.test"), None);
        assert_eq!(
            mailbox_by_name("Finance", "acme.test").as_deref(),
            Some("finance@acme.test")
        );
    }

    #[test]
    fn quoted_mail_and_headers_are_not_the_request() {
        let text = "Please add me to whoever sends these.\n> From: Reps <hs@example.org>\nFrom: x@y.example\nthanks";
        assert!(addresses(&own_words(text), "acme.test").is_empty());
    }

    #[test]
    fn named_mailboxes_are_read_but_possessives_are_not() {
        let named = |t: &str| named_mailbox(&normalize(t));
        assert_eq!(
            named("add me to the finance shared mailbox").as_deref(),
            Some("finance")
        );
        assert_eq!(
            named("FullAccess on the 'Tenders' mailbox").as_deref(),
            Some("tenders")
        );
        assert_eq!(
            named("remove Jake's access to the HR shared inbox").as_deref(),
            Some("hr")
        );
        assert_eq!(named("access to Richard's mailbox"), None);
        assert_eq!(named("manage his inbox"), None);
    }

    #[test]
    fn rights_are_read_from_words_fields_and_answers() {
        use MailboxRight::*;
        assert_eq!(
            rights_in_text(&signals("FullAccess and SendAs please")),
            [FullAccess, SendAs]
        );
        assert_eq!(
            rights_in_text(&signals("need to send emails from accounts@")),
            [SendAs]
        );
        assert_eq!(
            rights_in_text(&signals("they should say 'on behalf of' him")),
            [SendOnBehalf]
        );
        assert!(rights_in_text(&signals("need access to the finance mailbox")).is_empty());
        assert!(rights_in_text(&signals("send as soon as you can")).is_empty());
        assert_eq!(
            parse_rights("full-access, Send As"),
            Some(vec![FullAccess, SendAs])
        );
        assert_eq!(parse_rights("everything"), None);
        assert_eq!(parse_right("send-on-behalf"), Some(SendOnBehalf));
    }

    #[test]
    fn the_member_is_read_from_the_words() {
        let member = |t: &str, a| member_in_text(&signals(t), &normalize(t), a);
        assert_eq!(
            member("I need access to the finance mailbox", Action::Grant),
            Member::Requester
        );
        assert_eq!(
            member(
                "pls grant Sam access to the Projects mailbox",
                Action::Grant
            ),
            Member::SomeoneElse
        );
        assert_eq!(
            member("Please remove Jake Miller's access", Action::Remove),
            Member::SomeoneElse
        );
        assert_eq!(
            member("give me Richard's access", Action::Grant),
            Member::Requester
        );
        assert_eq!(member("FOR ME AND KEV", Action::Grant), Member::Several);
        assert_eq!(
            member("Mailbox permission for finance@", Action::Grant),
            Member::Unclear
        );
        assert_eq!(
            member("need access to the finance shared mailbox", Action::Grant),
            Member::Requester
        );
    }

    #[test]
    fn add_or_remove_is_read_and_both_is_a_question() {
        let ticket = |body: &str| Ticket {
            id: "T-1".into(),
            subject: String::new(),
            body: body.into(),
            requester: capdesk_sdk::Person {
                email: "a@b.test".into(),
                name: String::new(),
            },
            channel: "chat".into(),
            requester_verified: true,
            fields: Vec::new(),
        };
        let action = |body: &str| {
            let t = ticket(body);
            action_of(&t, &Signals::new(&t))
        };
        assert_eq!(action("add me to the finance mailbox"), Some(Action::Grant));
        assert_eq!(
            action("please remove my access, I don't need it"),
            Some(Action::Remove)
        );
        assert_eq!(action("remove Dee and give me access instead"), None);
    }
}
