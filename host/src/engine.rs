//! The ticket pipeline: intake → triage by every installed plugin → run the best match →
//! write the outcome back (notes, status, closeout to the requester). Every failure
//! path ends with the ticket escalated to a technician with a reason. Owns no HTTP and
//! no wasmtime details: it drives the runtime and the connectors.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::capability::Capability;
use crate::connectors::sandbox::Sandbox;
use crate::connectors::{Connectors, NewTicket, Ticket, TicketStatus, Visibility};
use crate::datadir::DataDir;
use crate::guard::Guard;
use crate::runtime::{Ending, Instance, Plugin, Resolve, Runtime};
use crate::store::{InstalledPlugin, NewJournalEntry, Store, run_label};

/// Triage scores below this leave a ticket unmatched.
pub const DEFAULT_TRIAGE_THRESHOLD: f32 = 0.5;

/// How a ticket's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Resolved,
    Escalated,
    Unmatched,
    /// Waiting for a person's answer; `capdesk answer` resumes it.
    Waiting,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Resolved => "resolved",
            RunStatus::Escalated => "escalated",
            RunStatus::Unmatched => "unmatched",
            RunStatus::Waiting => "waiting",
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
    /// For a waiting run: whom it asked, what, and the allowed answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<WaitingFor>,
}

/// The question a waiting run asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WaitingFor {
    pub to: String,
    pub question: String,
    pub choices: Vec<String>,
}

/// capdesk: the store, the runtime and the tenants' connectors, wired together.
pub struct Desk {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub triage_threshold: f32,
}

impl Desk {
    /// Open the data dir (creating and migrating it when new) and start the runtime.
    pub async fn open(path: &Path) -> anyhow::Result<Desk> {
        let data = DataDir::open(path)?;
        let store = Store::open(&data.database()).await?;
        let runtime = Arc::new(Runtime::new(data)?);
        Ok(Desk {
            store,
            runtime,
            triage_threshold: DEFAULT_TRIAGE_THRESHOLD,
        })
    }

    /// The embedded sandbox systems of a tenant.
    pub fn sandbox(&self, tenant: &str) -> Sandbox {
        Sandbox::new(self.store.pool().clone(), tenant)
    }

    /// The connected systems a tenant's runs act on.
    pub fn connectors(&self, tenant: &str) -> Connectors {
        let sandbox = Arc::new(self.sandbox(tenant));
        Connectors {
            idp: sandbox.clone(),
            psa: sandbox.clone(),
            chat: sandbox,
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
        self.run_ticket(tenant, &ticket, &connectors).await
    }

    async fn run_ticket(
        &self,
        tenant: &str,
        ticket: &Ticket,
        connectors: &Connectors,
    ) -> anyhow::Result<Submission> {
        let number = crate::store::parse_ticket_id(&ticket.id)?;
        let seed = rand::random::<u32>() as i64;
        let run = self.store.start_run(tenant, number, seed).await?;
        let span = tracing::info_span!("run", run = %run_label(run), tenant, ticket = %ticket.id);
        let _enter = span.enter();

        let (scores, best) = self.triage(tenant, ticket, seed as u64).await?;
        let scores_json = serde_json::to_string(&scores)?;
        let mut host_journal = Vec::new();

        let Some((record, plugin, instance)) = best else {
            self.store.set_run_plugin(run, None, &scores_json).await?;
            let reason = format!(
                "no installed playbook is sure it can resolve this ticket (best score below {:.2}); a technician will take it",
                self.triage_threshold
            );
            self.write_back(
                connectors,
                ticket,
                TicketStatus::Escalated,
                &format!("capdesk: {reason}. Scores: {}", describe_scores(&scores)),
                Some(RECEIVED_MESSAGE),
                &mut host_journal,
            )
            .await;
            self.store
                .finish_run(
                    run,
                    RunStatus::Unmatched.name(),
                    &reason,
                    0,
                    &host_journal,
                    None,
                )
                .await?;
            return Ok(Submission {
                ticket: ticket.id.clone(),
                run: run_label(run),
                plugin: None,
                status: RunStatus::Unmatched,
                reason,
                scores,
                waiting_for: None,
            });
        };
        self.store
            .set_run_plugin(run, Some(&record), &scores_json)
            .await?;

        let granted = self.store.granted(tenant, &record.id).await?;
        let guard = Guard::new(tenant, &record.id, granted, connectors.clone());
        tracing::info!(plugin = %record.id, "running playbook");
        let resolve = instance.resolve(ticket, guard).await;
        self.conclude(run, &plugin, ticket, connectors, resolve, scores)
            .await
    }

    /// Record a person's answer to the question a waiting run asked, then resume the
    /// run. Only the person asked can answer; with choices, the answer must be one.
    pub async fn answer(&self, run: i64, by: &str, text: &str) -> anyhow::Result<Submission> {
        let row = self.store.run(run).await?;
        let waiting: WaitingFor = match (row.status.as_str(), row.waiting_for.as_deref()) {
            ("waiting", Some(w)) => serde_json::from_str(w)?,
            (status, _) => anyhow::bail!(
                "run {} is {status}, not waiting for an answer",
                run_label(run)
            ),
        };
        if !by.trim().eq_ignore_ascii_case(&waiting.to) {
            self.store
                .audit_refusal(&row.tenant, run, by, "only the person asked can answer")
                .await?;
            anyhow::bail!(
                "only {} can answer run {} (it asked them: {}); {by} was refused and the attempt recorded",
                waiting.to,
                run_label(run),
                waiting.question
            );
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
        self.resume(run).await
    }

    /// Continue a run whose answer was recorded: instantiate the plugin version the run
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
            .get_ticket(&crate::store::ticket_label(row.ticket))
            .await?
            .ticket;
        let scores: Vec<Score> = serde_json::from_str(&row.scores).unwrap_or_default();
        let span = tracing::info_span!("run", run = %run_label(run), tenant = %row.tenant, ticket = %ticket.id);
        let _enter = span.enter();
        let granted = self.store.granted(&row.tenant, &plugin_id).await?;
        let limits = self.store.limits(&row.tenant, &plugin_id).await?;
        let recorded = self.store.journal(run).await?;
        let guard = Guard::resuming(
            &row.tenant,
            &plugin_id,
            granted,
            connectors.clone(),
            recorded,
        );
        let resolve = match self
            .runtime
            .instantiate(&plugin, limits, row.seed as u64)
            .await
        {
            // Triage again so the instance is where it was when resolve first ran.
            Ok(mut instance) => match instance.triage(&ticket).await {
                Ok(_) => instance.resolve(&ticket, guard).await,
                Err(stopped) => Resolve::stopped(stopped),
            },
            Err(stopped) => Resolve::stopped(stopped),
        };
        self.conclude(run, &plugin, &ticket, &connectors, resolve, scores)
            .await
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
        let mut journal = resolve.journal;
        let guest_us = resolve.guest_time.as_micros() as i64;
        let mut waiting_for = None;
        let (status, reason) = match resolve.ending {
            Ending::Finished(outcome) if outcome.resolved => {
                let closeout = match &outcome.closeout {
                    Some(name) => match render_closeout(plugin, name, &outcome.vars, ticket) {
                        Ok(text) => Some(text),
                        Err(e) => {
                            journal.push(host_entry(
                                "host.closeout",
                                json!({ "template": name }),
                                json!({ "error": e.to_string() }),
                            ));
                            None
                        }
                    },
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
                self.write_back(
                    connectors,
                    ticket,
                    TicketStatus::Escalated,
                    &note,
                    Some(ESCALATION_MESSAGE),
                    &mut journal,
                )
                .await;
                (RunStatus::Escalated, outcome.note)
            }
            Ending::Waiting {
                to,
                question,
                choices,
            } => {
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
                waiting_for = Some(WaitingFor {
                    to,
                    question,
                    choices,
                });
                (RunStatus::Waiting, reason)
            }
            Ending::Stopped(stopped) => {
                let note = format!("Escalated: capdesk stopped plugin {id}: {}", stopped.reason);
                self.write_back(
                    connectors,
                    ticket,
                    TicketStatus::Escalated,
                    &note,
                    Some(ESCALATION_MESSAGE),
                    &mut journal,
                )
                .await;
                (RunStatus::Escalated, stopped.reason)
            }
        };
        tracing::info!(status = status.name(), %reason, "run ended");
        let waiting_json = waiting_for
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        self.store
            .finish_run(
                run,
                status.name(),
                &reason,
                guest_us,
                &journal,
                waiting_json.as_deref(),
            )
            .await?;
        Ok(Submission {
            ticket: ticket.id.clone(),
            run: run_label(run),
            plugin: Some(id.clone()),
            status,
            reason,
            scores,
            waiting_for,
        })
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
        for record in self.store.plugins().await? {
            let plugin = self.runtime.load(&record.hash).await?;
            let limits = self.store.limits(tenant, &record.id).await?;
            let triaged = match self.runtime.instantiate(&plugin, limits, seed).await {
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
        journal: &mut Vec<NewJournalEntry>,
    ) {
        let psa = &connectors.psa;
        let r = psa
            .add_note(&ticket.id, internal_note, Visibility::Internal, "capdesk")
            .await;
        journal.push(host_entry(
            "host.add-note",
            json!({ "visibility": "internal", "text": internal_note }),
            result_json(&r),
        ));
        if let Some(text) = to_requester {
            let r = psa
                .add_note(&ticket.id, text, Visibility::Public, "capdesk")
                .await;
            journal.push(host_entry(
                "host.add-note",
                json!({ "visibility": "public", "text": text }),
                result_json(&r),
            ));
            let to = &ticket.details.requester.email;
            let r = connectors.chat.send(to, text).await;
            journal.push(host_entry(
                "host.chat-send",
                json!({ "to": to, "text": text }),
                result_json(&r),
            ));
        }
        let r = psa.set_status(&ticket.id, status).await;
        journal.push(host_entry(
            "host.set-status",
            json!({ "status": status }),
            result_json(&r),
        ));
    }
}

const RECEIVED_MESSAGE: &str =
    "Thanks, we received your request. A technician will pick it up and get back to you.";

const ESCALATION_MESSAGE: &str = "We could not complete your request automatically, so a technician will pick it up. You don't need to do anything now.";

fn host_entry(
    function: &str,
    args: serde_json::Value,
    result: serde_json::Value,
) -> NewJournalEntry {
    NewJournalEntry {
        function: function.to_string(),
        capability: None,
        args: args.to_string(),
        decision: "host".into(),
        result: result.to_string(),
    }
}

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

/// Render a closeout template the plugin named, with its vars and the ticket.
fn render_closeout(
    plugin: &Plugin,
    name: &str,
    vars: &[(String, String)],
    ticket: &Ticket,
) -> anyhow::Result<String> {
    let template = plugin
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
    env.add_template(&template.name, &template.body)?;
    let mut ctx: serde_json::Map<String, serde_json::Value> =
        vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    ctx.insert(
        "ticket".into(),
        json!({ "id": ticket.id, "subject": ticket.details.subject }),
    );
    ctx.insert("requester".into(), json!(ticket.details.requester));
    Ok(env
        .get_template(&template.name)?
        .render(ctx)?
        .trim()
        .to_string())
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
