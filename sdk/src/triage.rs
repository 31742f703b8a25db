//! Scoring a ticket's words for `triage`. Phrases match on word boundaries in the
//! lower-cased subject and body (punctuation ignored, curly apostrophes straightened),
//! evidence for the category combines as a noisy-or, and evidence against it (a
//! look-alike such as "printer" for an unlock playbook) scales the score down.
//!
//! ```ignore
//! let score = Signals::new(ticket)
//!     .any(&["locked out", "account locked"], 0.8)
//!     .phrase("unlock", 0.5)
//!     .against(&["printer", "phishing"], 0.9)
//!     .score();
//! ```

use crate::Ticket;

/// Evidence for and against one category, read from a ticket's text.
#[derive(Debug, Clone)]
pub struct Signals {
    text: String,
    evidence: f32,
    doubt: f32,
}

/// Lower-case, straighten apostrophes, turn other punctuation into spaces and pad with
/// spaces so that ` phrase ` matches whole words only. A `.` or `-` stays only inside a
/// word (`e-mail`, `acme.test`).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut chars = text.chars().map(straighten).peekable();
    while let Some(c) = chars.next() {
        let keep = is_word_char(c)
            || ((c == '.' || c == '-')
                && out.chars().next_back().is_some_and(is_word_char)
                && chars.peek().is_some_and(|n| is_word_char(*n)));
        if keep {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

fn straighten(c: char) -> char {
    match c {
        '\u{2019}' | '\u{2018}' | '`' => '\'',
        c => c,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '@'
}

/// True when `phrase` is already in normalized form (lowercase words, single spaces).
fn is_normalized(phrase: &str) -> bool {
    !phrase.is_empty()
        && !phrase.starts_with(' ')
        && !phrase.ends_with(' ')
        && !phrase.contains("  ")
        && phrase
            .chars()
            .all(|c| c == ' ' || (is_word_char(c) && !c.is_uppercase()) || c == '.' || c == '-')
}

/// Whole-word search in normalized, space-padded `text`.
fn has_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        text.as_bytes().get(at.wrapping_sub(1)) == Some(&b' ')
            && text.as_bytes().get(at + phrase.len()) == Some(&b' ')
    })
}

impl Signals {
    /// Read the ticket's subject and body.
    pub fn new(ticket: &Ticket) -> Signals {
        Signals::from_text(&format!("{}\n{}", ticket.subject, ticket.body))
    }

    pub fn from_text(text: &str) -> Signals {
        Signals {
            text: normalize(text),
            evidence: 0.0,
            doubt: 0.0,
        }
    }

    /// True when the text has `phrase` as whole words.
    pub fn contains(&self, phrase: &str) -> bool {
        if is_normalized(phrase) {
            return has_words(&self.text, phrase);
        }
        let needle = normalize(phrase);
        let needle = needle.trim();
        !needle.is_empty() && has_words(&self.text, needle)
    }

    /// Evidence for the category when `phrase` appears, with `weight` in 0..1.
    pub fn phrase(mut self, phrase: &str, weight: f32) -> Signals {
        if self.contains(phrase) {
            self.evidence = 1.0 - (1.0 - self.evidence) * (1.0 - weight.clamp(0.0, 1.0));
        }
        self
    }

    /// Evidence for the category when any of `phrases` appears (counted once).
    pub fn any(mut self, phrases: &[&str], weight: f32) -> Signals {
        if phrases.iter().any(|p| self.contains(p)) {
            self.evidence = 1.0 - (1.0 - self.evidence) * (1.0 - weight.clamp(0.0, 1.0));
        }
        self
    }

    /// Evidence against the category when any of `phrases` appears.
    pub fn against(mut self, phrases: &[&str], weight: f32) -> Signals {
        if phrases.iter().any(|p| self.contains(p)) {
            self.doubt = 1.0 - (1.0 - self.doubt) * (1.0 - weight.clamp(0.0, 1.0));
        }
        self
    }

    /// The confidence, 0..1.
    pub fn score(&self) -> f32 {
        self.evidence * (1.0 - self.doubt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        let s = Signals::from_text("My account is LOCKED out!");
        assert!(s.contains("locked out"));
        assert!(!s.contains("lock"));
        assert!(!Signals::from_text("it unlocked itself").contains("locked"));
    }

    #[test]
    fn dots_and_dashes_stay_only_inside_words() {
        assert_eq!(
            normalize("E-mail me at ann@acme.test. -Thanks"),
            " e-mail me at ann@acme.test thanks "
        );
        assert!(Signals::from_text("Locked-out. Again").contains("Locked-Out"));
    }

    #[test]
    fn curly_apostrophes_are_straightened() {
        assert!(Signals::from_text("I can\u{2019}t log in").contains("can't log in"));
    }

    #[test]
    fn evidence_combines_and_doubt_scales_down() {
        let strong = Signals::from_text("locked out, please unlock")
            .phrase("locked out", 0.7)
            .phrase("unlock", 0.5)
            .score();
        assert!(strong > 0.8 && strong <= 1.0, "{strong}");
        let printer = Signals::from_text("the printer is locked out")
            .phrase("locked out", 0.7)
            .against(&["printer"], 0.9)
            .score();
        assert!(printer < 0.1, "{printer}");
    }
}
