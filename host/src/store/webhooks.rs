//! Webhook secrets and the deliveries already accepted: issuing and rotating a tenant's
//! secret (audited, never the secret itself), reading it to check a signature, and
//! remembering each accepted signature so a replay is refused.

use super::Store;
use crate::audit;

impl Store {
    /// Issue (or replace) the tenant's webhook secret; returns it.
    pub async fn rotate_webhook_secret(&self, tenant: &str) -> anyhow::Result<String> {
        self.tenant(tenant).await?;
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO webhook_secrets (tenant, secret) VALUES (?, ?)
             ON CONFLICT (tenant) DO UPDATE SET secret = excluded.secret,
               created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(tenant)
        .bind(&secret)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            &[self.audit_entry(
                Some(tenant),
                "webhook.secret",
                serde_json::json!({ "rotated": true }),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The tenant's webhook secret, if one was issued.
    pub async fn webhook_secret(&self, tenant: &str) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM webhook_secrets WHERE tenant = ?")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Remember an accepted delivery's signature; `false` when it was seen already (a
    /// replay). Forgets signatures older than `keep_secs`.
    pub async fn first_delivery(
        &self,
        tenant: &str,
        signature: &str,
        now: i64,
        keep_secs: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < ?")
            .bind(now - keep_secs)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (tenant, signature, received_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(signature)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }
}
