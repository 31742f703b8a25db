//! Whose account a ticket is about when no field says: the requester's own when they
//! write about themselves ("I need", "my account", "upgrade me"), someone named by the
//! one email address in the text, and unclear when the words point at someone else (a
//! leaver, a new starter, "add him", "Visio for Harry", several addresses): the
//! playbook then asks the requester rather than guess. Also reads who the requester
//! named when they answer that question. Pure.
//!
//! For requests about access (licences, groups, shared mailboxes) that often name other
//! people. Sign-in playbooks use [`crate::account::settle`], which also verifies the
//! requester and looks the account up.

use crate::Ticket;
use crate::triage::Signals;

/// What the words say about whose account to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whom {
    Requester,
    /// The one address in the text besides the requester's.
    Named(String),
    Unclear,
}

/// Words that say the request is about someone else.
const SOMEONE_ELSE: &[&str] = &[
    "him",
    "his",
    "her",
    "hers",
    "he",
    "she",
    "they",
    "them",
    "their",
    "leaver",
    "leavers",
    "has left",
    "have left",
    "who left",
    "left the company",
    "starter",
    "starters",
    "new joiner",
    "new hire",
    "new employee",
    "new user",
    "intern",
    "interns",
    "colleague",
    "colleagues",
    "user",
    "users",
    "people",
    "staff",
    "following",
    "on behalf of",
];

/// Words after which a capitalized word is a person ("Visio for Harry", "add Sophie").
const PERSON_AFTER: &[&str] = &[
    "for", "give", "add", "put", "remove", "take", "assign", "user", "member", "move",
];

/// Capitalized words after those that are not people.
const NOT_PEOPLE: &[&str] = &[
    "i",
    "it",
    "me",
    "us",
    "teams",
    "microsoft",
    "office",
    "m365",
    "o365",
    "power",
    "project",
    "visio",
    "copilot",
    "windows",
    "outlook",
    "excel",
    "word",
    "business",
    "intune",
    "exchange",
    "dynamics",
    "planner",
    "e3",
    "e5",
    "f3",
    "the",
    "a",
    "an",
    "all",
    "everyone",
    "this",
    "that",
    "these",
    "those",
    "please",
    "pls",
    "our",
    "my",
    "your",
    "access",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
];

/// True when a capitalized word right after "for", "add", "give"... names someone.
fn names_someone(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '\'' | '-' | '.' | '@')))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|pair| {
        let after = pair[0].to_lowercase();
        let word = pair[1];
        PERSON_AFTER.contains(&after.as_str())
            && word.chars().next().is_some_and(char::is_uppercase)
            // ALL-CAPS words are shouting or acronyms, not names.
            && word.chars().any(char::is_lowercase)
            && !word.contains('@')
            && !NOT_PEOPLE.contains(&word.to_lowercase().as_str())
    })
}

/// Words that show the requester writes about themselves at all.
const FIRST_PERSON: &[&str] = &[
    "me", "my", "i", "i'm", "im", "i've", "i'd", "i'll", "myself", "mine",
];

/// Email addresses in `text`, lower-cased, in order, each once.
pub fn emails_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let is_part = |c: char| c.is_alphanumeric() || matches!(c, '.' | '@' | '-' | '_' | '+' | '\'');
    for word in text.split(|c: char| !is_part(c)) {
        let word = word.trim_matches(|c: char| matches!(c, '.' | '-' | '\''));
        let Some((local, domain)) = word.split_once('@') else {
            continue;
        };
        let valid = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.');
        let email = word.to_ascii_lowercase();
        if valid && !found.contains(&email) {
            found.push(email);
        }
    }
    found
}

/// Whose account the ticket's words are about; `self_phrases` are the category's ways
/// of asking for oneself ("add me", "upgrade me"); `ignore` are addresses that are not
/// people (a list's address); with `need_first_person`, a ticket that never speaks of
/// the requester ("Add j.patel to SG-Sales") is unclear too.
pub fn whom(
    ticket: &Ticket,
    self_phrases: &[&str],
    ignore: &[String],
    need_first_person: bool,
) -> Whom {
    let text = Signals::new(ticket);
    if self_phrases.iter().any(|p| text.contains(p)) {
        return Whom::Requester;
    }
    let requester = ticket.requester.email.to_ascii_lowercase();
    let others: Vec<String> = emails_in(&format!("{}\n{}", ticket.subject, ticket.body))
        .into_iter()
        .filter(|e| *e != requester && !ignore.iter().any(|i| i.eq_ignore_ascii_case(e)))
        .collect();
    match others.as_slice() {
        [one] => return Whom::Named(one.clone()),
        [] => {}
        _ => return Whom::Unclear,
    }
    let someone_else = SOMEONE_ELSE.iter().any(|p| text.contains(p))
        || names_someone(&format!("{}\n{}", ticket.subject, ticket.body));
    let first_person = FIRST_PERSON.iter().any(|p| text.contains(p));
    if someone_else || (need_first_person && !first_person) {
        Whom::Unclear
    } else {
        Whom::Requester
    }
}

/// Who the requester named when asked whose account: "me" (or their own address), or
/// one email address. Otherwise why the answer cannot be used.
pub fn from_answer(answer: &str, requester: &str) -> Result<String, String> {
    let requester = requester.to_ascii_lowercase();
    let said = Signals::from_text(answer);
    let plain = answer.trim().to_ascii_lowercase();
    let emails = emails_in(answer);
    match emails.as_slice() {
        [one] => Ok(one.clone()),
        [] if [
            "me",
            "myself",
            "mine",
            "my own",
            "my account",
            "i",
            "me please",
        ]
        .contains(&plain.trim_end_matches(['.', '!']))
            || said.contains("my own account") =>
        {
            Ok(requester)
        }
        [] => Err(format!(
            "the requester answered {answer:?}, which is not an email address"
        )),
        _ => Err(format!(
            "the requester named several people ({}); capdesk changes one account per ticket",
            emails.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Person;

    fn ticket(body: &str) -> Ticket {
        Ticket {
            id: "T-1".into(),
            subject: String::new(),
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

    const SELF: &[&str] = &["add me", "i need"];

    #[test]
    fn finds_addresses() {
        assert_eq!(
            emails_in("mail Bob.Smith@acme.test, or <eve@x.org>. Not sales@ or a@b"),
            vec!["bob.smith@acme.test", "eve@x.org"]
        );
    }

    #[test]
    fn reads_whom_the_ticket_is_about() {
        let whom = |body: &str, strict: bool| whom(&ticket(body), SELF, &[], strict);
        assert_eq!(whom("add me to sales", true), Whom::Requester);
        assert_eq!(whom("I'd like my account upgraded", true), Whom::Requester);
        assert_eq!(whom("need a Visio license please", false), Whom::Requester);
        assert_eq!(
            whom("NEED A PROJECT LICENCE FOR THE PLAN", false),
            Whom::Requester
        );
        assert_eq!(
            whom("please give bob@acme.test Visio", false),
            Whom::Named("bob@acme.test".into())
        );
        assert_eq!(
            whom("remove Power BI from leaver Steve", false),
            Whom::Unclear
        );
        assert_eq!(whom("Visio for Harry Lewis please.", false), Whom::Unclear);
        assert_eq!(whom("Add Sophie Turner as a member", true), Whom::Unclear);
        assert_eq!(
            whom("Add j.patel to the SG-Finance group", true),
            Whom::Unclear
        );
        assert_eq!(
            whom("Add j.patel to the SG-Finance group", false),
            Whom::Requester
        );
        assert_eq!(whom("my colleague needs it, I think", false), Whom::Unclear);
    }

    #[test]
    fn reads_answers() {
        assert_eq!(
            from_answer("me", "Ann@acme.test"),
            Ok("ann@acme.test".into())
        );
        assert_eq!(
            from_answer(" Bob@Acme.test ", "ann@acme.test"),
            Ok("bob@acme.test".into())
        );
        assert!(from_answer("Bob", "ann@acme.test").is_err());
        assert!(from_answer("bob@acme.test and eve@acme.test", "ann@acme.test").is_err());
    }
}
