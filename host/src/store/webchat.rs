//! The web chat's records: one-time sign-in codes (hashed, limited tries, expiring),
//! sessions (hashed ids, expiring) and what end users said.

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::Store;

/// How long a sign-in code works.
pub const CODE_SECS: i64 = 10 * 60;
/// Wrong codes allowed before a new one must be asked for.
pub const CODE_TRIES: i64 = 5;
/// The shortest wait between two codes to the same person.
pub const RESEND_SECS: i64 = 30;
/// How long a web chat session lasts.
pub const SESSION_SECS: i64 = 8 * 60 * 60;

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Why a code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefused {
    #[error("no code is waiting for this address, or it expired; ask for a new one")]
    NoneWaiting,
    #[error("that code is not the one we sent; {0} more tries")]
    Wrong(i64),
    #[error("too many wrong codes; ask for a new one")]
    TooManyTries,
}

/// Something the end user said.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SaidMessage {
    pub id: i64,
    pub text: String,
    pub at: String,
}

impl Store {
    /// Keep a fresh code for `email`, replacing any earlier one; `false` (and nothing
    /// kept) when one was sent less than [`RESEND_SECS`] ago.
    pub async fn keep_webchat_code(
        &self,
        tenant: &str,
        email: &str,
        code: &str,
        contact: &str,
    ) -> anyhow::Result<bool> {
        let now = super::unix_now();
        let mut tx = super::begin_write(&self.pool).await?;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT sent_at FROM webchat_codes WHERE tenant = ? AND email = ?")
                .bind(tenant)
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
        if last.is_some_and(|at| now - at < RESEND_SECS) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO webchat_codes (tenant, email, code_hash, contact, sent_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant, email) DO UPDATE SET code_hash = excluded.code_hash,
               contact = excluded.contact, sent_at = excluded.sent_at,
               expires_at = excluded.expires_at, attempts = 0",
        )
        .bind(tenant)
        .bind(email)
        .bind(hash(&format!("{tenant}:{email}:{code}")))
        .bind(contact)
        .bind(now)
        .bind(now + CODE_SECS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Check a code; a right one is used up and opens a session, whose id is returned.
    pub async fn redeem_webchat_code(
        &self,
        tenant: &str,
        email: &str,
        code: &str,
    ) -> anyhow::Result<Result<String, CodeRefused>> {
        let now = super::unix_now();
        let mut tx = super::begin_write(&self.pool).await?;
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT code_hash, expires_at, attempts FROM webchat_codes WHERE tenant = ? AND email = ?",
        )
        .bind(tenant)
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((code_hash, expires_at, attempts)) = row else {
            return Ok(Err(CodeRefused::NoneWaiting));
        };
        if expires_at < now {
            return Ok(Err(CodeRefused::NoneWaiting));
        }
        if attempts >= CODE_TRIES {
            return Ok(Err(CodeRefused::TooManyTries));
        }
        let given = hash(&format!("{tenant}:{email}:{}", code.trim()));
        if !bool::from(given.as_bytes().ct_eq(code_hash.as_bytes())) {
            sqlx::query(
                "UPDATE webchat_codes SET attempts = attempts + 1 WHERE tenant = ? AND email = ?",
            )
            .bind(tenant)
            .bind(email)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let left = CODE_TRIES - attempts - 1;
            return Ok(Err(if left > 0 {
                CodeRefused::Wrong(left)
            } else {
                CodeRefused::TooManyTries
            }));
        }
        sqlx::query("DELETE FROM webchat_codes WHERE tenant = ? AND email = ?")
            .bind(tenant)
            .bind(email)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webchat_sessions WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let session = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query(
            "INSERT INTO webchat_sessions (id_hash, tenant, email, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(hash(&session))
        .bind(tenant)
        .bind(email)
        .bind(now + SESSION_SECS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(session))
    }

    /// The person a live session of `tenant` belongs to.
    pub async fn webchat_session(
        &self,
        tenant: &str,
        session: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT email FROM webchat_sessions WHERE id_hash = ? AND tenant = ? AND expires_at >= ?",
        )
        .bind(hash(session))
        .bind(tenant)
        .bind(super::unix_now())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// End a session.
    pub async fn end_webchat_session(&self, session: &str) -> anyhow::Result<()> {
        crate::store::write_one(
            &self.pool,
            sqlx::query("DELETE FROM webchat_sessions WHERE id_hash = ?").bind(hash(session)),
        )
        .await?;
        Ok(())
    }

    /// Keep what the end user said.
    pub async fn webchat_said(&self, tenant: &str, email: &str, text: &str) -> anyhow::Result<()> {
        crate::store::write_one(
            &self.pool,
            sqlx::query("INSERT INTO webchat_messages (tenant, email, text) VALUES (?, ?, ?)")
                .bind(tenant)
                .bind(email)
                .bind(text),
        )
        .await?;
        Ok(())
    }

    /// What the end user said, oldest first.
    pub async fn webchat_transcript(
        &self,
        tenant: &str,
        email: &str,
    ) -> anyhow::Result<Vec<SaidMessage>> {
        Ok(sqlx::query_as(
            "SELECT id, text, at FROM webchat_messages WHERE tenant = ? AND email = ? ORDER BY id",
        )
        .bind(tenant)
        .bind(email)
        .fetch_all(&self.pool)
        .await?)
    }
}
