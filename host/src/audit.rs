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
    let (first_id, prev_hash, at): (i64, String, String) = sqlx::query_as(TAKE_HEAD)
        .bind(entries.len() as i64)
        .fetch_one(&mut *conn)
        .await?;
    let mut last_hash = prev_hash.clone();
    for link in chain(first_id, prev_hash, &at, entries) {
        sqlx::query(INSERT_ENTRY)
            .bind(link.id)
            .bind(&at)
            .bind(link.entry.tenant)
            .bind(link.entry.kind)
            .bind(link.entry.actor)
            .bind(&link.entry.detail)
            .bind(&link.prev_hash)
            .bind(&link.hash)
            .execute(&mut *conn)
            .await?;
        last_hash = link.hash;
    }
    sqlx::query(SET_HEAD)
        .bind(&last_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `append` on the writer thread's connection (see `store::writer`), inside its
/// transaction.
pub fn append_on(
    conn: &rusqlite::Connection,
    entries: &[NewAuditEntry<'_>],
) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (first_id, prev_hash, at): (i64, String, String) = conn
        .prepare_cached(TAKE_HEAD)?
        .query_row([entries.len() as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let mut last_hash = prev_hash.clone();
    let mut insert = conn.prepare_cached(INSERT_ENTRY)?;
    for link in chain(first_id, prev_hash, &at, entries) {
        insert.execute(rusqlite::params![
            link.id,
            at,
            link.entry.tenant,
            link.entry.kind,
            link.entry.actor,
            link.entry.detail,
            link.prev_hash,
            link.hash,
        ])?;
        last_hash = link.hash;
    }
    conn.prepare_cached(SET_HEAD)?.execute([last_hash])?;
    Ok(())
}

/// Take `?` ids from the head and return the first, the hash before it and the time.
/// Updating the head first holds SQLite's write lock before the head is read, so two
/// processes cannot both extend the same entry.
const TAKE_HEAD: &str = "UPDATE audit_head SET last_id = last_id + ?1 WHERE id = 1
     RETURNING last_id - ?1 + 1, last_hash, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
const INSERT_ENTRY: &str =
    "INSERT INTO audit (id, at, tenant, kind, actor, detail, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const SET_HEAD: &str = "UPDATE audit_head SET last_hash = ? WHERE id = 1";

/// One entry placed in the chain.
struct Link<'e, 'a> {
    id: i64,
    entry: &'e NewAuditEntry<'a>,
    prev_hash: String,
    hash: String,
}

/// Number and hash `entries` in order after the entry `first_id - 1` whose hash is
/// `prev_hash`.
fn chain<'e, 'a>(
    first_id: i64,
    prev_hash: String,
    at: &str,
    entries: &'e [NewAuditEntry<'a>],
) -> Vec<Link<'e, 'a>> {
    let mut prev_hash = prev_hash;
    (first_id..)
        .zip(entries)
        .map(|(id, entry)| {
            let hash = entry_hash(
                &prev_hash,
                id,
                at,
                entry.tenant,
                entry.kind,
                entry.actor,
                &entry.detail,
            );
            Link {
                id,
                entry,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            }
        })
        .collect()
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
