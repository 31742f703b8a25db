//! A tenant's guardrails and settings in the store: its policy file, its mode per
//! category and its closeout wording, each change audited. Also the queries recovery needs: runs left `running` by a process
//! that is gone.

use std::time::Duration;

use rusqlite::OptionalExtension as _;

use super::{RunRow, Store, run_label};
use crate::audit;
use crate::mode::Mode;
use crate::owner;

impl Store {
    /// The tenant's policy file, if it set one (otherwise the default applies).
    pub async fn policy_source(&self, tenant: &str) -> anyhow::Result<Option<String>> {
        self.reader.read(|conn| {
            conn.prepare_cached("SELECT source FROM policies WHERE tenant = ?")?
                .query_row([tenant], |r| r.get(0))
                .optional()
        })
    }

    /// Replace the tenant's policy file (already parsed and validated by the caller).
    pub async fn set_policy(
        &self,
        tenant: &str,
        source: &str,
        rules: &[String],
    ) -> anyhow::Result<()> {
        self.tenant(tenant).await?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO policies (tenant, source) VALUES (?, ?)
             ON CONFLICT (tenant) DO UPDATE SET source = excluded.source,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(tenant)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({ "rules": rules, "source": source });
        audit::append(
            &mut tx,
            &[self.audit_entry(Some(tenant), "policy.set", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Set the mode of one category (`*`: every category without a mode of its own).
    pub async fn set_mode(&self, tenant: &str, category: &str, mode: Mode) -> anyhow::Result<()> {
        self.tenant(tenant).await?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let previous: Option<(String,)> =
            sqlx::query_as("SELECT mode FROM modes WHERE tenant = ? AND category = ?")
                .bind(tenant)
                .bind(category)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO modes (tenant, category, mode) VALUES (?, ?, ?)
             ON CONFLICT (tenant, category) DO UPDATE SET mode = excluded.mode,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(tenant)
        .bind(category)
        .bind(mode.name())
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "category": category, "mode": mode, "previous": previous.map(|(m,)| m),
        });
        audit::append(
            &mut tx,
            &[self.audit_entry(Some(tenant), "mode.set", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The mode a category runs in: its own row, else the tenant's `*` row, else shadow.
    pub async fn mode(&self, tenant: &str, category: &str) -> anyhow::Result<Mode> {
        let row: Option<String> = self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT mode FROM modes WHERE tenant = ? AND category IN (?, '*')
                 ORDER BY category = '*' LIMIT 1",
            )?
            .query_row([tenant, category], |r| r.get(0))
            .optional()
        })?;
        Ok(row.and_then(|m| m.parse().ok()).unwrap_or(Mode::NEW_TENANT))
    }

    /// Every mode row of a tenant, as (category, mode).
    pub async fn modes_of(&self, tenant: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT category, mode FROM modes WHERE tenant = ? ORDER BY category = '*' DESC, category",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Use `body` for the tenant's closeouts from `plugin`'s template `name` (checked
    /// by the caller), or go back to the shipped one with `None`.
    pub async fn set_template(
        &self,
        tenant: &str,
        plugin: &str,
        name: &str,
        body: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        match body {
            Some(body) => sqlx::query(
                "INSERT INTO template_overrides (tenant, plugin, name, body) VALUES (?, ?, ?, ?)
                 ON CONFLICT (tenant, plugin, name) DO UPDATE SET body = excluded.body,
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(name)
            .bind(body)
            .execute(&mut *tx)
            .await?,
            None => {
                sqlx::query(
                    "DELETE FROM template_overrides WHERE tenant = ? AND plugin = ? AND name = ?",
                )
                .bind(tenant)
                .bind(plugin)
                .bind(name)
                .execute(&mut *tx)
                .await?
            }
        };
        let detail = serde_json::json!({ "plugin": plugin, "template": name, "body": body });
        let kind = if body.is_some() {
            "template.set"
        } else {
            "template.reset"
        };
        audit::append(&mut tx, &[self.audit_entry(Some(tenant), kind, detail)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's own body of `plugin`'s template `name`, if it set one.
    pub async fn template_override(
        &self,
        tenant: &str,
        plugin: &str,
        name: &str,
    ) -> anyhow::Result<Option<String>> {
        self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT body FROM template_overrides WHERE tenant = ? AND plugin = ? AND name = ?",
            )?
            .query_row([tenant, plugin, name], |r| r.get(0))
            .optional()
        })
    }

    /// A time `after` from now, in the store's timestamp format.
    pub async fn time_after(&self, after: Duration) -> anyhow::Result<String> {
        let (at,): (String,) = sqlx::query_as("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)")
            .bind(format!("+{} seconds", after.as_secs()))
            .fetch_one(&self.pool)
            .await?;
        Ok(at)
    }

    /// Runs left `running` whose owner is gone: dead on this host, silent for longer
    /// than the lease elsewhere, or unrecorded.
    pub async fn abandoned_runs(&self) -> anyhow::Result<Vec<RunRow>> {
        let running: Vec<RunRow> =
            sqlx::query_as("SELECT * FROM runs WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        let lease = owner::LEASE.as_secs() as i64;
        let mut abandoned = Vec::new();
        for run in running {
            let gone = match run.owner.as_deref().map(owner::is_alive) {
                None => true,
                Some(Some(alive)) => !alive,
                Some(None) => {
                    let (expired,): (bool,) = sqlx::query_as(
                        "SELECT coalesce(?, '') <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                    )
                    .bind(run.owner_seen_at.as_deref())
                    .bind(format!("-{lease} seconds"))
                    .fetch_one(&self.pool)
                    .await?;
                    expired
                }
            };
            if gone {
                abandoned.push(run);
            }
        }
        Ok(abandoned)
    }

    /// Take over an abandoned run: succeeds only if it still has the owner recovery saw.
    pub async fn claim_abandoned(&self, run: &RunRow) -> anyhow::Result<bool> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let claimed = sqlx::query(
            "UPDATE runs SET owner = ?, owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ? AND status = 'running' AND owner IS ?",
        )
        .bind(owner::this_process())
        .bind(run.id)
        .bind(run.owner.as_deref())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        let detail = serde_json::json!({ "run": run_label(run.id), "previous_owner": run.owner });
        audit::append(
            &mut tx,
            &[self.audit_entry(Some(&run.tenant), "run.recovered", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
