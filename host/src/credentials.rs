//! One-time credential links. When capdesk serves HTTP, a temporary password is not put
//! in a chat message: it is sealed with a fresh key that exists only in the link sent to
//! the account owner, and capdesk keeps the sealed bytes until the link is opened once
//! or expires (15 minutes), then destroys them. The plugin, the journal, ticket notes,
//! logs and the API never hold the password or the key; the database holds only what it
//! cannot read. Opening is a two-step page (a GET shows a button, the POST reveals), so
//! a chat app's link preview cannot use the link up.

use chacha20poly1305::aead::{Aead as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sqlx::SqlitePool;

use crate::connectors::{ConnectorError, Secret};
use crate::store::{Store, Writer};

/// How long a link works.
pub const LINK_MINUTES: u32 = 15;

fn db(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Upstream(format!("the credential store failed: {e}"))
}

/// Where links point and where sealed secrets wait.
#[derive(Debug, Clone)]
pub struct CredentialLinks {
    /// Sealed secrets are stored through the store's writer (see `store::writer`).
    writer: Writer,
    /// The server's address as its users reach it, without a trailing slash.
    base_url: String,
}

/// What opening a link gave.
#[derive(Debug)]
pub enum Opened {
    Secret {
        recipient: String,
        secret: Secret,
    },
    /// Opened already, expired, or never issued: the three look alike on purpose.
    Gone,
}

impl CredentialLinks {
    pub fn new(store: &Store, base_url: &str) -> CredentialLinks {
        CredentialLinks {
            writer: store.writer().clone(),
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// Seal `secret` for `recipient` and return the one-time link to it.
    pub async fn seal(
        &self,
        tenant: &str,
        recipient: &str,
        secret: &Secret,
    ) -> Result<String, ConnectorError> {
        let key = rand::random::<[u8; 32]>();
        let nonce = rand::random::<[u8; 24]>();
        let sealed = XChaCha20Poly1305::new(&key.into())
            .encrypt(XNonce::from_slice(&nonce), secret.expose().as_bytes())
            .map_err(|_| {
                ConnectorError::Upstream("sealing the temporary password failed".into())
            })?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let now = crate::store::unix_now();
        let (row_id, tenant, recipient) = (id.clone(), tenant.to_string(), recipient.to_string());
        self.writer
            .write(move |conn| {
                // Expired links are destroyed whenever a new one is made.
                conn.prepare_cached("DELETE FROM one_time_secrets WHERE expires_at < ?")?
                    .execute([now])?;
                conn.prepare_cached(
                    "INSERT INTO one_time_secrets (id, tenant, recipient, nonce, sealed, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?
                .execute(rusqlite::params![
                    row_id,
                    tenant,
                    recipient,
                    &nonce[..],
                    sealed,
                    now + i64::from(LINK_MINUTES) * 60
                ])?;
                Ok(())
            })
            .await
            .map_err(db)?;
        Ok(format!(
            "{}/secret/{id}/{}",
            self.base_url,
            hex::encode(key)
        ))
    }
}

/// Whether a link still works (for the page that offers to reveal it), without using it.
pub async fn waiting(pool: &SqlitePool, id: &str) -> sqlx::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT expires_at FROM one_time_secrets WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some_and(|expires| expires >= crate::store::unix_now()))
}

/// Open a link: decrypt with its key, destroy the sealed copy, return the secret. A
/// wrong key destroys nothing; a second opening finds nothing.
pub async fn open(pool: &SqlitePool, id: &str, key_hex: &str) -> sqlx::Result<Opened> {
    let row: Option<(String, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT recipient, nonce, sealed, expires_at FROM one_time_secrets WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((recipient, nonce, sealed, expires_at)) = row else {
        return Ok(Opened::Gone);
    };
    if expires_at < crate::store::unix_now() {
        crate::store::write_one(
            pool,
            sqlx::query("DELETE FROM one_time_secrets WHERE id = ?").bind(id),
        )
        .await?;
        return Ok(Opened::Gone);
    }
    let key: Option<[u8; 32]> = hex::decode(key_hex).ok().and_then(|k| k.try_into().ok());
    let (Some(key), Ok(nonce)) = (key, <[u8; 24]>::try_from(nonce.as_slice())) else {
        return Ok(Opened::Gone);
    };
    let Ok(plain) =
        XChaCha20Poly1305::new(&key.into()).decrypt(XNonce::from_slice(&nonce), sealed.as_slice())
    else {
        return Ok(Opened::Gone);
    };
    // Only the request that deletes the row reveals it: two at once cannot both see it.
    let deleted = crate::store::write_one(
        pool,
        sqlx::query("DELETE FROM one_time_secrets WHERE id = ?").bind(id),
    )
    .await?;
    if deleted.rows_affected() != 1 {
        return Ok(Opened::Gone);
    }
    Ok(Opened::Secret {
        recipient,
        secret: Secret::new(String::from_utf8_lossy(&plain).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Links {
        links: CredentialLinks,
        pool: SqlitePool,
    }

    impl std::ops::Deref for Links {
        type Target = CredentialLinks;

        fn deref(&self) -> &CredentialLinks {
            &self.links
        }
    }

    async fn links() -> (tempfile::TempDir, Links) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("c.db"))
            .await
            .unwrap();
        let links = CredentialLinks::new(&store, "http://desk.example/");
        let pool = store.pool().clone();
        (dir, Links { links, pool })
    }

    fn parts(link: &str) -> (String, String) {
        let rest = link
            .strip_prefix("http://desk.example/secret/")
            .expect(link);
        let (id, key) = rest.split_once('/').unwrap();
        (id.to_string(), key.to_string())
    }

    #[tokio::test]
    async fn a_link_opens_once_and_the_database_never_holds_the_secret() {
        let (_dir, links) = links().await;
        let link = links
            .seal(
                "acme",
                "ann@acme.test",
                &Secret::new("Tmp-Pass-123!".into()),
            )
            .await
            .unwrap();
        let (id, key) = parts(&link);
        let stored: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM one_time_secrets")
            .fetch_one(&links.pool)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("Tmp-Pass"));
        assert!(waiting(&links.pool, &id).await.unwrap());

        let wrong = hex::encode([7u8; 32]);
        assert!(matches!(
            open(&links.pool, &id, &wrong).await.unwrap(),
            Opened::Gone
        ));
        assert!(
            waiting(&links.pool, &id).await.unwrap(),
            "a wrong key destroys nothing"
        );

        match open(&links.pool, &id, &key).await.unwrap() {
            Opened::Secret { recipient, secret } => {
                assert_eq!(recipient, "ann@acme.test");
                assert_eq!(secret.expose(), "Tmp-Pass-123!");
            }
            Opened::Gone => panic!("the first opening reveals it"),
        }
        assert!(matches!(
            open(&links.pool, &id, &key).await.unwrap(),
            Opened::Gone
        ));
        assert!(!waiting(&links.pool, &id).await.unwrap());
    }

    #[tokio::test]
    async fn an_expired_link_reveals_nothing() {
        let (_dir, links) = links().await;
        let link = links
            .seal("acme", "ann@acme.test", &Secret::new("x".into()))
            .await
            .unwrap();
        let (id, key) = parts(&link);
        sqlx::query("UPDATE one_time_secrets SET expires_at = 0")
            .execute(&links.pool)
            .await
            .unwrap();
        assert!(!waiting(&links.pool, &id).await.unwrap());
        assert!(matches!(
            open(&links.pool, &id, &key).await.unwrap(),
            Opened::Gone
        ));
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM one_time_secrets")
            .fetch_one(&links.pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "the expired copy is destroyed");
    }
}
