//! Unlocks a locked-out directory account.
//!
//! The requester is verified first (the channel, or the host's one-time code); when the
//! ticket may be about someone else's account they are asked whose it is; the account
//! must exist, be enabled and actually be locked (if it is not, the requester is told
//! what else to try). Whether the unlock is allowed (someone else's account, a
//! privileged one) is the tenant's policy, decided by the host at the call. The
//! requester gets the closeout (you can sign in again; if it locks again, a device is
//! using an old password); the technician gets a note of what was checked and done.
//! Anything else goes to a technician with the reason.

use capdesk_sdk::{
    Effect, Failure, Manifest, Outcome, Playbook, Ticket, export_playbook, idp, log,
};

mod triage;

use capdesk_sdk::account::{self, Settled, failure_outcome, tell};

struct AccountUnlock;

const ACTION: &str = "an unlock";

impl Playbook for AccountUnlock {
    fn manifest() -> Manifest {
        Manifest::new(
            "account-unlock",
            env!("CARGO_PKG_VERSION"),
            "account-unlock",
        )
        .description(
            "Unlocks a locked-out account after verifying who is asking and whose account it is",
        )
        .capabilities(&[
            "idp.read",
            "idp.verify",
            "idp.unlock",
            "psa.write",
            "chat.send",
            "chat.ask",
        ])
        .template("unlocked", include_str!("../templates/unlocked.j2"))
        .template("not-locked", include_str!("../templates/not-locked.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let mut account = match account::settle(
            ticket,
            ACTION,
            "Whose account is locked out and should be unlocked?",
        ) {
            Settled::Proceed(account) => account,
            Settled::Escalate(outcome) => return Ok(outcome),
        };
        let requester = ticket.requester.email.to_ascii_lowercase();
        let target = account.user.email.to_ascii_lowercase();
        let on_behalf = yes_no(account.on_behalf);

        if !account.user.locked {
            account.log.done(
                "nothing to unlock; told the requester to ask for a password reset if they \
                 still cannot sign in",
            );
            account.log.write(ticket);
            return Ok(Outcome::resolved(format!(
                "{target} was not locked; told the requester how to get a password reset"
            ))
            .closeout("not-locked")
            .var("account", &target)
            .var("on_behalf", on_behalf));
        }

        let effect = match idp::unlock_account(&target) {
            Ok(effect) => effect,
            Err(failure) => {
                if account.on_behalf && matches!(failure, Failure::Denied(_)) {
                    tell(
                        &requester,
                        &format!(
                            "Only the owner of {target} can have the account unlocked \
                             automatically: if they contact the service desk themselves (from a \
                             colleague's computer or by phone), it is usually quickest. \
                             Otherwise a technician will pick up your ticket ({}).",
                            ticket.id
                        ),
                    );
                }
                account.log.done(format!(
                    "tried {ACTION} of {target}: {}; nothing was changed",
                    failure.describe()
                ));
                account.log.write(ticket);
                return Ok(failure_outcome(&failure, ACTION, &target));
            }
        };
        log::info("unlocked", &[("account", &target)]);
        let done = match effect {
            Effect::Changed => "unlocked",
            Effect::Unchanged => "found unlocked already",
        };
        account.log.done(format!("{target} {done}"));
        if account.on_behalf
            && tell(
                &target,
                &format!(
                    "Your account {target} was unlocked at the request of {requester} (ticket \
                     {}). If you did not expect this, contact the service desk.",
                    ticket.id
                ),
            )
        {
            account.log.done(format!("told {target} about the unlock"));
        }
        account.log.write(ticket);
        Ok(Outcome::resolved(format!("{target} {done}"))
            .closeout("unlocked")
            .var("account", &target)
            .var("on_behalf", on_behalf))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

export_playbook!(AccountUnlock);
