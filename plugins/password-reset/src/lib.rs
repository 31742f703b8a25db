//! Resets a forgotten or expired password for its verified owner: the host sets a
//! temporary password and delivers it to the owner; this plugin never sees it. Other
//! sessions are signed out so the old password stops working everywhere.

use capdesk_sdk::checks::{self, Check};
use capdesk_sdk::psa::{self, Visibility};
use capdesk_sdk::triage::Signals;
use capdesk_sdk::{Failure, Manifest, Outcome, Playbook, Ticket, export_playbook, idp};

struct PasswordReset;

impl Playbook for PasswordReset {
    fn manifest() -> Manifest {
        Manifest::new("password-reset", env!("CARGO_PKG_VERSION"), "password-reset")
            .description("Resets a forgotten or expired password; the temporary password goes only to the verified owner")
            .capabilities(&["idp.read", "idp.verify", "idp.password", "idp.sessions", "psa.write"])
            .template("temporary-password", include_str!("../templates/temporary-password.j2"))
    }

    fn triage(ticket: &Ticket) -> f32 {
        Signals::new(ticket)
            .any(
                &[
                    "forgot my password",
                    "forgot password",
                    "forgotten password",
                    "forgotten my password",
                    "reset my password",
                    "password reset",
                    "reset password",
                    "reset the password",
                    "password expired",
                    "expired password",
                    "password has expired",
                    "password is expired",
                    "new password",
                    "don't remember my password",
                ],
                0.85,
            )
            .phrase("password", 0.45)
            .any(
                &[
                    "can't log in",
                    "cannot log in",
                    "can't sign in",
                    "cannot sign in",
                    "unable to log in",
                ],
                0.25,
            )
            .against(
                &[
                    "phishing",
                    "suspicious",
                    "scam",
                    "clicked a link",
                    "clicked on a link",
                    "wifi password",
                    "wi-fi password",
                    "guest wifi",
                    "printer",
                    "reset my laptop",
                    "factory reset",
                    "laptop reset",
                    "bios password",
                    "pdf password",
                ],
                0.9,
            )
            .score()
    }

    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
        let user = match checks::requester_account(ticket, "a password reset")? {
            Check::Proceed(user) => user,
            Check::Escalate(outcome) => return Ok(outcome),
        };
        let requester = &ticket.requester.email;
        let target = user.email.clone();
        let delivery = match idp::reset_password(&target) {
            Ok(delivery) => delivery,
            Err(refused) => {
                return checks::denied_outcome(&refused, "a password reset").ok_or(refused);
            }
        };
        let sessions = match idp::revoke_sessions(&target) {
            Ok(_) => "other sessions signed out",
            Err(Failure::Denied(_)) => "sessions NOT revoked (idp.sessions not granted)",
            Err(other) => return Err(other),
        };
        psa::add_note(
            &ticket.id,
            &format!(
                "Requester {requester} verified; {target} enabled; policy allowed the reset. Temporary password \
                 delivered by {} to {} (expires in {} min); {sessions}.",
                delivery.channel, delivery.recipient, delivery.expires_in_minutes
            ),
            Visibility::Internal,
        )?;
        Ok(Outcome::resolved(format!(
            "temporary password for {target} delivered by {} to {}; {sessions}",
            delivery.channel, delivery.recipient
        ))
        .closeout("temporary-password")
        .var("account", &target)
        .var("channel", &delivery.channel)
        .var("recipient", &delivery.recipient)
        .var(
            "expires_in_minutes",
            delivery.expires_in_minutes.to_string(),
        ))
    }
}

export_playbook!(PasswordReset);
