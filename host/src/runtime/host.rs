//! The WIT bindings of the `capdesk:playbook` world and the host side of its imports.
//! Each import translates its WIT arguments into domain types and hands the call to
//! the run's [`Guard`]; nothing here decides anything. Time spent in these functions
//! is host time and does not count against the plugin's guest-time budget.

use std::time::{Duration, Instant};

use crate::connectors;
use crate::guard::{self, Guard, LogLine};

// `bindgen!` reads the WIT without telling cargo; including it makes a change to the
// contract rebuild the host (a stale host would refuse plugins built against it).
const _: &str = include_str!("../../../wit/playbook.wit");

wasmtime::component::bindgen!({
    world: "playbook",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    trappable_error_type: {
        "capdesk:playbook/types.failure" => guard::CallError,
    },
});

pub use self::capdesk::playbook::types::{
    Failure as WitFailure, Manifest as WitManifest, Outcome as WitOutcome, Resolution,
    Ticket as WitTicket,
};
use self::capdesk::playbook::{chat, idp, log, psa, types};

/// Store data of one instance: its limits, its inert WASI and, for `resolve`, the guard.
pub struct RunState {
    pub(super) limits: wasmtime::StoreLimits,
    pub(super) memory_mib: u32,
    pub(super) wasi: super::wasi::InertWasi,
    pub(super) guard: Option<Guard>,
    pub(super) started: Instant,
    pub(super) host_time: Duration,
    pub(super) guest_budget: Duration,
}

impl RunState {
    /// Wall time the guest itself has run: everything since the start but host calls.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }
}

impl wasmtime_wasi::WasiView for RunState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi.view()
    }
}

impl super::wasi::HasInertWasi for RunState {
    fn table(&mut self) -> &mut wasmtime::component::ResourceTable {
        self.wasi.view().table
    }
}

/// Run `$body` with the guard, counting the time as host time. Describe and triage run
/// without a guard: any import they call is denied.
macro_rules! guarded {
    ($state:ident, |$g:ident| $body:expr) => {{
        let start = Instant::now();
        let result = match $state.guard.as_mut() {
            Some($g) => $body.await,
            None => Err(guard::CallError::Failure(guard::Failure::Denied(
                "host functions are available only in `resolve`, not in `describe` or `triage`"
                    .into(),
            ))),
        };
        $state.host_time += start.elapsed();
        result
    }};
}

impl types::Host for RunState {
    fn convert_failure(&mut self, err: guard::CallError) -> wasmtime::Result<WitFailure> {
        let err = match err {
            guard::CallError::Failure(f) => f,
            // Not an answer for the plugin: stop its execution; the runtime reads why.
            guard::CallError::Interrupt(interrupt) => return Err(wasmtime::Error::new(interrupt)),
        };
        Ok(match err {
            guard::Failure::Denied(m) => WitFailure::Denied(m),
            guard::Failure::Rejected(m) => WitFailure::Rejected(m),
            guard::Failure::NotFound(m) => WitFailure::NotFound(m),
            guard::Failure::Invalid(m) => WitFailure::Invalid(m),
            guard::Failure::Upstream(m) => WitFailure::Upstream(m),
            guard::Failure::Incomplete(m) => WitFailure::Incomplete(m),
        })
    }
}

fn effect(e: connectors::Effect) -> types::Effect {
    match e {
        connectors::Effect::Changed => types::Effect::Changed,
        connectors::Effect::Unchanged => types::Effect::Unchanged,
    }
}

fn right(r: idp::MailboxRight) -> connectors::MailboxRight {
    match r {
        idp::MailboxRight::FullAccess => connectors::MailboxRight::FullAccess,
        idp::MailboxRight::SendAs => connectors::MailboxRight::SendAs,
        idp::MailboxRight::SendOnBehalf => connectors::MailboxRight::SendOnBehalf,
    }
}

impl From<connectors::DirectoryUser> for idp::User {
    fn from(u: connectors::DirectoryUser) -> idp::User {
        idp::User {
            email: u.email,
            name: u.name,
            enabled: u.enabled,
            locked: u.locked,
            privileged: u.privileged,
            manager: u.manager,
            department: u.department,
            groups: u.groups,
            licenses: u.licenses,
            mfa_methods: u.mfa_methods,
            mailboxes: u.mailboxes,
        }
    }
}

/// The ticket as the plugin sees it.
pub fn wit_ticket(t: &connectors::Ticket) -> WitTicket {
    WitTicket {
        id: t.id.clone(),
        subject: t.details.subject.clone(),
        body: t.details.body.clone(),
        requester: types::Person {
            email: t.details.requester.email.clone(),
            name: t.details.requester.name.clone(),
        },
        channel: t.details.channel.clone(),
        requester_verified: t.details.requester_verified,
        fields: t.details.fields.clone(),
    }
}

impl idp::Host for RunState {
    async fn find_user(&mut self, email: String) -> Result<idp::User, guard::CallError> {
        guarded!(self, |g| g.find_user(&email)).map(Into::into)
    }

    async fn verify_identity(&mut self, email: String) -> Result<String, guard::CallError> {
        guarded!(self, |g| g.verify_identity(&email))
    }

    async fn unlock_account(&mut self, email: String) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.unlock_account(&email)).map(effect)
    }

    async fn reset_password(&mut self, email: String) -> Result<idp::Delivery, guard::CallError> {
        guarded!(self, |g| g.reset_password(&email)).map(|d| idp::Delivery {
            channel: d.channel,
            recipient: d.recipient,
            expires_in_minutes: d.expires_in_minutes,
        })
    }

    async fn require_mfa_reregistration(
        &mut self,
        email: String,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.require_mfa_reregistration(&email)).map(effect)
    }

    async fn revoke_sessions(&mut self, email: String) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.revoke_sessions(&email)).map(effect)
    }

    async fn add_group_member(
        &mut self,
        group: String,
        email: String,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.add_group_member(&group, &email)).map(effect)
    }

    async fn remove_group_member(
        &mut self,
        group: String,
        email: String,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.remove_group_member(&group, &email)).map(effect)
    }

    async fn assign_license(
        &mut self,
        email: String,
        sku: String,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.assign_license(&email, &sku)).map(effect)
    }

    async fn remove_license(
        &mut self,
        email: String,
        sku: String,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.remove_license(&email, &sku)).map(effect)
    }

    async fn grant_mailbox_access(
        &mut self,
        mailbox: String,
        email: String,
        r: idp::MailboxRight,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.grant_mailbox_access(&mailbox, &email, right(r))).map(effect)
    }

    async fn remove_mailbox_access(
        &mut self,
        mailbox: String,
        email: String,
        r: idp::MailboxRight,
    ) -> Result<types::Effect, guard::CallError> {
        guarded!(self, |g| g.remove_mailbox_access(
            &mailbox,
            &email,
            right(r)
        ))
        .map(effect)
    }
}

fn visibility(v: psa::Visibility) -> connectors::Visibility {
    match v {
        psa::Visibility::Internal => connectors::Visibility::Internal,
        psa::Visibility::Public => connectors::Visibility::Public,
    }
}

fn status_to_wit(s: connectors::TicketStatus) -> psa::Status {
    use connectors::TicketStatus as S;
    match s {
        S::New => psa::Status::New,
        S::InProgress => psa::Status::InProgress,
        S::Waiting => psa::Status::Waiting,
        S::Resolved => psa::Status::Resolved,
        S::Escalated => psa::Status::Escalated,
        S::Closed => psa::Status::Closed,
    }
}

fn status_from_wit(s: psa::Status) -> connectors::TicketStatus {
    use connectors::TicketStatus as S;
    match s {
        psa::Status::New => S::New,
        psa::Status::InProgress => S::InProgress,
        psa::Status::Waiting => S::Waiting,
        psa::Status::Resolved => S::Resolved,
        psa::Status::Escalated => S::Escalated,
        psa::Status::Closed => S::Closed,
    }
}

impl psa::Host for RunState {
    async fn get_ticket(&mut self, id: String) -> Result<psa::TicketRecord, guard::CallError> {
        let record = guarded!(self, |g| g.get_ticket(&id))?;
        Ok(psa::TicketRecord {
            ticket: wit_ticket(&record.ticket),
            status: status_to_wit(record.status),
            notes: record
                .notes
                .into_iter()
                .map(|n| psa::Note {
                    visibility: match n.visibility {
                        connectors::Visibility::Internal => psa::Visibility::Internal,
                        connectors::Visibility::Public => psa::Visibility::Public,
                    },
                    author: n.author,
                    text: n.text,
                })
                .collect(),
            parent: record.parent,
        })
    }

    async fn add_note(
        &mut self,
        id: String,
        text: String,
        v: psa::Visibility,
    ) -> Result<(), guard::CallError> {
        guarded!(self, |g| g.add_note(&id, &text, visibility(v)))
    }

    async fn set_status(
        &mut self,
        id: String,
        status: psa::Status,
    ) -> Result<(), guard::CallError> {
        guarded!(self, |g| g.set_status(&id, status_from_wit(status)))
    }

    async fn link_to_parent(&mut self, id: String, parent: String) -> Result<(), guard::CallError> {
        guarded!(self, |g| g.link_to_parent(&id, &parent))
    }
}

impl chat::Host for RunState {
    async fn send(&mut self, to: String, text: String) -> Result<(), guard::CallError> {
        guarded!(self, |g| g.send(&to, &text))
    }

    async fn ask(
        &mut self,
        to: String,
        question: String,
        choices: Vec<String>,
    ) -> Result<String, guard::CallError> {
        guarded!(self, |g| g.ask(&to, &question, &choices))
    }
}

impl log::Host for RunState {
    async fn emit(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        if let Some(g) = self.guard.as_mut() {
            let level = match level {
                log::Level::Debug => "debug",
                log::Level::Info => "info",
                log::Level::Warn => "warn",
                log::Level::Error => "error",
            };
            g.log(LogLine {
                level: level.into(),
                message,
                fields,
            });
        }
        Ok(())
    }
}
