//! Chat channels in the store: a tenant's Slack or Teams configuration (settings in
//! clear, secrets only as the sealed bytes the caller hands over), which chat the tenant
//! uses, where each person is reached, the button messages posted for approvals and
//! questions, and the inbound events already taken. Rows only: sealing, vendor calls
//! and the decisions about them live in `connectors::channel` and `api::{slack,teams}`.

use rusqlite::OptionalExtension as _;

use super::Store;
use crate::audit;

/// One configured chat of a tenant, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatChannelRow {
    pub kind: String,
    /// The settings that are not secret, as JSON.
    pub settings: String,
    /// The secrets, sealed (see `crate::vault`).
    pub sealed: Vec<u8>,
    pub updated_at: String,
}

/// A message with buttons, posted earlier.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostedMessage {
    pub recipient: String,
    pub place: String,
    pub message: String,
}

impl Store {
    /// Store (or replace) the tenant's configuration of chat `kind` and make it the chat
    /// the tenant uses. Audited with the settings, never the secrets.
    pub async fn put_chat_channel(
        &self,
        tenant: &str,
        kind: &str,
        settings: &serde_json::Value,
        sealed: &[u8],
    ) -> anyhow::Result<()> {
        self.tenant(tenant).await?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO chat_channels (tenant, kind, settings, sealed) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant, kind) DO UPDATE SET settings = excluded.settings,
               sealed = excluded.sealed, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(tenant)
        .bind(kind)
        .bind(settings.to_string())
        .bind(sealed)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chat_choice (tenant, kind) VALUES (?, ?)
             ON CONFLICT (tenant) DO UPDATE SET kind = excluded.kind",
        )
        .bind(tenant)
        .bind(kind)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            &[self.audit_entry(
                Some(tenant),
                "chat.configure",
                serde_json::json!({ "chat": kind, "settings": settings, "secrets": "sealed" }),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Make `kind` (configured already) the tenant's chat, or with `None` go back to the
    /// built-in one. Audited.
    pub async fn choose_chat(&self, tenant: &str, kind: Option<&str>) -> anyhow::Result<()> {
        self.tenant(tenant).await?;
        let mut tx = crate::store::begin_write(&self.pool).await?;
        match kind {
            Some(kind) => {
                let configured: Option<String> = sqlx::query_scalar(
                    "SELECT kind FROM chat_channels WHERE tenant = ? AND kind = ?",
                )
                .bind(tenant)
                .bind(kind)
                .fetch_optional(&mut *tx)
                .await?;
                if configured.is_none() {
                    anyhow::bail!(
                        "tenant {tenant} has no {kind} configuration yet; set it first with \
                         `capdesk tenant {kind} {tenant} ...` or \
                         `PUT /api/v1/tenants/{tenant}/chat/{kind}`"
                    );
                }
                sqlx::query(
                    "INSERT INTO chat_choice (tenant, kind) VALUES (?, ?)
                     ON CONFLICT (tenant) DO UPDATE SET kind = excluded.kind",
                )
                .bind(tenant)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM chat_choice WHERE tenant = ?")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        audit::append(
            &mut tx,
            &[self.audit_entry(
                Some(tenant),
                "chat.choose",
                serde_json::json!({ "chat": kind.unwrap_or("builtin") }),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The chat the tenant uses (`slack`, `teams`), or `None` for the built-in one.
    pub async fn chosen_chat(&self, tenant: &str) -> anyhow::Result<Option<String>> {
        self.reader.read(|conn| {
            conn.prepare_cached("SELECT kind FROM chat_choice WHERE tenant = ?")?
                .query_row([tenant], |r| r.get(0))
                .optional()
        })
    }

    /// The tenant's configuration of chat `kind`, if any.
    pub async fn chat_channel(
        &self,
        tenant: &str,
        kind: &str,
    ) -> anyhow::Result<Option<ChatChannelRow>> {
        Ok(sqlx::query_as(
            "SELECT kind, settings, sealed, updated_at FROM chat_channels
             WHERE tenant = ? AND kind = ?",
        )
        .bind(tenant)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Remember where `email` is reached in the tenant's chat `kind`.
    pub async fn set_chat_address(
        &self,
        tenant: &str,
        kind: &str,
        email: &str,
        address: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO chat_people (tenant, kind, email, address) VALUES (?, ?, lower(?), ?)
             ON CONFLICT (tenant, kind, email) DO UPDATE SET address = excluded.address,
               seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(tenant)
        .bind(kind)
        .bind(email.trim())
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where `email` is reached in the tenant's chat `kind`, if known.
    pub async fn chat_address(
        &self,
        tenant: &str,
        kind: &str,
        email: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM chat_people WHERE tenant = ? AND kind = ? AND email = lower(?)",
        )
        .bind(tenant)
        .bind(kind)
        .bind(email.trim())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Remember a message with buttons posted about `subject` (`A-12`, `R-7`).
    pub async fn add_chat_message(
        &self,
        tenant: &str,
        kind: &str,
        subject: &str,
        message: &PostedMessage,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO chat_messages (tenant, kind, subject, recipient, place, message)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant)
        .bind(kind)
        .bind(subject)
        .bind(&message.recipient)
        .bind(&message.place)
        .bind(&message.message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The messages posted about `subject` in the tenant's chat `kind`.
    pub async fn chat_messages(
        &self,
        tenant: &str,
        kind: &str,
        subject: &str,
    ) -> anyhow::Result<Vec<PostedMessage>> {
        Ok(sqlx::query_as(
            "SELECT recipient, place, message FROM chat_messages
             WHERE tenant = ? AND kind = ? AND subject = ? ORDER BY rowid",
        )
        .bind(tenant)
        .bind(kind)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Remember an inbound event; `false` when it was taken already (a retry). Forgets
    /// events older than `keep_secs`.
    pub async fn first_chat_event(
        &self,
        tenant: &str,
        kind: &str,
        event: &str,
        now: i64,
        keep_secs: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM chat_events WHERE received_at < ?")
            .bind(now - keep_secs)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO chat_events (tenant, kind, event, received_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(kind)
        .bind(event)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Forget an event that could not be taken after all, so the vendor's retry is.
    pub async fn forget_chat_event(
        &self,
        tenant: &str,
        kind: &str,
        event: &str,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM chat_events WHERE tenant = ? AND kind = ? AND event = ?")
            .bind(tenant)
            .bind(kind)
            .bind(event)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest of the tenant's runs waiting for `email` to type an answer (a question
    /// without choices, or an identity code), if any.
    pub async fn run_waiting_for_text(
        &self,
        tenant: &str,
        email: &str,
    ) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE tenant = ? AND status = 'waiting'
               AND json_valid(waiting_for)
               AND json_extract(waiting_for, '$.kind') IN ('question', 'challenge')
               AND lower(json_extract(waiting_for, '$.to')) = lower(?)
               AND json_array_length(coalesce(json_extract(waiting_for, '$.choices'), '[]')) = 0
             ORDER BY id DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(email.trim())
        .fetch_optional(&self.pool)
        .await?)
    }
}
