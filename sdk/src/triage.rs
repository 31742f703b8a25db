//! Scoring a ticket's words for `triage`. Phrases match on word boundaries in the
//! lower-cased subject and body (punctuation ignored, curly apostrophes straightened),
//! evidence for the category combines as a noisy-or, and evidence against it (a
//! look-alike such as "printer" for an unlock playbook) scales the score down. The
//! ticket's words go into a small hash table once (`WordTable`, which
//! [`crate::wording`] uses too), so a phrase is looked for only where its first word
//! starts, not searched for in the whole text.
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
    /// The normalized text (see [`normalize`]).
    text: String,
    /// Where each word of `text` starts (a byte offset), by the word.
    starts: WordTable,
    evidence: f32,
    doubt: f32,
}

/// Lower-case, straighten apostrophes, turn other punctuation into spaces and pad with
/// spaces so that ` phrase ` matches whole words only. A `.` or `-` stays only inside a
/// word (`e-mail`, `acme.test`).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] `text` onto the end of `out`, which ends with a space (as normalized
/// text does), and end it with a space: normalizing two pieces one after the other gives
/// what normalizing them with a line break between gives.
pub(crate) fn normalize_into(text: &str, out: &mut String) {
    debug_assert!(out.ends_with(' '));
    // Whether the last char written is a word char (a `.` or `-` needs one before it).
    let mut after_word = false;
    for (i, c) in text.char_indices() {
        if let Some(&kind) = ASCII.get(c as usize) {
            if kind > DOT_OR_DASH {
                out.push(char::from(kind));
                after_word = true;
                continue;
            }
            if kind == DOT_OR_DASH && after_word && starts_with_word_char(&text[i + 1..]) {
                out.push(c);
                after_word = false;
                continue;
            }
        } else {
            let c = straighten(c);
            if is_word_char(c) {
                for lower in c.to_lowercase() {
                    out.push(lower);
                    after_word = is_word_char(lower);
                }
                continue;
            }
        }
        if !out.ends_with(' ') {
            out.push(' ');
        }
        after_word = false;
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
}

/// [`normalize`]'s reading of each ASCII char: a word char's lowercase form (a backtick
/// is an apostrophe), [`DOT_OR_DASH`], or [`OTHER`] for a char that turns into a space.
const ASCII: [u8; 128] = {
    let mut kinds = [OTHER; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        kinds[b] = match c {
            b'a'..=b'z' | b'0'..=b'9' | b'\'' | b'@' => c,
            b'A'..=b'Z' => c.to_ascii_lowercase(),
            b'`' => b'\'',
            b'.' | b'-' => DOT_OR_DASH,
            _ => OTHER,
        };
        b += 1;
    }
    kinds
};
const OTHER: u8 = 0;
const DOT_OR_DASH: u8 = 1;

/// `text` starts with a word char (what lets a `.` or `-` before it stay).
fn starts_with_word_char(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| is_word_char(straighten(c)))
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
    // One pass over the bytes of an ASCII phrase; the first other byte sends the whole
    // phrase to the check on chars.
    let mut previous = b' ';
    for &b in phrase.as_bytes() {
        let fits = match b {
            b' ' => previous != b' ',
            b'a'..=b'z' | b'0'..=b'9' | b'\'' | b'@' | b'.' | b'-' => true,
            0x80.. => return is_normalized_unicode(phrase),
            _ => false,
        };
        if !fits {
            return false;
        }
        previous = b;
    }
    previous != b' '
}

/// [`is_normalized`] for a phrase with non-ASCII chars, char by char.
fn is_normalized_unicode(phrase: &str) -> bool {
    !phrase.is_empty()
        && !phrase.starts_with(' ')
        && !phrase.ends_with(' ')
        && !phrase.contains("  ")
        && phrase
            .chars()
            .all(|c| c == ' ' || (is_word_char(c) && !c.is_uppercase()) || c == '.' || c == '-')
}

/// Whole-word search in normalized, space-padded `text`, the way [`str::match_indices`]
/// finds matches: a match that overlaps an earlier, rejected one is not seen (see
/// [`Signals::has_words`]).
fn has_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        text.as_bytes().get(at.wrapping_sub(1)) == Some(&b' ')
            && text.as_bytes().get(at + phrase.len()) == Some(&b' ')
    })
}

/// A normalized phrase that can overlap itself at a word boundary (`on and on`): a later
/// end of it equals its beginning.
fn overlaps_itself(phrase: &str) -> bool {
    phrase
        .bytes()
        .enumerate()
        .any(|(i, b)| b == b' ' && phrase.as_bytes().starts_with(&phrase.as_bytes()[i + 1..]))
}

/// The part of `s` before the first `byte` (all of it when there is none); `byte` is
/// ASCII. A byte loop: the strings are short words and patterns.
#[inline]
pub(crate) fn up_to(s: &str, byte: u8) -> &str {
    match s.bytes().position(|b| b == byte) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// The words of normalized, space-padded text (as [`normalize`] writes it), each with
/// the byte offset where it starts.
pub(crate) fn words_at(normalized: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 1;
    std::iter::from_fn(move || {
        if at >= normalized.len() {
            return None;
        }
        let word = up_to(&normalized[at..], b' ');
        let found = (at, word);
        at += word.len() + 1;
        Some(found)
    })
}

/// Where the words of a text are, found by the word without a scan: a hash table keyed
/// by a word's first byte, last byte and length, which cost nothing to read off a word
/// of a phrase or pattern that is being scanned anyway. Words that share the key come
/// back together: the caller compares the words themselves.
#[derive(Debug, Clone)]
pub(crate) struct WordTable {
    /// Per bucket, 1 + the number of its last entry, or 0 when it has none.
    heads: Vec<usize>,
    /// Turns a key's hash into a bucket number (32 - log2 of the bucket count).
    shift: u32,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u32,
    value: usize,
    /// 1 + the number of the bucket's previous entry, or 0.
    next: usize,
}

impl WordTable {
    /// An empty table for about `n` words: mostly empty buckets, so that a word of a
    /// pattern that the text does not have finds an empty one.
    pub(crate) fn with_capacity(n: usize) -> WordTable {
        let buckets = n.saturating_mul(8).clamp(16, 1 << 24).next_power_of_two();
        WordTable {
            heads: vec![0; buckets],
            shift: 32 - buckets.trailing_zeros(),
            entries: Vec::with_capacity(n),
        }
    }

    /// Files `value` (a word number or position) under `word`.
    pub(crate) fn insert(&mut self, word: &str, value: usize) {
        let key = Self::key(word);
        let bucket = self.bucket(key);
        self.entries.push(Entry {
            key,
            value,
            next: self.heads[bucket],
        });
        self.heads[bucket] = self.entries.len();
    }

    /// The values filed under `word` and under the words that share its key.
    #[inline]
    pub(crate) fn find(&self, word: &str) -> impl Iterator<Item = usize> + '_ {
        let key = Self::key(word);
        let mut next = self.heads[self.bucket(key)];
        std::iter::from_fn(move || {
            while next != 0 {
                let entry = self.entries[next - 1];
                next = entry.next;
                if entry.key == key {
                    return Some(entry.value);
                }
            }
            None
        })
    }

    /// The first byte, the last byte and the length (truncated: a longer word only
    /// shares its key with more words).
    #[inline]
    fn key(word: &str) -> u32 {
        match (word.as_bytes().first(), word.as_bytes().last()) {
            (Some(&first), Some(&last)) => {
                u32::from(first) | u32::from(last) << 8 | (word.len() as u32) << 16
            }
            _ => 0,
        }
    }

    /// Fibonacci hashing: the top bits of the key times 2^32 / φ.
    #[inline]
    fn bucket(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b9) >> self.shift) as usize
    }
}

impl Signals {
    /// Read the ticket's subject and body.
    pub fn new(ticket: &Ticket) -> Signals {
        Signals::from_text(&format!("{}\n{}", ticket.subject, ticket.body))
    }

    pub fn from_text(text: &str) -> Signals {
        let text = normalize(text);
        let mut starts = WordTable::with_capacity(text.bytes().filter(|&b| b == b' ').count());
        for (at, word) in words_at(&text) {
            starts.insert(word, at);
        }
        Signals {
            text,
            starts,
            evidence: 0.0,
            doubt: 0.0,
        }
    }

    /// True when the text has `phrase` as whole words.
    pub fn contains(&self, phrase: &str) -> bool {
        if is_normalized(phrase) {
            return self.has_words(phrase);
        }
        let needle = normalize(phrase);
        let needle = needle.trim();
        !needle.is_empty() && self.has_words(needle)
    }

    /// Whole-word search for a normalized phrase, only where its first word starts. The
    /// search was once `str::match_indices`, which misses a match overlapping an earlier,
    /// rejected one (`on and on` in ` won and on and on `); the rare phrase that can
    /// overlap itself is checked that way again, so that no result changes.
    fn has_words(&self, phrase: &str) -> bool {
        let text = self.text.as_bytes();
        let found = self.starts.find(up_to(phrase, b' ')).any(|at| {
            text[at..].starts_with(phrase.as_bytes()) && text.get(at + phrase.len()) == Some(&b' ')
        });
        found && (!overlaps_itself(phrase) || has_words(&self.text, phrase))
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
    fn phrases_are_found_where_a_substring_search_finds_them() {
        let texts = [
            "tie the knot, then untie the tie",
            "won and on and on",
            "a a a",
            "Re: re-register my re-registration",
            "",
        ];
        let phrases = [
            "the",
            "tie",
            "the tie",
            "untie the",
            "tie the",
            "on and on",
            "and on",
            "a a",
            "a a a",
            "re",
            "re-register",
            "Re-Register",
            "my re",
            "knot then",
            "",
            " ",
        ];
        for text in texts {
            let signals = Signals::from_text(text);
            let normalized = normalize(text);
            for phrase in phrases {
                let needle = normalize(phrase);
                let needle = needle.trim();
                let expected = !needle.is_empty() && has_words(&normalized, needle);
                assert_eq!(signals.contains(phrase), expected, "{phrase:?} in {text:?}");
            }
        }
        // `str::match_indices` never saw the second `on and on` (it overlaps `won and
        // on`), and neither does the word table.
        assert!(!Signals::from_text("won and on and on").contains("on and on"));
    }

    #[test]
    fn normalizing_pieces_is_normalizing_the_lines_they_make() {
        let pieces = [
            "Re: E-mail -",
            "- ann@acme.test.",
            "",
            "Can\u{2019}t `log` in...",
            "x",
        ];
        let mut out = String::from(" ");
        for piece in pieces {
            normalize_into(piece, &mut out);
        }
        assert_eq!(out, normalize(&pieces.join("\n")));
    }

    #[test]
    fn other_scripts_are_lowercased_a_char_at_a_time() {
        assert_eq!(normalize("ÀÉÎ STRAẞE ΣΟΦΟΣ"), " àéî straße σοφοσ ");
        assert!(Signals::from_text("NAÏVE Café").contains("naïve café"));
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
