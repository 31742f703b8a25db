//! The connected systems a tenant's runs act on: one trait per kind of system (identity
//! provider, PSA ticketing, chat) and the domain types they speak. Implementations:
//! `sandbox` (the embedded default, persisted in the data dir's SQLite file); real vendors
//! plug in behind the same traits. Connectors know nothing of wasmtime, grants or policy:
//! by the time a call reaches one, the guard has allowed it.

pub mod channel;
pub mod sandbox;
pub mod slack;
pub mod teams;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::capability::HostFunction;
use serde::{Deserialize, Serialize};

/// Why a connector call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("upstream failure: {0}")]
    Upstream(String),
}

/// What a changing call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Changed,
    Unchanged,
}

/// A user in a tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub email: String,
    pub name: String,
    pub enabled: bool,
    pub locked: bool,
    pub privileged: bool,
    pub manager: Option<String>,
    pub department: Option<String>,
    pub groups: Vec<String>,
    pub licenses: Vec<String>,
    pub mfa_methods: Vec<String>,
    pub mailboxes: Vec<String>,
}

/// A right on a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxRight {
    FullAccess,
    SendAs,
    SendOnBehalf,
}

impl MailboxRight {
    pub fn name(self) -> &'static str {
        match self {
            MailboxRight::FullAccess => "full-access",
            MailboxRight::SendAs => "send-as",
            MailboxRight::SendOnBehalf => "send-on-behalf",
        }
    }
}

/// A temporary credential. Its `Debug` never prints the value, so it cannot leak into
/// logs by accident; only the delivery to the account owner reads it.
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The identity provider of one tenant.
#[async_trait]
pub trait Idp: Send + Sync {
    async fn find_user(&self, email: &str) -> Result<DirectoryUser, ConnectorError>;
    /// Where a one-time code can reach the user outside their work accounts
    /// (`sms:+15550142`, `email:…`), for identity challenges. Never shown to plugins.
    async fn contact_methods(&self, email: &str) -> Result<Vec<String>, ConnectorError>;
    /// The emails of a group's members (for routing approvals to a group).
    async fn group_members(&self, group: &str) -> Result<Vec<String>, ConnectorError>;
    async fn unlock_account(&self, email: &str) -> Result<Effect, ConnectorError>;
    /// Set a password the user must change at next sign-in.
    async fn set_temporary_password(
        &self,
        email: &str,
        password: &Secret,
    ) -> Result<(), ConnectorError>;
    async fn require_mfa_reregistration(&self, email: &str) -> Result<Effect, ConnectorError>;
    async fn revoke_sessions(&self, email: &str) -> Result<Effect, ConnectorError>;
    async fn add_group_member(&self, group: &str, email: &str) -> Result<Effect, ConnectorError>;
    async fn remove_group_member(&self, group: &str, email: &str)
    -> Result<Effect, ConnectorError>;
    async fn assign_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError>;
    async fn remove_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError>;
    async fn grant_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError>;
    async fn remove_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError>;

    /// Whether repeating `function` with the same arguments is harmless (the second
    /// call changes nothing). Recovery re-runs an interrupted call only if it is.
    fn is_idempotent(&self, function: HostFunction) -> bool {
        let _ = function;
        false
    }
}

/// Someone a ticket is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub email: String,
    pub name: String,
}

/// A ticket's state in the PSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketStatus {
    New,
    InProgress,
    Waiting,
    Resolved,
    Escalated,
    Closed,
}

impl TicketStatus {
    pub fn name(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::InProgress => "in-progress",
            TicketStatus::Waiting => "waiting",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Escalated => "escalated",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        [
            TicketStatus::New,
            TicketStatus::InProgress,
            TicketStatus::Waiting,
            TicketStatus::Resolved,
            TicketStatus::Escalated,
            TicketStatus::Closed,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
}

/// Who may read a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    Internal,
    Public,
}

impl Visibility {
    pub fn name(self) -> &'static str {
        match self {
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

/// A ticket as it arrives, before the PSA gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTicket {
    pub subject: String,
    pub body: String,
    pub requester: Person,
    /// `chat`, `email`, `portal`, `api` or `cli`.
    pub channel: String,
    pub requester_verified: bool,
    pub fields: Vec<(String, String)>,
}

/// A ticket with its PSA id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    #[serde(flatten)]
    pub details: NewTicket,
}

/// A note on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub visibility: Visibility,
    pub author: String,
    pub text: String,
    pub created_at: String,
}

/// A ticket with its state and notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub ticket: Ticket,
    pub status: TicketStatus,
    pub notes: Vec<Note>,
    pub parent: Option<String>,
}

/// The PSA (ticketing system) of one tenant.
#[async_trait]
pub trait Psa: Send + Sync {
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, ConnectorError>;
    async fn get_ticket(&self, id: &str) -> Result<TicketRecord, ConnectorError>;
    async fn add_note(
        &self,
        id: &str,
        text: &str,
        visibility: Visibility,
        author: &str,
    ) -> Result<(), ConnectorError>;
    async fn set_status(&self, id: &str, status: TicketStatus) -> Result<(), ConnectorError>;
    async fn link_to_parent(&self, id: &str, parent: &str) -> Result<(), ConnectorError>;

    /// Whether repeating `function` is harmless; see [`Idp::is_idempotent`].
    fn is_idempotent(&self, function: HostFunction) -> bool {
        let _ = function;
        false
    }
}

/// An approval request as its approvers are shown it.
#[derive(Debug, Clone)]
pub struct ApprovalRequest<'a> {
    /// `A-12`: what a button's click routes back to.
    pub id: &'a str,
    /// What capdesk wants to do, in words.
    pub summary: &'a str,
    pub rule: &'a str,
    pub ticket: &'a str,
    pub subject: &'a str,
    pub requester: &'a str,
    pub expires_at: &'a str,
    /// The whole request as plain text (with how to answer it from the command line).
    pub text: &'a str,
}

/// The chat of one tenant.
#[async_trait]
pub trait Chat: Send + Sync {
    /// Send a direct message to a person, by email.
    async fn send(&self, to: &str, text: &str) -> Result<(), ConnectorError>;

    /// Ask `to` a question on behalf of run `run` (`R-7`). A chat with buttons offers
    /// each choice as one, routed back to the run; without choices the person types the
    /// answer. The default is one plain message listing the choices.
    async fn ask(
        &self,
        to: &str,
        question: &str,
        choices: &[String],
        run: &str,
    ) -> Result<(), ConnectorError> {
        let _ = run;
        if choices.is_empty() {
            self.send(to, question).await
        } else {
            let text = format!("{question}\nAnswer with one of: {}", choices.join(", "));
            self.send(to, &text).await
        }
    }

    /// Ask the approver `to` to approve or reject. A chat with buttons offers both,
    /// routed back to the approval; the default sends the plain text.
    async fn request_approval(
        &self,
        to: &str,
        request: &ApprovalRequest<'_>,
    ) -> Result<(), ConnectorError> {
        self.send(to, request.text).await
    }

    /// A question or approval asked earlier (`subject`: `R-7`, `A-12`) was settled: a
    /// chat that can edit its messages shows `outcome` on the ones it posted, so their
    /// buttons are gone. The default does nothing.
    async fn settled(&self, subject: &str, outcome: &str) -> Result<(), ConnectorError> {
        let _ = (subject, outcome);
        Ok(())
    }

    /// Whether repeating `function` is harmless; see [`Idp::is_idempotent`].
    fn is_idempotent(&self, function: HostFunction) -> bool {
        let _ = function;
        false
    }
}

/// The connected systems of one tenant, as a run sees them.
#[derive(Clone)]
pub struct Connectors {
    pub idp: Arc<dyn Idp>,
    pub psa: Arc<dyn Psa>,
    pub chat: Arc<dyn Chat>,
    /// When capdesk serves HTTP: temporary passwords go out as one-time links instead
    /// of in the chat message itself.
    pub credentials: Option<Arc<crate::credentials::CredentialLinks>>,
}

impl Connectors {
    /// Whether the connector that serves `function` declares it idempotent.
    pub fn is_idempotent(&self, function: HostFunction) -> bool {
        match function.interface() {
            "idp" => self.idp.is_idempotent(function),
            "psa" => self.psa.is_idempotent(function),
            _ => self.chat.is_idempotent(function),
        }
    }
}
