//! Resets a forgotten or expired directory password: the host sets a temporary password
//! and delivers it to the account's owner (this plugin never sees it), and the owner is
//! signed out everywhere so the old password stops working.
//!
//! The requester is verified first (the channel, or the host's one-time code); when the
//! ticket may be about someone else's account they are asked whose it is; the account
//! must exist, be enabled and not be locked (a temporary password does not get anyone
//! past a lockout, and this playbook may not unlock). Whether the reset is allowed (someone else's account, a
//! privileged one) is the tenant's policy, decided by the host at the call. The
//! requester gets the closeout (where the temporary password went, for how long, and
//! what happens at the next sign-in); the technician gets a note of what was checked
//! and done. Anything else goes to a technician with the reason.

use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook, idp, log};

mod triage;

use capdesk_sdk::account::{self, Settled, failure_outcome, tell};

struct PasswordReset;

const ACTION: &str = "a password reset";

impl Playbook for PasswordReset {
    fn manifest() -> Manifest {
        Manifest::new(
            "password-reset",
            env!("CARGO_PKG_VERSION"),
            "password-reset",
        )
        .description(
            "Resets a forgotten or expired password; the temporary password goes only to the \
             account's owner, who is signed out everywhere",
        )
        .capabilities(&[
            "idp.read",
            "idp.verify",
            "idp.password",
            "idp.sessions",
            "psa.write",
            "chat.send",
            "chat.ask",
        ])
        .template(
            "temporary-password",
            include_str!("../templates/temporary-password.j2"),
        )
    }

    fn triage(ticket: &Ticket) -> f32 {
        triage::score(ticket)
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let mut account = match account::settle(ticket, ACTION, "Whose password should be reset?") {
            Settled::Proceed(account) => account,
            Settled::Escalate(outcome) => return Ok(outcome),
        };
        let requester = ticket.requester.email.to_ascii_lowercase();
        let target = account.user.email.to_ascii_lowercase();
        if account.user.locked {
            // A temporary password does not get anyone past a lockout, and this playbook
            // may not unlock (no idp.unlock): both are a technician's, before the
            // temporary password could expire unused.
            account
                .log
                .done("nothing changed: the account is locked as well");
            account.log.write(ticket);
            return Ok(Outcome::escalated(format!(
                "{target} is locked out as well as needing a new password; a reset alone would \
                 not let them in: unlock the account and reset the password (nothing was changed)"
            )));
        }

        let delivery = match idp::reset_password(&target) {
            Ok(delivery) => delivery,
            Err(failure) => {
                let outcome = failure_outcome(&failure, ACTION, &target);
                if account.on_behalf && matches!(failure, Failure::Denied(_)) {
                    tell(
                        &requester,
                        &format!(
                            "Only the owner of {target} can have the password reset \
                             automatically: if they contact the service desk themselves (from a \
                             colleague's computer or by phone), it is usually quickest. \
                             Otherwise a technician will pick up your ticket ({}).",
                            ticket.id
                        ),
                    );
                }
                account.log.done(match failure {
                    // The password was changed: say so, never "nothing was changed".
                    Failure::Incomplete(_) => {
                        format!("{ACTION} of {target}: {}", failure.describe())
                    }
                    _ => format!(
                        "tried {ACTION} of {target}: {}; nothing was changed",
                        failure.describe()
                    ),
                });
                account.log.write(ticket);
                return Ok(outcome);
            }
        };
        log::info("password reset", &[("account", &target)]);
        account.log.done(format!(
            "temporary password set for {target} and delivered by {} to {} (expires in {} min; \
             a new password must be chosen at the next sign-in)",
            delivery.channel, delivery.recipient, delivery.expires_in_minutes
        ));
        // The reset is done: a failure to sign the owner out is a follow-up, not a reason
        // to take back what the requester was told.
        let signed_out = match idp::revoke_sessions(&target) {
            Ok(_) => {
                account
                    .log
                    .done(format!("{target} signed out of every session"));
                true
            }
            Err(failure) => {
                account.log.done(format!(
                    "FOLLOW-UP: {target} was NOT signed out of other sessions ({}); revoke \
                     them by hand",
                    failure.describe()
                ));
                false
            }
        };
        account.log.write(ticket);
        let sessions = if signed_out {
            "signed out everywhere"
        } else {
            "sessions NOT revoked (see the note)"
        };
        Ok(Outcome::resolved(format!(
            "temporary password for {target} delivered by {} to {}; {sessions}",
            delivery.channel, delivery.recipient
        ))
        .closeout("temporary-password")
        .var("account", &target)
        .var("on_behalf", yes_no(account.on_behalf))
        .var("channel", &delivery.channel)
        .var("recipient", &delivery.recipient)
        .var(
            "expires_in_minutes",
            delivery.expires_in_minutes.to_string(),
        )
        .var("signed_out", yes_no(signed_out)))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

export_playbook!(PasswordReset);
