//! Re-registers MFA for its verified owner when the phone or authenticator behind it
//! changed: a new, lost, stolen, broken or reset phone, a wiped app, a new number, a
//! replaced security key. The old methods are removed so the owner registers again at
//! next sign-in, and every session is signed out so the old device (and whoever has it)
//! is out.
//!
//! Checks, in order: who is asking is proven and the account exists and is enabled
//! (`checks::requester_account`); a request that reads as being about someone else, or
//! whose device story is unclear, is asked about; then the change, which the tenant's
//! policy allows only for the verified owner themself. A stolen phone also gets an
//! internal note recommending a security review. This plugin never decides who may
//! change whose MFA: the policy does, and a refusal goes to a technician.

mod device;
mod triage;

use capdesk_sdk::checks::{self, Check};
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::triage::Signals;
use capdesk_sdk::{
    Effect, Failure, Manifest, Outcome, Playbook, Ticket, chat, export_playbook, idp, log,
};

use device::{DEVICE_CHOICES, Device, about_someone_else, phone_not_here_yet};

struct MfaReenroll;

/// Where the owner registers their new method (Microsoft's security-info setup page).
const ENROLL_LINK: &str = "https://aka.ms/mfasetup";

/// The action, as notes and escalations name it.
const ACTION: &str = "an MFA re-registration";

// ---- resolve --------------------------------------------------------------------------

/// Ask the requester; a refusal (chat.ask not granted, or a failed chat) becomes the
/// escalation to hand back.
fn ask(ticket: &Ticket, question: &str, choices: &[&str]) -> Result<String, Outcome> {
    let to = &ticket.requester.email;
    let choices: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
    chat::ask(to, question, &choices).map_err(|failure| {
        Outcome::escalated(format!(
            "could not ask {to} what {ACTION} needs ({}); nothing was changed",
            failure.describe()
        ))
    })
}

/// The escalation for a failed call doing `what`; `done` says what had already changed.
fn failed(failure: Failure, what: &str, done: &str) -> Outcome {
    if let Some(refused) = checks::denied_outcome(&failure, what) {
        return Outcome::escalated(format!("{}; {done}", refused.note));
    }
    Outcome::escalated(match failure {
        Failure::NotFound(m) => format!("{what} failed: not found: {m}; {done}"),
        Failure::Upstream(m) => {
            format!("the identity provider failed during {what} ({m}); {done}")
        }
        other => format!("{what} failed: {}; {done}", other.describe()),
    })
}

/// Add an internal note; a PSA failure is logged, not fatal (the outcome carries the
/// essentials to the ticket anyway).
fn note(ticket: &Ticket, text: &str) {
    if let Err(f) = psa::add_note(&ticket.id, text, Visibility::Internal) {
        log::warn(
            "could not add the internal note",
            &[("error", &f.describe())],
        );
    }
}

impl Playbook for MfaReenroll {
    fn manifest() -> Manifest {
        Manifest::new("mfa-reenroll", env!("CARGO_PKG_VERSION"), "mfa-reenroll")
            .description(
                "Resets MFA so the verified owner can register a new phone or authenticator \
                 (new, lost, stolen or broken device), and signs them out everywhere",
            )
            .capabilities(&[
                "idp.read",
                "idp.verify",
                "idp.mfa",
                "idp.sessions",
                "psa.write",
                "chat.send",
                "chat.ask",
            ])
            .template("reregistered", include_str!("../templates/reregistered.j2"))
            .template("not-yet", include_str!("../templates/not-yet.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let user = match checks::requester_account(ticket, ACTION) {
            Ok(Check::Proceed(user)) => user,
            Ok(Check::Escalate(outcome)) => return Ok(outcome),
            Err(failure) => {
                let what = "checking the requester and the account";
                return Ok(failed(failure, what, "nothing was changed"));
            }
        };
        let requester = ticket.requester.email.to_ascii_lowercase();
        let target = user.email.to_ascii_lowercase();
        let text = Signals::new(ticket);
        let how = if ticket.requester_verified {
            "by the channel"
        } else {
            "by a one-time code"
        };

        // The words may be about someone else while the target defaulted to the
        // requester: resetting the requester's own MFA would be the wrong fix.
        if ticket.field("target").is_none() && about_someone_else(&text) {
            let own = "my own account";
            let answer = match ask(
                ticket,
                &format!(
                    "Is this request about your own account ({target})? MFA can only be reset at \
                     the account owner's own request."
                ),
                &[own, "someone else's account"],
            ) {
                Ok(a) => a,
                Err(outcome) => return Ok(outcome),
            };
            if answer != own {
                return Ok(Outcome::escalated(format!(
                    "{requester} asked for {ACTION} on someone else's account (named only in the \
                     text); MFA is reset only at the verified owner's own request: ask the owner \
                     to contact the service desk themselves. Nothing was changed."
                )));
            }
        }

        // Still has the old phone and the new one is coming: nothing to reset yet.
        if phone_not_here_yet(&text) {
            let now = "yes, I have it now";
            let answer = match ask(
                ticket,
                "Do you have the new phone with you now? Resetting MFA removes the old phone \
                 straight away, so we only do it once the new one is in your hands.",
                &[now, "not yet"],
            ) {
                Ok(a) => a,
                Err(outcome) => return Ok(outcome),
            };
            if answer != now {
                note(
                    ticket,
                    &format!(
                        "Requester {requester} verified {how}; {target} enabled. The new phone has not \
                         arrived yet, so MFA was NOT reset: sent instructions to add the new phone \
                         at {ENROLL_LINK} while the old one still works."
                    ),
                );
                return Ok(Outcome::resolved(format!(
                    "{target}: new phone not arrived yet; sent instructions to move MFA \
                     themselves; nothing changed"
                ))
                .closeout("not-yet")
                .var("account", &target)
                .var("enroll_link", ENROLL_LINK));
            }
        }

        let device = match Device::from_text(&text) {
            Some(device) => device,
            None => {
                let choices: Vec<&str> = DEVICE_CHOICES.iter().map(|(c, _)| *c).collect();
                let answer = match ask(
                    ticket,
                    "What happened to the phone or device you use to approve sign-ins or get \
                     codes?",
                    &choices,
                ) {
                    Ok(a) => a,
                    Err(outcome) => return Ok(outcome),
                };
                match DEVICE_CHOICES.iter().find(|(c, _)| *c == answer) {
                    Some((_, Some(device))) => *device,
                    _ => {
                        return Ok(Outcome::escalated(format!(
                            "{requester} says the MFA problem is not a new, lost, stolen or broken \
                             phone, nor the app failing on the same phone (answered {answer:?}); \
                             re-registration may not be the fix, so nothing was changed: a \
                             technician should look at the sign-in logs"
                        )));
                    }
                }
            }
        };

        let effect = match idp::require_mfa_reregistration(&target) {
            Ok(effect) => effect,
            Err(failure) => return Ok(failed(failure, ACTION, "nothing was changed")),
        };
        let methods = if user.mfa_methods.is_empty() {
            "none registered".to_string()
        } else {
            user.mfa_methods.join(", ")
        };
        let reset = match effect {
            Effect::Changed => format!("removed the registered MFA methods ({methods})"),
            Effect::Unchanged => "no MFA methods were registered; nothing to remove".to_string(),
        };
        let sessions_revoked = match idp::revoke_sessions(&target) {
            Ok(_) => true,
            Err(failure @ Failure::Denied(_)) if device != Device::Stolen => {
                log::warn("sessions not revoked", &[("why", &failure.describe())]);
                false
            }
            Err(failure) => {
                let done = format!(
                    "{reset} for {target}, so they can register at {ENROLL_LINK}, but their \
                     sessions were NOT signed out{}: sign them out now",
                    if device == Device::Stolen {
                        " and the phone was stolen"
                    } else {
                        ""
                    }
                );
                return Ok(failed(failure, "signing out every session", &done));
            }
        };
        let sessions = if sessions_revoked {
            "signed out of every session"
        } else {
            "sessions NOT revoked (refused; see the run's journal)"
        };
        note(
            ticket,
            &format!(
                "Requester {requester} verified {how}; {target} enabled; {}. Policy allowed the \
                 owner's own MFA reset: {reset}; {sessions}. The owner registers again at \
                 {ENROLL_LINK} at next sign-in.",
                device.describe()
            ),
        );
        if device == Device::Stolen {
            note(
                ticket,
                &format!(
                    "SECURITY: {requester} reports the phone was stolen. Recommend a security \
                     review: sign-in logs for {target} since the theft, new inbox or forwarding \
                     rules, MFA methods added by anyone else, and a remote wipe of the phone if it \
                     was enrolled in device management."
                ),
            );
        }
        log::info(
            "mfa re-registration required",
            &[("account", &target), ("device", device.name())],
        );
        Ok(Outcome::resolved(format!(
            "{target}: {reset}; {sessions}; {}",
            device.describe()
        ))
        .closeout("reregistered")
        .var("account", &target)
        .var("enroll_link", ENROLL_LINK)
        .var("device", device.name())
        .var(
            "sessions_revoked",
            if sessions_revoked { "yes" } else { "no" },
        ))
    }
}

export_playbook!(MfaReenroll);
