//! How sure password-reset is that a ticket asks for the directory password to be set
//! again, from the ticket's words alone (no host calls: triage runs for every plugin on
//! every ticket). A password word together with what happened to it (forgotten, expired,
//! not accepted, never arrived) or a request for a new one is evidence; so, weakly, are
//! the word "password" alone, "reset" and "can't log in". Evidence against: a password
//! that is not the directory's (Wi-Fi, PDF, a phone passcode, social media), security
//! concerns (phishing, unsolicited resets), questions and policy, a password that works,
//! a thank-you reply, and a lockout whose owner knows the password (an unlock).
//! Measured on `tests/data/triage/` with `cargo bench -p capdesk --bench triage`.

use capdesk_sdk::Ticket;

use capdesk_sdk::wording::{
    CANNOT_SIGN_IN, Confidence, FORGOT, KNOWS_THE_PASSWORD, NOT_FORGOTTEN, REPEATED_FAILURES,
    SECURITY_CONCERN, Wording,
};

/// Words for the directory password (and typos of it). `pass` alone is too common a
/// word; it counts only right next to what happened to it (see [`score`]).
const PASSWORD: &[&str] = &[
    "~password",
    "passwd",
    "pw",
    "pwd",
    "pass word",
    "passcode",
    "credentials",
    "login|logon|log-in|sign-in details|info",
    "log in|on details",
    "sign in details",
    "my login|logon|log-in",
];

/// What happened to the password, or what the user needs for it.
const EXPIRED: &[&str] = &["~expired", "run out", "ran out", "timed out"];
/// A password that will expire soon still works: weak evidence on its own.
const EXPIRING: &[&str] = &["expire", "expires", "expiring", "expiry"];
const REJECTED: &[&str] = &[
    "wrong",
    "incorrect",
    "invalid",
    "rejected",
    "not|no|isn't|isnt|wasn't|never accepted|accepting|recognised|recognized",
    "not|no|isn't|isnt|wasn't|never * accepted|accepting|recognised|recognized",
    "won't|wont|doesn't|doesnt|didn't|didnt accept|take|work|like",
    "will|does|did not accept|take|work|like",
    "not|isn't|isnt|aren't|arent|stopped working",
    "no longer works|working",
];
const NOT_RECEIVED: &[&str] = &[
    "never|not received|got|arrived|came|reached",
    "didn't|didnt|hasn't|hasnt|haven't|havent|did|has|have|never receive|received|get|arrive|arrived|come",
];
const NEED_A_NEW_ONE: &[&str] = &[
    "reset|resett|new|temporary|temp|another|change",
    "reset|set * for me",
];
/// Next to a password word, `pass` means the password: "pass expired", "reset pass".
const NEXT_TO_PASS: &[&str] = &[
    "expired",
    "expires",
    "reset",
    "word",
    "forgot",
    "forgotten",
    "wrong",
    "incorrect",
];

/// Things with passwords of their own, when the password is theirs ("the PDF password",
/// "a password on a spreadsheet").
const THINGS_WITH_PASSWORDS: &[&str] = &[
    "pdf|spreadsheet|excel|workbook|zip|document|file|files|attachment|folder",
    "printer|printers|scanner|copier|router|server|website|site|portal|app",
    "admin|administrator|local",
];
/// A password that is not the user's directory password, or a device or file "reset".
const NOT_THE_DIRECTORY_PASSWORD: &[&str] = &[
    "wifi|wi-fi|wireless|bios|uefi|bitlocker|router|voicemail|pin|puk",
    "~password protected|protect",
    "password-protected",
    "twitter|facebook|instagram|linkedin|tiktok|youtube|gmail|hotmail|icloud|amazon|paypal|netflix|ebay",
    "apple id",
    "social media",
    "phone|iphone|ipad|tablet|mobile passcode|pin|code|unlock|locked",
    "phone|iphone|ipad|tablet|mobile is|was|got|keeps locked|locking|disabled|unavailable",
    "locked|lock|unlock my|the|a phone|iphone|ipad|tablet|mobile",
    "personal account|email|gmail|hotmail|icloud",
    "bank|banking",
    "password manager",
    "bitwarden|lastpass|1password|keepass|dashlane",
    "factory reset",
];
/// Resetting a device, not a password ("reset my laptop", but not "reset my laptop
/// password").
const RESETS_A_DEVICE: &[&str] = &[
    "reset|wipe|rebuild|reimage my|the|this|a laptop|pc|computer|phone|tablet|device",
    "laptop|pc|computer|phone|tablet|device reset",
];
const DEVICE_PASSWORD: &[&str] = &["laptop|pc|computer|device|windows ~password|login|logon|pw"];
/// Somebody else's or a shared secret: a technician decides.
const ASKS_FOR_A_SECRET: &[&str] = &[
    "tell|give|send me his|her|their|your|the|*'s ~password",
    "tell|give|send me the * ~password",
    "who has|knows the ~password",
    "what's|whats the ~password",
    "what is the ~password",
];
/// How-to and policy questions about passwords.
const QUESTION_OR_POLICY: &[&str] = &[
    "how do|can|should i change",
    "how to change",
    "where do|can i change",
    "how often",
    "can|could|should we make|turn|set|enforce|stop|switch|require",
    "never expire",
    "can|should i just|simply ignore",
    "can|should i ignore",
    "do|will i need|have to change",
    "~password policy|policies|rules",
    "enforce|enforced|enforcing",
    "how long should",
    "all staff|users|accounts|employees",
    "every user|account",
    "for everyone",
];
/// The password is known and works: not a reset.
const PASSWORD_WORKS: &[&str] = &[
    "can log|sign in|into|on fine",
    "can log|sign in|into|on * fine",
    "can log|sign in|into|on * * fine",
    "it's|its correct",
    "it is correct",
    "~password is fine",
    "everything else is fine",
    "works fine",
    "~password works|worked",
    "~password prompt|prompts|popup|pop-up|pop-ups|popups",
    "keeps|keep asking|prompting|popping",
];
/// A locked account or an unlock request: the unlock playbook's ticket.
const LOCKED: &[&str] = &[
    "~locked",
    "lockout",
    "lock out",
    "lock-out",
    "~unlock",
    "unblock",
    "try again later",
];
/// Second-factor vocabulary: the MFA playbook's ticket.
const SECOND_FACTOR: &[&str] = &[
    "mfa|2fa|authenticator|otp",
    "two|2 factor|step",
    "two-factor|two-step|2-step",
    "phone sign-in",
    "phone sign in",
    "sign-in|verification|security code|codes",
    "number matching",
];
const DISABLED: &[&str] = &["disabled", "deactivated"];

/// How sure this playbook is that the ticket asks for the directory password to be set
/// again: a password word together with what happened to it (forgotten, expired, not
/// accepted) or a request for a new one, unless the password is not the directory's,
/// the ticket is a security concern, a question, a thank-you reply, or a lockout of an
/// account whose password the user knows.
pub fn score(ticket: &Ticket) -> f32 {
    let w = Wording::new(ticket);
    let mut c = Confidence::default();
    let forgot = w.near(PASSWORD, FORGOT, 8) && !w.any(NOT_FORGOTTEN);
    c.support(forgot, 0.85);
    c.support(w.near(PASSWORD, EXPIRED, 6), 0.8);
    c.support(w.near(PASSWORD, EXPIRING, 6), 0.45);
    c.support(w.near(PASSWORD, NEED_A_NEW_ONE, 2), 0.8);
    c.support(w.near(PASSWORD, REJECTED, 8), 0.7);
    c.support(w.near(PASSWORD, NOT_RECEIVED, 6), 0.7);
    c.support(
        w.near(&["pass"], NEXT_TO_PASS, 0) || w.any(&["reset|forgot|forgotten my pass"]),
        0.8,
    );
    c.support(
        w.any(&[
            "what's|whats my ~password|pw|login",
            "what is my ~password|pw|login",
        ]),
        0.7,
    );
    let says_password = w.any(&["~password|passwd|pw|pwd|passcode", "pass word"]);
    c.support(says_password, 0.45);
    c.support(!says_password && w.any(PASSWORD), 0.3);
    c.support(w.any(PASSWORD) && w.word_count() <= 3, 0.6);
    c.support(w.any(&["reset", "resett"]), 0.25);
    c.support(w.any(CANNOT_SIGN_IN), 0.25);
    c.support(
        ticket
            .field("request_type")
            .is_some_and(|t| t.to_ascii_lowercase().contains("password")),
        0.3,
    );

    c.doubt(w.any(NOT_THE_DIRECTORY_PASSWORD), 0.9);
    c.doubt(w.any(RESETS_A_DEVICE) && !w.any(DEVICE_PASSWORD), 0.9);
    c.doubt(w.near(THINGS_WITH_PASSWORDS, PASSWORD, 2), 0.9);
    c.doubt(w.any(SECURITY_CONCERN), 0.9);
    c.doubt(w.any(ASKS_FOR_A_SECRET), 0.85);
    c.doubt(w.any(QUESTION_OR_POLICY), 0.75);
    c.doubt(w.any(PASSWORD_WORKS), 0.7);
    c.doubt(w.is_resolved_reply(), 0.9);
    c.doubt(w.any(DISABLED), 0.7);
    c.doubt(w.any(SECOND_FACTOR), 0.4);
    let lockout = w.any(LOCKED) || w.any(REPEATED_FAILURES);
    c.doubt(!forgot && w.any(KNOWS_THE_PASSWORD), 0.8);
    c.doubt(!forgot && lockout, 0.5);
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
            PASSWORD,
            EXPIRED,
            EXPIRING,
            REJECTED,
            NOT_RECEIVED,
            NEED_A_NEW_ONE,
            NEXT_TO_PASS,
            THINGS_WITH_PASSWORDS,
            NOT_THE_DIRECTORY_PASSWORD,
            RESETS_A_DEVICE,
            DEVICE_PASSWORD,
            ASKS_FOR_A_SECRET,
            QUESTION_OR_POLICY,
            PASSWORD_WORKS,
            LOCKED,
            SECOND_FACTOR,
            DISABLED,
        ]);
    }

    #[test]
    fn forgotten_expired_and_refused_passwords_are_claimed() {
        for (subject, body) in [
            (
                "Forgotten password",
                "I've completely forgotten my password after two weeks off",
            ),
            ("pw expired", "my pw expired overnight, cant get on"),
            (
                "",
                "could you issue me a temporary password? Mine stopped working",
            ),
            (
                "Login issue",
                "My login details are being rejected on the laptop",
            ),
            ("help", "I cant remember my password for windows"),
            ("credentials", "my credentials stopped working this morning"),
            (
                "new starter",
                "Tom never received his initial password, can you send a new one?",
            ),
            ("expired pass", "pass expired again, need a new one"),
            ("reset", "can u reset my pass pls"),
            ("PASWORD", "PASWORD EXPIRED"),
            ("", "I am not remember the password of my computer"),
            (
                "Sign in",
                "'Incorrect username or password'. I must have forgotten it",
            ),
            (
                "Teams",
                "Teams says I'm locked out, I set a new password on Friday and cannot remember it",
            ),
            (
                "uh oh",
                "what's my password? the post-it with it went in the bin",
            ),
            ("password", ""),
            ("", "Please reset my computer password, I can't remember it"),
            (
                "",
                "My new password doesn't meet the policy and now the old one has expired",
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
            (
                "Password manager",
                "Which password manager are we allowed to use?",
            ),
            (
                "Strange email",
                "An email says my password expires unless I click a link. Is this real?",
            ),
            (
                "",
                "Got a password reset code by text that I never asked for",
            ),
            (
                "Resolved",
                "Password reset worked, thanks for the quick help!",
            ),
            ("Router", "I need the admin password for the router"),
            ("", "What's the password for tomorrow's Zoom meeting?"),
            (
                "Expiry",
                "Can we make passwords never expire for the warehouse accounts?",
            ),
            (
                "Reminder",
                "I keep getting 'your password expires in 5 days' emails. Can I ignore them?",
            ),
            (
                "",
                "Outlook keeps asking for my password even though the password works",
            ),
            (
                "Phone",
                "locked my phone, forgot the passcode, it's the company iPhone",
            ),
            (
                "Instagram",
                "I forgot the password for our Instagram account",
            ),
            ("Excel", "I put a password on a spreadsheet and forgot it"),
            ("Laptop", "please reset my laptop, it's full of junk"),
            (
                "Policy",
                "Our insurer wants 14-character passwords for all staff",
            ),
            (
                "",
                "Someone from 'IT' called asking for my password. Was that you?",
            ),
            (
                "",
                "can you tell me Mark's password? I need a file from his laptop",
            ),
            (
                "Locked out",
                "locked out after too many attempts, I know my password",
            ),
            (
                "",
                "I haven't forgotten my password, my account is just locked",
            ),
        ] {
            let s = score_of(subject, body);
            assert!(s < 0.5, "{subject} / {body}: {s}");
        }
    }

    #[test]
    fn quoted_history_does_not_count_but_a_forwarded_notice_does() {
        let reply =
            "It's about the printer now.\n\nOn Mon, Helpdesk wrote:\n> we have reset your password";
        assert!(score_of("RE: ticket", reply) < 0.5);
        let forward = "now it won't let me in\n---------- Forwarded message ---------\nYour password has expired";
        assert!(score_of("Fwd: notice", forward) >= 0.5);
    }
}
