//! The ticket pipeline: intake → triage by every installed plugin → run the best match
//! in the tenant's mode for its category → wait (for an answer or an approval) → resume
//! by replay → write the outcome back (notes, status, closeout to the requester). Also
//! the answers that resume waiting runs (`answer`, `approve`, `reject`), the sweep that
//! escalates waits nobody answered, and recovery of runs a dead process left behind.
//! Every failure path ends with the ticket escalated to a technician with a reason.
//! Owns no HTTP and no wasmtime details: it drives the runtime and the connectors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::approvals;
use crate::capability::Capability;
use crate::connectors::channel::TenantChat;
use crate::connectors::sandbox::Sandbox;
use crate::connectors::{ApprovalRequest, Connectors, NewTicket, Ticket, TicketStatus, Visibility};
use crate::datadir::DataDir;
use crate::guard::{ApprovalNeeded, Guard, Interrupt, RunScope};
use crate::journal::{CallState, Journal};
use crate::mode::Mode;
use crate::policy::Policy;
use crate::runtime::{Ending, Instance, Plugin, Resolve, Runtime};
use crate::store::approvals::{Answer, approval_label};
use crate::store::{InstalledPlugin, NewApproval, RunRow, Store, run_label, ticket_label};
use crate::vault::Vault;

/// Triage scores below this leave a ticket unmatched.
pub const DEFAULT_TRIAGE_THRESHOLD: f32 = 0.5;

/// How a ticket's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Resolved,
    Escalated,
    Unmatched,
    /// Waiting for a person's answer (`capdesk answer`) or an approver's decision
    /// (`capdesk approve` / `reject`).
    Waiting,
    /// Ran in shadow mode: nothing changed; the proposed actions are on the ticket.
    Shadowed,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Resolved => "resolved",
            RunStatus::Escalated => "escalated",
            RunStatus::Unmatched => "unmatched",
            RunStatus::Waiting => "waiting",
            RunStatus::Shadowed => "shadowed",
        }
    }
}

/// One plugin's triage score for a ticket.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Score {
    pub plugin: String,
    pub score: f32,
    /// Set when the plugin failed during triage (it then scores 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What happened to a submitted ticket; `ticket submit --json` prints this.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub ticket: String,
    pub run: String,
    pub plugin: Option<String>,
    pub status: RunStatus,
    pub reason: String,
    pub scores: Vec<Score>,
    /// For a run waiting on a question: whom it asked, what, and the allowed answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<WaitingFor>,
    /// For a run waiting on an approval: the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<PendingApproval>,
    /// For a shadow run: what the plugin would have done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proposed: Vec<String>,
}

/// The approval a waiting run waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingApproval {
    /// `A-12`: what `capdesk approve` and `reject` take.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub summary: String,
    pub rule: String,
    pub approvers: Vec<String>,
    pub expires_at: String,
}

/// How a run that goes to a technician ends: its status, the internal note, what the
/// requester is told, and the plugin that ran (if one did).
struct Handover<'a> {
    status: RunStatus,
    note: String,
    to_requester: &'a str,
    plugin: Option<&'a str>,
}

/// What a waiting run waits for, as stored on the run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Wait {
    Question(WaitingFor),
    Approval(PendingApproval),
    Challenge(Challenge),
}

/// An identity challenge a run waits on.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Challenge {
    /// The requester, who must give the code.
    to: String,
    /// Where the code went, masked.
    contact: String,
    code_hash: String,
    /// Wrong answers so far.
    attempts: u32,
}

impl Challenge {
    /// The challenge as a question to the requester.
    fn question(&self) -> WaitingFor {
        WaitingFor {
            to: self.to.clone(),
            question: format!(
                "To confirm it's you, we sent a 6-digit code by {}. What is the code?",
                self.contact
            ),
            choices: Vec::new(),
        }
    }
}

/// The question a waiting run asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WaitingFor {
    pub to: String,
    pub question: String,
    pub choices: Vec<String>,
}

/// Someone who may not answer or approve tried to; the attempt was audited.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The request does not fit the run or approval as it is now (answered already, not
/// waiting, waiting for something else).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Conflict(pub String);

/// Parsed policies by tenant, with the source each was parsed from (a changed source
/// is parsed again); shared by every handle of one desk.
type PolicyCache = Arc<Mutex<HashMap<String, (String, Arc<Policy>)>>>;

/// capdesk: the store, the runtime and the tenants' connectors, wired together.
pub struct Desk {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub triage_threshold: f32,
    /// The server's public address when temporary passwords are delivered as one-time
    /// links (`capdesk serve`); `None` sends them in the chat message.
    pub credential_links: Option<String>,
    /// Parsed policies by tenant, with the source they were parsed from.
    policies: PolicyCache,
    /// Seals and opens connector credentials (the data dir's key).
    pub vault: Vault,
    /// The HTTP client of the chat connectors (Slack, Teams).
    pub http: reqwest::Client,
}

impl Desk {
    /// Open the data dir (creating and migrating it when new) and start the runtime.
    pub async fn open(path: &Path) -> anyhow::Result<Desk> {
        let data = DataDir::open(path)?;
        let store = Store::open(&data.database()).await?;
        let vault = Vault::new(&data.vault_key()?);
        let runtime = Arc::new(Runtime::new(data)?);
        Ok(Desk {
            store,
            runtime,
            triage_threshold: DEFAULT_TRIAGE_THRESHOLD,
            credential_links: None,
            policies: Arc::default(),
            vault,
            http: crate::connectors::channel::http_client()?,
        })
    }

    /// This desk, naming `actor` in the audit entries of the changes made through it
    /// (an API token rather than the command line's user). Shares the runtime, the
    /// database and the parsed policies.
    pub fn acting_as(&self, actor: String) -> Desk {
        Desk {
            store: self.store.acting_as(actor),
            runtime: self.runtime.clone(),
            triage_threshold: self.triage_threshold,
            credential_links: self.credential_links.clone(),
            policies: self.policies.clone(),
            vault: self.vault.clone(),
            http: self.http.clone(),
        }
    }

    /// The tenant's policy: its own file, or the default.
    pub async fn policy(&self, tenant: &str) -> anyhow::Result<Arc<Policy>> {
        let Some(source) = self.store.policy_source(tenant).await? else {
            return Ok(default_policy());
        };
        let mut cache = self.policies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, policy)) = cache.get(tenant)
            && *cached == source
        {
            return Ok(policy.clone());
        }
        let policy = Arc::new(Policy::parse(&source).map_err(|e| {
            anyhow::anyhow!("the stored policy of tenant {tenant} no longer parses:\n{e}")
        })?);
        cache.insert(tenant.to_string(), (source, policy.clone()));
        Ok(policy)
    }

    /// Use `body` as the tenant's wording of `plugin`'s closeout template `name`. The
    /// template must be one the plugin ships, and `body` must be valid minijinja
    /// (mistakes are reported with their line; nothing changes).
    pub async fn set_template(
        &self,
        tenant: &str,
        plugin: &str,
        name: &str,
        body: Option<&str>,
    ) -> anyhow::Result<()> {
        self.store.tenant(tenant).await?;
        let record = self.store.plugin(plugin).await?;
        let manifest = crate::runtime::Manifest::of(&record)?;
        if !manifest.templates.iter().any(|t| t.name == name) {
            let names: Vec<&str> = manifest.templates.iter().map(|t| t.name.as_str()).collect();
            anyhow::bail!(
                "plugin {plugin} has no closeout template `{name}`; its templates are: {}",
                names.join(", ")
            );
        }
        if let Some(body) = body {
            let mut env = minijinja::Environment::new();
            env.add_template(name, body).map_err(|e| {
                let line = e.line().map(|l| format!("line {l}: ")).unwrap_or_default();
                let what = e.detail().unwrap_or("invalid template");
                anyhow::anyhow!(
                    "the template was not changed: {line}{} ({what}); fix it and try again",
                    e.kind()
                )
            })?;
        }
        self.store.set_template(tenant, plugin, name, body).await
    }

    /// Check a policy file and make it the tenant's policy. A file with mistakes is
    /// rejected with every problem and its line; the policy in force stays.
    pub async fn set_policy(&self, tenant: &str, source: &str) -> anyhow::Result<Arc<Policy>> {
        self.store.tenant(tenant).await?;
        let policy = Policy::parse(source).map_err(|e| {
            anyhow::anyhow!("the policy was not changed; fix these and try again:\n{e}")
        })?;
        let rules: Vec<String> = policy
            .rules()
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        self.store.set_policy(tenant, source, &rules).await?;
        Ok(Arc::new(policy))
    }

    /// The embedded sandbox systems of a tenant.
    pub fn sandbox(&self, tenant: &str) -> Sandbox {
        Sandbox::new(&self.store, tenant)
    }

    /// The tenant's chat: Slack or Teams when the tenant is configured so (looked up at
    /// each call, so a changed configuration applies to the next message), the built-in
    /// `builtin` otherwise.
    pub fn chat(&self, tenant: &str, builtin: Arc<Sandbox>) -> TenantChat {
        TenantChat::new(
            self.store.clone(),
            self.vault.clone(),
            self.http.clone(),
            tenant,
            builtin,
        )
    }

    /// The connected systems a tenant's runs act on.
    pub fn connectors(&self, tenant: &str) -> Connectors {
        let sandbox = Arc::new(self.sandbox(tenant));
        Connectors {
            idp: sandbox.clone(),
            psa: sandbox.clone(),
            chat: Arc::new(self.chat(tenant, sandbox)),
            credentials: self
                .credential_links
                .as_deref()
                .map(|url| Arc::new(crate::credentials::CredentialLinks::new(&self.store, url))),
        }
    }

    /// Install (or upgrade) a plugin from component bytes.
    pub async fn install_plugin(&self, bytes: &[u8]) -> anyhow::Result<InstalledPlugin> {
        let plugin = self.runtime.install(bytes).await?;
        let m = &plugin.manifest;
        let record = InstalledPlugin {
            id: m.id.clone(),
            version: m.version.clone(),
            category: m.category.clone(),
            description: m.description.clone(),
            hash: plugin.hash.clone(),
            manifest: serde_json::to_string(m)?,
            imports: serde_json::to_string(&plugin.imports)?,
            size_bytes: bytes.len() as i64,
            installed_at: String::new(),
        };
        self.store.put_plugin(&record).await?;
        self.store.plugin(&m.id).await
    }

    /// Install every plugin bundled into this binary.
    pub async fn install_bundled(&self) -> anyhow::Result<Vec<InstalledPlugin>> {
        let mut installed = Vec::new();
        for (name, bytes) in crate::bundled::BUNDLED {
            installed.push(
                self.install_plugin(bytes)
                    .await
                    .with_context(|| format!("installing bundled plugin {name}"))?,
            );
        }
        Ok(installed)
    }

    /// Grant every capability a plugin's manifest asks for.
    pub async fn grant_all(&self, tenant: &str, plugin: &str) -> anyhow::Result<Vec<Capability>> {
        let record = self.store.plugin(plugin).await?;
        let manifest = crate::runtime::Manifest::of(&record)?;
        self.store
            .grant(tenant, plugin, &manifest.capabilities)
            .await?;
        Ok(manifest.capabilities)
    }

    /// Take a ticket in: record it in the tenant's PSA, pick a plugin, run it, write back.
    pub async fn submit(&self, tenant: &str, ticket: NewTicket) -> anyhow::Result<Submission> {
        self.store.tenant(tenant).await?;
        validate_ticket(&ticket)?;
        let connectors = self.connectors(tenant);
        let mut ticket = ticket;
        if ticket.requester.name.trim().is_empty() {
            // Intake enrichment: greet people by the name the directory knows.
            if let Ok(user) = connectors.idp.find_user(&ticket.requester.email).await {
                ticket.requester.name = user.name;
            }
        }
        let ticket = connectors.psa.create_ticket(&ticket).await?;
        let number = crate::store::parse_ticket_id(&ticket.id)?;
        let seed = rand::random::<u32>() as i64;
        let run = self.store.start_run(tenant, number, seed).await?;
        self.run_ticket(tenant, &ticket, &connectors, run, seed)
            .await
    }

    /// Triage and run a ticket as run `run` (new, or recovered before it chose a plugin).
    async fn run_ticket(
        &self,
        tenant: &str,
        ticket: &Ticket,
        connectors: &Connectors,
        run: i64,
        seed: i64,
    ) -> anyhow::Result<Submission> {
        let span = tracing::info_span!("run", run = %run_label(run), tenant, ticket = %ticket.id);
        let _enter = span.enter();

        let (scores, best) = self.triage(tenant, ticket, seed as u64).await?;
        let scores_json = serde_json::to_string(&scores)?;
        let journal = Journal::durable(self.store.clone(), run, Vec::new());

        let Some((record, plugin, instance)) = best else {
            self.store
                .set_run_plugin(run, None, &scores_json, Mode::Auto)
                .await?;
            let reason = format!(
                "no installed playbook is sure it can resolve this ticket (best score below {:.2}); a technician will take it",
                self.triage_threshold
            );
            let note = format!("capdesk: {reason}. Scores: {}", describe_scores(&scores));
            let handover = Handover {
                status: RunStatus::Unmatched,
                note,
                to_requester: RECEIVED_MESSAGE,
                plugin: None,
            };
            return self
                .hand_to_technician(run, ticket, connectors, journal, handover, reason, scores)
                .await;
        };
        let mode = self.store.mode(tenant, &record.category).await?;
        self.store
            .set_run_plugin(run, Some(&record), &scores_json, mode)
            .await?;

        if mode == Mode::Off {
            let reason = format!(
                "capdesk is off for {} tickets of this tenant; a technician will take it \
                 (`capdesk mode set {tenant} {} shadow|supervised|auto` changes that)",
                record.category, record.category
            );
            let handover = Handover {
                status: RunStatus::Escalated,
                note: format!("capdesk: {reason}"),
                to_requester: RECEIVED_MESSAGE,
                plugin: Some(&record.id),
            };
            return self
                .hand_to_technician(run, ticket, connectors, journal, handover, reason, scores)
                .await;
        }

        let scope = self
            .scope(tenant, &record.id, &record.category, ticket, mode)
            .await?;
        let guard = Guard::new(scope, connectors.clone(), journal);
        tracing::info!(plugin = %record.id, mode = %mode, "running playbook");
        let resolve = instance.resolve(ticket, guard).await;
        self.conclude(run, &plugin, ticket, connectors, resolve, scores)
            .await
    }

    /// What a run of `plugin` for `tenant` may do: grants, mode and policy.
    async fn scope(
        &self,
        tenant: &str,
        plugin: &str,
        category: &str,
        ticket: &Ticket,
        mode: Mode,
    ) -> anyhow::Result<RunScope> {
        Ok(RunScope {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            category: category.to_string(),
            granted: self.store.granted(tenant, plugin).await?,
            mode,
            policy: self.policy(tenant).await?,
            ticket: ticket.clone(),
        })
    }

    /// Record a person's answer to the question a waiting run asked, then resume the
    /// run. Only the person asked can answer; with choices, the answer must be one.
    pub async fn answer(&self, run: i64, by: &str, text: &str) -> anyhow::Result<Submission> {
        let row = self.store.run(run).await?;
        let waiting = match (row.status.as_str(), wait_of(&row)) {
            ("waiting", Some(Wait::Question(w))) => w,
            ("waiting", Some(Wait::Challenge(c))) => {
                return self.check_code(&row, c, by, text).await;
            }
            ("waiting", Some(Wait::Approval(_))) => {
                let id = self
                    .store
                    .approval_of_run(run)
                    .await?
                    .map_or("ID".into(), |a| approval_label(a.id));
                return Err(Conflict(format!(
                    "run {} waits for an approval, not an answer: use `capdesk approve {id}` or `capdesk reject {id}`",
                    run_label(run),
                ))
                .into());
            }
            (status, _) => {
                return Err(Conflict(format!(
                    "run {} is {status}, not waiting for an answer",
                    run_label(run)
                ))
                .into());
            }
        };
        if !by.trim().eq_ignore_ascii_case(&waiting.to) {
            self.store
                .audit_refusal(&row.tenant, run, by, "only the person asked can answer")
                .await?;
            return Err(Refused(format!(
                "only {} can answer run {} (it asked them: {}); {by} was refused and the attempt recorded",
                waiting.to,
                run_label(run),
                waiting.question
            ))
            .into());
        }
        let text = text.trim();
        let answer = if waiting.choices.is_empty() {
            if text.is_empty() {
                anyhow::bail!("the answer is empty; say what {} answered", waiting.to);
            }
            text.to_string()
        } else {
            waiting
                .choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(text))
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "`{text}` is not one of the choices: {}",
                        waiting.choices.join(", ")
                    )
                })?
        };
        self.store.record_answer(run, &waiting.to, &answer).await?;
        let outcome = format!("{} answered: {answer}", waiting.to);
        if let Err(e) = self
            .connectors(&row.tenant)
            .chat
            .settled(&run_label(run), &outcome)
            .await
        {
            tracing::warn!(run = %run_label(run), "could not show the answer on the question's message: {e}");
        }
        self.resume(run).await
    }

    /// The requester's answer to an identity challenge: the right code resumes the run
    /// with the challenge passed; a wrong one leaves it waiting, and the third fails the
    /// challenge (the plugin gets `denied`).
    async fn check_code(
        &self,
        row: &RunRow,
        challenge: Challenge,
        by: &str,
        code: &str,
    ) -> anyhow::Result<Submission> {
        let run = row.id;
        if !by.trim().eq_ignore_ascii_case(&challenge.to) {
            self.store
                .audit_refusal(
                    &row.tenant,
                    run,
                    by,
                    "only the challenged requester can answer",
                )
                .await?;
            return Err(Refused(format!(
                "only {} can answer the identity challenge of run {}; {by} was refused and the attempt recorded",
                challenge.to,
                run_label(run)
            ))
            .into());
        }
        let ticket = ticket_label(row.ticket);
        let to = &challenge.to;
        if crate::guard::challenge_hash(&ticket, code) == challenge.code_hash {
            let detail = json!({ "run": run_label(run), "by": to, "passed": true });
            let decision = format!("verified: {to} gave the code sent by {}", challenge.contact);
            let result = crate::guard::answer_result(&challenge.contact);
            self.store
                .settle_wait(run, &decision, &result, "run.challenge", detail)
                .await?;
            return self.resume(run).await;
        }
        let attempts = challenge.attempts + 1;
        if attempts >= crate::guard::CHALLENGE_ATTEMPTS {
            let why = format!(
                "{to} gave a wrong verification code {attempts} times, so their identity is not verified"
            );
            let detail = json!({ "run": run_label(run), "by": to, "passed": false });
            let result = crate::guard::failure_result(&crate::guard::Failure::Denied(why.clone()));
            self.store
                .settle_wait(
                    run,
                    &format!("failed: {why}"),
                    &result,
                    "run.challenge",
                    detail,
                )
                .await?;
            return self.resume(run).await;
        }
        let left = crate::guard::CHALLENGE_ATTEMPTS - attempts;
        let wait = Wait::Challenge(Challenge {
            attempts,
            ..challenge.clone()
        });
        self.store
            .record_wrong_code(run, to, &serde_json::to_string(&wait)?, attempts)
            .await?;
        let retry = format!(
            "That code is not the one we sent by {}. You have {left} more {}.",
            challenge.contact,
            if left == 1 { "try" } else { "tries" }
        );
        let connectors = self.connectors(&row.tenant);
        if let Err(e) = connectors.chat.send(to, &retry).await {
            tracing::warn!(run = %run_label(run), "could not tell {to} the code was wrong: {e}");
        }
        let scores = serde_json::from_str(&row.scores).unwrap_or_default();
        let ticket = connectors.psa.get_ticket(&ticket).await?.ticket;
        let mut submission = Submission::new(
            &ticket,
            run,
            row.plugin.as_deref(),
            RunStatus::Waiting,
            format!("wrong verification code from {to}; {left} tries left"),
            scores,
        );
        submission.waiting_for = Some(challenge.question());
        Ok(submission)
    }

    /// An approver's answer to approval `id`: approve runs the action and resumes the
    /// run; reject gives the plugin `rejected`. Anyone not entitled (and the requester,
    /// always) is refused, and the attempt is recorded.
    pub async fn decide_approval(
        &self,
        id: i64,
        by: &str,
        answer: Answer,
        comment: Option<&str>,
    ) -> anyhow::Result<Submission> {
        let row = self.store.approval(id).await?;
        if row.status != "pending" {
            return Err(Conflict(format!(
                "approval {} is {} already (by {}); nothing was changed",
                approval_label(id),
                row.status,
                row.answered_by.as_deref().unwrap_or("the timeout")
            ))
            .into());
        }
        if let Some(why) = approvals::refusal(&row, by) {
            self.store.audit_approval_refusal(&row, by, &why).await?;
            return Err(Refused(format!("{why}; the attempt was refused and recorded")).into());
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        let row = self
            .store
            .answer_approval(id, by.trim(), answer, comment)
            .await?;
        let connectors = self.connectors(&row.tenant);
        let said = comment
            .map(|c| format!(" Comment: {c}"))
            .unwrap_or_default();
        let verb = match answer {
            Answer::Approve => "approved",
            Answer::Reject => "rejected",
        };
        let note = format!(
            "capdesk: {} {verb} by {} (rule {}): {}.{said}",
            approval_label(id),
            by.trim(),
            row.rule,
            row.summary
        );
        let outcome = format!(
            "{} {verb} by {}: {}.{said}",
            approval_label(id),
            by.trim(),
            row.summary
        );
        if let Err(e) = connectors.chat.settled(&approval_label(id), &outcome).await {
            tracing::warn!(approval = %approval_label(id), "could not show the decision on the request's messages: {e}");
        }
        let ticket = ticket_label(row.ticket);
        let r = connectors
            .psa
            .add_note(&ticket, &note, Visibility::Internal, "capdesk")
            .await;
        let mut journal = Journal::durable(
            self.store.clone(),
            row.run,
            self.store.journal(row.run).await?,
        );
        journal.record(
            "host.add-note",
            None,
            json!({ "visibility": "internal", "text": note }).to_string(),
            "host".into(),
            result_json(&r).to_string(),
            CallState::Done,
        );
        journal.write().await.map_err(|e| e.0)?;
        self.resume(row.run).await
    }

    /// Continue a run claimed for resuming: instantiate the plugin version the run
    /// started with (pinned by hash) and replay its journal up to where it stopped.
    async fn resume(&self, run: i64) -> anyhow::Result<Submission> {
        let row = self.store.run(run).await?;
        let hash = row
            .plugin_hash
            .clone()
            .context("the run has no plugin to resume")?;
        let plugin_id = row.plugin.clone().unwrap_or_default();
        let plugin = self.runtime.load(&hash).await.with_context(|| {
            format!("loading plugin {plugin_id} at the version the run started with ({hash})")
        })?;
        let connectors = self.connectors(&row.tenant);
        let ticket = connectors
            .psa
            .get_ticket(&ticket_label(row.ticket))
            .await?
            .ticket;
        let scores: Vec<Score> = serde_json::from_str(&row.scores).unwrap_or_default();
        let span = tracing::info_span!("run", run = %run_label(run), tenant = %row.tenant, ticket = %ticket.id);
        let _enter = span.enter();
        let category = row
            .category
            .clone()
            .unwrap_or_else(|| plugin.manifest.category.clone());
        let mode = row.mode.parse().unwrap_or(Mode::Shadow);
        let scope = self
            .scope(&row.tenant, &plugin_id, &category, &ticket, mode)
            .await?;
        let limits = self.store.limits(&row.tenant, &plugin_id).await?;
        let recorded = self.store.journal(run).await?;
        let journal = Journal::durable(self.store.clone(), run, recorded);
        let guard = Guard::new(scope, connectors.clone(), journal);
        let resolve = match self
            .runtime
            .instantiate(&plugin, limits, row.seed as u64)
            .await
        {
            // Triage again so the instance is where it was when resolve first ran.
            Ok(mut instance) => match instance.triage(&ticket).await {
                Ok(_) => instance.resolve(&ticket, guard).await,
                Err(stopped) => Resolve::stopped(stopped, guard),
            },
            Err(stopped) => Resolve::stopped(stopped, guard),
        };
        self.conclude(run, &plugin, &ticket, &connectors, resolve, scores)
            .await
    }

    /// Escalate every waiting run whose wait is over (nobody answered the question or
    /// the approval in the tenant's timeout): the ticket goes to a technician and the
    /// requester is told. Returns what happened to each.
    pub async fn sweep(&self) -> anyhow::Result<Vec<Submission>> {
        let mut swept = Vec::new();
        for run in self.store.claim_expired_waits().await? {
            let row = self.store.run(run).await?;
            let connectors = self.connectors(&row.tenant);
            let ticket = connectors
                .psa
                .get_ticket(&ticket_label(row.ticket))
                .await?
                .ticket;
            let waited_for = match wait_of(&row) {
                Some(Wait::Question(q)) => format!("{} to answer: {}", q.to, q.question),
                Some(Wait::Approval(a)) => {
                    format!(
                        "approval of \"{}\" from {}",
                        a.summary,
                        a.approvers.join(" or ")
                    )
                }
                Some(Wait::Challenge(c)) => {
                    format!(
                        "{} to give the verification code sent by {}",
                        c.to, c.contact
                    )
                }
                None => "an answer".into(),
            };
            let reason = format!("nobody answered in time: the run waited for {waited_for}");
            // Buttons posted for the wait stop offering an answer nobody will take.
            let subject = match wait_of(&row) {
                Some(Wait::Approval(_)) => self
                    .store
                    .approval_of_run(run)
                    .await?
                    .map(|a| approval_label(a.id)),
                Some(Wait::Question(_)) => Some(run_label(run)),
                _ => None,
            };
            if let Some(subject) = subject {
                let outcome = format!(
                    "{subject}: no answer in time, so a technician has taken over ticket {}",
                    ticket.id
                );
                if let Err(e) = connectors.chat.settled(&subject, &outcome).await {
                    tracing::warn!(%subject, "could not show the timeout on the chat messages: {e}");
                }
            }
            let journal = Journal::durable(self.store.clone(), run, self.store.journal(run).await?);
            let scores = serde_json::from_str(&row.scores).unwrap_or_default();
            let handover = Handover {
                status: RunStatus::Escalated,
                note: format!("Escalated by capdesk: {reason}"),
                to_requester: TIMED_OUT_MESSAGE,
                plugin: row.plugin.as_deref(),
            };
            swept.push(
                self.hand_to_technician(
                    run,
                    &ticket,
                    &connectors,
                    journal,
                    handover,
                    reason,
                    scores,
                )
                .await?,
            );
        }
        Ok(swept)
    }

    /// Resume every run a process left `running` when it died: claim it, then replay
    /// its journal (or triage again if it had not chosen a plugin). A call recorded as
    /// started but never finished is repeated only if its connector declares it
    /// idempotent; otherwise the run is escalated with the details.
    pub async fn recover(&self) -> anyhow::Result<Vec<Submission>> {
        let mut recovered = Vec::new();
        for row in self.store.abandoned_runs().await? {
            if !self.store.claim_abandoned(&row).await? {
                continue; // another process took it first
            }
            tracing::warn!(run = %run_label(row.id), "recovering a run its process left behind");
            let submission = if row.plugin_hash.is_some() {
                self.resume(row.id).await?
            } else {
                let connectors = self.connectors(&row.tenant);
                let ticket = connectors
                    .psa
                    .get_ticket(&ticket_label(row.ticket))
                    .await?
                    .ticket;
                self.run_ticket(&row.tenant, &ticket, &connectors, row.id, row.seed)
                    .await?
            };
            recovered.push(submission);
        }
        Ok(recovered)
    }

    /// Write how a resolve ended: back to the PSA and the requester, and into the run.
    async fn conclude(
        &self,
        run: i64,
        plugin: &Plugin,
        ticket: &Ticket,
        connectors: &Connectors,
        resolve: Resolve,
        scores: Vec<Score>,
    ) -> anyhow::Result<Submission> {
        let id = &plugin.manifest.id;
        let guest_us = resolve.guest_time.as_micros() as i64;
        let report = resolve.guard.finish();
        let mut journal = report.journal;
        let proposals = report.proposals;
        let row = self.store.run(run).await?;
        let policy = self.policy(&row.tenant).await?;
        let shadow = row.mode == Mode::Shadow.name();
        let mut wait = None;
        let mut approval = None;
        let (status, reason) = match resolve.ending {
            Ending::Finished(outcome) if shadow => {
                let verdict = if outcome.resolved {
                    "resolve"
                } else {
                    "escalate"
                };
                let reason = format!(
                    "shadow run: the plugin would {verdict} the ticket: {}",
                    outcome.note
                );
                self.shadow_back(connectors, ticket, id, &reason, &proposals, &mut journal)
                    .await;
                (RunStatus::Shadowed, reason)
            }
            Ending::Interrupted(Interrupt::ShadowQuestion { to, question }) => {
                let reason = format!(
                    "shadow run: the plugin would ask {to} \"{question}\" and wait for the answer; \
                     the shadow run stops there"
                );
                self.shadow_back(connectors, ticket, id, &reason, &proposals, &mut journal)
                    .await;
                (RunStatus::Shadowed, reason)
            }
            Ending::Finished(outcome) if outcome.resolved => {
                let closeout = match &outcome.closeout {
                    Some(name) => {
                        let own = self.store.template_override(&row.tenant, id, name).await?;
                        // The tenant's wording first; if it does not render, the plugin's.
                        let mut text = None;
                        for body in own.as_deref().into_iter().map(Some).chain([None]) {
                            match render_closeout(plugin, name, body, &outcome.vars, ticket) {
                                Ok(rendered) => {
                                    text = Some(rendered);
                                    break;
                                }
                                Err(e) => {
                                    journal.record(
                                        "host.closeout",
                                        None,
                                        json!({ "template": name, "own": body.is_some() })
                                            .to_string(),
                                        "host".into(),
                                        json!({ "error": e.to_string() }).to_string(),
                                        CallState::Done,
                                    );
                                }
                            }
                        }
                        text
                    }
                    None => None,
                };
                let note = format!("Resolved by capdesk/{id}: {}", outcome.note);
                self.write_back(
                    connectors,
                    ticket,
                    TicketStatus::Resolved,
                    &note,
                    closeout.as_deref(),
                    &mut journal,
                )
                .await;
                (RunStatus::Resolved, outcome.note)
            }
            Ending::Finished(outcome) => {
                let note = format!("Escalated by capdesk/{id}: {}", outcome.note);
                self.escalate_back(connectors, ticket, &note, &mut journal)
                    .await;
                (RunStatus::Escalated, outcome.note)
            }
            Ending::Interrupted(Interrupt::Waiting {
                to,
                question,
                choices,
            }) => {
                let reason = format!("waiting for {to} to answer: {question}");
                let note = format!("capdesk/{id} is {reason}");
                self.write_back(
                    connectors,
                    ticket,
                    TicketStatus::Waiting,
                    &note,
                    None,
                    &mut journal,
                )
                .await;
                wait = Some(Wait::Question(WaitingFor {
                    to,
                    question,
                    choices,
                }));
                (RunStatus::Waiting, reason)
            }
            Ending::Interrupted(Interrupt::Challenge {
                to,
                contact,
                code_hash,
            }) => {
                let challenge = Challenge {
                    to,
                    contact,
                    code_hash,
                    attempts: 0,
                };
                let question = challenge.question();
                let reason = format!(
                    "waiting for {} to give the verification code sent by {}",
                    challenge.to, challenge.contact
                );
                let note = format!(
                    "capdesk/{id} asked {} to verify their identity with a one-time code sent by {} \
                     (not the channel of the request)",
                    challenge.to, challenge.contact
                );
                self.write_back(
                    connectors,
                    ticket,
                    TicketStatus::Waiting,
                    &note,
                    Some(&question.question),
                    &mut journal,
                )
                .await;
                wait = Some(Wait::Challenge(challenge));
                (RunStatus::Waiting, reason)
            }
            Ending::Interrupted(Interrupt::NeedsApproval(needed)) => {
                let requester = &ticket.details.requester.email;
                let approvers = approvals::resolve(
                    &needed.approvers,
                    needed.target.as_ref(),
                    &policy,
                    connectors.idp.as_ref(),
                    requester,
                )
                .await;
                if approvers.is_empty() {
                    let reason = format!(
                        "policy rule `{}` asks for approval to {}, but nobody could be found to ask \
                         ({}; the requester cannot approve their own request)",
                        needed.rule,
                        needed.summary,
                        crate::guard::describe_approvers(&needed.approvers)
                    );
                    let note = format!("Escalated by capdesk/{id}: {reason}");
                    self.escalate_back(connectors, ticket, &note, &mut journal)
                        .await;
                    (RunStatus::Escalated, reason)
                } else {
                    let expires_at = self.store.time_after(policy.approval_timeout()).await?;
                    approval = Some((needed, approvers, expires_at));
                    (RunStatus::Waiting, String::new())
                }
            }
            Ending::Interrupted(fault) => {
                let note = format!("Escalated: capdesk stopped plugin {id}: {fault}");
                self.escalate_back(connectors, ticket, &note, &mut journal)
                    .await;
                (RunStatus::Escalated, fault.to_string())
            }
            Ending::Stopped(stopped) => {
                let note = format!("Escalated: capdesk stopped plugin {id}: {}", stopped.reason);
                self.escalate_back(connectors, ticket, &note, &mut journal)
                    .await;
                (RunStatus::Escalated, stopped.reason)
            }
        };
        if let Some((needed, approvers, expires_at)) = approval {
            return self
                .wait_for_approval(
                    run, id, ticket, connectors, journal, guest_us, scores, *needed, approvers,
                    expires_at,
                )
                .await;
        }
        tracing::info!(status = status.name(), %reason, "run ended");
        let waiting = match &wait {
            Some(w) => Some((
                serde_json::to_string(w)?,
                self.store.time_after(policy.approval_timeout()).await?,
            )),
            None => None,
        };
        self.store
            .finish_run(
                run,
                status.name(),
                &reason,
                guest_us,
                &journal.take_pending(),
                waiting.as_ref().map(|(w, u)| (w.as_str(), u.as_str())),
                None,
            )
            .await?;
        let mut submission = Submission::new(ticket, run, Some(id), status, reason, scores);
        submission.proposed = proposals;
        match wait {
            Some(Wait::Question(q)) => submission.waiting_for = Some(q),
            Some(Wait::Challenge(c)) => submission.waiting_for = Some(c.question()),
            _ => {}
        }
        Ok(submission)
    }

    /// Store the approval request with the waiting run, then tell the approvers, the
    /// ticket and the requester.
    #[allow(clippy::too_many_arguments)]
    async fn wait_for_approval(
        &self,
        run: i64,
        plugin: &str,
        ticket: &Ticket,
        connectors: &Connectors,
        mut journal: Journal,
        guest_us: i64,
        scores: Vec<Score>,
        needed: ApprovalNeeded,
        approvers: Vec<String>,
        expires_at: String,
    ) -> anyhow::Result<Submission> {
        let requester = ticket.details.requester.email.clone();
        let new = NewApproval {
            tenant: self.store.run(run).await?.tenant,
            run,
            seq: needed.seq,
            ticket: crate::store::parse_ticket_id(&ticket.id)?,
            function: needed.function.clone(),
            args: needed.args.clone(),
            summary: needed.summary.clone(),
            rule: needed.rule.clone(),
            requester: requester.clone(),
            approvers: approvers.clone(),
            expires_at: expires_at.clone(),
        };
        // The run and its approval request are stored in one transaction; the run's
        // record of what it waits for leaves the id to the approvals table.
        let reason = format!(
            "waiting for approval to {} (rule {}) from {}",
            needed.summary,
            needed.rule,
            approvers.join(" or ")
        );
        let waiting_for = serde_json::to_string(&Wait::Approval(PendingApproval {
            id: String::new(),
            summary: needed.summary.clone(),
            rule: needed.rule.clone(),
            approvers: approvers.clone(),
            expires_at: expires_at.clone(),
        }))?;
        let pending = journal.take_pending();
        let id = self
            .store
            .finish_run(
                run,
                RunStatus::Waiting.name(),
                &reason,
                guest_us,
                &pending,
                Some((&waiting_for, &expires_at)),
                Some(&new),
            )
            .await?
            .context("the approval request was not stored")?;
        let pending_approval = PendingApproval {
            id: approval_label(id),
            summary: needed.summary.clone(),
            rule: needed.rule.clone(),
            approvers: approvers.clone(),
            expires_at: expires_at.clone(),
        };
        let message = approvals::request_message(
            &pending_approval.id,
            &needed.summary,
            &needed.rule,
            &ticket.id,
            &ticket.details.subject,
            &requester,
            &expires_at,
        );
        let request = ApprovalRequest {
            id: &pending_approval.id,
            summary: &needed.summary,
            rule: &needed.rule,
            ticket: &ticket.id,
            subject: &ticket.details.subject,
            requester: &requester,
            expires_at: &expires_at,
            text: &message,
        };
        for approver in &approvers {
            let r = connectors.chat.request_approval(approver, &request).await;
            journal.record(
                "host.chat-send",
                None,
                json!({ "to": approver, "approval": pending_approval.id }).to_string(),
                "host".into(),
                result_json(&r).to_string(),
                CallState::Done,
            );
        }
        let note = format!(
            "capdesk/{plugin} asked for approval {}: {} (rule {}). Approvers: {}. Expires {}.",
            pending_approval.id,
            needed.summary,
            needed.rule,
            approvers.join(", "),
            expires_at
        );
        let to_requester = format!(
            "Your request needs approval before we can {}. We have asked {} and will let you know.",
            needed.summary,
            approvers.join(" or ")
        );
        self.write_back(
            connectors,
            ticket,
            TicketStatus::Waiting,
            &note,
            Some(&to_requester),
            &mut journal,
        )
        .await;
        journal.write().await.map_err(|e| e.0)?;
        tracing::info!(approval = %pending_approval.id, "run waits for approval");
        let mut submission = Submission::new(
            ticket,
            run,
            Some(plugin),
            RunStatus::Waiting,
            reason,
            scores,
        );
        submission.approval = Some(pending_approval);
        Ok(submission)
    }

    /// End a run without (more of) its plugin: note the ticket, tell the requester,
    /// escalate the ticket to a technician, and record the run's end.
    #[allow(clippy::too_many_arguments)]
    async fn hand_to_technician(
        &self,
        run: i64,
        ticket: &Ticket,
        connectors: &Connectors,
        mut journal: Journal,
        handover: Handover<'_>,
        reason: String,
        scores: Vec<Score>,
    ) -> anyhow::Result<Submission> {
        self.write_back(
            connectors,
            ticket,
            TicketStatus::Escalated,
            &handover.note,
            Some(handover.to_requester),
            &mut journal,
        )
        .await;
        let pending = journal.take_pending();
        let status = handover.status;
        self.store
            .finish_run(run, status.name(), &reason, 0, &pending, None, None)
            .await?;
        Ok(Submission::new(
            ticket,
            run,
            handover.plugin,
            status,
            reason,
            scores,
        ))
    }

    /// A shadow run's end: the proposal goes to the ticket as an internal note for a
    /// technician, who takes the ticket; the requester is not contacted.
    async fn shadow_back(
        &self,
        connectors: &Connectors,
        ticket: &Ticket,
        plugin: &str,
        reason: &str,
        proposals: &[String],
        journal: &mut Journal,
    ) {
        let actions = if proposals.is_empty() {
            "  (no changes)".to_string()
        } else {
            proposals
                .iter()
                .enumerate()
                .map(|(i, p)| format!("  {}. {p}", i + 1))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let note = format!(
            "Shadow run of capdesk/{plugin} (nothing was changed). Proposed actions:\n{actions}\n\
             Outcome: {reason}. A technician should handle this ticket; if the proposal is right, \
             this category may be ready for supervised or auto mode."
        );
        let psa = &connectors.psa;
        let r = psa
            .add_note(&ticket.id, &note, Visibility::Internal, "capdesk")
            .await;
        journal.record(
            "host.add-note",
            None,
            json!({ "visibility": "internal", "text": note }).to_string(),
            "host".into(),
            result_json(&r).to_string(),
            CallState::Done,
        );
        let r = psa.set_status(&ticket.id, TicketStatus::Escalated).await;
        journal.record(
            "host.set-status",
            None,
            json!({ "status": TicketStatus::Escalated }).to_string(),
            "host".into(),
            result_json(&r).to_string(),
            CallState::Done,
        );
    }

    async fn escalate_back(
        &self,
        connectors: &Connectors,
        ticket: &Ticket,
        note: &str,
        journal: &mut Journal,
    ) {
        self.write_back(
            connectors,
            ticket,
            TicketStatus::Escalated,
            note,
            Some(ESCALATION_MESSAGE),
            journal,
        )
        .await;
    }

    /// Which plugin would take `ticket` for `tenant`, without running it: every installed
    /// plugin's triage score, and the winner at or above the threshold (if any). The
    /// triage evaluation (`cargo bench -p capdesk --bench triage`) measures this.
    pub async fn classify(
        &self,
        tenant: &str,
        ticket: &Ticket,
    ) -> anyhow::Result<(Vec<Score>, Option<String>)> {
        let (scores, best) = self.triage(tenant, ticket, 0).await?;
        Ok((scores, best.map(|(record, ..)| record.id)))
    }

    /// Score the ticket with every installed plugin, each in a fresh instance; the best
    /// at or above the threshold wins and keeps its instance for `resolve`.
    async fn triage(
        &self,
        tenant: &str,
        ticket: &Ticket,
        seed: u64,
    ) -> anyhow::Result<(Vec<Score>, Option<(InstalledPlugin, Arc<Plugin>, Instance)>)> {
        let mut scores = Vec::new();
        let mut best: Option<(f32, InstalledPlugin, Arc<Plugin>, Instance)> = None;
        let limits = self.store.tenant_limits(tenant).await?;
        for record in self.store.plugins().await? {
            let plugin = self.runtime.load(&record.hash).await?;
            let triaged = match self
                .runtime
                .instantiate(&plugin, limits.of(&record.id), seed)
                .await
            {
                Ok(mut instance) => instance.triage(ticket).await.map(|score| (score, instance)),
                Err(stopped) => Err(stopped),
            };
            let (score, instance, error) = match triaged {
                Ok((score, instance)) => (score, Some(instance), None),
                Err(stopped) => (0.0, None, Some(stopped.reason)),
            };
            scores.push(Score {
                plugin: record.id.clone(),
                score,
                error,
            });
            if let Some(instance) = instance
                && score >= self.triage_threshold
                && best.as_ref().is_none_or(|(b, ..)| score > *b)
            {
                best = Some((score, record, plugin, instance));
            }
        }
        Ok((scores, best.map(|(_, r, p, i)| (r, p, i))))
    }

    /// Write the run's end to the PSA and tell the requester. A connector failure here
    /// is recorded in the journal; it cannot undo what the run already did.
    async fn write_back(
        &self,
        connectors: &Connectors,
        ticket: &Ticket,
        status: TicketStatus,
        internal_note: &str,
        to_requester: Option<&str>,
        journal: &mut Journal,
    ) {
        let mut host =
            |function: &'static str, args: serde_json::Value, result: serde_json::Value| {
                journal.record(
                    function,
                    None,
                    args.to_string(),
                    "host".into(),
                    result.to_string(),
                    CallState::Done,
                );
            };
        let psa = &connectors.psa;
        let r = psa
            .add_note(&ticket.id, internal_note, Visibility::Internal, "capdesk")
            .await;
        host(
            "host.add-note",
            json!({ "visibility": "internal", "text": internal_note }),
            result_json(&r),
        );
        if let Some(text) = to_requester {
            let r = psa
                .add_note(&ticket.id, text, Visibility::Public, "capdesk")
                .await;
            host(
                "host.add-note",
                json!({ "visibility": "public", "text": text }),
                result_json(&r),
            );
            let to = &ticket.details.requester.email;
            let r = connectors.chat.send(to, text).await;
            host(
                "host.chat-send",
                json!({ "to": to, "text": text }),
                result_json(&r),
            );
        }
        let r = psa.set_status(&ticket.id, status).await;
        host(
            "host.set-status",
            json!({ "status": status }),
            result_json(&r),
        );
    }
}

const RECEIVED_MESSAGE: &str =
    "Thanks, we received your request. A technician will pick it up and get back to you.";

const TIMED_OUT_MESSAGE: &str = "We could not get the answer or approval your request needed in time, so a technician will pick it up and get back to you.";

const ESCALATION_MESSAGE: &str = "We could not complete your request automatically, so a technician will pick it up. You don't need to do anything now.";

fn result_json<T: Serialize, E: std::fmt::Display>(r: &Result<T, E>) -> serde_json::Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn describe_scores(scores: &[Score]) -> String {
    if scores.is_empty() {
        return "no plugins installed".into();
    }
    scores
        .iter()
        .map(|s| format!("{} {:.2}", s.plugin, s.score))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Render the closeout template the plugin named (or the tenant's own `body` for it),
/// with the plugin's vars and the ticket.
fn render_closeout(
    plugin: &Plugin,
    name: &str,
    body: Option<&str>,
    vars: &[(String, String)],
    ticket: &Ticket,
) -> anyhow::Result<String> {
    let shipped = plugin
        .manifest
        .templates
        .iter()
        .find(|t| t.name == name)
        .with_context(|| {
            format!(
                "plugin {} has no closeout template `{name}`",
                plugin.manifest.id
            )
        })?;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template(name, body.unwrap_or(&shipped.body))?;
    let mut ctx: serde_json::Map<String, serde_json::Value> =
        vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    ctx.insert(
        "ticket".into(),
        json!({ "id": ticket.id, "subject": ticket.details.subject }),
    );
    ctx.insert("requester".into(), json!(ticket.details.requester));
    Ok(env.get_template(name)?.render(ctx)?.trim().to_string())
}

/// Reject a ticket that cannot be worked on, saying what to fix.
fn validate_ticket(t: &NewTicket) -> anyhow::Result<()> {
    if t.subject.trim().is_empty() && t.body.trim().is_empty() {
        anyhow::bail!("the ticket has neither a subject nor a body; say what the requester needs");
    }
    if t.subject.len() + t.body.len() > 64 * 1024 {
        anyhow::bail!("the ticket text is over 64 KiB; attach long logs elsewhere and summarize");
    }
    Ok(())
}

impl Submission {
    fn new(
        ticket: &Ticket,
        run: i64,
        plugin: Option<&str>,
        status: RunStatus,
        reason: String,
        scores: Vec<Score>,
    ) -> Submission {
        Submission {
            ticket: ticket.id.clone(),
            run: run_label(run),
            plugin: plugin.map(str::to_string),
            status,
            reason,
            scores,
            waiting_for: None,
            approval: None,
            proposed: Vec::new(),
        }
    }
}

impl Desk {
    /// The questions `tenant`'s waiting runs put to `person` (identity challenges
    /// included), oldest first, each with its run: what the web chat asks them.
    pub async fn questions_for(
        &self,
        tenant: &str,
        person: &str,
    ) -> anyhow::Result<Vec<(i64, WaitingFor)>> {
        Ok(self
            .store
            .waiting_runs(tenant)
            .await?
            .iter()
            .filter_map(|row| match wait_of(row)? {
                Wait::Question(q) => Some((row.id, q)),
                Wait::Challenge(c) => Some((row.id, c.question())),
                Wait::Approval(_) => None,
            })
            .filter(|(_, q)| q.to.eq_ignore_ascii_case(person))
            .collect())
    }
}

/// What a waiting run waits for, from its row.
fn wait_of(row: &RunRow) -> Option<Wait> {
    let text = row.waiting_for.as_deref()?;
    serde_json::from_str(text)
        .ok()
        // Runs that started waiting before approvals existed stored the question alone.
        .or_else(|| serde_json::from_str(text).ok().map(Wait::Question))
}

/// The shipped default policy, parsed once.
fn default_policy() -> Arc<Policy> {
    static DEFAULT: std::sync::OnceLock<Arc<Policy>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(Policy::default_policy()))
        .clone()
}
