//! Unlocks a locked-out account for its verified owner.
//!
//! Checks, in order: the requester is verified and asks about their own account, the
//! account exists, is enabled and is not privileged, and is actually locked. Anything
//! else goes to a technician with the reason.

use capdesk_sdk::checks::{self, Check};
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::triage::Signals;
use capdesk_sdk::{
    Effect, Failure, Manifest, Outcome, Playbook, Ticket, export_playbook, idp, log,
};

struct AccountUnlock;

impl Playbook for AccountUnlock {
    fn manifest() -> Manifest {
        Manifest::new(
            "account-unlock",
            env!("CARGO_PKG_VERSION"),
            "account-unlock",
        )
        .description(
            "Unlocks a locked-out account after checking that the verified requester owns it",
        )
        .capabilities(&["idp.read", "idp.verify", "idp.unlock", "psa.write"])
        .template("unlocked", include_str!("../templates/unlocked.j2"))
        .template("not-locked", include_str!("../templates/not-locked.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        Signals::new(ticket)
            .any(
                &[
                    "locked out",
                    "lockout",
                    "account locked",
                    "account is locked",
                    "account has been locked",
                    "account got locked",
                    "locked my account",
                    "unlock my account",
                    "unlock account",
                    "unlock my user",
                ],
                0.85,
            )
            .phrase("unlock", 0.5)
            .phrase("locked", 0.4)
            .any(
                &["too many attempts", "too many failed", "too many tries"],
                0.5,
            )
            .any(
                &[
                    "can't log in",
                    "cannot log in",
                    "can't sign in",
                    "cannot sign in",
                    "unable to log in",
                ],
                0.2,
            )
            .against(
                &[
                    "printer",
                    "door",
                    "screen",
                    "keyboard",
                    "iphone",
                    "ipad",
                    "phone is locked",
                    "file",
                    "spreadsheet",
                    "excel",
                    "word document",
                    "pdf",
                    "phishing",
                    "suspicious",
                    "bitlocker",
                ],
                0.8,
            )
            .score()
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let user = match checks::requester_account(ticket, "an unlock")? {
            Check::Proceed(user) => user,
            Check::Escalate(outcome) => return Ok(outcome),
        };
        let requester = &ticket.requester.email;
        let target = user.email.clone();
        if !user.locked {
            psa::add_note(
                &ticket.id,
                &format!("Checked {target}: enabled and not locked; nothing to unlock."),
                Visibility::Internal,
            )?;
            return Ok(Outcome::resolved(format!(
                "{target} was not locked; told the requester how to get a password reset"
            ))
            .closeout("not-locked")
            .var("account", &target));
        }
        let effect = match idp::unlock_account(&target) {
            Ok(effect) => effect,
            Err(refused) => return checks::denied_outcome(&refused, "an unlock").ok_or(refused),
        };
        log::info("unlocked", &[("account", &target)]);
        let done = match effect {
            Effect::Changed => "unlocked",
            Effect::Unchanged => "found unlocked already",
        };
        psa::add_note(
            &ticket.id,
            &format!(
                "Requester {requester} verified; {target} enabled and locked; policy allowed the unlock. Account {done}."
            ),
            Visibility::Internal,
        )?;
        Ok(
            Outcome::resolved(format!("{target} {done} for its verified owner"))
                .closeout("unlocked")
                .var("account", &target),
        )
    }
}

export_playbook!(AccountUnlock);
