//! The one path every host call of a run takes: grant, then policy and mode, then the
//! write-ahead journal, then the connector. A call whose capability the tenant did not
//! grant is journaled as denied and never reaches a connector. A granted side-effecting
//! call is decided by the tenant's mode (shadow simulates it, supervised asks a
//! technician) and policy (allow, ask an approver, or deny, naming the rule); an allowed
//! one is journaled as an intent before its connector runs. A resumed run replays: each
//! call must match the next recorded one and gets the recorded result without touching
//! a connector; a mismatch is a determinism fault, and a recorded intent without a
//! result is in doubt (re-run only if the connector declares the call idempotent). The
//! guard speaks domain types (`connectors::*`) and knows nothing of wasmtime;
//! `runtime::host` translates the WIT calls into these methods.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::{Capability, HostFunction};
use crate::connectors::{
    ConnectorError, Connectors, DirectoryUser, Effect, MailboxRight, Secret, Ticket, TicketRecord,
    TicketStatus, Visibility,
};
use crate::journal::{CallState, Journal, JournalEntry, NewJournalEntry};
use crate::mode::Mode;
use crate::policy::{self, ApproverSpec, Decision, Policy};

/// Longest note or chat message a plugin may write.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Log lines kept per run; later ones are counted, not kept.
pub const MAX_LOG_LINES: usize = 200;

/// The rule name journaled for asks that supervised mode makes.
pub const SUPERVISED_RULE: &str = "supervised-mode";

/// The approver role that supervised mode asks.
pub const TECHNICIANS_ROLE: &str = "technicians";

fn check_text(text: &str) -> Result<(), Failure> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Failure::Invalid(format!(
            "the text is {} bytes; notes and messages are limited to {MAX_TEXT_BYTES} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// How long a temporary password works before the user must have changed it.
pub const TEMPORARY_PASSWORD_MINUTES: u32 = 60;

/// Why a host call did not do what the plugin asked; becomes the WIT `failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "failure", content = "message", rename_all = "kebab-case")]
pub enum Failure {
    #[error("denied: {0}")]
    Denied(String),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("upstream failure: {0}")]
    Upstream(String),
    #[error("done only in part: {0}")]
    Incomplete(String),
}

impl From<ConnectorError> for Failure {
    fn from(e: ConnectorError) -> Failure {
        match e {
            ConnectorError::NotFound(m) => Failure::NotFound(m),
            ConnectorError::Invalid(m) => Failure::Invalid(m),
            ConnectorError::Upstream(m) => Failure::Upstream(m),
        }
    }
}

/// A side effect the tenant's policy (or supervised mode) wants a person to approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNeeded {
    /// The journal entry of the call that waits.
    pub seq: i64,
    pub function: String,
    /// The call's arguments, as JSON text.
    pub args: String,
    /// What the plugin wants to do, in words (`add ann@acme.test to the group Sales`).
    pub summary: String,
    /// The rule that asked.
    pub rule: String,
    pub approvers: Vec<ApproverSpec>,
    /// The directory user the call changes, if any.
    pub target: Option<DirectoryUser>,
}

/// Why a run must stop at a host call instead of getting a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Interrupt {
    /// The plugin asked a person something; the run waits durably for the answer.
    #[error("waiting for {to} to answer: {question}")]
    Waiting {
        to: String,
        question: String,
        choices: Vec<String>,
    },
    /// The call needs an approver's yes; the run waits durably for it.
    #[error("waiting for approval ({}) under rule {}", .0.summary, .0.rule)]
    NeedsApproval(Box<ApprovalNeeded>),
    /// The requester must prove who they are with the one-time code the host sent to
    /// `contact`; the run waits durably for their answer.
    #[error("waiting for {to} to give the code sent to {contact}")]
    Challenge {
        to: String,
        /// Where the code went, masked.
        contact: String,
        /// SHA-256 of the code, salted with the ticket id (the code is never stored).
        code_hash: String,
    },
    /// In shadow mode the plugin asked a person something; nobody is asked, so the
    /// shadow run ends here.
    #[error("the plugin would ask {to}: {question}")]
    ShadowQuestion { to: String, question: String },
    /// On replay, the plugin made a different call than the journal recorded.
    #[error(
        "determinism fault at call {seq}: the journal has {recorded}, the plugin now made {made}; \
         the run was not re-executed"
    )]
    DeterminismFault {
        seq: i64,
        recorded: String,
        made: String,
    },
    /// A recorded call has no result, so whether it took effect is unknown.
    #[error(
        "call {seq} ({function} {args}) is in doubt: it was started but its result was never \
         recorded, and the connector does not declare it safe to repeat; check whether it took \
         effect before finishing the ticket by hand"
    )]
    InDoubt {
        seq: i64,
        function: String,
        args: String,
    },
    /// The journal could not be written, so the call was not made.
    #[error("{reason}; the call was not made")]
    JournalFailed { reason: String },
}

/// What a host call gives the plugin instead of a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Returned to the plugin as the WIT `failure`.
    #[error(transparent)]
    Failure(#[from] Failure),
    /// Ends the plugin's execution (a trap the host catches).
    #[error(transparent)]
    Interrupt(#[from] Interrupt),
}

impl From<ConnectorError> for CallError {
    fn from(e: ConnectorError) -> CallError {
        CallError::Failure(e.into())
    }
}

/// A recorded result, read back on replay.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Replayed<T> {
    Ok(T),
    Error(Failure),
}

/// A call's result as the journal records it: `{"ok": ...}` or `{"error": ...}`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Recorded<'a, T> {
    Ok(&'a T),
    Error(&'a Failure),
}

fn recorded<T: Serialize>(result: &Result<T, Failure>) -> String {
    match result {
        Ok(v) => to_json(&Recorded::Ok(v)),
        Err(f) => to_json(&Recorded::<T>::Error(f)),
    }
}

/// JSON text of a value the journal records (domain types always serialize).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"unserializable\":{:?}}}", e.to_string()))
}

/// A call's arguments as the journal records them: a JSON object of the named values,
/// in order, written directly; the same text `json!({..}).to_string()` gives (replays
/// compare it with what was recorded), without building a `serde_json::Value`.
macro_rules! call_args {
    ($($key:literal : $value:expr),+ $(,)?) => {{
        let mut text = String::from("{");
        $(
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(concat!("\"", $key, "\":"));
            text.push_str(&to_json(&$value));
        )+
        text.push('}');
        text
    }};
}

/// The journaled result of a call that failed.
pub fn failure_result(failure: &Failure) -> String {
    to_json(&Recorded::<()>::Error(failure))
}

/// The journaled result of a rejected approval.
pub fn rejected_result(message: &str) -> String {
    to_json(&Recorded::<()>::Error(&Failure::Rejected(
        message.to_string(),
    )))
}

/// The journaled result of an answered question.
pub fn answer_result(answer: &str) -> String {
    to_json(&Recorded::Ok(&answer))
}

/// Where a temporary credential went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: String,
    pub recipient: String,
    pub expires_in_minutes: u32,
}

/// A structured log line a plugin emitted.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// What a run is allowed to do and for whom: fixed when the run starts.
#[derive(Clone)]
pub struct RunScope {
    pub tenant: String,
    pub plugin: String,
    /// The plugin's ticket category (policy conditions and modes key on it).
    pub category: String,
    pub granted: BTreeSet<Capability>,
    pub mode: Mode,
    pub policy: Arc<Policy>,
    /// The ticket the run works on (who asked, over which channel, verified or not).
    pub ticket: Ticket,
}

/// The particulars of a side-effecting call that policy conditions look at.
#[derive(Default)]
struct Facts<'a> {
    /// The directory user the call changes.
    target: Option<&'a str>,
    group: Option<&'a str>,
    license: Option<&'a str>,
    mailbox: Option<&'a str>,
    right: Option<&'a str>,
    recipient: Option<&'a str>,
}

/// What the guard decided for a live side-effecting call.
enum Verdict {
    Allow(String),
    Deny(String),
    Ask(Box<ApprovalNeeded>),
    Shadow(String),
}

/// The host side of one run: who it runs for, what it may do, what it did.
pub struct Guard {
    scope: Arc<RunScope>,
    connectors: Connectors,
    journal: Journal,
    proposals: Vec<String>,
    log_lines: usize,
    /// The requester proved who they are with a one-time code during this run.
    challenge_passed: bool,
}

/// What a finished guard hands back: the journal, and in shadow mode what the run
/// would have done.
pub struct GuardReport {
    pub journal: Journal,
    pub proposals: Vec<String>,
}

/// Stop the process here when the tenant of a test build names this point in the
/// `FAILPOINTS` environment variable (`capdesk-after-intent=return`): it says so on
/// stderr and waits to be killed. Compiled to nothing without the `failpoints` feature.
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if crate::failpoints::armed() {
            fail::fail_point!($name, |_| crate::failpoints::hold($name))
        }
    };
}

impl Guard {
    pub fn new(scope: RunScope, connectors: Connectors, journal: Journal) -> Guard {
        Guard {
            scope: Arc::new(scope),
            connectors,
            journal,
            proposals: Vec::new(),
            log_lines: 0,
            challenge_passed: false,
        }
    }

    pub fn scope(&self) -> &RunScope {
        &self.scope
    }

    /// True while recorded calls remain to be replayed.
    pub fn replaying(&self) -> bool {
        self.journal.replaying_now()
    }

    /// The journal entries of this attempt, in order.
    pub fn journal(&self) -> impl Iterator<Item = &NewJournalEntry> {
        self.journal.entries()
    }

    pub fn finish(self) -> GuardReport {
        GuardReport {
            journal: self.journal,
            proposals: self.proposals,
        }
    }

    /// A call that changes nothing: replay it, or check the grant and run it.
    async fn read<T, F>(
        &mut self,
        function: HostFunction,
        args: String,
        op: F,
    ) -> Result<T, CallError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, Failure>>,
    {
        if let Some(entry) = self.journal.next_recorded() {
            return match self.replay(entry, function, &args)? {
                Replay::Result(r) => r,
                // A read is always safe to repeat.
                Replay::Execute { .. } => Ok(op.await?),
            };
        }
        self.check_grant(function, &args)?;
        let result = op.await;
        self.journal.record(
            function.name(),
            Some(function.capability().name()),
            args,
            "allowed".into(),
            recorded(&result),
            CallState::Done,
        );
        Ok(result?)
    }

    /// A side-effecting call: replay it, or check grant, mode and policy, then journal
    /// the intent and run `op`. `shadow` gives the simulated result in shadow mode.
    async fn act<T, F>(
        &mut self,
        function: HostFunction,
        args: String,
        facts: Facts<'_>,
        shadow: impl FnOnce(Option<&DirectoryUser>) -> T,
        op: F,
    ) -> Result<T, CallError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, Failure>>,
    {
        if let Some(entry) = self.journal.next_recorded() {
            return match self.replay(entry, function, &args)? {
                Replay::Result(r) => r,
                Replay::Execute { seq, decision } => {
                    self.execute(Some(seq), function, args, decision, op).await
                }
            };
        }
        self.act_live(function, args, facts, shadow, op).await
    }

    /// The live half of [`Guard::act`]: grant, mode and policy, then the call.
    async fn act_live<T, F>(
        &mut self,
        function: HostFunction,
        args: String,
        facts: Facts<'_>,
        shadow: impl FnOnce(Option<&DirectoryUser>) -> T,
        op: F,
    ) -> Result<T, CallError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, Failure>>,
    {
        self.check_grant(function, &args)?;
        // The policy looks at the user the call changes; a directory that cannot say who
        // that is fails the call (an unknown user is left to the call itself).
        let target = match facts.target {
            Some(email) => match self.connectors.idp.find_user(email).await {
                Ok(user) => Some(user),
                Err(ConnectorError::NotFound(_)) => None,
                Err(e) => {
                    let failure = Failure::from(e);
                    self.journal.record(
                        function.name(),
                        Some(function.capability().name()),
                        args,
                        "undecided: the directory could not say who the call changes".into(),
                        to_json(&Recorded::<()>::Error(&failure)),
                        CallState::Done,
                    );
                    return Err(failure.into());
                }
            },
            None => None,
        };
        match self.verdict(function, &args, &facts, target.as_ref()).await {
            Verdict::Allow(decision) => self.execute(None, function, args, decision, op).await,
            Verdict::Deny(reason) => {
                let failure = Failure::Denied(reason.clone());
                self.journal.record(
                    function.name(),
                    Some(function.capability().name()),
                    args,
                    format!("denied: {reason}"),
                    to_json(&Recorded::<()>::Error(&failure)),
                    CallState::Done,
                );
                Err(failure.into())
            }
            Verdict::Ask(mut needed) => {
                needed.seq = self.journal.record(
                    function.name(),
                    Some(function.capability().name()),
                    args,
                    format!("ask: rule {}", needed.rule),
                    "null".into(),
                    CallState::Waiting,
                );
                Err(Interrupt::NeedsApproval(needed).into())
            }
            Verdict::Shadow(decision) => {
                let value = shadow(target.as_ref());
                self.journal.record(
                    function.name(),
                    Some(function.capability().name()),
                    args,
                    decision,
                    to_json(&Recorded::Ok(&value)),
                    CallState::Done,
                );
                Ok(value)
            }
        }
    }

    /// Journal the intent (writing everything pending), call the connector, and
    /// record the result (written with the next write).
    async fn execute<T, F>(
        &mut self,
        seq: Option<i64>,
        function: HostFunction,
        args: String,
        decision: String,
        op: F,
    ) -> Result<T, CallError>
    where
        T: Serialize,
        F: Future<Output = Result<T, Failure>>,
    {
        let entry = |seq, args, decision, result, state| NewJournalEntry {
            seq,
            function: function.name(),
            capability: Some(function.capability().name()),
            args,
            decision,
            result,
            state,
        };
        let seq = match seq {
            Some(seq) => {
                self.journal.update(entry(
                    seq,
                    args.clone(),
                    decision.clone(),
                    "null".into(),
                    CallState::Intent,
                ));
                seq
            }
            None => self.journal.record(
                function.name(),
                Some(function.capability().name()),
                args.clone(),
                decision.clone(),
                "null".into(),
                CallState::Intent,
            ),
        };
        self.journal
            .write()
            .await
            .map_err(|e| Interrupt::JournalFailed {
                reason: e.to_string(),
            })?;
        crash_point!("capdesk-after-intent");
        let result = op.await;
        crash_point!("capdesk-after-connector");
        self.journal.update(entry(
            seq,
            args,
            decision,
            recorded(&result),
            CallState::Done,
        ));
        Ok(result?)
    }

    /// The grant check: a call whose capability is not granted is journaled as denied.
    fn check_grant(&mut self, function: HostFunction, args: &str) -> Result<(), CallError> {
        let capability = function.capability();
        if self.scope.granted.contains(&capability) {
            return Ok(());
        }
        let RunScope { tenant, plugin, .. } = &*self.scope;
        let why = format!(
            "capability `{capability}` is not granted to plugin `{plugin}` for tenant `{tenant}` \
             (an admin can run `capdesk grant {tenant} {plugin} {capability}`)"
        );
        tracing::info!(%tenant, %plugin, %function, "denied: {capability} not granted");
        let failure = Failure::Denied(why);
        self.journal.record(
            function.name(),
            Some(capability.name()),
            args.to_string(),
            format!("denied: {capability} not granted"),
            to_json(&Recorded::<()>::Error(&failure)),
            CallState::Done,
        );
        Err(failure.into())
    }

    /// Mode, then policy, for a live side-effecting call.
    async fn verdict(
        &mut self,
        function: HostFunction,
        args: &str,
        facts: &Facts<'_>,
        target: Option<&DirectoryUser>,
    ) -> Verdict {
        let verified = self.scope.ticket.details.requester_verified || self.challenge_passed;
        // Facts decided before are answered here, on the fiber; evaluating needs a stack.
        let remembered = self.scope.policy.remembered(&policy_request(
            &self.scope,
            verified,
            function,
            target,
            facts,
        ));
        let decision = match remembered {
            Some(decision) => decision,
            None => {
                PolicyCall {
                    scope: self.scope.clone(),
                    verified,
                    function,
                    target: target.cloned(),
                    group: facts.group.map(str::to_string),
                    license: facts.license.map(str::to_string),
                    mailbox: facts.mailbox.map(str::to_string),
                    right: facts.right.map(str::to_string),
                    recipient: facts.recipient.map(str::to_string),
                }
                .decide()
                .await
            }
        };
        let summary = || describe_call(function, args);
        let ask = |rule: String, approvers| {
            Box::new(ApprovalNeeded {
                seq: 0,
                function: function.name().to_string(),
                args: args.to_string(),
                summary: summary(),
                rule,
                approvers,
                target: target.cloned(),
            })
        };
        match (self.scope.mode, decision) {
            (_, Decision::Deny { reason, .. }) => Verdict::Deny(reason),
            (Mode::Shadow, decision) => {
                let why = match decision {
                    Decision::Allow { rule } => format!("policy allows it (rule {rule})"),
                    Decision::Ask { rule, approvers } => format!(
                        "policy would ask {} first (rule {rule}); simulated as approved",
                        describe_approvers(&approvers)
                    ),
                    Decision::Deny { .. } => unreachable!("handled above"),
                };
                self.proposals.push(format!("{}: {why}", summary()));
                Verdict::Shadow(format!("shadow: simulated; {why}"))
            }
            (Mode::Supervised, _) if function.changes_directory() => {
                let technicians = self
                    .scope
                    .policy
                    .approver_roles()
                    .find(|(name, _)| *name == TECHNICIANS_ROLE)
                    .map(|(_, specs)| specs.to_vec());
                match technicians {
                    Some(approvers) if !approvers.is_empty() => {
                        Verdict::Ask(ask(SUPERVISED_RULE.into(), approvers))
                    }
                    _ => Verdict::Deny(format!(
                        "the tenant is in supervised mode, but its policy names no `{TECHNICIANS_ROLE}` \
                         approvers to ask; add them under [approvers] with `capdesk policy set`"
                    )),
                }
            }
            (_, Decision::Allow { rule }) => Verdict::Allow(format!("allowed by rule {rule}")),
            (_, Decision::Ask { rule, approvers }) => Verdict::Ask(ask(rule, approvers)),
        }
    }

    /// Check a recorded call against the one the plugin made now.
    fn replay<T: DeserializeOwned>(
        &self,
        recorded: JournalEntry,
        function: HostFunction,
        args: &str,
    ) -> Result<Replay<T>, CallError> {
        if recorded.function != function.name() || recorded.args != args {
            return Err(Interrupt::DeterminismFault {
                seq: recorded.seq,
                recorded: format!("{}({})", recorded.function, recorded.args),
                made: format!("{}({args})", function.name()),
            }
            .into());
        }
        match recorded.call_state() {
            CallState::Done => match serde_json::from_str::<Replayed<T>>(&recorded.result) {
                Ok(Replayed::Ok(v)) => Ok(Replay::Result(Ok(v))),
                Ok(Replayed::Error(f)) => Ok(Replay::Result(Err(f.into()))),
                Err(_) => Err(self.in_doubt(recorded)),
            },
            CallState::Approved => Ok(Replay::Execute {
                seq: recorded.seq,
                decision: recorded.decision,
            }),
            CallState::Intent if self.connectors.is_idempotent(function) => {
                tracing::warn!(seq = recorded.seq, %function, "repeating an interrupted idempotent call");
                Ok(Replay::Execute {
                    seq: recorded.seq,
                    decision: format!(
                        "{}; repeated after an interruption (idempotent)",
                        recorded.decision
                    ),
                })
            }
            CallState::Intent | CallState::Waiting => Err(self.in_doubt(recorded)),
        }
    }

    fn in_doubt(&self, recorded: JournalEntry) -> CallError {
        Interrupt::InDoubt {
            seq: recorded.seq,
            function: recorded.function,
            args: recorded.args,
        }
        .into()
    }

    /// Record a log line from the plugin (needs no capability).
    pub fn log(&mut self, mut line: LogLine) {
        if self.replaying() {
            return; // recorded when the run first got here
        }
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return;
        }
        if self.log_lines == MAX_LOG_LINES {
            line.message =
                format!("log limit of {MAX_LOG_LINES} lines reached; later lines are dropped");
        }
        line.message.truncate(MAX_TEXT_BYTES);
        tracing::info!(tenant = %self.scope.tenant, plugin = %self.scope.plugin, level = %line.level, "plugin: {}", line.message);
        self.journal.record(
            "log.emit",
            None,
            to_json(&line),
            "-".into(),
            "null".into(),
            CallState::Done,
        );
    }

    // ---- idp -----------------------------------------------------------------------

    pub async fn find_user(&mut self, email: &str) -> Result<DirectoryUser, CallError> {
        let idp = self.connectors.idp.clone();
        self.read(HostFunction::FindUser, call_args!("email": email), async {
            Ok(idp.find_user(email).await?)
        })
        .await
    }

    /// Challenge the requester with a one-time code sent to a contact method the
    /// directory holds for `email` (not the channel the request came from). The run
    /// then waits for the requester's answer ([`Interrupt::Challenge`]); the engine
    /// checks it and records the outcome, which this call returns when replayed.
    pub async fn verify_identity(&mut self, email: &str) -> Result<String, CallError> {
        let function = HostFunction::VerifyIdentity;
        let args = call_args!("email": email);
        let code = one_time_code();
        let ticket = &self.scope.ticket;
        let code_hash = challenge_hash(&ticket.id, &code);
        let requester = ticket.details.requester.email.clone();
        let (idp, chat) = (self.connectors.idp.clone(), self.connectors.chat.clone());
        let send = async {
            let contact = idp
                .contact_methods(email)
                .await?
                .into_iter()
                // Never to the channel the request came from.
                .find(|c| !contact_address(c).eq_ignore_ascii_case(&requester))
                .ok_or_else(|| {
                    Failure::NotFound(format!(
                        "the directory holds no contact method for {email} other than the channel \
                         the request came from, so capdesk cannot verify the requester; a \
                         technician must"
                    ))
                })?;
            let message = format!(
                "Your service desk verification code is {code}. Someone asked the IT service desk \
                 to change your account; if that was you, give them this code. If it wasn't, \
                 tell IT right away."
            );
            chat.send(&contact, &message).await?;
            Ok(mask_contact(&contact))
        };
        let is_requester = email.eq_ignore_ascii_case(&requester);
        let sent = if let Some(entry) = self.journal.next_recorded() {
            match self.replay(entry, function, &args)? {
                // The challenge's outcome, recorded when the requester answered.
                Replay::Result(r) => {
                    self.challenge_passed |= r.is_ok() && is_requester;
                    return r;
                }
                Replay::Execute { seq, decision } => {
                    self.execute(Some(seq), function, args, decision, send)
                        .await?
                }
            }
        } else {
            let shadow = |_: Option<&DirectoryUser>| "(shadow run: no code sent)".to_string();
            let sent = self
                .act_live(function, args, Facts::target(email), shadow, send)
                .await?;
            if self.scope.mode == Mode::Shadow {
                // Simulated as passed, so the shadow run shows what would follow.
                self.challenge_passed |= is_requester;
                return Ok(sent);
            }
            sent
        };
        self.journal.mark_last_waiting();
        Err(Interrupt::Challenge {
            to: self.scope.ticket.details.requester.email.clone(),
            contact: sent,
            code_hash,
        }
        .into())
    }

    pub async fn unlock_account(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::UnlockAccount,
            call_args!("email": email),
            Facts::target(email),
            |u| changed(u.is_some_and(|u| u.locked)),
            async { Ok(idp.unlock_account(email).await?) },
        )
        .await
    }

    /// Make a temporary password, set it, and deliver it to the account owner by chat.
    /// The plugin learns only where it went; the journal never holds the secret.
    pub async fn reset_password(&mut self, email: &str) -> Result<Delivery, CallError> {
        let idp = self.connectors.idp.clone();
        let chat = self.connectors.chat.clone();
        let links = self.connectors.credentials.clone();
        let tenant = self.scope.tenant.clone();
        let delivery = |recipient: String| Delivery {
            channel: "chat".into(),
            recipient,
            expires_in_minutes: TEMPORARY_PASSWORD_MINUTES,
        };
        self.act(
            HostFunction::ResetPassword,
            call_args!("email": email),
            Facts::target(email),
            |u| delivery(u.map_or(email.to_string(), |u| u.email.clone())),
            async {
                let owner = idp.find_user(email).await?;
                if !owner.enabled {
                    return Err(Failure::Invalid(format!(
                        "the account {} is disabled; a technician must re-enable it first",
                        owner.email
                    )));
                }
                let secret = temporary_password();
                idp.set_temporary_password(&owner.email, &secret).await?;
                let message = match &links {
                    // Served over HTTP: a one-time link, so the password is in no chat
                    // history; a link that cannot be made is a failed delivery.
                    Some(links) => {
                        let link = links.seal(&tenant, &owner.email, &secret).await.map_err(|e| {
                            Failure::Incomplete(format!(
                                "the password of {} was reset, but its one-time link could not be \
                                 made ({e}); the old password no longer works: reset it again and \
                                 give the new one to the owner in person",
                                owner.email
                            ))
                        })?;
                        format!(
                            "Your password was reset. Open this link to see your temporary \
                             password (it works once, within {} minutes): {link}\nYou will be \
                             asked to choose a new password when you sign in.",
                            crate::credentials::LINK_MINUTES
                        )
                    }
                    None => format!(
                        "Your temporary password is: {}\nIt works for {TEMPORARY_PASSWORD_MINUTES} minutes. \
                         You will be asked to choose a new password when you sign in.",
                        secret.expose()
                    ),
                };
                // The password is already changed: a delivery that fails must say so, or
                // the technician would be told nothing happened while the old password
                // no longer works.
                chat.send(&owner.email, &message).await.map_err(|e| {
                    Failure::Incomplete(format!(
                        "the password of {} was reset, but the temporary password could not be \
                         delivered ({e}); the old password no longer works: reset it again and \
                         give the new one to the owner in person",
                        owner.email
                    ))
                })?;
                Ok(delivery(owner.email))
            },
        )
        .await
    }

    pub async fn require_mfa_reregistration(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::RequireMfaReregistration,
            call_args!("email": email),
            Facts::target(email),
            |u| changed(u.is_none_or(|u| !u.mfa_methods.is_empty())),
            async { Ok(idp.require_mfa_reregistration(email).await?) },
        )
        .await
    }

    pub async fn revoke_sessions(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::RevokeSessions,
            call_args!("email": email),
            Facts::target(email),
            |_| Effect::Changed,
            async { Ok(idp.revoke_sessions(email).await?) },
        )
        .await
    }

    pub async fn add_group_member(
        &mut self,
        group: &str,
        email: &str,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::AddGroupMember,
            call_args!("group": group, "email": email),
            Facts {
                group: Some(group),
                ..Facts::target(email)
            },
            |u| changed(u.is_none_or(|u| !has(&u.groups, group))),
            async { Ok(idp.add_group_member(group, email).await?) },
        )
        .await
    }

    pub async fn remove_group_member(
        &mut self,
        group: &str,
        email: &str,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::RemoveGroupMember,
            call_args!("group": group, "email": email),
            Facts {
                group: Some(group),
                ..Facts::target(email)
            },
            |u| changed(u.is_none_or(|u| has(&u.groups, group))),
            async { Ok(idp.remove_group_member(group, email).await?) },
        )
        .await
    }

    pub async fn assign_license(&mut self, email: &str, sku: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::AssignLicense,
            call_args!("email": email, "sku": sku),
            Facts {
                license: Some(sku),
                ..Facts::target(email)
            },
            |u| changed(u.is_none_or(|u| !has(&u.licenses, sku))),
            async { Ok(idp.assign_license(email, sku).await?) },
        )
        .await
    }

    pub async fn remove_license(&mut self, email: &str, sku: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::RemoveLicense,
            call_args!("email": email, "sku": sku),
            Facts {
                license: Some(sku),
                ..Facts::target(email)
            },
            |u| changed(u.is_none_or(|u| has(&u.licenses, sku))),
            async { Ok(idp.remove_license(email, sku).await?) },
        )
        .await
    }

    pub async fn grant_mailbox_access(
        &mut self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::GrantMailboxAccess,
            call_args!("mailbox": mailbox, "email": email, "right": right),
            Facts {
                mailbox: Some(mailbox),
                right: Some(right.name()),
                ..Facts::target(email)
            },
            |_| Effect::Changed,
            async { Ok(idp.grant_mailbox_access(mailbox, email, right).await?) },
        )
        .await
    }

    pub async fn remove_mailbox_access(
        &mut self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.act(
            HostFunction::RemoveMailboxAccess,
            call_args!("mailbox": mailbox, "email": email, "right": right),
            Facts {
                mailbox: Some(mailbox),
                right: Some(right.name()),
                ..Facts::target(email)
            },
            |_| Effect::Changed,
            async { Ok(idp.remove_mailbox_access(mailbox, email, right).await?) },
        )
        .await
    }

    // ---- psa -----------------------------------------------------------------------

    pub async fn get_ticket(&mut self, id: &str) -> Result<TicketRecord, CallError> {
        let psa = self.connectors.psa.clone();
        self.read(HostFunction::GetTicket, call_args!("id": id), async {
            Ok(psa.get_ticket(id).await?)
        })
        .await
    }

    pub async fn add_note(
        &mut self,
        id: &str,
        text: &str,
        visibility: Visibility,
    ) -> Result<(), CallError> {
        check_text(text)?;
        let psa = self.connectors.psa.clone();
        let author = format!("capdesk/{}", self.scope.plugin);
        self.act(
            HostFunction::AddNote,
            call_args!("id": id, "text": text, "visibility": visibility),
            Facts::default(),
            |_| (),
            async { Ok(psa.add_note(id, text, visibility, &author).await?) },
        )
        .await
    }

    pub async fn set_status(&mut self, id: &str, status: TicketStatus) -> Result<(), CallError> {
        let psa = self.connectors.psa.clone();
        self.act(
            HostFunction::SetStatus,
            call_args!("id": id, "status": status),
            Facts::default(),
            |_| (),
            async { Ok(psa.set_status(id, status).await?) },
        )
        .await
    }

    pub async fn link_to_parent(&mut self, id: &str, parent: &str) -> Result<(), CallError> {
        let psa = self.connectors.psa.clone();
        self.act(
            HostFunction::LinkToParent,
            call_args!("id": id, "parent": parent),
            Facts::default(),
            |_| (),
            async { Ok(psa.link_to_parent(id, parent).await?) },
        )
        .await
    }

    // ---- chat ----------------------------------------------------------------------

    pub async fn send(&mut self, to: &str, text: &str) -> Result<(), CallError> {
        check_text(text)?;
        let chat = self.connectors.chat.clone();
        self.act(
            HostFunction::ChatSend,
            call_args!("to": to, "text": text),
            Facts {
                recipient: Some(to),
                ..Facts::default()
            },
            |_| (),
            async { Ok(chat.send(to, text).await?) },
        )
        .await
    }

    /// Ask a person a question and wait for the answer. The question goes out by chat,
    /// the call is journaled as waiting, and the run stops with [`Interrupt::Waiting`];
    /// when the answer is recorded the run resumes and this call, replayed, returns it.
    pub async fn ask(
        &mut self,
        to: &str,
        question: &str,
        choices: &[String],
    ) -> Result<String, CallError> {
        check_text(question)?;
        let function = HostFunction::ChatAsk;
        let args = call_args!("to": to, "question": question, "choices": choices);
        let chat = self.connectors.chat.clone();
        // The run's label routes a chat's answer buttons back to it.
        let run = self
            .journal
            .run()
            .map(crate::store::run_label)
            .unwrap_or_default();
        let send = async {
            chat.ask(to, question, choices, &run).await?;
            Ok(String::new())
        };
        if let Some(entry) = self.journal.next_recorded() {
            match self.replay(entry, function, &args)? {
                // The answer, recorded when it came.
                Replay::Result(r) => return r,
                // An approver allowed the question: ask it now.
                Replay::Execute { seq, decision } => {
                    self.execute(Some(seq), function, args, decision, send)
                        .await?;
                }
            }
        } else {
            let facts = Facts {
                recipient: Some(to),
                ..Facts::default()
            };
            self.act_live(function, args, facts, |_| String::new(), send)
                .await?;
            if self.scope.mode == Mode::Shadow {
                return Err(Interrupt::ShadowQuestion {
                    to: to.to_string(),
                    question: question.to_string(),
                }
                .into());
            }
        }
        // The question went out: the run waits for the answer.
        self.journal.mark_last_waiting();
        Err(Interrupt::Waiting {
            to: to.to_string(),
            question: question.to_string(),
            choices: choices.to_vec(),
        }
        .into())
    }
}

/// A side-effecting call as the policy sees it, borrowed from the guard: what
/// [`Policy::remembered`](policy::Policy::remembered) looks up on the run's fiber.
fn policy_request<'a>(
    scope: &'a RunScope,
    verified: bool,
    function: HostFunction,
    target: Option<&'a DirectoryUser>,
    facts: &Facts<'a>,
) -> policy::Request<'a> {
    let t = &scope.ticket;
    policy::Request {
        tenant: &scope.tenant,
        plugin: &scope.plugin,
        function,
        category: &scope.category,
        ticket: policy::TicketFacts {
            id: &t.id,
            channel: &t.details.channel,
            subject: &t.details.subject,
        },
        requester: policy::Requester {
            email: &t.details.requester.email,
            verified,
        },
        target: target.map(|u| policy::Target {
            email: &u.email,
            privileged: u.privileged,
            enabled: u.enabled,
            department: u.department.as_deref().unwrap_or(""),
            manager: u.manager.as_deref().unwrap_or(""),
            groups: &u.groups,
            licenses: &u.licenses,
        }),
        group: facts.group,
        license: facts.license,
        mailbox: facts.mailbox,
        right: facts.right,
        recipient: facts.recipient,
        // The clock is read only for a policy that looks at it.
        time: if scope.policy.reads_time(function) {
            policy::CallTime::now()
        } else {
            policy::CallTime::UNREAD
        },
    }
}

/// A side-effecting call as the policy sees it, owned so that the decision can run as
/// its own task. Host calls execute on the run's wasmtime fiber, whose stack Cedar's
/// stack-depth check cannot see (it would report none left); a task runs on a thread's
/// own stack, and costs a task switch instead of a fresh stack per decision. A
/// decision the policy remembers needs neither (see [`Guard::verdict`]).
struct PolicyCall {
    scope: Arc<RunScope>,
    /// The channel verified the requester, or they passed an identity challenge.
    verified: bool,
    function: HostFunction,
    target: Option<DirectoryUser>,
    group: Option<String>,
    license: Option<String>,
    mailbox: Option<String>,
    right: Option<String>,
    recipient: Option<String>,
}

impl PolicyCall {
    async fn decide(self) -> Decision {
        let decided = tokio::task::spawn(async move { self.scope.policy.decide(&self.request()) });
        decided.await.unwrap_or_else(|e| Decision::Deny {
            rule: None,
            reason: format!("the policy could not be evaluated ({e}), so the call is denied"),
        })
    }

    fn request(&self) -> policy::Request<'_> {
        let facts = Facts {
            target: None,
            group: self.group.as_deref(),
            license: self.license.as_deref(),
            mailbox: self.mailbox.as_deref(),
            right: self.right.as_deref(),
            recipient: self.recipient.as_deref(),
        };
        policy_request(
            &self.scope,
            self.verified,
            self.function,
            self.target.as_ref(),
            &facts,
        )
    }
}

/// What replaying a recorded call gives.
enum Replay<T> {
    /// The recorded result.
    Result(Result<T, CallError>),
    /// Run the call now, at the recorded sequence number (approved, or an interrupted
    /// idempotent call).
    Execute { seq: i64, decision: String },
}

impl<'a> Facts<'a> {
    fn target(email: &'a str) -> Facts<'a> {
        Facts {
            target: Some(email),
            ..Facts::default()
        }
    }
}

fn changed(would_change: bool) -> Effect {
    if would_change {
        Effect::Changed
    } else {
        Effect::Unchanged
    }
}

fn has(values: &[String], value: &str) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(value))
}

/// A call in words, for approvers, proposals and notes.
pub fn describe_call(function: HostFunction, args: &str) -> String {
    let a: Value = serde_json::from_str(args).unwrap_or(Value::Null);
    let s = |k: &str| a[k].as_str().unwrap_or("?").to_string();
    match function {
        HostFunction::FindUser => format!("look up {}", s("email")),
        HostFunction::VerifyIdentity => format!(
            "challenge the requester with a one-time code sent to a contact method {} has on file",
            s("email")
        ),
        HostFunction::UnlockAccount => format!("unlock the account {}", s("email")),
        HostFunction::ResetPassword => format!(
            "reset the password of {} (a temporary password goes to the owner)",
            s("email")
        ),
        HostFunction::RequireMfaReregistration => {
            format!("require {} to register MFA again", s("email"))
        }
        HostFunction::RevokeSessions => format!("sign {} out everywhere", s("email")),
        HostFunction::AddGroupMember => {
            format!("add {} to the group {}", s("email"), s("group"))
        }
        HostFunction::RemoveGroupMember => {
            format!("remove {} from the group {}", s("email"), s("group"))
        }
        HostFunction::AssignLicense => format!("assign the license {} to {}", s("sku"), s("email")),
        HostFunction::RemoveLicense => {
            format!("remove the license {} from {}", s("sku"), s("email"))
        }
        HostFunction::GrantMailboxAccess => format!(
            "give {} {} access to the mailbox {}",
            s("email"),
            s("right"),
            s("mailbox")
        ),
        HostFunction::RemoveMailboxAccess => format!(
            "remove {}'s {} access to the mailbox {}",
            s("email"),
            s("right"),
            s("mailbox")
        ),
        HostFunction::GetTicket => format!("read ticket {}", s("id")),
        HostFunction::AddNote => match s("visibility") {
            internal if internal == "internal" => format!("add an internal note: {}", s("text")),
            other => format!("add a {other} note: {}", s("text")),
        },
        HostFunction::SetStatus => format!("set the ticket status to {}", s("status")),
        HostFunction::LinkToParent => format!("link the ticket to {}", s("parent")),
        HostFunction::ChatSend => format!("message {}: {}", s("to"), s("text")),
        HostFunction::ChatAsk => format!("ask {}: {}", s("to"), s("question")),
    }
}

/// Approver specs in words (`the target's manager or the group Finance Approvers`).
pub fn describe_approvers(approvers: &[ApproverSpec]) -> String {
    approvers
        .iter()
        .map(|a| match a {
            ApproverSpec::Manager => "the user's manager".to_string(),
            ApproverSpec::DepartmentHead => "the department head".to_string(),
            ApproverSpec::Group(g) => format!("a member of {g}"),
            ApproverSpec::Person(p) => p.clone(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Wrong answers to an identity challenge after which it fails.
pub const CHALLENGE_ATTEMPTS: u32 = 3;

/// A six-digit one-time code.
fn one_time_code() -> String {
    use rand::RngExt as _;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The stored form of a challenge code: SHA-256 of the code salted with the ticket id.
pub fn challenge_hash(ticket: &str, code: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!(
        "capdesk-challenge:{ticket}:{}",
        code.trim()
    )))
}

/// The address part of a contact method (`sms:+15550142` → `+15550142`).
fn contact_address(contact: &str) -> &str {
    contact.split_once(':').map_or(contact, |(_, a)| a)
}

/// A contact method as the requester and the plugin may see it: `text message to
/// ***0142`, `email to a***@home.example`.
fn mask_contact(contact: &str) -> String {
    let (kind, address) = contact.split_once(':').unwrap_or(("contact", contact));
    let masked = match address.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", &local[..local.len().min(1)]),
        None => format!("***{}", &address[address.len().saturating_sub(4)..]),
    };
    let by = match kind {
        "sms" => "text message",
        "voice" => "voice call",
        other => other,
    };
    format!("{by} to {masked}")
}

/// A temporary password: 16 characters from an alphabet without look-alikes, with at
/// least one of each class that directory complexity rules ask for.
fn temporary_password() -> Secret {
    use rand::RngExt as _;
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+=?@";
    let mut rng = rand::rng();
    let mut chars: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL]
        .iter()
        .map(|set| set[rng.random_range(0..set.len())])
        .collect();
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    while chars.len() < 16 {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.random_range(0..=i));
    }
    Secret::new(String::from_utf8(chars).expect("ascii"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::sandbox::{NewUser, Sandbox};
    use crate::connectors::{Idp as _, NewTicket, Person};
    use crate::store::Store;

    const ANN: &str = "ann@acme.test";

    struct Setup {
        _dir: tempfile::TempDir,
        sandbox: Arc<Sandbox>,
        connectors: Connectors,
    }

    async fn setup(users: &[NewUser]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.add_tenant("acme", "Acme").await.unwrap();
        let sandbox = Arc::new(Sandbox::new(&store, "acme"));
        for u in users {
            sandbox.add_user(u).await.unwrap();
        }
        let connectors = Connectors {
            idp: sandbox.clone(),
            psa: sandbox.clone(),
            chat: sandbox.clone(),
            credentials: None,
        };
        Setup {
            _dir: dir,
            sandbox,
            connectors,
        }
    }

    fn locked(email: &str) -> NewUser {
        NewUser {
            email: email.into(),
            locked: true,
            manager: Some("max@acme.test".into()),
            ..NewUser::default()
        }
    }

    fn scope(granted: &[Capability], mode: Mode, verified: bool) -> RunScope {
        RunScope {
            tenant: "acme".into(),
            plugin: "account-unlock".into(),
            category: "account-unlock".into(),
            granted: granted.iter().copied().collect(),
            mode,
            policy: Arc::new(Policy::default_policy()),
            ticket: Ticket {
                id: "T-1".into(),
                details: NewTicket {
                    subject: "locked out".into(),
                    body: String::new(),
                    requester: Person {
                        email: ANN.into(),
                        name: "Ann".into(),
                    },
                    channel: "chat".into(),
                    requester_verified: verified,
                    fields: vec![],
                },
            },
        }
    }

    fn guard(s: &Setup, granted: &[Capability], mode: Mode) -> Guard {
        Guard::new(
            scope(granted, mode, true),
            s.connectors.clone(),
            Journal::in_memory(),
        )
    }

    async fn unlocks(s: &Setup, email: &str) -> usize {
        let report = s.sandbox.user_report(email).await.unwrap();
        report
            .events
            .iter()
            .filter(|e| e.action == "unlocked")
            .count()
    }

    /// The journal as it would be read back from the store: the last version per seq.
    fn as_recorded(guard: &Guard) -> Vec<JournalEntry> {
        let mut by_seq: std::collections::BTreeMap<i64, &NewJournalEntry> = Default::default();
        for e in guard.journal() {
            by_seq.insert(e.seq, e);
        }
        by_seq
            .values()
            .map(|e| JournalEntry {
                seq: e.seq,
                function: e.function.to_string(),
                capability: e.capability.map(str::to_string),
                args: e.args.clone(),
                decision: e.decision.clone(),
                result: e.result.clone(),
                state: e.state.name().into(),
                at: String::new(),
            })
            .collect()
    }

    const UNLOCKER: &[Capability] = &[Capability::IdpRead, Capability::IdpUnlock];

    #[tokio::test]
    async fn an_ungranted_call_is_denied_journaled_and_never_reaches_the_connector() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = guard(&s, &[Capability::IdpRead], Mode::Auto);
        let err = guard.unlock_account(ANN).await.unwrap_err();
        assert!(
            matches!(&err, CallError::Failure(Failure::Denied(m)) if m.contains("idp.unlock")),
            "{err}"
        );
        let entry = guard.journal().last().unwrap();
        assert_eq!(entry.function, "idp.unlock-account");
        assert!(entry.decision.starts_with("denied"));
        assert!(s.sandbox.find_user(ANN).await.unwrap().locked);
        assert_eq!(unlocks(&s, ANN).await, 0);
    }

    #[tokio::test]
    async fn an_allowed_call_is_journaled_as_intent_then_result_naming_the_rule() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = guard(&s, UNLOCKER, Mode::Auto);
        assert_eq!(guard.unlock_account(ANN).await.unwrap(), Effect::Changed);
        assert!(!s.sandbox.find_user(ANN).await.unwrap().locked);
        let versions: Vec<_> = guard.journal().map(|e| (e.seq, e.state)).collect();
        assert_eq!(versions, [(1, CallState::Intent), (1, CallState::Done)]);
        let done = guard.journal().last().unwrap();
        assert_eq!(done.decision, "allowed by rule owner-self-service");
        assert_eq!(done.result, r#"{"ok":"changed"}"#);
        let missing = guard.find_user("nobody@acme.test").await.unwrap_err();
        assert!(matches!(missing, CallError::Failure(Failure::NotFound(_))));
    }

    #[tokio::test]
    async fn policy_denies_a_privileged_target_before_any_connector_runs() {
        let boss = NewUser {
            privileged: true,
            ..locked(ANN)
        };
        let s = setup(&[boss]).await;
        let mut guard = guard(&s, UNLOCKER, Mode::Auto);
        let err = guard.unlock_account(ANN).await.unwrap_err();
        assert!(
            matches!(&err, CallError::Failure(Failure::Denied(m)) if m.contains("privileged-accounts")),
            "{err}"
        );
        assert!(
            guard
                .journal()
                .last()
                .unwrap()
                .decision
                .contains("privileged-accounts")
        );
        assert_eq!(unlocks(&s, ANN).await, 0);
    }

    #[tokio::test]
    async fn an_unverified_requester_is_denied_by_default() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = Guard::new(
            scope(UNLOCKER, Mode::Auto, false),
            s.connectors.clone(),
            Journal::in_memory(),
        );
        let err = guard.unlock_account(ANN).await.unwrap_err();
        assert!(
            matches!(err, CallError::Failure(Failure::Denied(_))),
            "{err}"
        );
        assert_eq!(unlocks(&s, ANN).await, 0);
    }

    #[tokio::test]
    async fn a_group_change_asks_the_targets_manager_and_waits() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = guard(&s, &[Capability::IdpGroups], Mode::Auto);
        let err = guard.add_group_member("Sales", ANN).await.unwrap_err();
        let CallError::Interrupt(Interrupt::NeedsApproval(needed)) = err else {
            panic!("expected an approval request, got {err}");
        };
        assert_eq!(needed.rule, "group-membership");
        assert_eq!(needed.summary, "add ann@acme.test to the group Sales");
        assert_eq!(
            needed.target.as_ref().and_then(|t| t.manager.as_deref()),
            Some("max@acme.test")
        );
        let entry = guard.journal().last().unwrap();
        assert_eq!((entry.seq, entry.state), (needed.seq, CallState::Waiting));
        let groups = s.sandbox.find_user(ANN).await.unwrap().groups;
        assert!(groups.is_empty(), "nothing changes before the approval");
    }

    #[tokio::test]
    async fn shadow_mode_simulates_and_proposes_without_changing_anything() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = guard(&s, UNLOCKER, Mode::Shadow);
        assert_eq!(guard.unlock_account(ANN).await.unwrap(), Effect::Changed);
        assert!(s.sandbox.find_user(ANN).await.unwrap().locked);
        assert_eq!(unlocks(&s, ANN).await, 0);
        let report = guard.finish();
        assert_eq!(report.proposals.len(), 1);
        assert!(
            report.proposals[0].contains("unlock the account ann@acme.test"),
            "{:?}",
            report.proposals
        );
    }

    #[tokio::test]
    async fn a_resumed_run_replays_recorded_calls_without_repeating_them() {
        let s = setup(&[locked(ANN)]).await;
        let mut first = guard(&s, UNLOCKER, Mode::Auto);
        first.unlock_account(ANN).await.unwrap();
        let recorded = as_recorded(&first);

        let mut replaying = Guard::new(
            scope(UNLOCKER, Mode::Auto, true),
            s.connectors.clone(),
            Journal::replaying(recorded.clone()),
        );
        assert_eq!(
            replaying.unlock_account(ANN).await.unwrap(),
            Effect::Changed
        );
        assert_eq!(
            replaying.journal().count(),
            0,
            "replayed calls are not journaled twice"
        );
        assert_eq!(unlocks(&s, ANN).await, 1);

        // A different call where the journal has the unlock is a determinism fault.
        let mut diverged = Guard::new(
            scope(UNLOCKER, Mode::Auto, true),
            s.connectors.clone(),
            Journal::replaying(recorded),
        );
        let err = diverged.find_user(ANN).await.unwrap_err();
        assert!(
            matches!(
                err,
                CallError::Interrupt(Interrupt::DeterminismFault { seq: 1, .. })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_interrupted_call_is_repeated_only_when_the_connector_says_it_is_idempotent() {
        let s = setup(&[locked(ANN)]).await;
        let intent = |function: &str, args: &str| JournalEntry {
            seq: 1,
            function: function.into(),
            capability: Some("x".into()),
            args: args.into(),
            decision: "allowed by rule owner-self-service".into(),
            result: "null".into(),
            state: "intent".into(),
            at: String::new(),
        };
        let args = serde_json::json!({ "email": ANN }).to_string();

        // Unlocking twice leaves the account as once: it is repeated.
        let mut g = Guard::new(
            scope(UNLOCKER, Mode::Auto, true),
            s.connectors.clone(),
            Journal::replaying(vec![intent("idp.unlock-account", &args)]),
        );
        assert_eq!(g.unlock_account(ANN).await.unwrap(), Effect::Changed);
        assert_eq!(unlocks(&s, ANN).await, 1);

        // A second temporary password would be a second credential: it is in doubt.
        let mut g = Guard::new(
            scope(&[Capability::IdpPassword], Mode::Auto, true),
            s.connectors.clone(),
            Journal::replaying(vec![intent("idp.reset-password", &args)]),
        );
        let err = g.reset_password(ANN).await.unwrap_err();
        assert!(
            matches!(err, CallError::Interrupt(Interrupt::InDoubt { seq: 1, .. })),
            "{err}"
        );
        assert!(s.sandbox.outbox().await.unwrap().is_empty());
    }

    #[test]
    fn call_arguments_are_recorded_as_json_would_write_them() {
        // Replays compare these texts with the ones recorded by earlier versions, which
        // wrote `json!({..}).to_string()`.
        let choices = vec!["Yes, \"now\"".to_string(), "später \\ 🙂".to_string()];
        let text = "line one\nline two\t\u{1}";
        assert_eq!(
            call_args!("to": "ann@acme.test", "question": text, "choices": choices),
            serde_json::json!({ "to": "ann@acme.test", "question": text, "choices": choices })
                .to_string()
        );
        assert_eq!(
            call_args!("id": "T-1", "status": TicketStatus::InProgress, "visibility": Visibility::Public),
            serde_json::json!({
                "id": "T-1",
                "status": TicketStatus::InProgress,
                "visibility": Visibility::Public
            })
            .to_string()
        );
        assert_eq!(
            call_args!("mailbox": "shared@acme.test", "email": "ann@acme.test", "right": MailboxRight::FullAccess),
            serde_json::json!({
                "mailbox": "shared@acme.test",
                "email": "ann@acme.test",
                "right": MailboxRight::FullAccess
            })
            .to_string()
        );
    }

    #[tokio::test]
    async fn the_temporary_password_reaches_only_the_owner() {
        let s = setup(&[locked(ANN)]).await;
        let mut guard = guard(&s, &[Capability::IdpPassword], Mode::Auto);
        let delivery = guard.reset_password(ANN).await.unwrap();
        assert_eq!(delivery.recipient, ANN);
        let outbox = s.sandbox.outbox().await.unwrap();
        let secret = outbox[0]
            .text
            .strip_prefix("Your temporary password is: ")
            .unwrap()
            .lines()
            .next()
            .unwrap();
        assert_eq!(secret.len(), 16);
        let journal = serde_json::to_string(&guard.journal().collect::<Vec<_>>()).unwrap();
        assert!(!journal.contains(secret));
    }
}
