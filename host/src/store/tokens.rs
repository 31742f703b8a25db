//! API tokens in the store: created with a random secret that is returned once and kept
//! only as its SHA-256, looked up by that hash on every request, listed and revoked.
//! Creating and revoking a token is audited. What a role may do is the API's business.

use rusqlite::OptionalExtension as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{NotFound, Store};
use crate::audit;

/// What a token may do (the API enforces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The MSP's administrator: every tenant, every action.
    Admin,
    /// Tickets, runs, the escalation queue, and approvals that name them.
    Technician,
    /// One tenant's approvals that name them.
    Approver,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Technician => "technician",
            Role::Approver => "approver",
        }
    }

    fn parse(s: &str) -> Role {
        match s {
            "admin" => Role::Admin,
            "technician" => Role::Technician,
            _ => Role::Approver,
        }
    }
}

/// A token as stored (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub id: i64,
    pub role: Role,
    /// The one tenant it is for; `None` for every tenant.
    pub tenant: Option<String>,
    /// The person it acts as, for approvals and answers.
    pub person: Option<String>,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    role: String,
    tenant: Option<String>,
    person: Option<String>,
    name: String,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<TokenRow> for Token {
    fn from(r: TokenRow) -> Token {
        Token {
            id: r.id,
            role: Role::parse(&r.role),
            tenant: r.tenant,
            person: r.person,
            name: r.name,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// The prefix every secret starts with, so a leaked one is recognisable in a scan.
const SECRET_PREFIX: &str = "cdk_";

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub role: Role,
    pub tenant: Option<&'a str>,
    pub person: Option<&'a str>,
    pub name: &'a str,
}

impl Store {
    /// Create a token; returns it with its secret, which is not stored and cannot be
    /// shown again.
    pub async fn create_token(&self, new: NewToken<'_>) -> anyhow::Result<(Token, String)> {
        if let Some(tenant) = new.tenant {
            self.tenant(tenant).await?;
        }
        let person = new.person.map(|p| p.trim().to_ascii_lowercase());
        if let Some(p) = &person
            && !p.contains('@')
        {
            anyhow::bail!("--person must be an email address (the person the token acts as)");
        }
        if new.role == Role::Approver && (new.tenant.is_none() || person.is_none()) {
            anyhow::bail!(
                "an approver token is for one tenant and one person: give --tenant and --person"
            );
        }
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let row: TokenRow = sqlx::query_as(
            "INSERT INTO api_tokens (role, tenant, person, name, secret_hash) VALUES (?, ?, ?, ?, ?)
             RETURNING id, role, tenant, person, name, created_at, revoked_at",
        )
        .bind(new.role.name())
        .bind(new.tenant)
        .bind(&person)
        .bind(new.name)
        .bind(secret_hash(&secret))
        .fetch_one(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "token": row.id, "role": new.role, "person": person, "name": new.name,
        });
        audit::append(
            &mut tx,
            &[self.audit_entry(new.tenant, "token.create", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok((row.into(), secret))
    }

    /// The live token whose secret this is, if any.
    pub async fn token_by_secret(&self, secret: &str) -> anyhow::Result<Option<Token>> {
        let row: Option<TokenRow> = self.reader.read(|conn| {
            conn.prepare_cached(
                "SELECT id, role, tenant, person, name, created_at, revoked_at FROM api_tokens
                 WHERE secret_hash = ? AND revoked_at IS NULL",
            )?
            .query_row([secret_hash(secret)], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    tenant: r.get(2)?,
                    person: r.get(3)?,
                    name: r.get(4)?,
                    created_at: r.get(5)?,
                    revoked_at: r.get(6)?,
                })
            })
            .optional()
        })?;
        Ok(row.map(Token::from))
    }

    /// Every token, newest first, revoked ones included.
    pub async fn tokens(&self) -> anyhow::Result<Vec<Token>> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, role, tenant, person, name, created_at, revoked_at FROM api_tokens
             ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Token::from).collect())
    }

    /// Revoke a token: requests with it are refused from now on.
    pub async fn revoke_token(&self, id: i64) -> anyhow::Result<Token> {
        let mut tx = crate::store::begin_write(&self.pool).await?;
        let row: Option<TokenRow> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ? AND revoked_at IS NULL
             RETURNING id, role, tenant, person, name, created_at, revoked_at",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(NotFound {
                what: "live token",
                id: id.to_string(),
                hint: "; `capdesk token list` shows the tokens",
            }
            .into());
        };
        let detail = serde_json::json!({ "token": id, "name": row.name });
        audit::append(
            &mut tx,
            &[self.audit_entry(row.tenant.as_deref(), "token.revoke", detail)],
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// This handle, naming `actor` in the audit entries of the changes made through it
    /// (an API token rather than the command line's user).
    pub fn acting_as(&self, actor: String) -> Store {
        Store {
            actor,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_is_returned_once_and_found_only_while_live() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.add_tenant("acme", "Acme").await.unwrap();
        let (token, secret) = store
            .create_token(NewToken {
                role: Role::Approver,
                tenant: Some("acme"),
                person: Some("Max@Acme.test"),
                name: "max's phone",
            })
            .await
            .unwrap();
        assert!(secret.starts_with("cdk_") && secret.len() == 68);
        assert_eq!(token.person.as_deref(), Some("max@acme.test"));
        let found = store.token_by_secret(&secret).await.unwrap().unwrap();
        assert_eq!(found.id, token.id);
        assert!(store.token_by_secret("cdk_wrong").await.unwrap().is_none());
        let stored: Vec<(String,)> = sqlx::query_as("SELECT secret_hash FROM api_tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(
            !stored[0].0.contains(&secret[4..]),
            "the secret itself is not stored"
        );
        store.revoke_token(token.id).await.unwrap();
        assert!(store.token_by_secret(&secret).await.unwrap().is_none());
        assert!(store.revoke_token(token.id).await.is_err());
    }

    #[tokio::test]
    async fn an_approver_token_needs_a_tenant_and_a_person() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let err = store
            .create_token(NewToken {
                role: Role::Approver,
                tenant: None,
                person: Some("max@acme.test"),
                name: "x",
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--tenant and --person"), "{err}");
    }
}
