//! Persistence of capdesk's own records with sqlx: tenants, installed plugins, grants,
//! limits, runs and their journal. Opens the data dir's SQLite file and applies the
//! migrations. Knows nothing of business rules: it stores and loads rows. (The sandbox
//! connectors keep their tables in the same file, through the same pool.)

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::OptionalExtension as _;
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
pub mod reader;
pub mod reviews;
pub mod tokens;
pub mod webchat;
mod webhooks;
pub mod writer;

pub use approvals::{ApprovalRow, NewApproval};
pub use reader::Reader;
pub use writer::{WriteTx, Writer, begin_write, write_one};

/// The capdesk database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The thread that commits runs' writes (see `writer`).
    writer: Writer,
    /// In-place reads for the lookups every ticket makes (see `reader`).
    reader: Reader,
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

/// The limits set for one tenant and for every tenant (`*`), per plugin or for every
/// plugin (`*`).
#[derive(Debug, Clone)]
pub struct TenantLimits {
    rows: Vec<(String, String, Option<i64>, Option<i64>)>,
}

impl TenantLimits {
    /// The limits of `plugin`: each one from the most specific row that sets it (this
    /// tenant and plugin, then the plugin everywhere, then this tenant, then `*`/`*`),
    /// else the default.
    pub fn of(&self, plugin: &str) -> Limits {
        let rank = |t: &str, p: &str| (t != "*") as u8 + 2 * (p != "*") as u8;
        let mut rows: Vec<_> = self
            .rows
            .iter()
            .filter(|(_, p, _, _)| p == plugin || p == "*")
            .collect();
        rows.sort_by_key(|(t, p, _, _)| std::cmp::Reverse(rank(t, p)));
        let mut limits = Limits::default();
        if let Some(m) = rows.iter().find_map(|r| r.2) {
            limits.memory_mib = m as u32;
        }
        if let Some(g) = rows.iter().find_map(|r| r.3) {
            limits.guest_ms = g as u32;
        }
        limits
    }
}

impl RunRow {
    /// A `runs` row read in place (see `reader`).
    fn from_sql(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get("id")?,
            tenant: r.get("tenant")?,
            ticket: r.get("ticket")?,
            plugin: r.get("plugin")?,
            plugin_version: r.get("plugin_version")?,
            plugin_hash: r.get("plugin_hash")?,
            status: r.get("status")?,
            reason: r.get("reason")?,
            scores: r.get("scores")?,
            seed: r.get("seed")?,
            guest_us: r.get("guest_us")?,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
            waiting_for: r.get("waiting_for")?,
            owner: r.get("owner")?,
            owner_seen_at: r.get("owner_seen_at")?,
            mode: r.get("mode")?,
            category: r.get("category")?,
            waiting_until: r.get("waiting_until")?,
        })
    }
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
            .busy_timeout(Duration::from_secs(10))
            // The writer's checkpoint thread copies the log back (see `store::writer`);
            // left on, every commit here would copy the whole log behind the write turn.
            .pragma("wal_autocheckpoint", "0");
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
        let writer = Writer::open(path)?;
        let reader = Reader::open(path)?;
        Ok(Store {
            pool,
            writer,
            reader,
            actor: format!("cli:{user}"),
        })
    }

    /// Close the readers, the writer and the pool; the last connection to close
    /// checkpoints the write-ahead log into the database file.
    pub async fn close(&self) {
        self.reader.close();
        self.writer.close().await;
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

    /// The writer thread, for the sandbox connectors' changes.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// In-place reads, for the sandbox connectors' lookups.
    pub fn reader(&self) -> &Reader {
        &self.reader
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
        self.reader
            .read(|conn| {
                conn.prepare_cached("SELECT id, name, created_at FROM tenants WHERE id = ?")?
                    .query_row([id], |r| {
                        Ok(Tenant {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })
                    .optional()
            })?
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
        self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT id, version, category, description, hash, manifest, imports, size_bytes,
                   installed_at
                 FROM plugins ORDER BY id",
            )?
            .query_map([], |r| {
                Ok(InstalledPlugin {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    category: r.get(2)?,
                    description: r.get(3)?,
                    hash: r.get(4)?,
                    manifest: r.get(5)?,
                    imports: r.get(6)?,
                    size_bytes: r.get(7)?,
                    installed_at: r.get(8)?,
                })
            })?
            .collect()
        })
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
        let rows: Vec<String> = self.reader.read(|conn| {
            conn.prepare_cached("SELECT capability FROM grants WHERE tenant = ? AND plugin = ?")?
                .query_map([tenant, plugin], |r| r.get(0))?
                .collect()
        })?;
        // A name this build does not know (from a newer capdesk) grants nothing.
        Ok(rows.into_iter().filter_map(|c| c.parse().ok()).collect())
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
        Ok(self.tenant_limits(tenant).await?.of(plugin))
    }

    /// Every limit that applies in `tenant`, to pick each plugin's from (see
    /// [`TenantLimits::of`]) without a query per plugin.
    pub async fn tenant_limits(&self, tenant: &str) -> anyhow::Result<TenantLimits> {
        let rows = self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT tenant, plugin, memory_mib, guest_ms FROM limits
                 WHERE tenant IN (?, '*')",
            )?
            .query_map([tenant], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })?;
        Ok(TenantLimits { rows })
    }

    // ---- runs ----------------------------------------------------------------------

    pub async fn start_run(&self, tenant: &str, ticket: i64, seed: i64) -> anyhow::Result<i64> {
        let tenant = tenant.to_string();
        self.writer
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "INSERT INTO runs (tenant, ticket, status, seed, owner, owner_seen_at)
                         VALUES (?, ?, 'running', ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                         RETURNING id",
                    )?
                    .query_row(
                        rusqlite::params![tenant, ticket, seed, owner::this_process()],
                        |r| r.get(0),
                    )?)
            })
            .await
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
        let plugin =
            plugin.map(|p| [&p.id, &p.version, &p.hash, &p.category].map(|s| s.to_string()));
        let scores = scores.to_string();
        self.writer
            .write(move |conn| {
                let part = |i: usize| plugin.as_ref().map(|p| p[i].as_str());
                conn.prepare_cached(
                    "UPDATE runs SET plugin = ?, plugin_version = ?, plugin_hash = ?, category = ?,
                       scores = ?, mode = ?
                     WHERE id = ?",
                )?
                .execute(rusqlite::params![
                    part(0),
                    part(1),
                    part(2),
                    part(3),
                    scores,
                    mode.name(),
                    run
                ])?;
                Ok(())
            })
            .await
    }

    /// Write journal entries of a run (new ones, or new versions of earlier ones) and
    /// note that the run's owner is alive, in one transaction. Calls whose result is
    /// known are audited here, once.
    pub async fn write_journal(&self, run: i64, entries: &[NewJournalEntry]) -> anyhow::Result<()> {
        let entries = entries.to_vec();
        self.writer
            .write(move |conn| {
                append_journal(conn, run, &entries)?;
                conn.prepare_cached(
                    "UPDATE runs SET owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE id = ?",
                )?
                .execute([run])?;
                Ok(())
            })
            .await
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
        let (status, reason, journal) = (status.to_string(), reason.to_string(), journal.to_vec());
        let waiting = waiting.map(|(f, u)| (f.to_string(), u.to_string()));
        let approval = approval.cloned();
        let actor = self.actor.clone();
        self.writer
            .write(move |conn| {
                append_journal(conn, run, &journal)?;
                let approval_id = match &approval {
                    Some(a) => Some(approvals::insert(conn, &actor, a)?),
                    None => None,
                };
                let (waiting_for, waiting_until) = waiting.unzip();
                let (tenant, ticket, plugin, hash): (String, i64, Option<String>, Option<String>) =
                    conn.prepare_cached(
                        "UPDATE runs SET status = ?1, reason = ?2, guest_us = guest_us + ?3,
                           waiting_for = ?4, waiting_until = ?5, owner = NULL,
                           finished_at = CASE WHEN ?4 IS NULL
                             THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
                         WHERE id = ?6
                         RETURNING tenant, ticket, plugin, plugin_hash",
                    )?
                    .query_row(
                        rusqlite::params![
                            status,
                            reason,
                            guest_us,
                            waiting_for,
                            waiting_until,
                            run
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?;
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
                        "plugin_hash": hash, "status": status, "reason": reason,
                        "waiting_for": waiting_for,
                    })
                    .to_string(),
                };
                audit::append_on(conn, &[entry])?;
                Ok(approval_id)
            })
            .await
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
        self.reader
            .read(|conn| {
                conn.prepare_cached("SELECT * FROM runs WHERE id = ?")?
                    .query_row([id], RunRow::from_sql)
                    .optional()
            })?
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
        self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT seq, function, capability, args, decision, result, state, at FROM run_calls
                 WHERE run = ? ORDER BY seq",
            )?
            .query_map([run], |r| {
                Ok(JournalEntry {
                    seq: r.get(0)?,
                    function: r.get(1)?,
                    capability: r.get(2)?,
                    args: r.get(3)?,
                    decision: r.get(4)?,
                    result: r.get(5)?,
                    state: r.get(6)?,
                    at: r.get(7)?,
                })
            })?
            .collect()
        })
    }
}

/// Write journal entries of a run on the writer's connection and audit the calls whose
/// result is known.
fn append_journal(
    conn: &rusqlite::Connection,
    run: i64,
    entries: &[NewJournalEntry],
) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO run_calls (run, seq, function, capability, args, decision, result, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run, seq) DO UPDATE SET decision = excluded.decision,
           result = excluded.result, state = excluded.state,
           at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )?;
    for e in entries {
        insert.execute(rusqlite::params![
            run,
            e.seq,
            e.function,
            e.capability,
            e.args,
            e.decision,
            e.result,
            e.state.name(),
        ])?;
    }
    let (tenant, plugin): (String, Option<String>) = conn
        .prepare_cached("SELECT tenant, plugin FROM runs WHERE id = ?")?
        .query_row([run], |r| Ok((r.get(0)?, r.get(1)?)))?;
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
    audit::append_on(conn, &audited)?;
    Ok(())
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
