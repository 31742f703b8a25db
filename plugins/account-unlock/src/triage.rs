//! How sure account-unlock is that the directory account is locked out and needs
//! unlocking, from the ticket's words alone (no host calls: triage runs for every plugin
//! on every ticket). A lockout in so many words, an account word next to "locked" (or
//! "blocked", "suspended"), the repeated failures that trip a lock, the sign-in page's
//! "try again later" and unlock requests are evidence. Evidence against: locks on
//! devices, doors, files and other applications' sign-ins, security concerns (a sign-in
//! blocked for unusual activity), thank-you replies, lockout-policy questions, disabled
//! accounts, and a forgotten password (a reset, not an unlock, gets the user in).
//! Measured on `tests/data/triage/` with `cargo bench -p capdesk --bench triage`.

use capdesk_sdk::Ticket;

use capdesk_sdk::wording::{
    CANNOT_SIGN_IN, Confidence, FORGOT, KNOWS_THE_PASSWORD, REPEATED_FAILURES, SECURITY_CONCERN,
    Wording,
};

/// Words for the directory account a lock applies to ("account", "user", "login", ...).
const ACCOUNT: &[&str] = &[
    "~account",
    "acct",
    "user",
    "username",
    "login|logon|log-in|sign-in|signin",
    "log|sign in|on",
    "profile",
    "windows",
];
/// The account's state: locked (and typos), or in other words blocked or suspended.
const LOCKED: &[&str] = &["~locked", "locking", "lockout", "lock"];
const BLOCKED: &[&str] = &["block", "blocked", "suspended", "timed me out", "timed out"];
/// A lockout in so many words.
const LOCKED_OUT: &[&str] = &[
    "~locked|locking|lock out",
    "lockout|lock-out|locked-out",
    "~locked myself|me out",
    "temporarily ~locked|blocked|suspended",
    "~locked|blocked|suspended temporarily",
    "~locked for * minutes|mins|min|hours|hour",
];
const UNLOCK: &[&str] = &[
    "~unlock",
    "unblock",
    "reactivate",
    "re-enable",
    "let me back in",
];
/// What tripped the lock, in the words of the sign-in page.
const LOCKOUT_MESSAGE: &[&str] = &["try again later", "too many sign-in|sign|login|logon"];

/// Locks on things that are not the directory account: devices, doors, files.
const LOCKABLE_THINGS: &[&str] = &[
    "printer|print|prints|key|keys|car|safe|room",
    "keyboard|numlock|screen|screensaver|phone|iphone|ipad|tablet|mobile|sim|puk|pin",
    "file|files|document|documents|pdf|spreadsheet|excel|workbook|folder|drive|usb|bitlocker",
];
/// Always someone else's lock: a device, a disk, a building.
const NOT_THE_DIRECTORY_ACCOUNT: &[&str] = &[
    "door|doors|gate|fob|keypad|drawer|cabinet|locker|padlock|keycard|barrier",
    "key|swipe|access|id card",
    "bitlocker",
    "recovery key",
    "windows hello",
    "puk",
    "sim locked",
    "num lock|numlock",
    "locked for editing",
    "read-only",
    "another|other user|session",
    "in use",
    "iphone|ipad|phone unavailable|disabled",
];
/// Locked out of a place, not an account (but "out of my Office 365" is the account).
const OUT_OF_A_PLACE: &[&str] = &["out of the|my office|building|house|car|room|flat|site"];
/// Applications with their own sign-in, not the directory's.
const APPS_WITH_THEIR_OWN_SIGN_IN: &[&str] = &[
    "sage|xero|quickbooks|twitter|facebook|instagram|linkedin|tiktok|gmail|hotmail|icloud|amazon|paypal|netflix|ebay",
    "apple id",
    "bank|banking",
];
/// Questions about the lockout rules, not a lockout.
const POLICY_QUESTION: &[&str] = &[
    "lockout policy|threshold|duration|settings",
    "how many attempts|tries|goes before",
    "how many attempts|tries|goes do|does|are|is",
    "threshold",
];
const DISABLED: &[&str] = &["disabled", "deactivated"];

/// How sure this playbook is that the directory account is locked out and needs
/// unlocking: a lockout in so many words, an account word next to "locked" (or
/// "blocked", "suspended"), the repeated failures that trip a lock, or an unlock
/// request, unless the lock is on a device, a door, a file or another application's
/// sign-in, the ticket is a security concern, a thank-you reply, a question, or the
/// password is forgotten (a reset, not an unlock, gets them in).
pub fn score(ticket: &Ticket) -> f32 {
    let w = Wording::new(ticket);
    let mut c = Confidence::default();
    c.support(w.any(LOCKED_OUT), 0.85);
    c.support(w.near(ACCOUNT, LOCKED, 3), 0.85);
    c.support(w.near(ACCOUNT, BLOCKED, 3), 0.6);
    c.support(
        w.near(UNLOCK, ACCOUNT, 3) || w.any(&["~unlock|unblock me|us|it"]),
        0.6,
    );
    c.support(w.any(UNLOCK), 0.45);
    c.support(w.any(LOCKED), 0.4);
    c.support(w.any(LOCKED) && w.word_count() <= 3, 0.6);
    c.support(w.any(REPEATED_FAILURES), 0.5);
    c.support(w.any(LOCKOUT_MESSAGE), 0.5);
    c.support(w.any(CANNOT_SIGN_IN), 0.25);
    c.support(w.any(KNOWS_THE_PASSWORD), 0.2);
    c.support(
        ticket.field("request_type").is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("unlock") || t.contains("locked")
        }),
        0.3,
    );

    let lock_words = [LOCKED, BLOCKED, UNLOCK].concat();
    c.doubt(
        w.before(LOCKABLE_THINGS, &lock_words, 3) || w.before(&lock_words, LOCKABLE_THINGS, 2),
        0.9,
    );
    c.doubt(w.any(NOT_THE_DIRECTORY_ACCOUNT), 0.9);
    c.doubt(w.any(OUT_OF_A_PLACE) && !w.any(&["365"]), 0.9);
    c.doubt(w.near(APPS_WITH_THEIR_OWN_SIGN_IN, &lock_words, 4), 0.9);
    c.doubt(w.any(SECURITY_CONCERN), 0.9);
    c.doubt(w.is_resolved_reply(), 0.9);
    c.doubt(w.any(POLICY_QUESTION), 0.7);
    c.doubt(w.any(DISABLED), 0.7);
    c.doubt(w.any(FORGOT) && !w.any(KNOWS_THE_PASSWORD), 0.6);
    c.score()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capdesk_sdk::Person;
    use capdesk_sdk::wording::MAX_CONFIDENCE;

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
    fn the_vocabulary_is_well_formed() {
        capdesk_sdk::wording::assert_well_formed(&[
            ACCOUNT,
            LOCKED,
            BLOCKED,
            LOCKED_OUT,
            UNLOCK,
            LOCKOUT_MESSAGE,
            LOCKABLE_THINGS,
            NOT_THE_DIRECTORY_ACCOUNT,
            OUT_OF_A_PLACE,
            APPS_WITH_THEIR_OWN_SIGN_IN,
            POLICY_QUESTION,
            DISABLED,
        ]);
    }

    #[test]
    fn lockouts_in_many_words_are_claimed() {
        for (subject, body) in [
            ("Locked", "hi im lockd out"),
            (
                "account lock",
                "Got an account lock message on my PC, please release it",
            ),
            ("", "It says too many incorrect attempts, please wait"),
            (
                "",
                "My account has been blocked after the wrong password several times",
            ),
            (
                "locked again",
                "My login is locked again. Probably the iPad with the old password",
            ),
            (
                "",
                "my user has been temporarily suspended after failed logins",
            ),
            ("unlock", "please unlock me, tried too many times"),
            (
                "Office 365",
                "Office 365 locked me out, try again later it says",
            ),
            ("", "user lockout on jsmith please clear"),
            ("Office 365", "I'm locked out of my Office 365 account"),
            (
                "",
                "locked out again, how long does the lock last? I need to work",
            ),
            ("", "can't sign in, my account is temporarily locked"),
            (
                "Teams",
                "says my account is locked. I haven't forgotten my password.",
            ),
            (
                "30 minute lock",
                "I can't access my account, it says locked for 30 minutes",
            ),
            (
                "Can't log in",
                "Unable to log in, message says locked.\n\nSent from my iPhone",
            ),
        ] {
            let s = score_of(subject, body);
            assert!(
                (0.5..=MAX_CONFIDENCE).contains(&s),
                "{subject} / {body}: {s}"
            );
        }
    }

    #[test]
    fn look_alikes_stay_below_the_threshold() {
        for (subject, body) in [
            ("Locker key", "I've lost the key to my locker"),
            ("Locked file", "Word says the document is locked by me"),
            ("Screen", "My screen locks while I'm presenting"),
            ("Car park", "Locked out of the car park, barrier won't open"),
            ("Xero", "xero has locked my account after too many tries"),
            (
                "USB",
                "My USB stick is blocked on the laptop, can you unblock it?",
            ),
            ("", "Microsoft blocked my sign-in due to unusual activity"),
            (
                "Thank you",
                "All sorted, I'm back in now. Thanks for unlocking my account!",
            ),
            (
                "",
                "What is our account lockout threshold? An auditor asked",
            ),
            ("Safe", "The safe is locked and the manager is away"),
            (
                "Phone PIN",
                "Forgot the PIN on my work phone and now it's locked for 5 minutes",
            ),
            (
                "",
                "Windows Hello says my PIN was entered incorrectly too many times",
            ),
            ("", "my account says it's been disabled since I came back"),
            (
                "Locked out",
                "Locked out of my laptop, I set a new password and cannot remember it",
            ),
            (
                "",
                "Sign-in alert from a location I don't recognise, now my account is locked",
            ),
        ] {
            let s = score_of(subject, body);
            assert!(s < 0.5, "{subject} / {body}: {s}");
        }
    }
}
