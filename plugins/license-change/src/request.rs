//! What a license ticket asks for, read the way an L1 technician reads it: structured
//! fields first (`license`/`sku`, `action`, `from`), then the words. Whether to add,
//! remove or move; which licenses; for a move, which one goes. Anything the ticket does
//! not say stays empty here, and the playbook asks. Pure: no host calls.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::{Signals, normalize};

use crate::catalogue::{self, Sku};

/// What to do with the licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Assign; a base suite replaces the suite the user holds.
    Add,
    Remove,
    /// Assign the new license, then remove the old one.
    Move,
}

/// A license as the ticket names it: from the catalogue, or a SKU the intake's field
/// names that the catalogue does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum License {
    Known(&'static Sku),
    Other(String),
}

impl License {
    /// From a field value or an answer.
    pub fn named(text: &str) -> Option<License> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(catalogue::by_name(text).map_or_else(|| License::Other(text.into()), License::Known))
    }

    /// The SKU name the directory uses.
    pub fn id(&self) -> &str {
        match self {
            License::Known(s) => s.id,
            License::Other(id) => id,
        }
    }

    /// "Visio Plan 2 (VISIO-PLAN2)" for notes.
    pub fn label(&self) -> String {
        match self {
            License::Known(s) => format!("{} ({})", s.name, s.id),
            License::Other(id) => id.clone(),
        }
    }

    /// What users call it.
    pub fn name(&self) -> &str {
        match self {
            License::Known(s) => s.name,
            License::Other(id) => id,
        }
    }

    /// What it gives, in which apps.
    pub fn gives(&self) -> String {
        match self {
            License::Known(s) => format!("{}: {}", s.name, s.gives),
            License::Other(id) => format!("{id}: the apps and features that come with it"),
        }
    }

    /// True when this suite gives less than the suite `other` (E5 → E3).
    pub fn is_below(&self, other: &License) -> bool {
        match (self, other) {
            (License::Known(a), License::Known(b)) => a.suite && b.suite && a.rank < b.rank,
            _ => false,
        }
    }

    pub fn is_suite(&self) -> bool {
        matches!(self, License::Known(s) if s.suite)
    }

    /// True when this suite already includes the add-on `other`.
    pub fn includes(&self, other: &License) -> bool {
        matches!(self, License::Known(s) if s.includes.iter().any(|i| i.eq_ignore_ascii_case(other.id())))
    }

    pub fn is(&self, sku: &str) -> bool {
        self.id().eq_ignore_ascii_case(sku)
    }
}

/// What the ticket asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `None` when neither a field nor the words say (an assignment, unless the
    /// requester says otherwise).
    pub action: Option<Action>,
    /// The licenses to assign (add, move) or to take away (remove).
    pub wanted: Vec<License>,
    /// For a move: the license that goes, when the ticket names it.
    pub from: Option<License>,
    /// The license is to go from one person to another ("reassign Visio from Georgia
    /// to Tom"): two accounts, which this playbook does not change in one ticket.
    pub between_people: bool,
}

const MOVE_WORDS: &[&str] = &[
    "upgrade",
    "upgraded",
    "upgrading",
    "downgrade",
    "downgraded",
    "downgrading",
    "move me",
    "move my",
    "move us",
    "move from",
    "moved from",
    "swap",
    "swapped",
    "switch",
    "switched",
    "instead of",
    "replace",
    "replaced",
    "change me",
    "change my",
    "change from",
    "convert",
];

const REMOVE_WORDS: &[&str] = &[
    "remove",
    "removed",
    "removing",
    "unassign",
    "unassigned",
    "revoke",
    "taken off",
    "don't need",
    "do not need",
    "doesn't need",
    "no longer need",
    "no longer needs",
    "not using",
    "not use",
    "stop paying",
    "cancel",
    "get rid of",
    "reclaim",
    "free up",
];

const BETWEEN_PEOPLE: &[&str] = &[
    "reassign",
    "re-assign",
    "reassigned",
    "transfer",
    "transferred",
    "hand over",
    "pass on",
];

/// The action a field value names.
pub fn action_named(text: &str) -> Option<Action> {
    match text.trim().to_ascii_lowercase().as_str() {
        "add" | "assign" | "give" | "grant" => Some(Action::Add),
        "remove" | "unassign" | "revoke" | "take away" => Some(Action::Remove),
        "move" | "upgrade" | "downgrade" | "change" | "swap" | "switch" | "replace" => {
            Some(Action::Move)
        }
        _ => None,
    }
}

/// Where a suite's name sits in a move: after "from" it goes, after "to" it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

/// The side the few words before byte `at` of normalized `text` put a name on.
fn side_before(text: &str, at: usize) -> Option<Side> {
    let words: Vec<&str> = text.get(..at)?.split_whitespace().rev().take(4).collect();
    for (i, w) in words.iter().enumerate() {
        match *w {
            "from" | "off" => return Some(Side::Old),
            "of" if words.get(i + 1) == Some(&"instead") => return Some(Side::Old),
            "to" | "into" | "onto" | "for" | "with" => return Some(Side::New),
            _ => {}
        }
    }
    None
}

/// Byte offset in normalized `text` where `sku` is first named.
fn position(text: &str, sku: &Sku) -> usize {
    sku.aliases
        .iter()
        .filter_map(|a| {
            let needle = format!(" {a} ");
            text.find(&needle).map(|at| at + 1)
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// Read the ticket.
pub fn read(ticket: &Ticket) -> Request {
    let words = Signals::new(ticket);
    let any = |phrases: &[&str]| phrases.iter().any(|p| words.contains(p));
    let said_action = if any(MOVE_WORDS) {
        Some(Action::Move)
    } else if any(REMOVE_WORDS)
        || ((words.contains("take") || words.contains("took")) && words.contains("off"))
    {
        Some(Action::Remove)
    } else {
        None
    };
    let field_action = ticket.field("action").and_then(action_named);
    let between_people = any(BETWEEN_PEOPLE);

    let field_license = ticket
        .field("license")
        .or_else(|| ticket.field("sku"))
        .and_then(License::named);
    let field_from = ["from", "from_license", "old_license", "current_license"]
        .iter()
        .find_map(|k| ticket.field(k))
        .and_then(License::named);
    if field_license.is_some() || field_from.is_some() {
        let action = field_action.or(if field_from.is_some() {
            Some(Action::Move)
        } else {
            said_action
        });
        return Request {
            action,
            wanted: field_license.into_iter().collect(),
            from: field_from,
            between_people,
        };
    }

    let text = normalize(&format!("{}\n{}", ticket.subject, ticket.body));
    let mut named = catalogue::mentioned(&words);
    named.sort_by_key(|s| position(&text, s));
    let suites: Vec<&'static Sku> = named.iter().copied().filter(|s| s.suite).collect();
    let mut action = field_action.or(said_action);
    if action.is_none() && suites.len() >= 2 {
        action = Some(Action::Move); // "E3 to E5 please"
    }
    let mut from = None;
    let mut wanted: Vec<&'static Sku> = named.clone();
    if action == Some(Action::Move) {
        match suites.as_slice() {
            [a, b, ..] => {
                let (old, _new) = match (
                    side_before(&text, position(&text, a)),
                    side_before(&text, position(&text, b)),
                ) {
                    (Some(Side::New), _) | (_, Some(Side::Old)) => (*b, *a),
                    _ => (*a, *b),
                };
                from = Some(old);
                wanted.retain(|s| s.id != old.id);
            }
            [only] if side_before(&text, position(&text, only)) == Some(Side::Old) => {
                from = Some(*only); // "move me off E5": to what, the ticket does not say
                wanted.retain(|s| s.id != only.id);
            }
            _ => {}
        }
    }
    if action != Some(Action::Remove) {
        // An add-on the new suite includes needs no license of its own (E5 has Teams Phone).
        let suites_wanted: Vec<&'static Sku> = wanted.iter().copied().filter(|s| s.suite).collect();
        wanted.retain(|s| {
            !suites_wanted
                .iter()
                .any(|suite| suite.includes.contains(&s.id))
        });
    }
    Request {
        action,
        wanted: wanted.into_iter().map(License::Known).collect(),
        from: from.map(License::Known),
        between_people,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capdesk_sdk::Person;

    fn ticket(subject: &str, body: &str, fields: &[(&str, &str)]) -> Ticket {
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
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn ids(r: &Request) -> Vec<&str> {
        r.wanted.iter().map(License::id).collect()
    }

    #[test]
    fn an_upgrade_names_the_new_and_the_old_suite() {
        for text in [
            "please upgrade me from E3 to E5",
            "upgrade to E5 from E3",
            "I'd like E5 instead of E3",
            "E3 to E5 please",
        ] {
            let r = read(&ticket("", text, &[]));
            assert_eq!(r.action, Some(Action::Move), "{text}");
            assert_eq!(ids(&r), ["M365-E5"], "{text}");
            assert_eq!(r.from.as_ref().map(License::id), Some("M365-E3"), "{text}");
        }
        let r = read(&ticket("", "swap my F3 for an E3", &[]));
        assert_eq!(
            (ids(&r), r.from.as_ref().map(License::id)),
            (vec!["M365-E3"], Some("M365-F3"))
        );
    }

    #[test]
    fn an_upgrade_to_one_suite_leaves_the_old_one_to_the_directory() {
        let r = read(&ticket(
            "Upgrade to E5",
            "Can my account be upgraded to E5? I need the Teams phone system features.",
            &[],
        ));
        assert_eq!(r.action, Some(Action::Move));
        assert_eq!(ids(&r), ["M365-E5"], "Teams Phone comes with E5");
        assert_eq!(r.from, None);
    }

    #[test]
    fn adds_and_removals_name_their_licenses() {
        let r = read(&ticket("visio", "need a Visio license please", &[]));
        assert_eq!((r.action, ids(&r)), (None, vec!["VISIO-PLAN2"]));
        let r = read(&ticket(
            "",
            "Could you take the Visio and Project licences off Hannah? She left.",
            &[],
        ));
        assert_eq!(
            (r.action, ids(&r)),
            (Some(Action::Remove), vec!["VISIO-PLAN2", "PROJECT-PLAN3"])
        );
        let r = read(&ticket("", "remove Power BI Pro from leaver", &[]));
        assert_eq!(
            (r.action, ids(&r)),
            (Some(Action::Remove), vec!["POWERBI-PRO"])
        );
    }

    #[test]
    fn fields_win_over_the_words() {
        let r = read(&ticket(
            "need Visio",
            "",
            &[("sku", "power bi pro"), ("action", "add")],
        ));
        assert_eq!(
            (r.action, ids(&r)),
            (Some(Action::Add), vec!["POWERBI-PRO"])
        );
        let r = read(&ticket("", "", &[("license", "EXCHANGE-ARCHIVING")]));
        assert_eq!(r.wanted, vec![License::Other("EXCHANGE-ARCHIVING".into())]);
    }

    #[test]
    fn an_unclear_license_stays_empty() {
        let r = read(&ticket(
            "Downgrade my own licence",
            "move me to a cheaper licence",
            &[],
        ));
        assert_eq!(r.action, Some(Action::Move));
        assert!(r.wanted.is_empty());
        assert!(read(&ticket("reassign visio", "from Georgia to Tom", &[])).between_people);
    }
}
