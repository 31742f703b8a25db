//! Shadow-run review: the runs a category made in shadow mode, with what they proposed,
//! and a person's verdict on each (audited). The share judged correct is what an MSP
//! weighs before letting the category act.

use serde::Serialize;

use super::{RunRow, Store};
use crate::audit;

/// A verdict on one shadow run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ShadowReview {
    pub run: i64,
    pub verdict: String,
    pub note: String,
    pub reviewed_by: String,
    pub reviewed_at: String,
}

/// How a plugin's shadow runs were judged.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ShadowScore {
    pub plugin: String,
    pub runs: i64,
    pub reviewed: i64,
    pub correct: i64,
}

impl Store {
    /// A tenant's shadow runs, newest first.
    pub async fn shadow_runs(&self, tenant: &str, limit: i64) -> anyhow::Result<Vec<RunRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM runs WHERE tenant = ? AND status = 'shadowed' ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The verdicts given on a tenant's shadow runs.
    pub async fn shadow_reviews(&self, tenant: &str) -> anyhow::Result<Vec<ShadowReview>> {
        Ok(sqlx::query_as(
            "SELECT run, verdict, note, reviewed_by, reviewed_at FROM shadow_reviews
             WHERE tenant = ? ORDER BY run DESC",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per plugin: shadow runs, how many were reviewed, how many judged correct.
    pub async fn shadow_scores(&self, tenant: &str) -> anyhow::Result<Vec<ShadowScore>> {
        Ok(sqlx::query_as(
            "SELECT COALESCE(r.plugin, '') AS plugin, COUNT(*) AS runs,
                    COUNT(v.run) AS reviewed,
                    COALESCE(SUM(v.verdict = 'correct'), 0) AS correct
             FROM runs r LEFT JOIN shadow_reviews v ON v.run = r.id
             WHERE r.tenant = ? AND r.status = 'shadowed'
             GROUP BY r.plugin ORDER BY r.plugin",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Record `by`'s verdict on shadow run `run` (replacing an earlier one).
    pub async fn review_shadow_run(
        &self,
        run: i64,
        correct: bool,
        note: &str,
        by: &str,
    ) -> anyhow::Result<()> {
        let row = self.run(run).await?;
        if row.status != "shadowed" {
            anyhow::bail!(
                "run {} is {}, not a shadow run; only shadow runs are reviewed",
                super::run_label(run),
                row.status
            );
        }
        let verdict = if correct { "correct" } else { "incorrect" };
        let mut tx = super::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO shadow_reviews (run, tenant, verdict, note, reviewed_by) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (run) DO UPDATE SET verdict = excluded.verdict, note = excluded.note,
               reviewed_by = excluded.reviewed_by,
               reviewed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(run)
        .bind(&row.tenant)
        .bind(verdict)
        .bind(note.trim())
        .bind(by)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            &[self.audit_entry(
                Some(&row.tenant),
                "shadow.review",
                serde_json::json!({
                    "run": super::run_label(run), "plugin": row.plugin,
                    "verdict": verdict, "by": by, "note": note.trim(),
                }),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
