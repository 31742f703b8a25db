//! The embedded default connectors: a per-tenant directory, a ticket store and a chat
//! outbox, persisted in the data dir's SQLite file. They behave like the real systems
//! where it matters to a playbook: a locked user cannot sign in until unlocked, an
//! unknown user is `not-found`, adding an existing member changes nothing and is not an
//! error, and every change is appended to the user's event log.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rand::RngExt as _;
use rusqlite::OptionalExtension as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::{
    Chat, ConnectorError, DirectoryUser, Effect, Idp, MailboxRight, NewTicket, Note, Person, Psa,
    Secret, Ticket, TicketRecord, TicketStatus, Visibility,
};
use crate::capability::HostFunction;
use crate::store::{Reader, Store, Writer, parse_ticket_id, ticket_label};

/// Failed sign-ins in a row that lock an account, as a directory's lockout policy would.
pub const LOCKOUT_THRESHOLD: i64 = 5;

/// The sandbox systems of one tenant.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pool: SqlitePool,
    /// Changes a run makes go through the store's writer (see `store::writer`).
    writer: Writer,
    /// Look-ups run in place (see `store::reader`).
    reader: Reader,
    tenant: String,
    /// The tenant's outages (`capdesk sandbox fail`), read once per handle: a run
    /// sees the systems as they were when it started.
    faults: Arc<tokio::sync::OnceCell<Vec<(String, String)>>>,
}

/// A user to create in the sandbox directory (the API takes it as JSON; only `email`
/// is required).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub locked: bool,
    pub disabled: bool,
    pub privileged: bool,
    pub manager: Option<String>,
    pub department: Option<String>,
    pub password: Option<String>,
    pub groups: Vec<String>,
    pub licenses: Vec<String>,
    pub mfa_methods: Vec<String>,
    /// Contact methods for identity challenges (`sms:+15550142`, `email:…`, `voice:…`).
    pub contacts: Vec<String>,
}

/// One change the sandbox directory made.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DirectoryEvent {
    pub id: i64,
    pub action: String,
    pub detail: String,
    pub at: String,
}

/// A user with their event log, as `capdesk sandbox user show` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    #[serde(flatten)]
    pub user: DirectoryUser,
    pub must_change_password: bool,
    pub active_sessions: i64,
    pub events: Vec<DirectoryEvent>,
}

/// A message in the chat outbox.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub recipient: String,
    pub text: String,
    pub at: String,
}

/// What a sign-in attempt against the sandbox directory gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignIn {
    /// Signed in.
    Ok,
    /// Signed in with a temporary password: the user must choose a new one now.
    MustChangePassword,
    BadPassword,
    Locked,
    Disabled,
    NoPasswordSet,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    email: String,
    name: String,
    enabled: bool,
    locked: bool,
    privileged: bool,
    manager: Option<String>,
    department: Option<String>,
    password_hash: Option<String>,
    must_change_password: bool,
    failed_signins: i64,
    sessions: i64,
}

fn db(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Upstream(format!("sandbox database: {e}"))
}

/// A user of a tenant by email, as a `UserRow` (its columns in its order).
const USER_BY_EMAIL: &str = "SELECT email, name, enabled, locked, privileged, manager,
    department, password_hash, must_change_password, failed_signins, sessions
    FROM sandbox_users WHERE tenant = ? AND email = ?";

fn no_user(email: &str) -> ConnectorError {
    ConnectorError::NotFound(format!("no user {email} in the directory"))
}

impl UserRow {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            email: r.get(0)?,
            name: r.get(1)?,
            enabled: r.get(2)?,
            locked: r.get(3)?,
            privileged: r.get(4)?,
            manager: r.get(5)?,
            department: r.get(6)?,
            password_hash: r.get(7)?,
            must_change_password: r.get(8)?,
            failed_signins: r.get(9)?,
            sessions: r.get(10)?,
        })
    }
}

/// What a change on the writer's connection comes to: the database failed (outer), or
/// the connected system refused it (inner).
type Change<T> = anyhow::Result<Result<T, ConnectorError>>;

/// A user of `tenant`, if there is one, read on a reader's or the writer's connection.
fn user_row(
    conn: &rusqlite::Connection,
    tenant: &str,
    email: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(USER_BY_EMAIL)?
        .query_row([tenant, email], UserRow::from_row)
        .optional()
}

/// A user of `tenant` read on the writer's connection, inside its transaction.
fn user_on(conn: &rusqlite::Connection, tenant: &str, email: &str) -> Change<UserRow> {
    Ok(user_row(conn, tenant, email)?.ok_or_else(|| no_user(email)))
}

/// Log a change of the directory, on the writer's connection.
fn event_on(
    conn: &rusqlite::Connection,
    tenant: &str,
    email: &str,
    action: &str,
    detail: &str,
) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sandbox_events (tenant, email, action, detail) VALUES (?, ?, ?, ?)",
    )?
    .execute([tenant, email, action, detail])?;
    Ok(())
}

fn hash_password(salt: &str, password: &str) -> String {
    let digest = Sha256::digest(format!("{salt}:{password}").as_bytes());
    format!("{salt}${}", hex::encode(digest))
}

fn check_password(stored: &str, password: &str) -> bool {
    stored
        .split_once('$')
        .is_some_and(|(salt, _)| hash_password(salt, password) == stored)
}

fn new_salt() -> String {
    hex::encode(rand::rng().random::<[u8; 8]>())
}

fn normalize_email(email: &str) -> Result<String, ConnectorError> {
    let e = email.trim().to_ascii_lowercase();
    match e.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !e.contains(' ') => {
            Ok(e)
        }
        _ => Err(ConnectorError::Invalid(format!(
            "`{email}` is not an email address"
        ))),
    }
}

/// A contact method is `sms:`, `voice:` or `email:` and an address.
fn check_contact(contact: &str) -> Result<(), ConnectorError> {
    let ok = match contact.split_once(':') {
        Some(("sms" | "voice", number)) => {
            number.len() >= 6
                && number
                    .trim_start_matches('+')
                    .chars()
                    .all(|c| c.is_ascii_digit())
        }
        Some(("email", address)) => normalize_email(address).is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::Invalid(format!(
            "`{contact}` is not a contact method; write sms:+15550142, voice:+15550142 or email:name@example.com"
        )))
    }
}

impl Sandbox {
    pub fn new(store: &Store, tenant: &str) -> Sandbox {
        Sandbox {
            pool: store.pool().clone(),
            writer: store.writer().clone(),
            reader: store.reader().clone(),
            tenant: tenant.to_string(),
            faults: Arc::default(),
        }
    }

    /// Make every call to `function` (a host function name, or `*` for all) fail as an
    /// upstream outage with `message`, until [`Sandbox::heal`].
    pub async fn fail(&self, function: &str, message: &str) -> Result<(), ConnectorError> {
        if function != "*" && !HostFunction::ALL.iter().any(|f| f.name() == function) {
            let known: Vec<&str> = HostFunction::ALL.iter().map(|f| f.name()).collect();
            return Err(ConnectorError::Invalid(format!(
                "`{function}` is not a host function; use `*` or one of: {}",
                known.join(", ")
            )));
        }
        crate::store::write_one(
            &self.pool,
            sqlx::query(
                "INSERT INTO sandbox_faults (tenant, function, message) VALUES (?, ?, ?)
             ON CONFLICT (tenant, function) DO UPDATE SET message = excluded.message",
            )
            .bind(&self.tenant)
            .bind(function)
            .bind(message),
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    /// End the outage of `function`, or every outage of the tenant with `None`.
    pub async fn heal(&self, function: Option<&str>) -> Result<u64, ConnectorError> {
        let healed = crate::store::write_one(
            &self.pool,
            sqlx::query(
                "DELETE FROM sandbox_faults WHERE tenant = ? AND (? IS NULL OR function = ?)",
            )
            .bind(&self.tenant)
            .bind(function)
            .bind(function),
        )
        .await
        .map_err(db)?;
        Ok(healed.rows_affected())
    }

    /// Fail as the connected system would if `function` has an outage.
    async fn check_fault(&self, function: HostFunction) -> Result<(), ConnectorError> {
        let faults = self
            .faults
            .get_or_try_init(|| async {
                self.reader
                    .read(|conn| {
                        conn.prepare_cached(
                            "SELECT function, message FROM sandbox_faults WHERE tenant = ?",
                        )?
                        .query_map([&self.tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                    })
                    .map_err(db)
            })
            .await?;
        match faults
            .iter()
            .find(|(f, _)| f == "*" || f == function.name())
        {
            Some((_, message)) => Err(ConnectorError::Upstream(format!(
                "the sandbox {} did not answer {}: {message}",
                function.interface(),
                function.name()
            ))),
            None => Ok(()),
        }
    }

    // ---- administration (the CLI's `sandbox` commands) ------------------------------

    /// Create a user. Fails if the email is taken in this tenant.
    pub async fn add_user(&self, u: &NewUser) -> Result<DirectoryUser, ConnectorError> {
        let email = normalize_email(&u.email)?;
        let manager = u.manager.as_deref().map(normalize_email).transpose()?;
        let name = if u.name.trim().is_empty() {
            email.split('@').next().unwrap_or_default().to_string()
        } else {
            u.name.trim().to_string()
        };
        let password_hash = u.password.as_deref().map(|p| hash_password(&new_salt(), p));
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO sandbox_users (tenant, email, name, enabled, locked, privileged, manager, department, password_hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&self.tenant)
        .bind(&email)
        .bind(&name)
        .bind(!u.disabled)
        .bind(u.locked)
        .bind(u.privileged)
        .bind(&manager)
        .bind(&u.department)
        .bind(&password_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 0 {
            return Err(ConnectorError::Invalid(format!(
                "user {email} already exists in tenant {}",
                self.tenant
            )));
        }
        for contact in &u.contacts {
            check_contact(contact)?;
        }
        for (kind, values) in [
            ("group", &u.groups),
            ("license", &u.licenses),
            ("mfa", &u.mfa_methods),
            ("contact", &u.contacts),
        ] {
            for v in values {
                self.insert_attr(&mut tx, &email, kind, v).await?;
            }
        }
        self.event(&mut tx, &email, "created", "").await?;
        tx.commit().await.map_err(db)?;
        self.find_user(&email).await
    }

    /// A user with their event log.
    pub async fn user_report(&self, email: &str) -> Result<UserReport, ConnectorError> {
        let email = normalize_email(email)?;
        let row = self.row(&email).await?;
        let user = self.find_user(&email).await?;
        let events = sqlx::query_as(
            "SELECT id, action, detail, at FROM sandbox_events WHERE tenant = ? AND email = ? ORDER BY id",
        )
        .bind(&self.tenant)
        .bind(&email)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(UserReport {
            user,
            must_change_password: row.must_change_password,
            active_sessions: row.sessions,
            events,
        })
    }

    pub async fn users(&self) -> Result<Vec<DirectoryUser>, ConnectorError> {
        let emails: Vec<(String,)> =
            sqlx::query_as("SELECT email FROM sandbox_users WHERE tenant = ? ORDER BY email")
                .bind(&self.tenant)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let mut users = Vec::with_capacity(emails.len());
        for (email,) in emails {
            users.push(self.find_user(&email).await?);
        }
        Ok(users)
    }

    /// Messages sent to people of this tenant, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxMessage>, ConnectorError> {
        sqlx::query_as(
            "SELECT id, recipient, text, at FROM sandbox_outbox WHERE tenant = ? ORDER BY id",
        )
        .bind(&self.tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    /// Try to sign in, as the user would at the login page. Failed attempts count
    /// towards a lockout; a locked or disabled account is refused whatever the password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, ConnectorError> {
        let email = normalize_email(email)?;
        let mut tx = crate::store::begin_write(&self.pool).await.map_err(db)?;
        let row = self.row_in(&mut tx, &email).await?;
        let outcome = if !row.enabled {
            SignIn::Disabled
        } else if row.locked {
            SignIn::Locked
        } else if let Some(hash) = row.password_hash.as_deref() {
            if check_password(hash, password) {
                sqlx::query("UPDATE sandbox_users SET failed_signins = 0, sessions = sessions + 1 WHERE tenant = ? AND email = ?")
                    .bind(&self.tenant)
                    .bind(&email)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                self.event(&mut tx, &email, "signed-in", "").await?;
                if row.must_change_password {
                    SignIn::MustChangePassword
                } else {
                    SignIn::Ok
                }
            } else {
                let failed = row.failed_signins + 1;
                let lock = failed >= LOCKOUT_THRESHOLD;
                sqlx::query("UPDATE sandbox_users SET failed_signins = ?, locked = ? WHERE tenant = ? AND email = ?")
                    .bind(failed)
                    .bind(lock)
                    .bind(&self.tenant)
                    .bind(&email)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                self.event(
                    &mut tx,
                    &email,
                    "sign-in-failed",
                    &format!("attempt {failed}"),
                )
                .await?;
                if lock {
                    self.event(&mut tx, &email, "locked", "too many failed sign-ins")
                        .await?;
                }
                SignIn::BadPassword
            }
        } else {
            SignIn::NoPasswordSet
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    // ---- helpers ---------------------------------------------------------------------

    async fn row(&self, email: &str) -> Result<UserRow, ConnectorError> {
        self.reader
            .read(|conn| user_row(conn, &self.tenant, email))
            .map_err(db)?
            .ok_or_else(|| no_user(email))
    }

    /// A user read inside an sqlx write transaction (the administration commands').
    async fn row_in(
        &self,
        tx: &mut sqlx::SqliteConnection,
        email: &str,
    ) -> Result<UserRow, ConnectorError> {
        sqlx::query_as(USER_BY_EMAIL)
            .bind(&self.tenant)
            .bind(email)
            .fetch_optional(tx)
            .await
            .map_err(db)?
            .ok_or_else(|| no_user(email))
    }

    async fn event(
        &self,
        tx: &mut sqlx::SqliteConnection,
        email: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), ConnectorError> {
        sqlx::query(
            "INSERT INTO sandbox_events (tenant, email, action, detail) VALUES (?, ?, ?, ?)",
        )
        .bind(&self.tenant)
        .bind(email)
        .bind(action)
        .bind(detail)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_attr(
        &self,
        tx: &mut sqlx::SqliteConnection,
        email: &str,
        kind: &str,
        value: &str,
    ) -> Result<bool, ConnectorError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ConnectorError::Invalid(format!("an empty {kind} name")));
        }
        let r = sqlx::query(
            "INSERT INTO sandbox_user_attrs (tenant, email, kind, value) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&self.tenant)
        .bind(email)
        .bind(kind)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    /// A user's set-valued attributes by kind, each sorted, in one query.
    async fn attrs(&self, email: &str) -> Result<HashMap<String, Vec<String>>, ConnectorError> {
        let rows: Vec<(String, String)> = self
            .reader
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT kind, value FROM sandbox_user_attrs WHERE tenant = ? AND email = ?
                     ORDER BY kind, value",
                )?
                .query_map([&self.tenant, email], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
            })
            .map_err(db)?;
        let mut by_kind: HashMap<String, Vec<String>> = HashMap::new();
        for (kind, value) in rows {
            by_kind.entry(kind).or_default().push(value);
        }
        Ok(by_kind)
    }

    /// A mailbox is a directory account (a user's, or a shared mailbox's).
    async fn mailbox_exists(&self, mailbox: &str) -> Result<(), ConnectorError> {
        let mailbox = normalize_email(mailbox)?;
        match self.row(&mailbox).await {
            Err(ConnectorError::NotFound(_)) => Err(ConnectorError::NotFound(format!(
                "no mailbox {mailbox} in the directory"
            ))),
            other => other.map(drop),
        }
    }

    /// Add or remove one set-valued attribute of an existing user, logging the change.
    async fn change_attr(
        &self,
        email: &str,
        kind: &'static str,
        value: &str,
        add: bool,
        action: &'static str,
    ) -> Result<Effect, ConnectorError> {
        let email = normalize_email(email)?;
        let value = value.trim().to_string();
        if add && value.is_empty() {
            return Err(ConnectorError::Invalid(format!("an empty {kind} name")));
        }
        let tenant = self.tenant.clone();
        self.change(move |conn| {
            if let Err(e) = user_on(conn, &tenant, &email)? {
                return Ok(Err(e));
            }
            let sql = if add {
                "INSERT INTO sandbox_user_attrs (tenant, email, kind, value) VALUES (?, ?, ?, ?)
                 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM sandbox_user_attrs WHERE tenant = ? AND email = ? AND kind = ? AND value = ?"
            };
            let changed = conn.prepare_cached(sql)?.execute([&tenant, &email, kind, &value])? > 0;
            if !changed {
                return Ok(Ok(Effect::Unchanged));
            }
            event_on(conn, &tenant, &email, action, &value)?;
            Ok(Ok(Effect::Changed))
        })
        .await
    }

    /// Set boolean/integer columns of a user when they differ, logging the change.
    async fn update_user(
        &self,
        email: &str,
        needs_change: fn(&UserRow) -> bool,
        set_sql: &'static str,
        action: &'static str,
    ) -> Result<Effect, ConnectorError> {
        let email = normalize_email(email)?;
        let tenant = self.tenant.clone();
        self.change(move |conn| {
            let row = match user_on(conn, &tenant, &email)? {
                Ok(row) => row,
                Err(e) => return Ok(Err(e)),
            };
            if !needs_change(&row) {
                return Ok(Ok(Effect::Unchanged));
            }
            conn.prepare_cached(&format!(
                "UPDATE sandbox_users SET {set_sql} WHERE tenant = ? AND email = ?"
            ))?
            .execute([&tenant, &email])?;
            event_on(conn, &tenant, &email, action, "")?;
            Ok(Ok(Effect::Changed))
        })
        .await
    }

    /// Make a change on the store's writer, as one transaction.
    async fn change<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Change<T> + Send + 'static,
    ) -> Result<T, ConnectorError> {
        self.writer.write(work).await.map_err(db)?
    }
}

#[async_trait]
impl Idp for Sandbox {
    async fn find_user(&self, email: &str) -> Result<DirectoryUser, ConnectorError> {
        self.check_fault(HostFunction::FindUser).await?;
        let email = normalize_email(email)?;
        let row = self.row(&email).await?;
        let mut attrs = self.attrs(&email).await?;
        let mut take = |kind: &str| attrs.remove(kind).unwrap_or_default();
        Ok(DirectoryUser {
            groups: take("group"),
            licenses: take("license"),
            mfa_methods: take("mfa"),
            mailboxes: take("mailbox"),
            email: row.email,
            name: row.name,
            enabled: row.enabled,
            locked: row.locked,
            privileged: row.privileged,
            manager: row.manager,
            department: row.department,
        })
    }

    async fn contact_methods(&self, email: &str) -> Result<Vec<String>, ConnectorError> {
        let email = normalize_email(email)?;
        self.row(&email).await?;
        Ok(self
            .attrs(&email)
            .await?
            .remove("contact")
            .unwrap_or_default())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<String>, ConnectorError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT email FROM sandbox_user_attrs WHERE tenant = ? AND kind = 'group' AND value = ? ORDER BY email",
        )
        .bind(&self.tenant)
        .bind(group)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    /// Every directory change but a password reset leaves the same state when repeated
    /// (the second call reports `unchanged` and logs nothing).
    fn is_idempotent(&self, function: HostFunction) -> bool {
        function != HostFunction::ResetPassword
    }

    async fn unlock_account(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::UnlockAccount).await?;
        self.update_user(
            email,
            |u| u.locked,
            "locked = 0, failed_signins = 0",
            "unlocked",
        )
        .await
    }

    async fn set_temporary_password(
        &self,
        email: &str,
        password: &Secret,
    ) -> Result<(), ConnectorError> {
        self.check_fault(HostFunction::ResetPassword).await?;
        let email = normalize_email(email)?;
        let hash = hash_password(&new_salt(), password.expose());
        let tenant = self.tenant.clone();
        self.change(move |conn| {
            let row = match user_on(conn, &tenant, &email)? {
                Ok(row) => row,
                Err(e) => return Ok(Err(e)),
            };
            if !row.enabled {
                return Ok(Err(ConnectorError::Invalid(format!(
                    "the account {email} is disabled; its password cannot be reset"
                ))));
            }
            conn.prepare_cached(
                "UPDATE sandbox_users SET password_hash = ?, must_change_password = 1,
                   failed_signins = 0
                 WHERE tenant = ? AND email = ?",
            )?
            .execute([&hash, &tenant, &email])?;
            event_on(
                conn,
                &tenant,
                &email,
                "password-reset",
                "temporary password, change at next sign-in",
            )?;
            Ok(Ok(()))
        })
        .await
    }

    async fn require_mfa_reregistration(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::RequireMfaReregistration)
            .await?;
        let email = normalize_email(email)?;
        let tenant = self.tenant.clone();
        self.change(move |conn| {
            if let Err(e) = user_on(conn, &tenant, &email)? {
                return Ok(Err(e));
            }
            let removed = conn
                .prepare_cached(
                    "DELETE FROM sandbox_user_attrs WHERE tenant = ? AND email = ? AND kind = 'mfa'",
                )?
                .execute([&tenant, &email])?;
            if removed == 0 {
                return Ok(Ok(Effect::Unchanged));
            }
            event_on(conn, &tenant, &email, "mfa-reset", &format!("{removed} method(s) removed"))?;
            Ok(Ok(Effect::Changed))
        })
        .await
    }

    async fn revoke_sessions(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::RevokeSessions).await?;
        self.update_user(
            email,
            |u| u.sessions > 0,
            "sessions = 0",
            "sessions-revoked",
        )
        .await
    }

    async fn add_group_member(&self, group: &str, email: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::AddGroupMember).await?;
        self.change_attr(email, "group", group, true, "group-added")
            .await
    }

    async fn remove_group_member(
        &self,
        group: &str,
        email: &str,
    ) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::RemoveGroupMember).await?;
        self.change_attr(email, "group", group, false, "group-removed")
            .await
    }

    async fn assign_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::AssignLicense).await?;
        self.change_attr(email, "license", sku, true, "license-assigned")
            .await
    }

    async fn remove_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::RemoveLicense).await?;
        self.change_attr(email, "license", sku, false, "license-removed")
            .await
    }

    async fn grant_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::GrantMailboxAccess).await?;
        self.mailbox_exists(mailbox).await?;
        let value = format!("{}:{}", normalize_email(mailbox)?, right.name());
        self.change_attr(email, "mailbox", &value, true, "mailbox-granted")
            .await
    }

    async fn remove_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError> {
        self.check_fault(HostFunction::RemoveMailboxAccess).await?;
        self.mailbox_exists(mailbox).await?;
        let value = format!("{}:{}", normalize_email(mailbox)?, right.name());
        self.change_attr(email, "mailbox", &value, false, "mailbox-removed")
            .await
    }
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: i64,
    subject: String,
    body: String,
    requester_email: String,
    requester_name: String,
    channel: String,
    verified: bool,
    fields: String,
    status: String,
    parent: Option<i64>,
}

impl Sandbox {
    fn parse_id(&self, id: &str) -> Result<i64, ConnectorError> {
        parse_ticket_id(id).map_err(|e| ConnectorError::Invalid(e.to_string()))
    }

    async fn ticket_row(&self, id: i64) -> Result<TicketRow, ConnectorError> {
        self.reader
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT id, subject, body, requester_email, requester_name, channel, verified,
                       fields, status, parent
                     FROM tickets WHERE id = ? AND tenant = ?",
                )?
                .query_row(rusqlite::params![id, self.tenant], |r| {
                    Ok(TicketRow {
                        id: r.get(0)?,
                        subject: r.get(1)?,
                        body: r.get(2)?,
                        requester_email: r.get(3)?,
                        requester_name: r.get(4)?,
                        channel: r.get(5)?,
                        verified: r.get(6)?,
                        fields: r.get(7)?,
                        status: r.get(8)?,
                        parent: r.get(9)?,
                    })
                })
                .optional()
            })
            .map_err(db)?
            .ok_or_else(|| self.no_ticket(id))
    }

    fn no_ticket(&self, id: i64) -> ConnectorError {
        ConnectorError::NotFound(format!(
            "no ticket {} for tenant {}",
            ticket_label(id),
            self.tenant
        ))
    }

    /// Tickets of this tenant, newest first.
    pub async fn tickets(&self, limit: i64) -> Result<Vec<TicketRecord>, ConnectorError> {
        let ids: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM tickets WHERE tenant = ? ORDER BY id DESC LIMIT ?")
                .bind(&self.tenant)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let mut out = Vec::new();
        for (id,) in ids {
            out.push(self.get_ticket(&ticket_label(id)).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Psa for Sandbox {
    async fn create_ticket(&self, t: &NewTicket) -> Result<Ticket, ConnectorError> {
        let requester = normalize_email(&t.requester.email)?;
        let fields =
            serde_json::to_string(&t.fields).map_err(|e| ConnectorError::Invalid(e.to_string()))?;
        let (tenant, t2, email) = (self.tenant.clone(), t.clone(), requester.clone());
        let id: i64 = self
            .writer
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "INSERT INTO tickets (tenant, subject, body, requester_email, requester_name,
                           channel, verified, fields)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    )?
                    .query_row(
                        rusqlite::params![
                            tenant,
                            t2.subject,
                            t2.body,
                            email,
                            t2.requester.name,
                            t2.channel,
                            t2.requester_verified,
                            fields
                        ],
                        |r| r.get(0),
                    )?)
            })
            .await
            .map_err(db)?;
        let mut details = t.clone();
        details.requester.email = requester;
        Ok(Ticket {
            id: ticket_label(id),
            details,
        })
    }

    async fn get_ticket(&self, id: &str) -> Result<TicketRecord, ConnectorError> {
        self.check_fault(HostFunction::GetTicket).await?;
        let n = self.parse_id(id)?;
        let row = self.ticket_row(n).await?;
        let notes: Vec<(String, String, String, String)> = self
            .reader
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT visibility, author, text, created_at FROM ticket_notes
                     WHERE ticket = ? ORDER BY id",
                )?
                .query_map([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
            })
            .map_err(db)?;
        Ok(TicketRecord {
            ticket: Ticket {
                id: ticket_label(row.id),
                details: NewTicket {
                    subject: row.subject,
                    body: row.body,
                    requester: Person {
                        email: row.requester_email,
                        name: row.requester_name,
                    },
                    channel: row.channel,
                    requester_verified: row.verified,
                    fields: serde_json::from_str(&row.fields).unwrap_or_default(),
                },
            },
            status: TicketStatus::parse(&row.status).unwrap_or(TicketStatus::New),
            notes: notes
                .into_iter()
                .map(|(v, author, text, created_at)| Note {
                    visibility: if v == "public" {
                        Visibility::Public
                    } else {
                        Visibility::Internal
                    },
                    author,
                    text,
                    created_at,
                })
                .collect(),
            parent: row.parent.map(ticket_label),
        })
    }

    async fn add_note(
        &self,
        id: &str,
        text: &str,
        visibility: Visibility,
        author: &str,
    ) -> Result<(), ConnectorError> {
        self.check_fault(HostFunction::AddNote).await?;
        let n = self.parse_id(id)?;
        if text.trim().is_empty() {
            return Err(ConnectorError::Invalid("a note needs some text".into()));
        }
        let (tenant, text, author) = (self.tenant.clone(), text.to_string(), author.to_string());
        let added = self
            .writer
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "INSERT INTO ticket_notes (ticket, visibility, author, text)
                         SELECT id, ?, ?, ? FROM tickets WHERE id = ? AND tenant = ?",
                    )?
                    .execute(rusqlite::params![
                        visibility.name(),
                        author,
                        text,
                        n,
                        tenant
                    ])?)
            })
            .await
            .map_err(db)?;
        if added == 0 {
            return Err(self.no_ticket(n));
        }
        Ok(())
    }

    /// Setting a status or a parent again leaves the ticket as it was; a note is added
    /// twice.
    fn is_idempotent(&self, function: HostFunction) -> bool {
        matches!(
            function,
            HostFunction::SetStatus | HostFunction::LinkToParent
        )
    }

    async fn set_status(&self, id: &str, status: TicketStatus) -> Result<(), ConnectorError> {
        self.check_fault(HostFunction::SetStatus).await?;
        let n = self.parse_id(id)?;
        let tenant = self.tenant.clone();
        let changed = self
            .writer
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "UPDATE tickets SET status = ?,
                           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                         WHERE id = ? AND tenant = ?",
                    )?
                    .execute(rusqlite::params![status.name(), n, tenant])?)
            })
            .await
            .map_err(db)?;
        if changed == 0 {
            return Err(ConnectorError::NotFound(format!("no ticket {id}")));
        }
        Ok(())
    }

    async fn link_to_parent(&self, id: &str, parent: &str) -> Result<(), ConnectorError> {
        self.check_fault(HostFunction::LinkToParent).await?;
        let n = self.parse_id(id)?;
        let p = self.parse_id(parent)?;
        if n == p {
            return Err(ConnectorError::Invalid(
                "a ticket cannot be its own parent".into(),
            ));
        }
        self.ticket_row(p).await?;
        let r = crate::store::write_one(
            &self.pool,
            sqlx::query("UPDATE tickets SET parent = ? WHERE id = ? AND tenant = ?")
                .bind(p)
                .bind(n)
                .bind(&self.tenant),
        )
        .await
        .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(ConnectorError::NotFound(format!("no ticket {id}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Chat for Sandbox {
    async fn send(&self, to: &str, text: &str) -> Result<(), ConnectorError> {
        self.check_fault(HostFunction::ChatSend).await?;
        // A person by email, or (for one-time codes) a contact method: the sandbox chat
        // stands in for the SMS and personal-email gateways too.
        let to = if to.contains(':') {
            check_contact(to)?;
            to.trim().to_string()
        } else {
            normalize_email(to)?
        };
        if text.trim().is_empty() {
            return Err(ConnectorError::Invalid("a message needs some text".into()));
        }
        let (tenant, text) = (self.tenant.clone(), text.to_string());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO sandbox_outbox (tenant, recipient, text) VALUES (?, ?, ?)",
                )?
                .execute([tenant, to, text])?;
                Ok(())
            })
            .await
            .map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn sandbox() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.add_tenant("acme", "Acme").await.unwrap();
        let sandbox = Sandbox::new(&store, "acme");
        (dir, sandbox)
    }

    fn ann() -> NewUser {
        NewUser {
            email: "Ann@Acme.test".into(),
            password: Some("Correct-horse-1".into()),
            groups: vec!["staff".into()],
            ..NewUser::default()
        }
    }

    #[tokio::test]
    async fn an_unknown_user_is_not_found() {
        let (_d, s) = sandbox().await;
        assert!(matches!(
            s.find_user("nobody@acme.test").await,
            Err(ConnectorError::NotFound(_))
        ));
        assert!(matches!(
            s.unlock_account("nobody@acme.test").await,
            Err(ConnectorError::NotFound(_))
        ));
        assert!(matches!(
            s.find_user("not an email").await,
            Err(ConnectorError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn adding_an_existing_member_changes_nothing_and_logs_nothing() {
        let (_d, s) = sandbox().await;
        s.add_user(&ann()).await.unwrap();
        assert_eq!(
            s.add_group_member("staff", "ann@acme.test").await.unwrap(),
            Effect::Unchanged
        );
        assert_eq!(
            s.add_group_member("vpn", "ann@acme.test").await.unwrap(),
            Effect::Changed
        );
        let report = s.user_report("ann@acme.test").await.unwrap();
        assert_eq!(report.user.groups, ["staff", "vpn"]);
        let actions: Vec<&str> = report.events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["created", "group-added"]);
    }

    #[tokio::test]
    async fn a_locked_user_cannot_sign_in_until_unlocked() {
        let (_d, s) = sandbox().await;
        s.add_user(&ann()).await.unwrap();
        assert_eq!(
            s.sign_in("ann@acme.test", "Correct-horse-1").await.unwrap(),
            SignIn::Ok
        );
        for _ in 0..LOCKOUT_THRESHOLD {
            assert_eq!(
                s.sign_in("ann@acme.test", "guess").await.unwrap(),
                SignIn::BadPassword
            );
        }
        assert!(s.find_user("ann@acme.test").await.unwrap().locked);
        assert_eq!(
            s.sign_in("ann@acme.test", "Correct-horse-1").await.unwrap(),
            SignIn::Locked
        );
        assert_eq!(
            s.unlock_account("ann@acme.test").await.unwrap(),
            Effect::Changed
        );
        assert_eq!(
            s.unlock_account("ann@acme.test").await.unwrap(),
            Effect::Unchanged
        );
        assert_eq!(
            s.sign_in("ann@acme.test", "Correct-horse-1").await.unwrap(),
            SignIn::Ok
        );
    }

    #[tokio::test]
    async fn a_temporary_password_must_be_changed_and_a_disabled_account_refuses_it() {
        let (_d, s) = sandbox().await;
        s.add_user(&ann()).await.unwrap();
        s.set_temporary_password("ann@acme.test", &Secret::new("Temp-pass-9".into()))
            .await
            .unwrap();
        assert_eq!(
            s.sign_in("ann@acme.test", "Correct-horse-1").await.unwrap(),
            SignIn::BadPassword
        );
        assert_eq!(
            s.sign_in("ann@acme.test", "Temp-pass-9").await.unwrap(),
            SignIn::MustChangePassword
        );
        s.add_user(&NewUser {
            email: "gone@acme.test".into(),
            disabled: true,
            ..NewUser::default()
        })
        .await
        .unwrap();
        let err = s
            .set_temporary_password("gone@acme.test", &Secret::new("x".into()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disabled"), "{err}");
    }

    #[tokio::test]
    async fn tenants_do_not_see_each_other() {
        let (_d, s) = sandbox().await;
        s.add_user(&ann()).await.unwrap();
        let other = Sandbox {
            tenant: "globex".into(),
            faults: Arc::default(),
            ..s.clone()
        };
        assert!(matches!(
            other.find_user("ann@acme.test").await,
            Err(ConnectorError::NotFound(_))
        ));
        let t = s
            .create_ticket(&NewTicket {
                subject: "hi".into(),
                body: String::new(),
                requester: Person {
                    email: "ann@acme.test".into(),
                    name: String::new(),
                },
                channel: "cli".into(),
                requester_verified: false,
                fields: vec![],
            })
            .await
            .unwrap();
        assert!(matches!(
            other.get_ticket(&t.id).await,
            Err(ConnectorError::NotFound(_))
        ));
        assert!(other.set_status(&t.id, TicketStatus::Closed).await.is_err());
    }
}
