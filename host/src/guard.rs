//! The one path every host call of a run takes: grant check, then journal, then
//! connector. A call whose capability the tenant did not grant to the plugin is
//! journaled as denied and never reaches a connector. A resumed run replays: while
//! recorded calls remain, each call must match the next recorded one (function and
//! arguments) and gets the recorded result without touching a connector; a mismatch is
//! a determinism fault that stops the run. The guard speaks domain types
//! (`connectors::*`) and knows nothing of wasmtime; `runtime::host` translates the WIT
//! calls into these methods.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::capability::{Capability, HostFunction};
use crate::connectors::{
    ConnectorError, Connectors, DirectoryUser, Effect, MailboxRight, Secret, TicketRecord,
    TicketStatus, Visibility,
};
use crate::store::{JournalEntry, NewJournalEntry};

/// Longest note or chat message a plugin may write.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Log lines kept per run; later ones are counted, not kept.
pub const MAX_LOG_LINES: usize = 200;

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
        "call {seq} ({function}) is in doubt: it was started but its result was never recorded"
    )]
    InDoubt { seq: i64, function: String },
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

/// JSON text of a value the journal records (domain types always serialize).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"unserializable\":{:?}}}", e.to_string()))
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

/// The host side of one run: who it runs for, what it may do, what it did.
pub struct Guard {
    tenant: String,
    plugin: String,
    granted: BTreeSet<Capability>,
    connectors: Connectors,
    journal: Vec<NewJournalEntry>,
    replay: VecDeque<JournalEntry>,
    log_lines: usize,
}

impl Guard {
    pub fn new(
        tenant: &str,
        plugin: &str,
        granted: BTreeSet<Capability>,
        connectors: Connectors,
    ) -> Guard {
        Guard {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            granted,
            connectors,
            journal: Vec::new(),
            replay: VecDeque::new(),
            log_lines: 0,
        }
    }

    /// A guard for a resumed run: `recorded` is the run's journal so far; the plugin's
    /// calls that it holds are replayed, everything after them runs live.
    pub fn resuming(
        tenant: &str,
        plugin: &str,
        granted: BTreeSet<Capability>,
        connectors: Connectors,
        recorded: Vec<JournalEntry>,
    ) -> Guard {
        let mut guard = Guard::new(tenant, plugin, granted, connectors);
        guard.replay = recorded
            .into_iter()
            .filter(|e| e.capability.is_some())
            .collect();
        guard
    }

    /// True while recorded calls remain to be replayed.
    pub fn replaying(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The calls made so far, in order.
    pub fn journal(&self) -> &[NewJournalEntry] {
        &self.journal
    }

    pub fn into_journal(self) -> Vec<NewJournalEntry> {
        self.journal
    }

    /// Replay the next recorded call if there is one; otherwise check the grant for
    /// `function`, run `op` if granted, and journal either way.
    async fn call<T, F>(
        &mut self,
        function: HostFunction,
        args: Value,
        op: F,
    ) -> Result<T, CallError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, Failure>>,
    {
        if let Some(recorded) = self.replay.pop_front() {
            return replay(recorded, function, &args.to_string());
        }
        let args = self.check(function, args)?;
        let result = op.await;
        let recorded = match &result {
            Ok(v) => to_json(&Recorded::Ok(v)),
            Err(f) => to_json(&Recorded::<T>::Error(f)),
        };
        self.push(function, args, "allowed".into(), recorded);
        Ok(result?)
    }

    /// The grant check: a call whose capability is not granted is journaled as denied.
    fn check(&mut self, function: HostFunction, args: Value) -> Result<Value, CallError> {
        let capability = function.capability();
        if !self.granted.contains(&capability) {
            let why = format!(
                "capability `{capability}` is not granted to plugin `{}` for tenant `{}` \
                 (an admin can run `capdesk grant {} {} {capability}`)",
                self.plugin, self.tenant, self.tenant, self.plugin
            );
            tracing::info!(tenant = %self.tenant, plugin = %self.plugin, %function, "denied: {capability} not granted");
            let failure = Failure::Denied(why);
            let recorded = to_json(&Recorded::<()>::Error(&failure));
            self.push(
                function,
                args,
                format!("denied: {capability} not granted"),
                recorded,
            );
            return Err(failure.into());
        }
        Ok(args)
    }

    fn push(&mut self, function: HostFunction, args: Value, decision: String, result: String) {
        self.journal.push(NewJournalEntry {
            function: function.name().to_string(),
            capability: Some(function.capability().name().to_string()),
            args: args.to_string(),
            decision,
            result,
        });
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
        tracing::info!(tenant = %self.tenant, plugin = %self.plugin, level = %line.level, "plugin: {}", line.message);
        self.journal.push(NewJournalEntry {
            function: "log.emit".into(),
            capability: None,
            args: to_json(&line),
            decision: "-".into(),
            result: "null".into(),
        });
    }

    // ---- idp -----------------------------------------------------------------------

    pub async fn find_user(&mut self, email: &str) -> Result<DirectoryUser, CallError> {
        let idp = self.connectors.idp.clone();
        self.call(HostFunction::FindUser, json!({ "email": email }), async {
            Ok(idp.find_user(email).await?)
        })
        .await
    }

    pub async fn unlock_account(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.call(
            HostFunction::UnlockAccount,
            json!({ "email": email }),
            async { Ok(idp.unlock_account(email).await?) },
        )
        .await
    }

    /// Make a temporary password, set it, and deliver it to the account owner by chat.
    /// The plugin learns only where it went; the journal never holds the secret.
    pub async fn reset_password(&mut self, email: &str) -> Result<Delivery, CallError> {
        let idp = self.connectors.idp.clone();
        let chat = self.connectors.chat.clone();
        self.call(HostFunction::ResetPassword, json!({ "email": email }), async {
            let owner = idp.find_user(email).await?;
            if !owner.enabled {
                return Err(Failure::Invalid(format!(
                    "the account {} is disabled; a technician must re-enable it first",
                    owner.email
                )));
            }
            let secret = temporary_password();
            idp.set_temporary_password(&owner.email, &secret).await?;
            let message = format!(
                "Your temporary password is: {}\nIt works for {TEMPORARY_PASSWORD_MINUTES} minutes. \
                 You will be asked to choose a new password when you sign in.",
                secret.expose()
            );
            chat.send(&owner.email, &message).await?;
            Ok(Delivery {
                channel: "chat".into(),
                recipient: owner.email,
                expires_in_minutes: TEMPORARY_PASSWORD_MINUTES,
            })
        })
        .await
    }

    pub async fn require_mfa_reregistration(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.call(
            HostFunction::RequireMfaReregistration,
            json!({ "email": email }),
            async { Ok(idp.require_mfa_reregistration(email).await?) },
        )
        .await
    }

    pub async fn revoke_sessions(&mut self, email: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        self.call(
            HostFunction::RevokeSessions,
            json!({ "email": email }),
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
        let args = json!({ "group": group, "email": email });
        self.call(HostFunction::AddGroupMember, args, async {
            Ok(idp.add_group_member(group, email).await?)
        })
        .await
    }

    pub async fn remove_group_member(
        &mut self,
        group: &str,
        email: &str,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        let args = json!({ "group": group, "email": email });
        self.call(HostFunction::RemoveGroupMember, args, async {
            Ok(idp.remove_group_member(group, email).await?)
        })
        .await
    }

    pub async fn assign_license(&mut self, email: &str, sku: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        let args = json!({ "email": email, "sku": sku });
        self.call(HostFunction::AssignLicense, args, async {
            Ok(idp.assign_license(email, sku).await?)
        })
        .await
    }

    pub async fn remove_license(&mut self, email: &str, sku: &str) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        let args = json!({ "email": email, "sku": sku });
        self.call(HostFunction::RemoveLicense, args, async {
            Ok(idp.remove_license(email, sku).await?)
        })
        .await
    }

    pub async fn grant_mailbox_access(
        &mut self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        let args = json!({ "mailbox": mailbox, "email": email, "right": right });
        self.call(HostFunction::GrantMailboxAccess, args, async {
            Ok(idp.grant_mailbox_access(mailbox, email, right).await?)
        })
        .await
    }

    pub async fn remove_mailbox_access(
        &mut self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, CallError> {
        let idp = self.connectors.idp.clone();
        let args = json!({ "mailbox": mailbox, "email": email, "right": right });
        self.call(HostFunction::RemoveMailboxAccess, args, async {
            Ok(idp.remove_mailbox_access(mailbox, email, right).await?)
        })
        .await
    }

    // ---- psa -----------------------------------------------------------------------

    pub async fn get_ticket(&mut self, id: &str) -> Result<TicketRecord, CallError> {
        let psa = self.connectors.psa.clone();
        self.call(HostFunction::GetTicket, json!({ "id": id }), async {
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
        let psa = self.connectors.psa.clone();
        let author = format!("capdesk/{}", self.plugin);
        let args = json!({ "id": id, "text": text, "visibility": visibility });
        self.call(HostFunction::AddNote, args, async {
            check_text(text)?;
            Ok(psa.add_note(id, text, visibility, &author).await?)
        })
        .await
    }

    pub async fn set_status(&mut self, id: &str, status: TicketStatus) -> Result<(), CallError> {
        let psa = self.connectors.psa.clone();
        self.call(
            HostFunction::SetStatus,
            json!({ "id": id, "status": status }),
            async { Ok(psa.set_status(id, status).await?) },
        )
        .await
    }

    pub async fn link_to_parent(&mut self, id: &str, parent: &str) -> Result<(), CallError> {
        let psa = self.connectors.psa.clone();
        self.call(
            HostFunction::LinkToParent,
            json!({ "id": id, "parent": parent }),
            async { Ok(psa.link_to_parent(id, parent).await?) },
        )
        .await
    }

    // ---- chat ----------------------------------------------------------------------

    pub async fn send(&mut self, to: &str, text: &str) -> Result<(), CallError> {
        let chat = self.connectors.chat.clone();
        self.call(
            HostFunction::ChatSend,
            json!({ "to": to, "text": text }),
            async {
                check_text(text)?;
                Ok(chat.send(to, text).await?)
            },
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
        let args = json!({ "to": to, "question": question, "choices": choices });
        if let Some(recorded) = self.replay.pop_front() {
            return replay(recorded, HostFunction::ChatAsk, &args.to_string());
        }
        let args = self.check(HostFunction::ChatAsk, args)?;
        check_text(question)?;
        let options = if choices.is_empty() {
            String::new()
        } else {
            format!("\nAnswer with one of: {}", choices.join(", "))
        };
        let chat = self.connectors.chat.clone();
        if let Err(e) = chat.send(to, &format!("{question}{options}")).await {
            let failure = Failure::from(e);
            self.push(
                HostFunction::ChatAsk,
                args,
                "allowed".into(),
                to_json(&Recorded::<String>::Error(&failure)),
            );
            return Err(failure.into());
        }
        self.push(HostFunction::ChatAsk, args, "waiting".into(), "null".into());
        Err(Interrupt::Waiting {
            to: to.to_string(),
            question: question.to_string(),
            choices: choices.to_vec(),
        }
        .into())
    }
}

/// The recorded result of a call, if the plugin made the same call again.
fn replay<T: DeserializeOwned>(
    recorded: JournalEntry,
    function: HostFunction,
    args: &str,
) -> Result<T, CallError> {
    if recorded.function != function.name() || recorded.args != args {
        return Err(Interrupt::DeterminismFault {
            seq: recorded.seq,
            recorded: format!("{}({})", recorded.function, recorded.args),
            made: format!("{}({args})", function.name()),
        }
        .into());
    }
    match serde_json::from_str::<Replayed<T>>(&recorded.result) {
        Ok(Replayed::Ok(v)) => Ok(v),
        Ok(Replayed::Error(f)) => Err(f.into()),
        Err(_) => Err(Interrupt::InDoubt {
            seq: recorded.seq,
            function: recorded.function,
        }
        .into()),
    }
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
    use std::sync::Arc;

    use super::*;
    use crate::connectors::Idp as _;
    use crate::connectors::sandbox::{NewUser, Sandbox};
    use crate::store::Store;

    async fn guard_with(granted: &[Capability]) -> (tempfile::TempDir, Arc<Sandbox>, Guard) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.add_tenant("acme", "Acme").await.unwrap();
        let sandbox = Arc::new(Sandbox::new(store.pool().clone(), "acme"));
        sandbox
            .add_user(&NewUser {
                email: "ann@acme.test".into(),
                locked: true,
                ..NewUser::default()
            })
            .await
            .unwrap();
        let connectors = Connectors {
            idp: sandbox.clone(),
            psa: sandbox.clone(),
            chat: sandbox.clone(),
        };
        let guard = Guard::new(
            "acme",
            "account-unlock",
            granted.iter().copied().collect(),
            connectors,
        );
        (dir, sandbox, guard)
    }

    #[tokio::test]
    async fn an_ungranted_call_is_denied_journaled_and_never_reaches_the_connector() {
        let (_d, sandbox, mut guard) = guard_with(&[Capability::IdpRead]).await;
        let err = guard.unlock_account("ann@acme.test").await.unwrap_err();
        assert!(
            matches!(&err, CallError::Failure(Failure::Denied(m)) if m.contains("idp.unlock")),
            "{err}"
        );
        let entry = guard.journal().last().unwrap();
        assert_eq!(entry.function, "idp.unlock-account");
        assert!(entry.decision.starts_with("denied"));
        let user = sandbox.user_report("ann@acme.test").await.unwrap();
        assert!(user.user.locked);
        assert!(user.events.iter().all(|e| e.action != "unlocked"));
    }

    #[tokio::test]
    async fn a_granted_call_is_journaled_with_its_result() {
        let (_d, sandbox, mut guard) =
            guard_with(&[Capability::IdpRead, Capability::IdpUnlock]).await;
        assert_eq!(
            guard.unlock_account("ann@acme.test").await.unwrap(),
            Effect::Changed
        );
        assert!(!sandbox.find_user("ann@acme.test").await.unwrap().locked);
        let entry = guard.journal().last().unwrap();
        assert_eq!(
            (entry.decision.as_str(), entry.result.as_str()),
            ("allowed", r#"{"ok":"changed"}"#)
        );
        let missing = guard.find_user("nobody@acme.test").await.unwrap_err();
        assert!(matches!(missing, CallError::Failure(Failure::NotFound(_))));
        let recorded: Value =
            serde_json::from_str(&guard.journal().last().unwrap().result).unwrap();
        assert_eq!(recorded["error"]["failure"], "not-found");
    }

    #[tokio::test]
    async fn a_resumed_run_replays_recorded_calls_without_repeating_them() {
        let (dir, sandbox, mut guard) =
            guard_with(&[Capability::IdpRead, Capability::IdpUnlock]).await;
        guard.unlock_account("ann@acme.test").await.unwrap();
        let recorded: Vec<JournalEntry> = guard
            .journal()
            .iter()
            .enumerate()
            .map(|(i, e)| JournalEntry {
                seq: i as i64 + 1,
                function: e.function.clone(),
                capability: e.capability.clone(),
                args: e.args.clone(),
                decision: e.decision.clone(),
                result: e.result.clone(),
                at: String::new(),
            })
            .collect();
        let connectors = Connectors {
            idp: sandbox.clone(),
            psa: sandbox.clone(),
            chat: sandbox.clone(),
        };
        let granted: BTreeSet<Capability> = [Capability::IdpRead, Capability::IdpUnlock].into();

        // The same call again gets the recorded result; the directory sees one unlock.
        let mut replaying = Guard::resuming(
            "acme",
            "account-unlock",
            granted.clone(),
            connectors.clone(),
            recorded.clone(),
        );
        assert_eq!(
            replaying.unlock_account("ann@acme.test").await.unwrap(),
            Effect::Changed
        );
        assert!(
            replaying.journal().is_empty(),
            "replayed calls are not journaled twice"
        );
        let unlocks = sandbox
            .user_report("ann@acme.test")
            .await
            .unwrap()
            .events
            .iter()
            .filter(|e| e.action == "unlocked")
            .count();
        assert_eq!(unlocks, 1);

        // A different call where the journal has the unlock is a determinism fault.
        let mut diverged = Guard::resuming("acme", "account-unlock", granted, connectors, recorded);
        let err = diverged.find_user("ann@acme.test").await.unwrap_err();
        assert!(
            matches!(
                err,
                CallError::Interrupt(Interrupt::DeterminismFault { seq: 1, .. })
            ),
            "{err}"
        );
        drop(dir);
    }

    #[tokio::test]
    async fn the_temporary_password_reaches_only_the_owner() {
        let (_d, sandbox, mut guard) = guard_with(&[Capability::IdpPassword]).await;
        let delivery = guard.reset_password("ann@acme.test").await.unwrap();
        assert_eq!(delivery.recipient, "ann@acme.test");
        let outbox = sandbox.outbox().await.unwrap();
        let secret = outbox[0]
            .text
            .strip_prefix("Your temporary password is: ")
            .unwrap()
            .lines()
            .next()
            .unwrap();
        assert_eq!(secret.len(), 16);
        let journal = serde_json::to_string(guard.journal()).unwrap();
        assert!(!journal.contains(secret));
    }
}
