//! Persistence of capdesk's own records with sqlx: tenants, installed plugins, grants,
//! limits, runs and their journal. Opens the data dir's SQLite file and applies the
//! migrations. Knows nothing of business rules: it stores and loads rows. (The sandbox
//! connectors keep their tables in the same file, through the same pool.)

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::audit::{self, NewAuditEntry};
use crate::capability::Capability;
use crate::journal::{CallState, JournalEntry, NewJournalEntry};
use crate::mode::Mode;
use crate::owner;

pub mod approvals;
pub mod chat;
mod guardrails;
pub mod reviews;
pub mod tokens;
pub mod webchat;
mod webhooks;

pub use approvals::{ApprovalRow, NewApproval};

/// The capdesk database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Who audit entries of changes made through this handle name as the actor.
    actor: String,
}

/// A client of the MSP.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// An installed plugin as recorded at install time.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InstalledPlugin {
    pub id: String,
    pub version: String,
    pub category: String,
    pub description: String,
    /// SHA-256 of the component bytes; the run pins it.
    pub hash: String,
    /// The manifest as JSON (see `runtime::Manifest`).
    pub manifest: String,
    /// The component's imports as a JSON list of names.
    pub imports: String,
    pub size_bytes: i64,
    pub installed_at: String,
}

/// One run of a plugin on a ticket.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub tenant: String,
    pub ticket: i64,
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    pub plugin_hash: Option<String>,
    pub status: String,
    pub reason: String,
    pub scores: String,
    pub seed: i64,
    pub guest_us: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// For a waiting run: the question it asked, as JSON.
    pub waiting_for: Option<String>,
    /// The process executing the run (`host:pid:start`), while it runs.
    pub owner: Option<String>,
    pub owner_seen_at: Option<String>,
    /// The mode the run started in.
    pub mode: String,
    pub category: Option<String>,
    /// When a waiting run gives up waiting and is escalated.
    pub waiting_until: Option<String>,
}

/// Memory and guest-time limits that apply to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub memory_mib: u32,
    pub guest_ms: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            guest_ms: 2000,
        }
    }
}

/// Begin a transaction that will write. SQLite's `BEGIN IMMEDIATE` takes the write lock
/// up front, so a busy database makes it wait (the busy timeout) instead of failing with
/// "database is locked" when a transaction that read first tries to write while another
/// holds the lock, which plain `BEGIN` does under concurrent runs.
pub async fn begin_write(
    pool: &SqlitePool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The Unix time in seconds, as the expiry columns and signed requests carry it.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A run that was not found.
#[derive(Debug, thiserror::Error)]
#[error("{what} `{id}` does not exist{hint}")]
pub struct NotFound {
    pub what: &'static str,
    pub id: String,
    pub hint: &'static str,
}

impl Store {
    /// Open (creating if needed) the SQLite database at `path` and migrate it.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the database {}", path.display()))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .with_context(|| format!("migrating the database {}", path.display()))?;
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Ok(Store {
            pool,
            actor: format!("cli:{user}"),
        })
    }

    /// Close the pool, checkpointing the write-ahead log into the database file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn audit_entry<'a>(
        &'a self,
        tenant: Option<&'a str>,
        kind: &'a str,
        detail: serde_json::Value,
    ) -> NewAuditEntry<'a> {
        NewAuditEntry {
            tenant,
            kind,
            actor: &self.actor,
            detail: detail.to_string(),
        }
    }

    /// The connection pool, for the sandbox connectors that share this file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    // ---- tenants -------------------------------------------------------------------

    pub async fn add_tenant(&self, id: &str, name: &str) -> anyhow::Result<Tenant> {
        validate_id("tenant id", id)?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let inserted =
            sqlx::query("INSERT INTO tenants (id, name) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        if inserted.rows_affected() == 0 {
            anyhow::bail!("tenant `{id}` already exists; `capdesk tenant list` shows every tenant");
        }
        sqlx::query("INSERT INTO modes (tenant, category, mode) VALUES (?, '*', ?)")
            .bind(id)
            .bind(Mode::NEW_TENANT.name())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "name": name, "mode": Mode::NEW_TENANT });
        audit::append(&mut tx, &[self.audit_entry(Some(id), "tenant.add", detail)]).await?;
        tx.commit().await?;
        self.tenant(id).await
    }

    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn tenant(&self, id: &str) -> anyhow::Result<Tenant> {
        sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                NotFound {
                    what: "tenant",
                    id: id.to_string(),
                    hint: "; add it with `capdesk tenant add ID`",
                }
                .into()
            })
    }

    // ---- plugins -------------------------------------------------------------------

    /// Record an installed plugin, replacing an earlier version with the same id.
    pub async fn put_plugin(&self, p: &InstalledPlugin) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO plugins (id, version, category, description, hash, manifest, imports, size_bytes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, category = excluded.category,
               description = excluded.description, hash = excluded.hash, manifest = excluded.manifest,
               imports = excluded.imports, size_bytes = excluded.size_bytes,
               installed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(&p.id)
        .bind(&p.version)
        .bind(&p.category)
        .bind(&p.description)
        .bind(&p.hash)
        .bind(&p.manifest)
        .bind(&p.imports)
        .bind(p.size_bytes)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({ "plugin": p.id, "version": p.version, "hash": p.hash });
        audit::append(&mut tx, &[self.audit_entry(None, "plugin.install", detail)]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn plugins(&self) -> anyhow::Result<Vec<InstalledPlugin>> {
        Ok(sqlx::query_as("SELECT * FROM plugins ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn plugin(&self, id: &str) -> anyhow::Result<InstalledPlugin> {
        sqlx::query_as("SELECT * FROM plugins WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                NotFound {
                    what: "plugin",
                    id: id.to_string(),
                    hint: "; `capdesk plugin list` shows the installed plugins",
                }
                .into()
            })
    }

    // ---- grants --------------------------------------------------------------------

    pub async fn grant(
        &self,
        tenant: &str,
        plugin: &str,
        caps: &[Capability],
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO grants (tenant, plugin, capability) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
        self.change_grants(sql, "grant.add", tenant, plugin, caps)
            .await
    }

    pub async fn revoke(
        &self,
        tenant: &str,
        plugin: &str,
        caps: &[Capability],
    ) -> anyhow::Result<()> {
        let sql = "DELETE FROM grants WHERE tenant = ? AND plugin = ? AND capability = ?";
        self.change_grants(sql, "grant.revoke", tenant, plugin, caps)
            .await
    }

    /// Run `sql` (bound to tenant, plugin, capability) for each capability and audit
    /// the change as `kind`, in one transaction.
    async fn change_grants(
        &self,
        sql: &str,
        kind: &str,
        tenant: &str,
        plugin: &str,
        caps: &[Capability],
    ) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        for cap in caps {
            sqlx::query(sql)
                .bind(tenant)
                .bind(plugin)
                .bind(cap.name())
                .execute(&mut *tx)
                .await?;
        }
        let detail = serde_json::json!({ "plugin": plugin, "capabilities": caps });
        audit::append(&mut tx, &[self.audit_entry(Some(tenant), kind, detail)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The capabilities granted to `plugin` for `tenant`.
    pub async fn granted(
        &self,
        tenant: &str,
        plugin: &str,
    ) -> anyhow::Result<BTreeSet<Capability>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT capability FROM grants WHERE tenant = ? AND plugin = ?")
                .bind(tenant)
                .bind(plugin)
                .fetch_all(&self.pool)
                .await?;
        // A name this build does not know (from a newer capdesk) grants nothing.
        Ok(rows.into_iter().filter_map(|(c,)| c.parse().ok()).collect())
    }

    /// Every grant of a tenant, as (plugin, capability) pairs.
    pub async fn grants_of(&self, tenant: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT plugin, capability FROM grants WHERE tenant = ? ORDER BY plugin, capability",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- limits --------------------------------------------------------------------

    pub async fn set_limits(
        &self,
        tenant: &str,
        plugin: &str,
        memory_mib: Option<u32>,
        guest_ms: Option<u32>,
    ) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO limits (tenant, plugin, memory_mib, guest_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant, plugin) DO UPDATE SET
               memory_mib = coalesce(excluded.memory_mib, memory_mib),
               guest_ms = coalesce(excluded.guest_ms, guest_ms)",
        )
        .bind(tenant)
        .bind(plugin)
        .bind(memory_mib)
        .bind(guest_ms)
        .execute(&mut *tx)
        .await?;
        let detail =
            serde_json::json!({ "plugin": plugin, "memory_mib": memory_mib, "guest_ms": guest_ms });
        audit::append(
            &mut tx,
            &[self.audit_entry(Some(tenant), "limits.set", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The limits for one run: each value from the most specific row that sets it
    /// (tenant and plugin, then plugin, then tenant, then everything), else the default.
    pub async fn limits(&self, tenant: &str, plugin: &str) -> anyhow::Result<Limits> {
        let rows: Vec<(String, String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT tenant, plugin, memory_mib, guest_ms FROM limits
             WHERE tenant IN (?, '*') AND plugin IN (?, '*')",
        )
        .bind(tenant)
        .bind(plugin)
        .fetch_all(&self.pool)
        .await?;
        let rank = |t: &str, p: &str| (t != "*") as u8 + 2 * (p != "*") as u8;
        let mut sorted = rows;
        sorted.sort_by_key(|(t, p, _, _)| std::cmp::Reverse(rank(t, p)));
        let mut limits = Limits::default();
        if let Some(m) = sorted.iter().find_map(|r| r.2) {
            limits.memory_mib = m as u32;
        }
        if let Some(g) = sorted.iter().find_map(|r| r.3) {
            limits.guest_ms = g as u32;
        }
        Ok(limits)
    }

    // ---- runs ----------------------------------------------------------------------

    pub async fn start_run(&self, tenant: &str, ticket: i64, seed: i64) -> anyhow::Result<i64> {
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO runs (tenant, ticket, status, seed, owner, owner_seen_at)
             VALUES (?, ?, 'running', ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) RETURNING id",
        )
        .bind(tenant)
        .bind(ticket)
        .bind(seed)
        .bind(owner::this_process())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.0)
    }

    /// Record which plugin the run uses, the triage scores that chose it, and the
    /// mode it runs in.
    pub async fn set_run_plugin(
        &self,
        run: i64,
        plugin: Option<&InstalledPlugin>,
        scores: &str,
        mode: Mode,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE runs SET plugin = ?, plugin_version = ?, plugin_hash = ?, category = ?, scores = ?, mode = ?
             WHERE id = ?",
        )
        .bind(plugin.map(|p| p.id.as_str()))
        .bind(plugin.map(|p| p.version.as_str()))
        .bind(plugin.map(|p| p.hash.as_str()))
        .bind(plugin.map(|p| p.category.as_str()))
        .bind(scores)
        .bind(mode.name())
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Write journal entries of a run (new ones, or new versions of earlier ones) and
    /// note that the run's owner is alive, in one transaction. Calls whose result is
    /// known are audited here, once.
    pub async fn write_journal(&self, run: i64, entries: &[NewJournalEntry]) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        self.append_journal(&mut tx, run, entries).await?;
        sqlx::query(
            "UPDATE runs SET owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
        )
        .bind(run)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_journal(
        &self,
        tx: &mut sqlx::SqliteConnection,
        run: i64,
        entries: &[NewJournalEntry],
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        for e in entries {
            sqlx::query(
                "INSERT INTO run_calls (run, seq, function, capability, args, decision, result, state)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (run, seq) DO UPDATE SET decision = excluded.decision,
                   result = excluded.result, state = excluded.state,
                   at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(run)
            .bind(e.seq)
            .bind(&e.function)
            .bind(e.capability.as_deref())
            .bind(&e.args)
            .bind(&e.decision)
            .bind(&e.result)
            .bind(e.state.name())
            .execute(&mut *tx)
            .await?;
        }
        let (tenant, plugin): (String, Option<String>) =
            sqlx::query_as("SELECT tenant, plugin FROM runs WHERE id = ?")
                .bind(run)
                .fetch_one(&mut *tx)
                .await?;
        let actor = format!("plugin:{}", plugin.as_deref().unwrap_or("-"));
        let audited: Vec<NewAuditEntry> = entries
            .iter()
            .filter(|e| e.capability.is_some() && matches!(e.state, CallState::Done | CallState::Waiting))
            .map(|e| NewAuditEntry {
                tenant: Some(&tenant),
                kind: "run.call",
                actor: &actor,
                detail: format!(
                    r#"{{"run":{},"seq":{},"function":{},"capability":{},"decision":{},"args":{},"result":{}}}"#,
                    serde_json::json!(run_label(run)),
                    e.seq,
                    serde_json::json!(e.function),
                    serde_json::json!(e.capability),
                    serde_json::json!(e.decision),
                    e.args,
                    e.result
                ),
            })
            .collect();
        audit::append(tx, &audited).await?;
        Ok(())
    }

    /// Write the rest of this attempt's journal and how the run ended, in one
    /// transaction. A run that now waits gets `waiting` (what it waits for, as JSON),
    /// `waiting_until`, and, when it waits for an approver, the approval request, whose
    /// id is returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_run(
        &self,
        run: i64,
        status: &str,
        reason: &str,
        guest_us: i64,
        journal: &[NewJournalEntry],
        waiting: Option<(&str, &str)>,
        approval: Option<&NewApproval>,
    ) -> anyhow::Result<Option<i64>> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        self.append_journal(&mut tx, run, journal).await?;
        let approval_id = match approval {
            Some(a) => Some(approvals::insert(&mut tx, &self.actor, a).await?),
            None => None,
        };
        let (waiting_for, waiting_until) = waiting.unzip();
        sqlx::query(
            "UPDATE runs SET status = ?, reason = ?, guest_us = guest_us + ?, waiting_for = ?,
               waiting_until = ?, owner = NULL,
               finished_at = CASE WHEN ? IS NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
             WHERE id = ?",
        )
        .bind(status)
        .bind(reason)
        .bind(guest_us)
        .bind(waiting_for)
        .bind(waiting_until)
        .bind(waiting_for)
        .bind(run)
        .execute(&mut *tx)
        .await?;
        let (tenant, ticket, plugin, hash): (String, i64, Option<String>, Option<String>) =
            sqlx::query_as("SELECT tenant, ticket, plugin, plugin_hash FROM runs WHERE id = ?")
                .bind(run)
                .fetch_one(&mut *tx)
                .await?;
        let entry = NewAuditEntry {
            tenant: Some(&tenant),
            kind: if waiting_for.is_some() {
                "run.waiting"
            } else {
                "run.finished"
            },
            actor: "capdesk",
            detail: serde_json::json!({
                "run": run_label(run), "ticket": ticket_label(ticket), "plugin": plugin,
                "plugin_hash": hash, "status": status, "reason": reason, "waiting_for": waiting_for,
            })
            .to_string(),
        };
        audit::append(&mut tx, &[entry]).await?;
        tx.commit().await?;
        Ok(approval_id)
    }

    /// Record the answer to a waiting run's question and claim the run for resuming.
    /// Fails if the run is no longer waiting (someone else answered first).
    pub async fn record_answer(&self, run: i64, by: &str, answer: &str) -> anyhow::Result<()> {
        let result = crate::guard::answer_result(answer);
        let detail = serde_json::json!({ "run": run_label(run), "by": by, "answer": answer });
        self.settle_wait(
            run,
            &format!("answered by {by}"),
            &result,
            "run.answer",
            detail,
        )
        .await
    }

    /// Record how the call a run waits on turned out (`decision`, `result`) and claim
    /// the run for resuming, audited as `kind`, in one transaction. Fails if the run is
    /// no longer waiting (someone else answered first).
    pub async fn settle_wait(
        &self,
        run: i64,
        decision: &str,
        result: &str,
        kind: &str,
        detail: serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let claimed = sqlx::query(
            "UPDATE runs SET status = 'running', waiting_for = NULL, waiting_until = NULL, owner = ?,
               owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ? AND status = 'waiting'",
        )
        .bind(owner::this_process())
        .bind(run)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            anyhow::bail!(
                "run {} is no longer waiting: it was answered already",
                run_label(run)
            );
        }
        sqlx::query(
            "UPDATE run_calls SET result = ?, decision = ?, state = 'done'
             WHERE run = ? AND state = 'waiting'",
        )
        .bind(result)
        .bind(decision)
        .bind(run)
        .execute(&mut *tx)
        .await?;
        let (tenant,): (String,) = sqlx::query_as("SELECT tenant FROM runs WHERE id = ?")
            .bind(run)
            .fetch_one(&mut *tx)
            .await?;
        audit::append(&mut tx, &[self.audit_entry(Some(&tenant), kind, detail)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A wrong answer to a run's identity challenge: record it and what the run now
    /// waits for (the attempts so far), keeping it waiting.
    pub async fn record_wrong_code(
        &self,
        run: i64,
        by: &str,
        waiting_for: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let (tenant,): (String,) = sqlx::query_as(
            "UPDATE runs SET waiting_for = ? WHERE id = ? AND status = 'waiting' RETURNING tenant",
        )
        .bind(waiting_for)
        .bind(run)
        .fetch_one(&mut *tx)
        .await?;
        let detail = serde_json::json!({ "run": run_label(run), "by": by, "attempts": attempts });
        audit::append(
            &mut tx,
            &[self.audit_entry(Some(&tenant), "run.challenge-failed-attempt", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record an answer that was refused (from someone who was not asked).
    pub async fn audit_refusal(
        &self,
        tenant: &str,
        run: i64,
        by: &str,
        why: &str,
    ) -> anyhow::Result<()> {
        let detail = serde_json::json!({ "run": run_label(run), "by": by, "why": why });
        audit::record(
            &self.pool,
            &[self.audit_entry(Some(tenant), "run.answer-refused", detail)],
        )
        .await?;
        Ok(())
    }

    pub async fn run(&self, id: i64) -> anyhow::Result<RunRow> {
        sqlx::query_as("SELECT * FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                NotFound {
                    what: "run",
                    id: format!("R-{id}"),
                    hint: "; `capdesk ticket show ID` lists a ticket's runs",
                }
                .into()
            })
    }

    pub async fn runs_of_ticket(&self, ticket: i64) -> anyhow::Result<Vec<RunRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM runs WHERE ticket = ? ORDER BY id")
                .bind(ticket)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A tenant's waiting runs, oldest first.
    pub async fn waiting_runs(&self, tenant: &str) -> anyhow::Result<Vec<RunRow>> {
        Ok(
            sqlx::query_as(
                "SELECT * FROM runs WHERE tenant = ? AND status = 'waiting' ORDER BY id",
            )
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// The tenant a ticket belongs to.
    pub async fn ticket_tenant(&self, ticket: i64) -> anyhow::Result<String> {
        let row: Option<(String,)> = sqlx::query_as("SELECT tenant FROM tickets WHERE id = ?")
            .bind(ticket)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(t,)| t).ok_or_else(|| {
            NotFound {
                what: "ticket",
                id: ticket_label(ticket),
                hint: "; `capdesk ticket list TENANT` lists a tenant's tickets",
            }
            .into()
        })
    }

    pub async fn journal(&self, run: i64) -> anyhow::Result<Vec<JournalEntry>> {
        Ok(sqlx::query_as(
            "SELECT seq, function, capability, args, decision, result, state, at FROM run_calls
             WHERE run = ? ORDER BY seq",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Ids (tenants, plugins) are lowercase letters, digits and dashes, so they are safe in
/// file names, URLs and CLI arguments alike.
pub fn validate_id(what: &str, id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if !ok {
        anyhow::bail!(
            "`{id}` is not a valid {what}: use 1 to 64 lowercase letters, digits and dashes (e.g. `acme-corp`)"
        );
    }
    Ok(())
}

/// Parse a ticket id as printed (`T-12`) or bare (`12`).
pub fn parse_ticket_id(s: &str) -> anyhow::Result<i64> {
    parse_prefixed("ticket", "T-", s)
}

/// Parse a run id as printed (`R-7`) or bare (`7`).
pub fn parse_run_id(s: &str) -> anyhow::Result<i64> {
    parse_prefixed("run", "R-", s)
}

/// Parse an approval id as printed (`A-3`) or bare (`3`).
pub fn parse_approval_id(s: &str) -> anyhow::Result<i64> {
    parse_prefixed("approval", "A-", s)
}

fn parse_prefixed(what: &str, prefix: &str, s: &str) -> anyhow::Result<i64> {
    let digits = s
        .strip_prefix(prefix)
        .or_else(|| s.strip_prefix(&prefix.to_lowercase()))
        .unwrap_or(s);
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            anyhow::anyhow!("`{s}` is not a {what} id; {what} ids look like `{prefix}12`")
        })
}

pub fn ticket_label(id: i64) -> String {
    format!("T-{id}")
}

pub fn run_label(id: i64) -> String {
    format!("R-{id}")
}
