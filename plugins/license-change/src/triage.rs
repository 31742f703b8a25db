//! How sure this playbook is that a ticket asks to add, remove or move a per-user
//! license: read from the words users write ("need a Visio licence", "upgrade me to
//! E5", "take Copilot off my account", "it says I need a Power BI Pro license") and
//! the intake's fields. Licences that are not per-user directory subscriptions
//! (Windows activation, product keys, licence servers, renewals and quotes, driving
//! licences, licence plates, image and music licensing) and whole-account on- and
//! offboarding stay low. Pure: no host calls.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::Signals;

use crate::catalogue;

/// The highest score this playbook gives: a test guest with a structured field must be
/// able to outbid it.
const CEILING: f32 = 0.95;

const LICENSE_WORDS: &[&str] = &[
    "license",
    "licence",
    "licenses",
    "licences",
    "licensed",
    "licenced",
    "licensing",
    "licencing",
    "unlicensed",
    "unlicenced",
    "subscription",
];

/// Products sold as per-user add-ons the catalogue does not name.
const OTHER_PRODUCTS: &[&str] = &[
    "teams premium",
    "planner premium",
    "planner plan",
    "project plan 1",
    "project for the web",
    "visio plan 1",
    "power automate premium",
    "power automate",
    "power apps",
    "powerapps",
    "dynamics 365",
    "exchange online archiving",
    "exchange online plan",
    "audio conferencing",
    "business basic",
    "business standard",
    "m365 apps",
    "microsoft 365 apps",
    "office 365 apps",
];

/// Asking for something, or for a change.
const CHANGE_WORDS: &[&str] = &[
    "assign",
    "assigned",
    "add",
    "added",
    "remove",
    "removed",
    "take",
    "taken",
    "upgrade",
    "upgraded",
    "downgrade",
    "downgraded",
    "move",
    "moved",
    "swap",
    "switch",
    "reassign",
    "give",
    "get",
    "need",
    "needs",
    "want",
    "have",
    "put",
    "request",
    "requesting",
    "approved",
    "stop paying",
    "cheaper",
];

/// What a missing license looks like to the user.
const MISSING_LICENSE: &[&str] = &[
    "don't have a license",
    "don't have a licence",
    "do not have a license",
    "do not have a licence",
    "doesn't have a license",
    "doesn't have a licence",
    "no license",
    "no licence",
    "need a license",
    "need a licence",
    "needs a license",
    "needs a licence",
    "requires a license",
    "requires a licence",
    "unlicensed product",
    "upgrade to pro",
    "only have the web",
    "web versions",
    "web version of",
    "desktop apps",
    "desktop app",
    "desktop version",
    "dial-in number",
    "read-only mode",
];

/// Licences that are not per-user directory subscriptions, and questions about them.
const NOT_A_USER_LICENSE: &[&str] = &[
    "license plate",
    "licence plate",
    "number plate",
    "driving licence",
    "driving license",
    "driver's license",
    "driver's licence",
    "drivers license",
    "drivers licence",
    "driver license",
    "product key",
    "activate",
    "activated",
    "activating",
    "activation",
    "license server",
    "licence server",
    "license key",
    "licence key",
    "renewal",
    "renew",
    "quote",
    "invoice",
    "expire",
    "expires",
    "how many",
    "audit",
    "compliance question",
    "music",
    "photo",
    "photos",
    "image",
    "images",
    "font",
    "fonts",
    "tv licence",
    "tv license",
    "open source",
    "home pc",
    "personal laptop",
];

/// Whole-account on- and offboarding lists licences among many steps.
const WHOLE_ACCOUNT: &[&str] = &[
    "set up her account",
    "set up his account",
    "set up their account",
    "set up the account",
    "disable his account",
    "disable her account",
    "disable their account",
    "disable the account",
    "laptop ready",
    "collect his laptop",
    "collect her laptop",
    "onboarding",
    "offboarding",
    "starter checklist",
    "leaver checklist",
];

const SECURITY: &[&str] = &["phishing", "suspicious", "scam", "hacked", "compromised"];

fn noisy_or(evidence: f32, weight: f32) -> f32 {
    1.0 - (1.0 - evidence) * (1.0 - weight)
}

fn any(text: &Signals, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| text.contains(p))
}

/// The confidence, 0..=0.95.
pub fn score(ticket: &Ticket) -> f32 {
    let text = Signals::new(ticket);
    let license_word = any(&text, LICENSE_WORDS);
    let product = !catalogue::mentioned(&text).is_empty() || any(&text, OTHER_PRODUCTS);
    let change = any(&text, CHANGE_WORDS);

    let mut evidence = 0.0;
    if license_word {
        evidence = noisy_or(evidence, 0.5);
        if change {
            evidence = noisy_or(evidence, 0.6);
        }
    }
    if product {
        evidence = noisy_or(evidence, 0.3);
        if change {
            evidence = noisy_or(evidence, 0.55);
        }
        if license_word {
            evidence = noisy_or(evidence, 0.5);
        }
    }
    if any(&text, MISSING_LICENSE) {
        evidence = noisy_or(evidence, 0.6);
    }
    if ticket.field("license").is_some() || ticket.field("sku").is_some() {
        evidence = noisy_or(evidence, 0.9);
    }
    if ticket
        .field("request_type")
        .is_some_and(|t| Signals::from_text(t).contains("licensing") || t.contains("icens"))
    {
        evidence = noisy_or(evidence, 0.3);
    }

    let mut doubt = 0.0;
    if any(&text, NOT_A_USER_LICENSE) {
        doubt = noisy_or(doubt, 0.85);
    }
    if any(&text, WHOLE_ACCOUNT) {
        doubt = noisy_or(doubt, 0.7);
    }
    if any(&text, SECURITY) {
        doubt = noisy_or(doubt, 0.9);
    }
    (evidence * (1.0 - doubt)).min(CEILING)
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

    #[test]
    fn real_phrasings_are_claimed() {
        for (subject, body) in [
            ("Upgrade to E5", "Can my account be upgraded to E5?"),
            ("visio", "need a Visio license please"),
            (
                "",
                "remove Power BI Pro from leaver Steve, we stop paying for it",
            ),
            (
                "Licence change",
                "Move me from Business Standard to Business Premium please",
            ),
            (
                "power bi",
                "it says you need a Power BI Pro license to share content",
            ),
            ("copilot off", "please take Copilot off my account"),
            ("NEED PROJECT LICENCE TODAY", "plan due tomorrow"),
            (
                "Only have web version",
                "I need the desktop apps for macros",
            ),
        ] {
            let s = score(&ticket(subject, body));
            assert!(s >= 0.5, "{subject:?} {body:?}: {s}");
            assert!(s <= CEILING);
        }
    }

    #[test]
    fn look_alikes_stay_low() {
        for (subject, body) in [
            (
                "Parking permit",
                "please update my license plate for the car park",
            ),
            (
                "Windows activation",
                "Windows says it is not activated, is my license broken?",
            ),
            (
                "Product key",
                "Can I have a product key for Office for my home PC?",
            ),
            (
                "Driving licence copy",
                "HR need a copy of my driver's license",
            ),
            (
                "Licences",
                "Quick audit question: how many software licences do we have?",
            ),
            ("Renewal", "Our antivirus licence renewal quote is due"),
            (
                "Leaver",
                "Disable his account, remove licences, collect his laptop",
            ),
            (
                "Suspicious email",
                "a phishing mail says my licence expired",
            ),
            ("Printer locked", "the printer is locked"),
        ] {
            let s = score(&ticket(subject, body));
            assert!(s < 0.5, "{subject:?} {body:?}: {s}");
        }
    }

    #[test]
    fn a_license_field_is_strong_but_capped() {
        let mut t = ticket("request", "");
        t.fields.push(("license".into(), "VISIO-PLAN2".into()));
        let s = score(&t);
        assert!((0.85..=CEILING).contains(&s), "{s}");
    }
}
