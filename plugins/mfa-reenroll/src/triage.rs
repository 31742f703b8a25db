//! How sure this plugin is that a ticket asks for MFA to be registered again: the
//! words people use for the second factor and for a changed, lost or broken phone,
//! against the look-alikes (tenant-wide MFA policy questions, prompts the user did not
//! trigger, third-party and personal accounts, phone hardware requests). Pure: no host
//! calls.

use capdesk_sdk::Ticket;
use capdesk_sdk::triage::Signals;

/// Asking outright for the second factor to be reset or registered again.
const EXPLICIT: &[&str] = &[
    "reset my mfa",
    "reset mfa",
    "mfa reset",
    "reset the mfa",
    "reset my 2fa",
    "reset 2fa",
    "2fa reset",
    "reset my authenticator",
    "reset my two factor",
    "reset my 2-step",
    "re-register",
    "reregister",
    "re-registration",
    "re-enroll",
    "re-enrol",
    "reenroll",
    "re-enrolment",
    "re-enrollment",
    "reset his mfa",
    "reset her mfa",
    "reset my registration",
    "reset his registration",
    "reset her registration",
    "reset the registration",
    "remove my old phone",
    "register my new phone",
    "move my authenticator",
    "move the authenticator",
    "move my mfa",
    "move the mfa",
];

/// Naming the second factor, or the screens and apps that are it.
const SECOND_FACTOR: &[&str] = &[
    "mfa",
    "2fa",
    "two factor",
    "two-factor",
    "2 factor",
    "2-factor",
    "2 step",
    "2-step",
    "two step",
    "two-step",
    "multi-factor",
    "multifactor",
    "multi factor",
    "authenticator",
    "authenticator app",
    "okta verify",
    "duo",
    "duo push",
    "yubikey",
    "security key",
    "security info",
    "phone sign-in",
    "more information required",
    "we couldn't verify",
    "verify your identity",
    "sign-in codes",
    "sign in codes",
];

/// The phone or number behind the second factor changed or is gone.
const DEVICE_CHANGED: &[&str] = &[
    "new phone",
    "new handset",
    "new iphone",
    "new android",
    "new mobile",
    "new telephone",
    "new device",
    "new sim",
    "new number",
    "new one",
    "replacement phone",
    "phone was replaced",
    "switched phones",
    "changed phones",
    "changed my phone",
    "switched from android",
    "switched from iphone",
    "from android to iphone",
    "from iphone to android",
    "old phone",
    "old number",
    "old samsung",
    "old iphone",
    "my number anymore",
    "changed my mobile number",
    "changed my number",
    "lost my phone",
    "lost phone",
    "lost my mobile",
    "phone was stolen",
    "phone stolen",
    "stolen phone",
    "phone died",
    "phone is broken",
    "broken phone",
    "dropped my phone",
    "phone reset",
    "factory reset my phone",
    "reset my phone",
    "deleted the app",
    "repair shop",
    "in for repair",
];

/// How the second factor shows up when it fails: codes, prompts, approvals.
const SIGN_IN_PROOF: &[&str] = &[
    "code",
    "codes",
    "the code",
    "text codes",
    "sms codes",
    "approve",
    "approve sign in",
    "approve sign-ins",
    "approve requests",
    "approve notification",
    "notification",
    "notifications",
    "push",
    "prompt",
    "prompts",
    "pop-up",
    "popup",
    "qr code",
    "the app",
    "6 numbers",
    "six numbers",
    "number matching",
];

/// Policy questions and tenant-wide changes: not one person's re-registration.
const POLICY_QUESTIONS: &[&str] = &[
    "turn off mfa",
    "turn mfa off",
    "turn it off",
    "switch it off",
    "disable mfa",
    "for everyone",
    "for all users",
    "all their users",
    "all staff",
    "whole office",
    "enforce",
    "enforced",
    "which is more secure",
    "more secure",
    "is there a guide",
    "first time",
    "never done this",
    "stay signed in",
    "every single morning",
    "every morning",
];

/// Security incidents and accounts outside the directory: a technician, or not us.
const NOT_OURS: &[&str] = &[
    "didn't trigger",
    "did not trigger",
    "didn't request",
    "did not request",
    "wasn't me",
    "was not me",
    "not me",
    "keep pressing deny",
    "fatigue",
    "phishing",
    "suspicious",
    "unusual activity",
    "facebook",
    "instagram",
    "twitter",
    "linkedin",
    "tiktok",
    "whatsapp",
    "bank's",
    "my bank",
    "banking",
    "bank app",
    "docusign",
    "gmail",
    "personal account",
    "paypal",
    "amazon",
    "printer",
    "license plate",
    "licence plate",
    "windows activation",
    "puk",
    "sim locked",
    "voicemail",
];

/// A phone mentioned without sign-in words is usually a hardware request.
const HARDWARE_ONLY: &[&str] = &[
    "work email on it",
    "email on my new phone",
    "get my email on",
    "already moved",
    "all fine there",
    "battery",
    "can i get a new phone",
    "need a new phone",
    "screen is cracked",
    "repaired or replaced",
];

/// The confidence that `ticket` asks for an MFA re-registration, at most 0.95.
pub fn score(ticket: &Ticket) -> f32 {
    Signals::new(ticket)
        .any(EXPLICIT, 0.9)
        .any(SECOND_FACTOR, 0.6)
        .any(DEVICE_CHANGED, 0.4)
        .any(SIGN_IN_PROOF, 0.45)
        .phrase("my phone", 0.2)
        .against(POLICY_QUESTIONS, 0.85)
        .against(NOT_OURS, 0.9)
        .against(HARDWARE_ONLY, 0.85)
        .score()
        .min(0.95)
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

    fn score_of(subject: &str, body: &str) -> f32 {
        score(&ticket(subject, body))
    }

    #[test]
    fn real_phrasings_are_claimed() {
        for (subject, body) in [
            ("new phone authenticator", ""),
            ("lost my phone can't get codes", ""),
            (
                "MFA",
                "got a new phone, need to set up the authenticator again",
            ),
            ("", "please reset my MFA"),
            ("2FA", "need 2FA reset, new handset"),
            (
                "",
                "Lost my phone on the train. Can't do the 2 step thing to log in now.",
            ),
            (
                "",
                "The approve requests are going to my old phone. Please move them to my new phone.",
            ),
            (
                "",
                "got a new sim with a new number, codes go to the old number still",
            ),
            (
                "phone stolen",
                "My phone was stolen, I need to set up my authenticator again",
            ),
            (
                "",
                "Okta Verify got wiped when I reinstalled my apps. Please re-enroll me.",
            ),
            (
                "",
                "Dropped my phone, screen is smashed, I can't open the authenticator.",
            ),
            (
                "YubiKey",
                "My YubiKey snapped. Can the new one be registered to my account?",
            ),
            ("", "it wants the code on my old phone, I got a new one"),
        ] {
            let s = score_of(subject, body);
            assert!((0.5..=0.95).contains(&s), "{s} for {subject:?} {body:?}");
        }
    }

    #[test]
    fn look_alikes_stay_low() {
        for (subject, body) in [
            (
                "Can we turn off MFA?",
                "Can we turn MFA off for everyone in the office?",
            ),
            (
                "weird prompts",
                "I keep getting authenticator prompts that I didn't trigger",
            ),
            (
                "Enforce MFA",
                "Please make sure MFA is enforced for all their users",
            ),
            (
                "New work phone request",
                "My work phone battery dies by lunch. Can I get a new phone?",
            ),
            (
                "Facebook 2FA",
                "The 2FA for the company Facebook page is on Jenny's old phone",
            ),
            (
                "bank codes",
                "my bank's security codes aren't coming through on my work phone",
            ),
            (
                "Suspicious email",
                "phishing mail asking for my password and MFA code",
            ),
            ("", "Setting up MFA for the first time, is there a guide?"),
            ("reset my laptop", "Can you reset my laptop? It's slow"),
            ("printer locked", "The printer says locked"),
            (
                "",
                "new phone, how do i get my work email on it? the authenticator is already moved",
            ),
            (
                "forgot my password",
                "I forgot my password, please reset it",
            ),
            ("", "Please give me access to the finance shared mailbox"),
        ] {
            let s = score_of(subject, body);
            assert!(s < 0.5, "{s} for {subject:?} {body:?}");
        }
    }
}
