//! What a group ticket asks for, read the way an L1 technician reads it: the `group`
//! and `action` fields first, then the words. Which groups, named clearly (quoted,
//! followed by DL/group/distribution list, or written like a directory name such as
//! `SG-Finance-RO`); whether each is an add or a removal (the request verb before it:
//! "add me", "take me off"); whether the ticket speaks of a distribution list or of a
//! group that gives access. A vague "the group" names nothing: the playbook asks. Pure.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::Signals;

/// Join or leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
}

impl Action {
    /// A field value or an answer.
    pub fn named(text: &str) -> Option<Action> {
        match text.trim().to_ascii_lowercase().as_str() {
            "add" | "join" | "added" | "grant" => Some(Action::Add),
            "remove" | "leave" | "removed" | "revoke" => Some(Action::Remove),
            _ => None,
        }
    }
}

/// What the ticket says the groups are, for the closeout's instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DistributionList,
    SecurityGroup,
    Unknown,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::DistributionList => "distribution list",
            Kind::SecurityGroup => "security group",
            Kind::Unknown => "group",
        }
    }
}

/// One group the ticket names, with the action its words give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub group: String,
    /// `None` when no request verb comes before it and the ticket's verbs disagree.
    pub action: Option<Action>,
}

/// What the ticket asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The groups it names, in order, each once.
    pub groups: Vec<Named>,
    /// The action for the whole ticket: the `action` field, or the one kind of request
    /// verb its words use (`None` when they use both, or none).
    pub action: Option<Action>,
    /// The ticket speaks of a group or list without naming one ("the group", "some DL").
    pub vague: bool,
    pub kind: Kind,
    /// Ownership rather than membership ("make me an owner of ...").
    pub owner: bool,
    /// Addresses in the text that are lists, not people (`sales@acme.test DL`).
    pub list_addresses: Vec<String>,
}

/// The last word of a group's description ("the marketing DL").
const GROUP_NOUNS: &[&str] = &["group", "groups", "dl", "dls", "list", "lists", "distro"];

/// Words between a name and its noun that say what kind of group it is.
const QUALIFIERS: &[&str] = &[
    "distribution",
    "mailing",
    "email",
    "e-mail",
    "mail",
    "security",
    "m365",
    "o365",
    "365",
    "microsoft",
    "office",
    "teams",
    "ad",
    "azure",
    "entra",
    "dynamic",
    "unified",
];

/// Words that end a name when reading back from its noun.
const STOP: &[&str] = &[
    "the",
    "a",
    "an",
    "to",
    "2",
    "from",
    "in",
    "into",
    "on",
    "onto",
    "off",
    "of",
    "our",
    "my",
    "your",
    "his",
    "her",
    "their",
    "its",
    "this",
    "that",
    "these",
    "those",
    "me",
    "him",
    "us",
    "them",
    "you",
    "i",
    "and",
    "or",
    "any",
    "some",
    "whatever",
    "whichever",
    "same",
    "which",
    "what",
    "be",
    "is",
    "are",
    "was",
    "were",
    "add",
    "added",
    "remove",
    "removed",
    "put",
    "get",
    "take",
    "join",
    "for",
    "with",
    "by",
    "at",
    "as",
    "please",
    "pls",
    "can",
    "could",
    "need",
    "needs",
    "internal",
    "new",
    "right",
    "correct",
    "relevant",
    "usual",
    "other",
    "one",
    "it",
    "they",
    "there",
    "here",
    "member",
    "members",
    "owner",
    "also",
];

/// Words that are never a group's whole name.
const NOT_NAMES: &[&str] = &[
    "all",
    "every",
    "email",
    "emails",
    "mail",
    "team",
    "teams",
    "staff",
    "group",
    "list",
    "dl",
    "access",
    "security",
    "distribution",
    "mailing",
    "microsoft",
    "office",
    "365",
];

/// Request verbs (a descriptive "I was added" does not count).
const ADD_VERBS: &[&str] = &[
    "add",
    "adding",
    "put",
    "join",
    "include",
    "subscribe",
    "added",
    "member",
];
const REMOVE_VERBS: &[&str] = &[
    "remove",
    "removing",
    "removed",
    "unsubscribe",
    "leave",
    "delete",
    "drop",
];
/// Before a verb, these make it a description of the past, not a request.
const DESCRIPTIVE: &[&str] = &["was", "were", "been", "being", "got", "after", "i've", "is"];

/// Words that show the ticket is about mail lists.
const LIST_WORDS: &[&str] = &[
    "dl",
    "dls",
    "distribution list",
    "distribution lists",
    "distribution group",
    "mailing list",
    "email list",
    "e-mail list",
    "email group",
    "emails",
    "newsletter",
    "bulletin",
];
/// Words that show the group gives access.
const ACCESS_WORDS: &[&str] = &[
    "security group",
    "access",
    "folder",
    "drive",
    "sharepoint",
    "vpn",
    "wifi",
    "wi-fi",
    "remote desktop",
    "permission",
    "permissions",
    "app",
    "files",
    "pilot",
    "citrix",
    "print",
];

/// A word of the ticket, with where it starts and whether punctuation comes before it.
#[derive(Debug)]
struct Word<'a> {
    text: &'a str,
    lower: String,
    at: usize,
    after_break: bool,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '&' | '\'' | '\u{2019}')
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut broke = true;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        if is_word_char(c) && i < text.len() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            let raw = &text[s..i];
            let trimmed = raw.trim_end_matches(['.', '\'', '\u{2019}', '-']);
            let ends_sentence = trimmed.len() < raw.len() && raw.ends_with('.');
            let trimmed = trimmed.trim_start_matches(['\'', '\u{2019}', '-']);
            if !trimmed.is_empty() {
                let at = s + raw.find(trimmed).unwrap_or(0);
                out.push(Word {
                    text: trimmed,
                    lower: trimmed.to_lowercase(),
                    at,
                    after_break: broke,
                });
            }
            broke = ends_sentence;
        }
        if i < text.len() && !c.is_whitespace() {
            broke = true; // , ; : ! ? ( ) quotes and the like
        }
        if c == '\n' {
            broke = true;
        }
    }
    out
}

/// Quoted names: 'Customer Success', "CRM-Users", ‘Board Papers’.
fn quoted(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let closer = match c {
            '\'' => '\'',
            '"' => '"',
            '\u{2018}' => '\u{2019}',
            '\u{201C}' => '\u{201D}',
            _ => {
                i += 1;
                continue;
            }
        };
        let opens = i == 0 || !chars[i - 1].1.is_alphanumeric();
        if !opens {
            i += 1;
            continue;
        }
        let end = chars[i + 1..]
            .iter()
            .position(|&(_, d)| d == closer || d == '\n')
            .map(|p| i + 1 + p);
        match end {
            Some(e) if chars[e].1 == closer => {
                let closes = chars.get(e + 1).is_none_or(|&(_, n)| !n.is_alphanumeric());
                let inner = text[at + c.len_utf8()..chars[e].0].trim();
                let short = inner.split_whitespace().count() <= 5;
                if closes && short && !inner.is_empty() && !inner.contains(['?', '!']) {
                    found.push((at, inner.to_string()));
                    i = e + 1;
                    continue;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    found
}

/// Written like a directory group's name: `SG-Projects-RW`, `VPN-Users`, `GRP_Payroll`.
fn looks_like_a_group_id(word: &str) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    (word.contains('-') || word.contains('_'))
        && word.chars().any(char::is_uppercase)
        && letters >= 2
        && !word.contains('@')
        && !matches!(
            word.to_lowercase().as_str(),
            "wi-fi" | "e-mail" | "co-pilot"
        )
}

/// The name before the noun at `noun` (and, for a plural noun, the names joined to it
/// by "and": "the Finance and Payroll groups"), reading back to a stop word or
/// punctuation, at most five words.
fn names_before(words: &[Word], noun: usize) -> Vec<(usize, String)> {
    let plural = matches!(words[noun].lower.as_str(), "groups" | "lists" | "dls");
    let mut end = noun;
    let qualifies = |i: usize| {
        // "Office" only in "Office 365": "the Leeds office list" is named "Leeds office".
        let word = words[i].lower.as_str();
        QUALIFIERS.contains(&word) && (word != "office" || words[i + 1].lower == "365")
    };
    while end > 0 && qualifies(end - 1) && !words[end].after_break {
        end -= 1;
    }
    let mut names = Vec::new();
    loop {
        let mut start = end;
        while start > 0
            && !words[start].after_break
            && !STOP.contains(&words[start - 1].lower.as_str())
            && end - start < 5
        {
            start -= 1;
        }
        if start == end {
            break;
        }
        let name: Vec<&str> = words[start..end].iter().map(|w| w.text).collect();
        names.push((words[start].at, name.join(" ")));
        let joined = plural
            && start >= 2
            && matches!(words[start - 1].lower.as_str(), "and" | "&")
            && !words[start].after_break
            && !words[start - 1].after_break;
        if !joined {
            break;
        }
        end = start - 1;
    }
    names
}

/// Named like a group that gives access: `SG-Finance-RO`, `VPN-Users`, `Corp-WiFi`.
fn grants_access(group: &str) -> bool {
    group
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_ascii_lowercase)
        .any(|part| {
            matches!(
                part.as_str(),
                "sg" | "sec"
                    | "security"
                    | "vpn"
                    | "wifi"
                    | "users"
                    | "admins"
                    | "rw"
                    | "ro"
                    | "readonly"
                    | "members"
                    | "access"
                    | "remote"
                    | "rdp"
                    | "pilot"
            )
        })
}

/// The group a requester named in an answer ("the Marketing DL" → "Marketing").
pub fn group_in_answer(answer: &str) -> String {
    let quotes = [
        '\'', '"', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '.',
    ];
    let mut name = answer.trim().trim_matches(quotes.as_slice()).trim();
    if name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("the "))
    {
        name = &name[4..];
    }
    for suffix in [
        " distribution list",
        " distribution group",
        " mailing list",
        " email list",
        " security group",
        " group",
        " dl",
        " list",
    ] {
        let cut = name.len().saturating_sub(suffix.len());
        if cut > 0 && name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(suffix) {
            name = &name[..cut];
            break;
        }
    }
    name.trim()
        .trim_matches(quotes.as_slice())
        .trim()
        .to_string()
}

/// True for words that are never a group's whole name ("list", "the group").
pub fn is_generic(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    lower.is_empty() || NOT_NAMES.contains(&lower.as_str()) || STOP.contains(&lower.as_str())
}

/// Read the ticket.
pub fn read(ticket: &Ticket) -> Request {
    let text = format!("{}\n{}", ticket.subject, ticket.body);
    let signals = Signals::new(ticket);
    let kind = if ticket.field("group").is_some() && ticket.subject.trim().is_empty() {
        Kind::Unknown
    } else if LIST_WORDS.iter().any(|w| signals.contains(w)) {
        Kind::DistributionList
    } else if ACCESS_WORDS.iter().any(|w| signals.contains(w)) {
        Kind::SecurityGroup
    } else {
        Kind::Unknown
    };
    let owner = [
        "owner of",
        "an owner",
        "as owner",
        "co-owner",
        "ownership",
        "make me owner",
    ]
    .iter()
    .any(|p| signals.contains(p));
    let words = words(&text);

    // Where each request verb is, and what it asks.
    let mut verbs: Vec<(usize, Action)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let descriptive = words[i.saturating_sub(2)..i]
            .iter()
            .any(|p| DESCRIPTIVE.contains(&p.lower.as_str()));
        let action = if ADD_VERBS.contains(&w.lower.as_str()) {
            Some(Action::Add)
        } else if REMOVE_VERBS.contains(&w.lower.as_str())
            || (w.lower == "off"
                && words[i.saturating_sub(3)..i].iter().any(|p| {
                    matches!(
                        p.lower.as_str(),
                        "take" | "taken" | "took" | "get" | "taking"
                    )
                }))
        {
            Some(Action::Remove)
        } else if w.lower == "be"
            && words
                .get(i + 1)
                .is_some_and(|n| matches!(n.lower.as_str(), "in" | "on"))
        {
            Some(Action::Add) // "needs to be in the Corp-WiFi group"
        } else {
            None
        };
        if let Some(action) = action
            && !descriptive
        {
            verbs.push((w.at, action));
        }
    }
    let field_action = ticket.field("action").and_then(Action::named);

    // The groups.
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut vague = false;
    if let Some(group) = ticket
        .field("group")
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        found.push((0, group.to_string()));
    } else {
        let quotes = quoted(&text);
        found.extend(quotes.iter().cloned());
        let inside_quotes = |at: usize| {
            quotes
                .iter()
                .any(|(q, name)| at >= *q && at <= q + name.len() + 2)
        };
        for (i, w) in words.iter().enumerate() {
            if inside_quotes(w.at) {
                continue;
            }
            let part_of_longer = words.get(i + 1).is_some_and(|n| {
                !n.after_break
                    && (GROUP_NOUNS.contains(&n.lower.as_str())
                        || QUALIFIERS.contains(&n.lower.as_str()))
            });
            if GROUP_NOUNS.contains(&w.lower.as_str()) && !part_of_longer {
                let mut before = names_before(&words, i);
                before.retain(|(at, _)| !inside_quotes(*at));
                let quoted_before = words[i.saturating_sub(4)..i]
                    .iter()
                    .any(|w| inside_quotes(w.at));
                if before.is_empty() && !quoted_before {
                    // "group GRP-Payroll-Approvers"
                    match words.get(i + 1) {
                        Some(next) if looks_like_a_group_id(next.text) => {
                            found.push((next.at, next.text.to_string()))
                        }
                        _ => vague = true,
                    }
                }
                found.extend(before);
            } else if looks_like_a_group_id(w.text)
                && i > 0
                && matches!(
                    words[i - 1].lower.as_str(),
                    "to" | "from" | "in" | "into" | "on" | "off" | "and" | "of"
                )
                && !words
                    .get(i + 1)
                    .is_some_and(|n| GROUP_NOUNS.contains(&n.lower.as_str()))
            {
                found.push((w.at, w.text.to_string()));
            }
        }
    }
    found.retain(|(_, name)| {
        let lower = name.to_lowercase();
        !NOT_NAMES.contains(&lower.as_str()) && !STOP.contains(&lower.as_str())
    });
    // The body names groups the way the requester means them; a subject is a summary
    // ("Corp WiFi group" for the body's "Corp-WiFi").
    let body_starts = ticket.subject.len() + 1;
    if found.iter().any(|(at, _)| *at >= body_starts) {
        found.retain(|(at, _)| *at >= body_starts);
    }
    found.sort_by_key(|(at, _)| *at);
    let mut groups: Vec<Named> = Vec::new();
    let kinds_said = (
        verbs.iter().any(|(_, a)| *a == Action::Add),
        verbs.iter().any(|(_, a)| *a == Action::Remove),
    );
    let overall = match kinds_said {
        (true, false) => Some(Action::Add),
        (false, true) => Some(Action::Remove),
        _ => None,
    };
    let key = |name: &str| -> String {
        name.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    for (at, name) in found {
        if groups.iter().any(|g| key(&g.group) == key(&name)) {
            continue;
        }
        let before = verbs.iter().rev().find(|(v, _)| *v < at).map(|(_, a)| *a);
        groups.push(Named {
            group: name,
            action: field_action.or(before).or(overall),
        });
    }
    if !groups.is_empty() {
        vague = false;
    }
    let kind = if kind == Kind::Unknown && groups.iter().any(|g| grants_access(&g.group)) {
        Kind::SecurityGroup
    } else {
        kind
    };
    let list_addresses = groups
        .iter()
        .filter(|g| g.group.contains('@'))
        .map(|g| g.group.to_ascii_lowercase())
        .collect();
    Request {
        groups,
        action: field_action.or(overall),
        vague,
        kind,
        owner,
        list_addresses,
    }
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

    fn read_body(body: &str) -> Vec<(String, Option<Action>)> {
        read(&ticket("", body))
            .groups
            .into_iter()
            .map(|g| (g.group, g.action))
            .collect()
    }

    fn one(name: &str, action: Action) -> Vec<(String, Option<Action>)> {
        vec![(name.to_string(), Some(action))]
    }

    #[test]
    fn names_before_a_group_noun() {
        use Action::*;
        assert_eq!(
            read_body("add me to the marketing DL"),
            one("marketing", Add)
        );
        assert_eq!(read_body("pls add me 2 the ops dl"), one("ops", Add));
        assert_eq!(
            read_body("remove me from the Ireland distribution list, I've never worked there"),
            one("Ireland", Remove)
        );
        assert_eq!(
            read_body("Add j.patel to the SG-Finance-ReadOnly security group."),
            one("SG-Finance-ReadOnly", Add)
        );
        assert_eq!(
            read_body("Add Sophie Turner as a member of the Marketing Microsoft 365 group."),
            one("Marketing", Add)
        );
        assert_eq!(
            read_body("Add me to the Remote Desktop Users group on the terminal server"),
            one("Remote Desktop Users", Add)
        );
        assert_eq!(
            read_body("get me off the Fun Committee email list please"),
            one("Fun Committee", Remove)
        );
        assert_eq!(
            read_body("My account needs to be in the Corp-WiFi group, my laptop can't join"),
            one("Corp-WiFi", Add)
        );
    }

    #[test]
    fn quoted_and_directory_style_names() {
        use Action::*;
        assert_eq!(
            read_body("Please add the following 4 people to the 'Customer Success' DL:"),
            one("Customer Success", Add)
        );
        assert_eq!(
            read_body("Can you add me to the \u{2018}Project Falcon\u{2019} team in Teams?"),
            one("Project Falcon", Add)
        );
        assert_eq!(
            read_body("Please add user k.oconnor to group GRP-Payroll-Approvers."),
            one("GRP-Payroll-Approvers", Add)
        );
        assert_eq!(
            read_body("Please add him to SG-Projects-RW and SG-Drawings-RO."),
            vec![
                ("SG-Projects-RW".to_string(), Some(Add)),
                ("SG-Drawings-RO".to_string(), Some(Add))
            ]
        );
    }

    #[test]
    fn each_group_takes_the_verb_before_it() {
        use Action::*;
        assert_eq!(
            read_body(
                "Tom has moved. Remove him from the Finance and Payroll groups please and add him to Ops-Staff."
            ),
            vec![
                ("Finance".to_string(), Some(Remove)),
                ("Payroll".to_string(), Some(Remove)),
                ("Ops-Staff".to_string(), Some(Add)),
            ]
        );
        assert_eq!(
            read_body("I was added to the Sales DL by mistake, please remove me"),
            one("Sales", Remove)
        );
        assert_eq!(
            read_body(
                "I keep getting emails sent to the Leeds office list. Take me off please and put me on the Manchester one."
            ),
            vec![("Leeds office".to_string(), None)]
        );
    }

    #[test]
    fn vague_words_name_nothing() {
        let r = read(&ticket("", "can you add me to the group? thanks"));
        assert!(r.groups.is_empty() && r.vague, "{r:?}");
        let r = read(&ticket(
            "",
            "add me to whatever list the all-staff emails go to",
        ));
        assert!(r.vague, "{r:?}");
        let r = read(&ticket("DL", "add me to the DL please"));
        assert!(r.groups.is_empty() && r.vague, "{r:?}");
    }

    #[test]
    fn answers_name_groups() {
        assert_eq!(group_in_answer("the Marketing DL"), "Marketing");
        assert_eq!(
            group_in_answer("'SG-Finance-RO' security group."),
            "SG-Finance-RO"
        );
        assert_eq!(group_in_answer("Sales-UK"), "Sales-UK");
        assert_eq!(group_in_answer("The list"), "list");
    }

    #[test]
    fn kinds_and_fields() {
        assert_eq!(
            read(&ticket("DL", "add me to the marketing DL")).kind,
            Kind::DistributionList
        );
        assert_eq!(
            read(&ticket("VPN", "add me to the VPN-Users group")).kind,
            Kind::SecurityGroup
        );
        let mut t = ticket("", "");
        t.fields.push(("group".into(), "Marketing".into()));
        t.fields.push(("action".into(), "remove".into()));
        assert_eq!(
            read(&t).groups,
            vec![Named {
                group: "Marketing".into(),
                action: Some(Action::Remove)
            }]
        );
        assert!(read(&ticket("", "make me an owner of the Falcon group")).owner);
    }
}
