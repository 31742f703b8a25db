//! The append-only audit log: every grant check and host call of a run, every run's
//! outcome, and every change an admin makes (tenants, plugins, grants, limits), each
//! entry hash-chained to the one before so that tampering is detectable by `verify`.
//! Appends happen inside the caller's transaction, so an audited change and its audit
//! entry commit together. Owns the `audit` and `audit_head` tables; decides nothing.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{SqliteConnection, SqlitePool};

/// One audit entry as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub tenant: Option<String>,
    /// What happened: `tenant.add`, `plugin.install`, `grant.add`, `grant.revoke`,
    /// `limits.set`, `run.call`, `run.finished`.
    pub kind: String,
    /// Who did it: `cli`, or `plugin:<id>` for a plugin's host calls.
    pub actor: String,
    /// The particulars, as JSON text.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub tenant: Option<&'a str>,
    pub kind: &'a str,
    pub actor: &'a str,
    pub detail: String,
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit entry {id} does not match the chain: {problem}")]
pub struct BrokenChain {
    pub id: i64,
    pub problem: String,
}

fn entry_hash(
    prev_hash: &str,
    id: i64,
    at: &str,
    tenant: Option<&str>,
    kind: &str,
    actor: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &id.to_string(),
        at,
        tenant.unwrap_or(""),
        kind,
        actor,
        detail,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Append entries to the chain on `conn`, which must be inside a transaction.
pub async fn append(
    conn: &mut SqliteConnection,
    entries: &[NewAuditEntry<'_>],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    // Taking the head with an UPDATE first holds SQLite's write lock before the head
    // is read, so two processes cannot both extend the same entry.
    let (first_id, mut prev_hash): (i64, String) = sqlx::query_as(
        "UPDATE audit_head SET last_id = last_id + ? WHERE id = 1 RETURNING last_id - ? + 1, last_hash",
    )
    .bind(entries.len() as i64)
    .bind(entries.len() as i64)
    .fetch_one(&mut *conn)
    .await?;
    let (at,): (String,) = sqlx::query_as("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
        .fetch_one(&mut *conn)
        .await?;
    for (i, e) in entries.iter().enumerate() {
        let id = first_id + i as i64;
        let hash = entry_hash(&prev_hash, id, &at, e.tenant, e.kind, e.actor, &e.detail);
        sqlx::query(
            "INSERT INTO audit (id, at, tenant, kind, actor, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&at)
        .bind(e.tenant)
        .bind(e.kind)
        .bind(e.actor)
        .bind(&e.detail)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        prev_hash = hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = ? WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Append entries in a transaction of their own.
pub async fn record(pool: &SqlitePool, entries: &[NewAuditEntry<'_>]) -> sqlx::Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    append(&mut tx, entries).await?;
    tx.commit().await
}

/// Check the whole chain; returns how many entries were verified.
pub async fn verify(pool: &SqlitePool) -> anyhow::Result<Result<i64, BrokenChain>> {
    let entries: Vec<AuditEntry> = sqlx::query_as("SELECT * FROM audit ORDER BY id")
        .fetch_all(pool)
        .await?;
    let (head_id, head_hash): (i64, String) =
        sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await?;
    let mut prev = "0".repeat(64);
    for (expected_id, e) in (1_i64..).zip(&entries) {
        if e.id != expected_id {
            return Ok(Err(BrokenChain {
                id: expected_id,
                problem: format!("entry {expected_id} is missing (next present is {})", e.id),
            }));
        }
        if e.prev_hash != prev {
            return Ok(Err(BrokenChain {
                id: e.id,
                problem: "its link to the previous entry was changed".into(),
            }));
        }
        let hash = entry_hash(
            &prev,
            e.id,
            &e.at,
            e.tenant.as_deref(),
            &e.kind,
            &e.actor,
            &e.detail,
        );
        if hash != e.hash {
            return Ok(Err(BrokenChain {
                id: e.id,
                problem: "its contents were changed after it was written".into(),
            }));
        }
        prev = hash;
    }
    let count = entries.len() as i64;
    if head_id != count || head_hash != prev {
        return Ok(Err(BrokenChain {
            id: count + 1,
            problem: format!("the log ends at entry {count} but {head_id} entries were written"),
        }));
    }
    Ok(Ok(count))
}

/// A tenant's entries, oldest first.
pub async fn export(pool: &SqlitePool, tenant: &str) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as("SELECT * FROM audit WHERE tenant = ? ORDER BY id")
        .bind(tenant)
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    fn entry(kind: &str) -> NewAuditEntry<'_> {
        NewAuditEntry {
            tenant: Some("acme"),
            kind,
            actor: "cli",
            detail: "{}".into(),
        }
    }

    #[tokio::test]
    async fn an_intact_chain_verifies() {
        let (_d, store) = store().await;
        record(store.pool(), &[entry("a"), entry("b")])
            .await
            .unwrap();
        record(store.pool(), &[entry("c")]).await.unwrap();
        assert_eq!(verify(store.pool()).await.unwrap(), Ok(3));
        assert_eq!(export(store.pool(), "acme").await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn updates_and_deletes_are_refused() {
        let (_d, store) = store().await;
        record(store.pool(), &[entry("a")]).await.unwrap();
        let err = sqlx::query("UPDATE audit SET detail = 'x'")
            .execute(store.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert!(
            sqlx::query("DELETE FROM audit")
                .execute(store.pool())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_changed_entry_is_named() {
        let (_d, store) = store().await;
        record(store.pool(), &[entry("a"), entry("b"), entry("c")])
            .await
            .unwrap();
        // Someone with write access to the file drops the trigger and edits entry 2.
        sqlx::query("DROP TRIGGER audit_no_update")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit SET detail = '{\"x\":1}' WHERE id = 2")
            .execute(store.pool())
            .await
            .unwrap();
        let broken = verify(store.pool()).await.unwrap().unwrap_err();
        assert_eq!(broken.id, 2);
    }
}
