//! Reading a ticket's wording for `triage`, beyond what [`crate::triage::Signals`]
//! offers: the requester's own words apart from the reply history they quote and their
//! mobile signature; word patterns with alternatives, a one-word wildcard and tolerance
//! for one slip of the keyboard; two patterns near each other; confidence that combines
//! as a noisy-or and stays below certainty; and vocabulary many L1 playbooks read
//! (cannot sign in, forgot, security concern, a thank-you reply). It reads only the
//! ticket and allocates a few small buffers per ticket (the requester's words, their
//! positions, a table of them, the matches of one side of a `near`).
//!
//! A triage runs in a fresh instance, so nothing about the patterns is prepared ahead:
//! each is read as it stands, and mostly not far. Its first slot's alternatives are
//! looked up in the table of the ticket's words (`triage::WordTable`, keyed by first
//! byte, last byte and length, which reading an alternative gives for free); only where
//! one of them occurs are the pattern's other slots read.
//!
//! Pattern syntax, word by word (patterns are lowercase, as `normalize` writes words):
//! `a|b` either word (alternatives are single words), `*` any one word, `*'s` any word
//! ending in `'s`, `~word` (for the [`KEY_WORDS`]) the word or a one-slip typo of it (a
//! letter left out, one extra or two swapped; never the first letter; both words of five
//! letters or more).

use crate::Ticket;
use crate::triage::{WordTable, normalize_into, up_to, words_at};

/// No ticket's wording makes a playbook certain: a technician's look stays possible.
pub const MAX_CONFIDENCE: f32 = 0.95;

/// The words a `~word` pattern may name: their typos are found once per ticket.
pub const KEY_WORDS: &[&str] = &[
    "password",
    "locked",
    "account",
    "forgot",
    "forgotten",
    "unlock",
    "expired",
];

/// The requester's own words in a ticket, normalized and split into words.
pub struct Wording {
    /// Subject and body, without quoted reply history or mobile signatures, normalized.
    text: String,
    /// Where the body starts, in words (the subject comes first).
    body_from: usize,
    /// The words, in order.
    words: Vec<Word>,
    /// Each word's number, filed under the word and, for a typo, under its key word:
    /// where a word occurs, without a scan.
    index: WordTable,
}

/// One word of [`Wording`], without the quotation marks `normalize` leaves on words
/// (`'locked out'` is the words `locked out`).
struct Word {
    /// Where the word is in the text, in bytes.
    start: usize,
    end: usize,
    /// The key word this word is a one-slip typo of, if any.
    slip: Option<&'static str>,
}

impl Wording {
    pub fn new(ticket: &Ticket) -> Wording {
        Wording::from_parts(&ticket.subject, &ticket.body)
    }

    pub fn from_parts(subject: &str, body: &str) -> Wording {
        let mut text = String::with_capacity(subject.len() + body.len() + 2);
        text.push(' ');
        normalize_into(subject, &mut text);
        let subject_end = text.len();
        for line in body.lines() {
            let trimmed = line.trim_start();
            if is_reply_history(trimmed) {
                break;
            }
            if trimmed.starts_with('>') || is_mobile_signature(trimmed) {
                continue;
            }
            normalize_into(line, &mut text);
        }
        // At most one word per space: room enough for the words and their table.
        let spaces = text.bytes().filter(|&b| b == b' ').count();
        let mut words = Vec::with_capacity(spaces);
        let mut index = WordTable::with_capacity(spaces);
        let mut body_from = 0;
        for (at, token) in words_at(&text) {
            let (quotes, word) = unquoted(token);
            if !word.is_empty() {
                let slip = slip_of(word);
                index.insert(word, words.len());
                if let Some(key) = slip {
                    index.insert(key, words.len());
                }
                let start = at + quotes;
                words.push(Word {
                    start,
                    end: start + word.len(),
                    slip,
                });
            }
            if at < subject_end {
                body_from = words.len();
            }
        }
        Wording {
            text,
            body_from,
            words,
            index,
        }
    }

    fn word(&self, i: usize) -> &str {
        &self.text[self.words[i].start..self.words[i].end]
    }

    /// How many words the requester wrote (subject and body).
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Calls `found` with the places `pattern` matches, as word ranges `start..end`
    /// starting at `from` or later (in no particular order), until it returns true;
    /// returns whether it did. Words (and key words' typos) that may start a match are
    /// looked up in the index; only wildcards are checked against every word.
    fn search(
        &self,
        pattern: &str,
        from: usize,
        mut found: impl FnMut((usize, usize)) -> bool,
    ) -> bool {
        let first = up_to(pattern, b' ');
        let rest = pattern.get(first.len() + 1..).unwrap_or("");
        let mut starts_a_match = |start: usize| {
            start >= from
                && self
                    .end_of(rest, start + 1)
                    .is_some_and(|end| found((start, end)))
        };
        parts(first, b'|').any(|alt| {
            if alt.starts_with('*') {
                (from..self.words.len()).any(|i| self.alt_matches(alt, i) && starts_a_match(i))
            } else {
                // A `~word`'s typos are filed under the word.
                self.index
                    .find(alt.strip_prefix('~').unwrap_or(alt))
                    .any(|i| self.alt_matches(alt, i) && starts_a_match(i))
            }
        })
    }

    /// Where a match ends whose later slots, `rest`, start at word number `at`, if the
    /// words there match them.
    fn end_of(&self, rest: &str, mut at: usize) -> Option<usize> {
        for slot in parts(rest, b' ').filter(|slot| !slot.is_empty()) {
            if at >= self.words.len() || !self.slot_matches(slot, at) {
                return None;
            }
            at += 1;
        }
        Some(at)
    }

    /// Word number `i` matches one of the slot's alternatives.
    fn slot_matches(&self, slot: &str, i: usize) -> bool {
        parts(slot, b'|').any(|alt| self.alt_matches(alt, i))
    }

    #[inline]
    fn alt_matches(&self, alt: &str, i: usize) -> bool {
        let word = self.word(i);
        match alt.strip_prefix('~') {
            Some(key) => {
                debug_assert!(KEY_WORDS.contains(&key), "`~{key}` is not a key word");
                word == key || self.words[i].slip == Some(key)
            }
            None if alt == "*" => true,
            None => match alt.strip_prefix('*') {
                Some(ending) => word.ends_with(ending),
                None => word == alt,
            },
        }
    }

    /// True when any of `patterns` appears.
    pub fn any(&self, patterns: &[&str]) -> bool {
        patterns.iter().any(|p| self.search(p, 0, |_| true))
    }

    /// True when any of `patterns` appears in the body (not the subject).
    pub fn any_in_body(&self, patterns: &[&str]) -> bool {
        patterns
            .iter()
            .any(|p| self.search(p, self.body_from, |_| true))
    }

    /// True when one of `a` and one of `b` appear with at most `gap` words between them
    /// (in either order).
    pub fn near(&self, a: &[&str], b: &[&str], gap: usize) -> bool {
        self.pairs(a, b, |(s1, e1), (s2, e2)| {
            (s2 >= e1 && s2 - e1 <= gap) || (s1 >= e2 && s1 - e2 <= gap)
        })
    }

    /// True when one of `a` is followed by one of `b` with at most `gap` words between.
    pub fn before(&self, a: &[&str], b: &[&str], gap: usize) -> bool {
        self.pairs(a, b, |(_, e1), (s2, _)| s2 >= e1 && s2 - e1 <= gap)
    }

    /// True when a match of `a` and a match of `b` satisfy `test`; each pattern is
    /// matched once, whatever the text's length.
    fn pairs(
        &self,
        a: &[&str],
        b: &[&str],
        test: impl Fn((usize, usize), (usize, usize)) -> bool,
    ) -> bool {
        let mut of_b = Vec::new();
        for p in b {
            self.search(p, 0, |mb| {
                of_b.push(mb);
                false
            });
        }
        !of_b.is_empty()
            && a.iter()
                .any(|p| self.search(p, 0, |ma| of_b.iter().any(|&mb| test(ma, mb))))
    }

    /// The requester's own body says the problem is over (a thank-you reply to a solved
    /// ticket) and complains about nothing.
    pub fn is_resolved_reply(&self) -> bool {
        let over = self.any_in_body(RESOLVED)
            || (self.any_in_body(&["worked|sorted|fixed|resolved"]) && self.any_in_body(THANKS));
        over && !self.any_in_body(STILL_A_PROBLEM)
    }
}

/// `s.split(byte as char)` for an ASCII `byte`, with a byte loop: pattern slots and
/// alternatives are a few bytes, too short for `str::split`'s search to pay.
#[inline]
fn parts(s: &str, byte: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let part = up_to(s, byte);
        rest = s.get(part.len() + 1..);
        Some(part)
    })
}

/// A token of normalized text without the quotation marks on it, and how many there
/// were in front.
fn unquoted(token: &str) -> (usize, &str) {
    let front = token.bytes().take_while(|&b| b == b'\'').count();
    let back = token[front..]
        .bytes()
        .rev()
        .take_while(|&b| b == b'\'')
        .count();
    (front, &token[front..token.len() - back])
}

/// The key word `word` is a one-slip typo of, if any.
fn slip_of(word: &str) -> Option<&'static str> {
    if word.len() < 5 {
        return None; // see `one_slip`
    }
    KEY_WORDS
        .iter()
        .find(|key| one_slip(word, key) && **key != word)
        .copied()
}

/// A line that starts the reply history below the requester's new words.
pub fn is_reply_history(line: &str) -> bool {
    let line = line.trim_end().as_bytes();
    let says = |words: &[u8]| {
        line.windows(words.len())
            .any(|w| w.eq_ignore_ascii_case(words))
    };
    (line.starts_with(b"-----") && says(b"original message"))
        || (starts_with_ignoring_case(line, b"on ") && ends_with_ignoring_case(line, b"wrote:"))
}

/// "Sent from my iPhone" and the like: names a device, says nothing about the request.
fn is_mobile_signature(line: &str) -> bool {
    line.len() < 60 && starts_with_ignoring_case(line.as_bytes(), b"sent from ")
}

/// `text` starts with `start`, ASCII letters in either case (no lowercase copy of every
/// line of the body).
fn starts_with_ignoring_case(text: &[u8], start: &[u8]) -> bool {
    text.get(..start.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(start))
}

/// `text` ends with `end`, ASCII letters in either case.
fn ends_with_ignoring_case(text: &[u8], end: &[u8]) -> bool {
    text.len() >= end.len() && text[text.len() - end.len()..].eq_ignore_ascii_case(end)
}

/// `word` is `target` with one letter left out, one extra, or two neighbours swapped;
/// the first letter is right and both words have at least five letters.
fn one_slip(word: &str, target: &str) -> bool {
    let (w, t) = (word.as_bytes(), target.as_bytes());
    if t.len() < 5 || w.len() < 5 || w.first() != t.first() {
        return false;
    }
    let common = w.iter().zip(t).take_while(|(a, b)| a == b).count();
    match w.len() as isize - t.len() as isize {
        0 => {
            let rest = common + 2;
            common + 1 < w.len()
                && w[common] == t[common + 1]
                && w[common + 1] == t[common]
                && w[rest..] == t[rest..]
        }
        1 => w[common + 1..] == t[common..],
        -1 => w[common..] == t[common + 1..],
        _ => false,
    }
}

/// Confidence for one category: evidence for it combines as a noisy-or, evidence
/// against it scales it down.
#[derive(Debug, Default, Clone, Copy)]
pub struct Confidence {
    evidence: f32,
    doubt: f32,
}

impl Confidence {
    /// Evidence for the category with `weight` in 0..1, when `seen`.
    pub fn support(&mut self, seen: bool, weight: f32) {
        if seen {
            self.evidence = 1.0 - (1.0 - self.evidence) * (1.0 - weight);
        }
    }

    /// Evidence against the category with `weight` in 0..1, when `seen`.
    pub fn doubt(&mut self, seen: bool, weight: f32) {
        if seen {
            self.doubt = 1.0 - (1.0 - self.doubt) * (1.0 - weight);
        }
    }

    /// The score, 0 to [`MAX_CONFIDENCE`].
    pub fn score(&self) -> f32 {
        (self.evidence * (1.0 - self.doubt)).min(MAX_CONFIDENCE)
    }
}

// Vocabulary both playbooks read.

/// The user says they cannot get in, without saying why.
pub const CANNOT_SIGN_IN: &[&str] = &[
    "can't|cant|cannot|unable|couldn't|couldnt log|sign in|into|on",
    "can't|cant|cannot|unable|couldn't|couldnt login|logon|signin",
    "can't|cant|cannot|unable|couldn't|couldnt to log|sign in|into|on",
    "can not log|sign in|into|on",
    "can't|cant|cannot|unable|couldn't|couldnt get in|into|on",
    "can't|cant|cannot|unable|couldn't|couldnt access my",
    "won't|wont|doesn't|doesnt let me in|log|sign",
    "authentication failed",
    "access denied",
];

/// The repeated failures that trip a lockout.
pub const REPEATED_FAILURES: &[&str] = &[
    "too many attempts|attempt|tries|goes|times|failed|failures|wrong|incorrect|bad",
    "too many sign|sign-in|login|logins|logon|logons|passwords",
    "too many * attempts|tries|goes|times|failures",
    "many|several|multiple|few|3|4|5|6|10 times|goes|attempts|tries",
    "many|several|multiple|few|3|4|5|6|10 failed|wrong|incorrect|bad",
];

/// The user remembers the password: whatever happened, it is not forgotten.
pub const KNOWS_THE_PASSWORD: &[&str] = &[
    "haven't|havent|hasn't|hasnt|not|never|didn't|didnt ~forgotten|forgot|forget",
    "i know my|the ~password",
    "i know my|the new|right|correct ~password|one",
    "i know it",
    "~password is definitely|still right|correct",
    "~password is right|correct",
    "caps lock on",
    "caps lock was on",
    "fat-fingered|mistyped|mis-typed",
    "fat fingered",
    "typed * wrong",
    "typed my ~password wrong",
];

/// "I haven't forgotten it": [`FORGOT`] words that say the opposite.
pub const NOT_FORGOTTEN: &[&str] =
    &["haven't|havent|hasn't|hasnt|not|never|didn't|didnt ~forgotten|forgot|forget"];

/// The user has forgotten something (a password, which one they chose, ...).
pub const FORGOT: &[&str] = &[
    "~forgot",
    "~forgotten",
    "forget",
    "can't|cant|cannot|couldn't|couldnt|don't|dont|not remember|recall",
    "can|do|does|did not remember|recall",
    "no idea what",
    "don't|dont know what * ~password",
    "don't|dont know my ~password",
];

/// A security concern: phishing, unsolicited resets, unusual sign-ins, compromise.
pub const SECURITY_CONCERN: &[&str] = &[
    "phishing",
    "phish",
    "suspicious",
    "scam",
    "spoof",
    "fraud",
    "fraudulent",
    "clicked|click a|the|on|this|that link",
    "clicked|click on a|the link",
    "bad|dodgy|weird|strange link",
    "click here",
    "didn't|didnt|never request|requested|ask|asked|trigger|triggered",
    "did not request|requested|ask|asked|trigger|triggered",
    "wasn't|wasnt|was not me",
    "not requested",
    "unusual activity|sign-in|sign-ins|login|logins|location",
    "unusual sign in",
    "suspicious activity",
    "another country",
    "compromised",
    "been hacked",
    "was hacked",
    "got hacked into",
    "account hacked",
    "is this|it|that legit|legitimate|real|genuine|safe|phishing",
    "safe to click|open",
    "looks a bit off",
    "looks off|dodgy|fake|suspicious",
    "should i be worried",
    "was that you|them",
    "asking|asked|asks for my ~password",
    "don't|dont|didn't|didnt|not recognise|recognize|recognised|recognized",
    "someone|somebody has|knows|got|used|stole my ~password",
    "someone|somebody else",
];

/// A thank-you reply: the problem is over.
pub const RESOLVED: &[&str] = &[
    "that|it|this worked",
    "that|it|this has worked",
    "all sorted",
    "sorted now",
    "all good now",
    "all working",
    "working now",
    "works now",
    "fixed now",
    "all fixed",
    "problem solved",
    "resolved now",
    "no longer need",
    "no longer needed",
    "you can|may close",
    "please close",
    "can be closed",
    "never mind",
    "nevermind",
    "i'm|im|i am in now",
    "got in now",
    "back in now",
];

/// Gratitude, which with "worked" or "sorted" makes a thank-you reply.
pub const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "thankyou",
    "cheers",
    "ta",
    "appreciated",
];

/// Words that say a reply is a complaint, not a thank-you.
pub const STILL_A_PROBLEM: &[&str] = &[
    "not", "isn't", "isnt", "doesn't", "doesnt", "didn't", "didnt", "aren't", "arent", "wasn't",
    "wasnt", "won't", "wont", "can't", "cant", "cannot", "couldn't", "couldnt", "haven't",
    "havent", "hasn't", "hasnt", "still", "again", "but", "however",
];

/// Panics on a pattern that cannot match as written: an empty slot, upper case or
/// punctuation `normalize` removes, or `~word` for a word that is not a key word. Call
/// it from a playbook's tests on its own pattern lists.
pub fn assert_well_formed(lists: &[&[&str]]) {
    for pattern in lists.iter().flat_map(|list| list.iter()) {
        for alt in pattern.split(' ').flat_map(|slot| slot.split('|')) {
            let word = alt.trim_start_matches('~').trim_start_matches('*');
            assert!(!alt.is_empty(), "an empty slot in {pattern:?}");
            assert!(
                word.chars()
                    .all(|c| { c.is_lowercase() || c.is_ascii_digit() || "'-.@".contains(c) }),
                "{alt:?} in {pattern:?} is not a normalized word"
            );
            if let Some(key) = alt.strip_prefix('~') {
                assert!(
                    KEY_WORDS.contains(&key),
                    "`~{key}` in {pattern:?} is not a key word"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_vocabulary_is_well_formed() {
        assert_well_formed(&[
            CANNOT_SIGN_IN,
            REPEATED_FAILURES,
            KNOWS_THE_PASSWORD,
            NOT_FORGOTTEN,
            FORGOT,
            SECURITY_CONCERN,
            RESOLVED,
            THANKS,
            STILL_A_PROBLEM,
        ]);
    }

    #[test]
    fn slips_of_the_keyboard_are_tolerated_but_not_other_words() {
        assert!(one_slip("pasword", "password"));
        assert!(one_slip("passwrod", "password"));
        assert!(one_slip("lcoked", "locked"));
        assert!(one_slip("acount", "account"));
        assert!(one_slip("fogot", "forgot"));
        assert!(one_slip("lockedd", "locked"));
        assert!(!one_slip("looked", "locked"));
        assert!(!one_slip("blocked", "locked"));
        assert!(!one_slip("clocked", "locked"));
        assert!(!one_slip("locker", "locked"));
        assert!(!one_slip("pass", "password"));
        assert!(!one_slip("rset", "reset"));
    }

    #[test]
    fn patterns_have_alternatives_wildcards_and_typos() {
        let w = Wording::from_parts("lcoked out", "I can't log in to my acount");
        assert!(w.any(&["~locked out"]));
        assert!(w.any(&["can't|cannot log|sign in"]));
        assert!(w.any(&["to * ~account"]));
        let quoted = Wording::from_parts("", "it says 'your account is locked' - what's up?");
        assert!(quoted.any(&["your account", "locked", "what's up"]));
        assert!(!w.any(&["locked out"]));
        assert!(w.near(&["~account"], &["~locked"], 8));
        assert!(!w.near(&["~account"], &["~locked"], 3));
        assert!(w.before(&["~locked"], &["~account"], 8));
        assert!(!w.before(&["~account"], &["~locked"], 8));
    }

    #[test]
    fn words_that_look_alike_to_the_index_are_told_apart() {
        // `the` and `tie` share first letter, last letter and length.
        let w = Wording::from_parts("", "tie the knot, then the tie");
        assert!(w.any(&["the knot"]));
        assert!(w.any(&["tie the"]));
        assert!(!w.any(&["tie knot"]));
        assert!(w.before(&["then"], &["tie"], 1));
        assert!(!w.before(&["tie"], &["then"], 1));
        assert!(w.any(&["* knot", "*e knot"]));
        assert!(!w.any(&["*ie knot"]));
    }

    #[test]
    fn quoted_history_and_mobile_signatures_are_not_the_requesters_words() {
        let w = Wording::from_parts(
            "RE: account",
            "It's happened again.\n\nSent from my iPhone\n\nOn Tue, Helpdesk wrote:\n> your \
             password was reset",
        );
        assert!(w.any(&["happened again"]));
        assert!(!w.any(&["iphone"]));
        assert!(!w.any(&["password"]));
        let w = Wording::from_parts(
            "x",
            "see below\n> quoted\n---------- Forwarded message\nlocked out",
        );
        assert!(
            w.any(&["locked out"]),
            "a forwarded message is the user's evidence"
        );
        assert!(!w.any(&["quoted"]));
    }

    #[test]
    fn a_thank_you_reply_is_resolved_unless_it_complains() {
        let thanks = Wording::from_parts("RE: Password reset - Resolved", "Thanks, that worked!");
        assert!(thanks.is_resolved_reply());
        let complaint = Wording::from_parts("RE: Resolved", "It worked yesterday but not today");
        assert!(!complaint.is_resolved_reply());
        let subject_only = Wording::from_parts("all sorted?", "no, I still can't sign in");
        assert!(!subject_only.is_resolved_reply());
        let worked = Wording::from_parts("Resolved", "Password reset worked, thanks for the help!");
        assert!(worked.is_resolved_reply());
    }

    #[test]
    fn confidence_stays_below_certainty() {
        let mut c = Confidence::default();
        c.support(true, 0.9);
        c.support(true, 0.9);
        assert_eq!(c.score(), MAX_CONFIDENCE);
        c.doubt(true, 0.9);
        assert!(c.score() < 0.1);
    }
}
