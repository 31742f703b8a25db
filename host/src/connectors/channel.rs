//! Which chat a tenant's people are reached on, and its configuration: the built-in
//! (sandbox) chat by default, or Slack or Microsoft Teams once configured. Owns the
//! configuration's shape, its checks, sealing its secrets (through `crate::vault`) and
//! [`TenantChat`], the `Chat` a run gets, which routes each call to the tenant's chat of
//! the moment. Vendor wire formats live in `slack` and `teams`; the rows in
//! `store::chat`. The secrets never leave the host: plugins, the journal, the audit log
//! and API answers see only the settings that are not secret.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::sandbox::Sandbox;
use super::slack::SlackChat;
use super::teams::TeamsChat;
use super::{ApprovalRequest, Chat, ConnectorError, Secret};
use crate::capability::HostFunction;
use crate::store::Store;
use crate::vault::Vault;

pub const SLACK: &str = "slack";
pub const TEAMS: &str = "teams";

/// Slack's Web API.
pub const DEFAULT_SLACK_API: &str = "https://slack.com/api";
/// Where the Bot Framework publishes the keys that sign its requests to bots.
pub const DEFAULT_OPENID_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// Where a bot gets its outbound token (client credentials).
pub const DEFAULT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token";

/// How long a chat vendor may take to answer one call.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client the chat connectors share.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("capdesk/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A tenant's Slack app.
#[derive(Debug)]
pub struct SlackConfig {
    /// The Web API's base URL, without a trailing slash.
    pub api_base: String,
    /// The bot token (`xoxb-…`).
    pub bot_token: Secret,
    /// The app's signing secret, which signs every request Slack sends capdesk.
    pub signing_secret: Secret,
}

/// A tenant's Teams bot (an Azure Bot registration).
#[derive(Debug)]
pub struct TeamsConfig {
    /// The bot's Microsoft App ID: the audience of inbound tokens.
    pub app_id: String,
    /// Its client secret, for the outbound token.
    pub app_password: Secret,
    /// The OpenID metadata whose `jwks_uri` lists the keys of inbound tokens.
    pub openid_url: String,
    /// The token endpoint of the outbound token.
    pub token_url: String,
}

#[derive(Serialize, Deserialize)]
struct TeamsSettings {
    app_id: String,
    openid_url: String,
    token_url: String,
}

#[derive(Serialize, Deserialize)]
struct TeamsSecrets {
    app_password: String,
}

#[derive(Serialize, Deserialize)]
struct SlackSettings {
    api_base: String,
}

#[derive(Serialize, Deserialize)]
struct SlackSecrets {
    bot_token: String,
    signing_secret: String,
}

/// What sealed values of a tenant's `kind` are bound to.
fn context(tenant: &str, kind: &str) -> String {
    format!("{tenant}/{kind}")
}

/// Check that `url` is a base URL capdesk may call: https, or http to this machine only
/// (a local test server). Returns it without a trailing slash.
pub fn check_base_url(what: &str, url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("the {what} `{url}` is not a URL ({e})"))?;
    let local = matches!(
        parsed.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => anyhow::bail!(
            "the {what} `{url}` must start with https:// (plain http is accepted only for \
             localhost, for a local test server)"
        ),
    }
    Ok(url.to_string())
}

fn check_secret(what: &str, value: &str) -> anyhow::Result<String> {
    let value = value.trim();
    if value.is_empty() {
        anyhow::bail!("the {what} is empty; copy it from the app's settings page");
    }
    if value.chars().any(char::is_whitespace) {
        anyhow::bail!(
            "the {what} contains spaces or line breaks inside it; copy it again, exactly"
        );
    }
    Ok(value.to_string())
}

/// Check a tenant's Slack configuration, seal its secrets, store it and make Slack the
/// tenant's chat.
pub async fn set_slack(
    store: &Store,
    vault: &Vault,
    tenant: &str,
    api_base: Option<&str>,
    bot_token: &str,
    signing_secret: &str,
) -> anyhow::Result<serde_json::Value> {
    store.tenant(tenant).await?;
    let api_base = check_base_url("Slack API base URL", api_base.unwrap_or(DEFAULT_SLACK_API))?;
    let bot_token = check_secret("Slack bot token", bot_token)?;
    if !bot_token.starts_with("xoxb-") {
        anyhow::bail!(
            "the Slack bot token must be the app's Bot User OAuth Token, which starts with \
             `xoxb-` (OAuth & Permissions in the app's settings)"
        );
    }
    let signing_secret = check_secret("Slack signing secret", signing_secret)?;
    let settings = serde_json::to_value(SlackSettings { api_base })?;
    let secrets = serde_json::to_vec(&SlackSecrets {
        bot_token,
        signing_secret,
    })?;
    let sealed = vault.seal(&context(tenant, SLACK), &secrets)?;
    store
        .put_chat_channel(tenant, SLACK, &settings, &sealed)
        .await?;
    Ok(json!({ "tenant": tenant, "chat": SLACK, "settings": settings }))
}

/// The tenant's Slack configuration, if it has one.
pub async fn slack_config(
    store: &Store,
    vault: &Vault,
    tenant: &str,
) -> anyhow::Result<Option<SlackConfig>> {
    let Some(row) = store.chat_channel(tenant, SLACK).await? else {
        return Ok(None);
    };
    let settings: SlackSettings = serde_json::from_str(&row.settings)?;
    let secrets: SlackSecrets =
        serde_json::from_slice(&vault.open(&context(tenant, SLACK), &row.sealed)?)?;
    Ok(Some(SlackConfig {
        api_base: settings.api_base,
        bot_token: Secret::new(secrets.bot_token),
        signing_secret: Secret::new(secrets.signing_secret),
    }))
}

/// Check a tenant's Teams bot configuration, seal its secret, store it and make Teams
/// the tenant's chat.
pub async fn set_teams(
    store: &Store,
    vault: &Vault,
    tenant: &str,
    app_id: &str,
    app_password: &str,
    openid_url: Option<&str>,
    token_url: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    store.tenant(tenant).await?;
    let app_id = app_id.trim();
    if app_id.is_empty() || app_id.chars().any(char::is_whitespace) {
        anyhow::bail!(
            "the Teams app id must be the bot's Microsoft App ID (a GUID, from the Azure Bot's \
             Configuration page)"
        );
    }
    let settings = serde_json::to_value(TeamsSettings {
        app_id: app_id.to_string(),
        openid_url: check_base_url(
            "OpenID metadata URL",
            openid_url.unwrap_or(DEFAULT_OPENID_URL),
        )?,
        token_url: check_base_url("token URL", token_url.unwrap_or(DEFAULT_TOKEN_URL))?,
    })?;
    let secrets = serde_json::to_vec(&TeamsSecrets {
        app_password: check_secret("Teams app password (client secret)", app_password)?,
    })?;
    let sealed = vault.seal(&context(tenant, TEAMS), &secrets)?;
    store
        .put_chat_channel(tenant, TEAMS, &settings, &sealed)
        .await?;
    Ok(json!({ "tenant": tenant, "chat": TEAMS, "settings": settings }))
}

/// The tenant's Teams bot configuration, if it has one.
pub async fn teams_config(
    store: &Store,
    vault: &Vault,
    tenant: &str,
) -> anyhow::Result<Option<TeamsConfig>> {
    let Some(row) = store.chat_channel(tenant, TEAMS).await? else {
        return Ok(None);
    };
    let settings: TeamsSettings = serde_json::from_str(&row.settings)?;
    let secrets: TeamsSecrets =
        serde_json::from_slice(&vault.open(&context(tenant, TEAMS), &row.sealed)?)?;
    Ok(Some(TeamsConfig {
        app_id: settings.app_id,
        app_password: Secret::new(secrets.app_password),
        openid_url: settings.openid_url,
        token_url: settings.token_url,
    }))
}

/// The tenant's chat and the settings of each configured one (never a secret).
pub async fn describe(store: &Store, tenant: &str) -> anyhow::Result<serde_json::Value> {
    store.tenant(tenant).await?;
    let chosen = store.chosen_chat(tenant).await?;
    let mut configured = serde_json::Map::new();
    for kind in [SLACK, TEAMS] {
        if let Some(row) = store.chat_channel(tenant, kind).await? {
            let settings: serde_json::Value = serde_json::from_str(&row.settings)?;
            configured.insert(
                kind.into(),
                json!({ "settings": settings, "secrets": "set", "updated_at": row.updated_at }),
            );
        }
    }
    Ok(json!({
        "tenant": tenant,
        "chat": chosen.as_deref().unwrap_or("builtin"),
        "configured": configured,
    }))
}

/// Whether `to` is a contact method (`sms:+1555…`, `email:…`) rather than a person's
/// work email. One-time codes go to those, which no work chat reaches: they stay with
/// the built-in delivery.
fn is_contact(to: &str) -> bool {
    to.contains(':')
}

/// The `Chat` of one tenant's runs: each call goes to the chat the tenant uses at that
/// moment.
pub struct TenantChat {
    store: Store,
    vault: Vault,
    http: reqwest::Client,
    tenant: String,
    builtin: Arc<Sandbox>,
}

impl TenantChat {
    pub fn new(
        store: Store,
        vault: Vault,
        http: reqwest::Client,
        tenant: &str,
        builtin: Arc<Sandbox>,
    ) -> TenantChat {
        TenantChat {
            store,
            vault,
            http,
            tenant: tenant.to_string(),
            builtin,
        }
    }

    /// The chat the tenant uses now.
    async fn current(&self) -> Result<Arc<dyn Chat>, ConnectorError> {
        let unreadable = |e: anyhow::Error| {
            ConnectorError::Upstream(format!(
                "the chat configuration of tenant {} cannot be read: {e:#}",
                self.tenant
            ))
        };
        let chosen = self
            .store
            .chosen_chat(&self.tenant)
            .await
            .map_err(unreadable)?;
        match chosen.as_deref() {
            Some(SLACK) => {
                let config = slack_config(&self.store, &self.vault, &self.tenant)
                    .await
                    .map_err(unreadable)?
                    .ok_or_else(|| {
                        unreadable(anyhow::anyhow!("Slack is chosen but not configured"))
                    })?;
                Ok(Arc::new(SlackChat::new(
                    self.http.clone(),
                    &config,
                    self.store.clone(),
                    &self.tenant,
                )))
            }
            Some(TEAMS) => {
                let config = teams_config(&self.store, &self.vault, &self.tenant)
                    .await
                    .map_err(unreadable)?
                    .ok_or_else(|| {
                        unreadable(anyhow::anyhow!("Teams is chosen but not configured"))
                    })?;
                Ok(Arc::new(TeamsChat::new(
                    self.http.clone(),
                    &config,
                    self.store.clone(),
                    &self.tenant,
                )))
            }
            Some(other) => Err(unreadable(anyhow::anyhow!("unknown chat `{other}`"))),
            None => Ok(self.builtin.clone()),
        }
    }
}

#[async_trait]
impl Chat for TenantChat {
    async fn send(&self, to: &str, text: &str) -> Result<(), ConnectorError> {
        if is_contact(to) {
            return self.builtin.send(to, text).await;
        }
        self.current().await?.send(to, text).await
    }

    async fn ask(
        &self,
        to: &str,
        question: &str,
        choices: &[String],
        run: &str,
    ) -> Result<(), ConnectorError> {
        self.current().await?.ask(to, question, choices, run).await
    }

    async fn request_approval(
        &self,
        to: &str,
        request: &ApprovalRequest<'_>,
    ) -> Result<(), ConnectorError> {
        self.current().await?.request_approval(to, request).await
    }

    async fn settled(&self, subject: &str, outcome: &str) -> Result<(), ConnectorError> {
        self.current().await?.settled(subject, outcome).await
    }

    fn is_idempotent(&self, function: HostFunction) -> bool {
        self.builtin.is_idempotent(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_https_except_to_this_machine() {
        assert_eq!(
            check_base_url("x", "https://slack.com/api/").unwrap(),
            "https://slack.com/api"
        );
        assert!(check_base_url("x", "http://127.0.0.1:9000/api").is_ok());
        let e = check_base_url("x", "http://slack.example/api").unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        assert!(check_base_url("x", "not a url").is_err());
    }
}
