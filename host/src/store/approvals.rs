//! Approval requests in the store: created with the run that waits for them, answered
//! once (by an entitled approver, in the same transaction that claims the run), and
//! expired by the sweep.

use serde::Serialize;

use super::{NotFound, Store, run_label, ticket_label};
use crate::audit::{self, NewAuditEntry};
use crate::owner;

/// An approval request as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApprovalRow {
    pub id: i64,
    pub tenant: String,
    pub run: i64,
    pub seq: i64,
    pub ticket: i64,
    pub function: String,
    pub args: String,
    /// What the plugin wants to do, in words.
    pub summary: String,
    /// The policy rule that asked.
    pub rule: String,
    pub requester: String,
    /// The emails entitled to answer, as a JSON list.
    pub approvers: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub status: String,
    pub requested_at: String,
    pub expires_at: String,
    pub answered_by: Option<String>,
    pub answered_at: Option<String>,
    pub comment: Option<String>,
}

impl ApprovalRow {
    /// The emails entitled to answer.
    pub fn approver_emails(&self) -> Vec<String> {
        serde_json::from_str(&self.approvers).unwrap_or_default()
    }
}

/// An approval request to create.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub tenant: String,
    pub run: i64,
    pub seq: i64,
    pub ticket: i64,
    pub function: String,
    pub args: String,
    pub summary: String,
    pub rule: String,
    pub requester: String,
    pub approvers: Vec<String>,
    pub expires_at: String,
}

/// The printed form of an approval id.
pub fn approval_label(id: i64) -> String {
    format!("A-{id}")
}

/// Insert an approval request and audit it, inside the writer's transaction.
pub(super) fn insert(
    conn: &rusqlite::Connection,
    actor: &str,
    a: &NewApproval,
) -> anyhow::Result<i64> {
    let approvers = serde_json::to_string(&a.approvers)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO approvals (tenant, run, seq, ticket, function, args, summary, rule, requester,
               approvers, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(
            rusqlite::params![
                a.tenant, a.run, a.seq, a.ticket, a.function, a.args, a.summary, a.rule,
                a.requester, approvers, a.expires_at,
            ],
            |r| r.get(0),
        )?;
    let detail = serde_json::json!({
        "approval": approval_label(id), "run": run_label(a.run), "ticket": ticket_label(a.ticket),
        "function": a.function, "summary": a.summary, "rule": a.rule, "requester": a.requester,
        "approvers": a.approvers, "expires_at": a.expires_at,
    });
    let entry = NewAuditEntry {
        tenant: Some(&a.tenant),
        kind: "approval.request",
        actor,
        detail: detail.to_string(),
    };
    audit::append_on(conn, &[entry])?;
    Ok(id)
}

/// How an approver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Reject,
}

impl Store {
    pub async fn approval(&self, id: i64) -> anyhow::Result<ApprovalRow> {
        sqlx::query_as("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                NotFound {
                    what: "approval",
                    id: approval_label(id),
                    hint: "; `capdesk approvals` lists the pending ones",
                }
                .into()
            })
    }

    /// The latest approval request of a run.
    pub async fn approval_of_run(&self, run: i64) -> anyhow::Result<Option<ApprovalRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM approvals WHERE run = ? ORDER BY id DESC LIMIT 1")
                .bind(run)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Pending approvals, oldest first, of one tenant or all.
    pub async fn pending_approvals(
        &self,
        tenant: Option<&str>,
    ) -> anyhow::Result<Vec<ApprovalRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM approvals WHERE status = 'pending' AND (? IS NULL OR tenant = ?) ORDER BY id",
        )
        .bind(tenant)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Record an entitled approver's answer and claim the waiting run for resuming, in
    /// one transaction: approve marks the waiting call `approved` (it runs on resume),
    /// reject records `rejected` as its result. Fails if the request was answered or
    /// expired already. The caller has checked that `by` is entitled.
    pub async fn answer_approval(
        &self,
        id: i64,
        by: &str,
        answer: Answer,
        comment: Option<&str>,
    ) -> anyhow::Result<ApprovalRow> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let status = match answer {
            Answer::Approve => "approved",
            Answer::Reject => "rejected",
        };
        let updated = sqlx::query(
            "UPDATE approvals SET status = ?, answered_by = ?, comment = ?,
               answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(by)
        .bind(comment)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let (current,): (String,) = sqlx::query_as("SELECT status FROM approvals WHERE id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            anyhow::bail!(
                "approval {} is {current} already; nothing was changed",
                approval_label(id)
            );
        }
        let row: ApprovalRow = sqlx::query_as("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let claimed = sqlx::query(
            "UPDATE runs SET status = 'running', waiting_for = NULL, waiting_until = NULL, owner = ?,
               owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ? AND status = 'waiting'",
        )
        .bind(owner::this_process())
        .bind(row.run)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            anyhow::bail!(
                "run {} is no longer waiting for approval {}; nothing was changed",
                run_label(row.run),
                approval_label(id)
            );
        }
        let said = comment.map(|c| format!(": {c}")).unwrap_or_default();
        let (decision, state, result) = match answer {
            Answer::Approve => (
                format!("approved by {by} (rule {}){said}", row.rule),
                "approved",
                "null".to_string(),
            ),
            Answer::Reject => (
                format!("rejected by {by} (rule {}){said}", row.rule),
                "done",
                crate::guard::rejected_result(&format!(
                    "{by} rejected the request to {}{said}",
                    row.summary
                )),
            ),
        };
        sqlx::query(
            "UPDATE run_calls SET decision = ?, state = ?, result = ? WHERE run = ? AND seq = ?",
        )
        .bind(&decision)
        .bind(state)
        .bind(&result)
        .bind(row.run)
        .bind(row.seq)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "approval": approval_label(id), "run": run_label(row.run), "answer": status,
            "by": by, "comment": comment, "rule": row.rule,
        });
        let entry = NewAuditEntry {
            tenant: Some(&row.tenant),
            kind: "approval.answer",
            actor: by,
            detail: detail.to_string(),
        };
        audit::append(&mut tx, &[entry]).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Record an answer that was refused (from someone not entitled).
    pub async fn audit_approval_refusal(
        &self,
        row: &ApprovalRow,
        by: &str,
        why: &str,
    ) -> anyhow::Result<()> {
        let detail = serde_json::json!({
            "approval": approval_label(row.id), "run": run_label(row.run), "by": by, "why": why,
        });
        let entry = NewAuditEntry {
            tenant: Some(&row.tenant),
            kind: "approval.refused",
            actor: by,
            detail: detail.to_string(),
        };
        audit::record(&self.pool, &[entry]).await?;
        Ok(())
    }

    /// Waiting runs whose wait is over (`waiting_until` has passed), claimed for
    /// escalation by this process; their pending approvals are marked expired.
    pub async fn claim_expired_waits(&self) -> anyhow::Result<Vec<i64>> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let runs: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE runs SET status = 'running', owner = ?, owner_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE status = 'waiting' AND waiting_until IS NOT NULL
               AND waiting_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             RETURNING id, tenant",
        )
        .bind(owner::this_process())
        .fetch_all(&mut *tx)
        .await?;
        for (run, tenant) in &runs {
            sqlx::query(
                "UPDATE approvals SET status = 'expired' WHERE run = ? AND status = 'pending'",
            )
            .bind(run)
            .execute(&mut *tx)
            .await?;
            let entry = NewAuditEntry {
                tenant: Some(tenant),
                kind: "run.wait-expired",
                actor: "capdesk",
                detail: serde_json::json!({ "run": run_label(*run) }).to_string(),
            };
            audit::append(&mut tx, &[entry]).await?;
        }
        tx.commit().await?;
        Ok(runs.into_iter().map(|(r, _)| r).collect())
    }
}
