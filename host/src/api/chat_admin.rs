//! The admin's side of a tenant's chat over the API: which chat the tenant uses, and
//! setting its Slack app or Teams bot. Secrets go in (over the request body) and are
//! sealed at once; no answer ever holds them: reads show the settings that are not
//! secret and `"secrets": "set"`. Changes need an admin token and are audited under it.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::error::{ApiError, Body, ErrorBody};
use crate::connectors::channel;
use crate::store::tokens::Role;

/// The tenant's chat and the settings of each configured one (never a secret).
#[utoipa::path(get, path = "/tenants/{tenant}/chat", tag = "chat", summary = "The tenant's chat and its settings (never secrets)", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn chat(caller: Caller, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Technician], "reading a tenant's chat")?;
    caller.tenant(&tenant)?;
    Ok(Json(channel::describe(&caller.desk.store, &tenant).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatChoice {
    /// `builtin`, `slack` or `teams` (configured first).
    chat: String,
}

/// Choose the chat the tenant uses.
#[utoipa::path(put, path = "/tenants/{tenant}/chat", tag = "chat", summary = "Choose the tenant's chat: builtin, slack or teams", params(("tenant" = String, Path, description = "Tenant id")), request_body = ChatChoice, responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn choose(
    caller: Caller,
    Path(tenant): Path<String>,
    Body(req): Body<ChatChoice>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("choosing a tenant's chat")?;
    let kind = match req.chat.as_str() {
        "builtin" => None,
        kind @ (channel::SLACK | channel::TEAMS) => Some(kind),
        other => {
            return Err(ApiError::bad_request(format!(
                "`{other}` is not a chat; say builtin, slack or teams"
            )));
        }
    };
    caller.desk.store.choose_chat(&tenant, kind).await?;
    Ok(Json(channel::describe(&caller.desk.store, &tenant).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackRequest {
    /// The app's Bot User OAuth Token (`xoxb-…`).
    bot_token: String,
    /// The app's Signing Secret.
    signing_secret: String,
    /// The Web API base URL (default `https://slack.com/api`).
    #[serde(default)]
    api_base: Option<String>,
}

/// Set the tenant's Slack app and make Slack its chat.
#[utoipa::path(put, path = "/tenants/{tenant}/chat/slack", tag = "chat", summary = "Set the tenant's Slack app (secrets are sealed, never shown again)", params(("tenant" = String, Path, description = "Tenant id")), request_body = SlackRequest, responses((status = 200, description = "The settings, without secrets", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn set_slack(
    caller: Caller,
    Path(tenant): Path<String>,
    Body(req): Body<SlackRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("setting a tenant's Slack app")?;
    let shown = channel::set_slack(
        &caller.desk.store,
        &caller.desk.vault,
        &tenant,
        req.api_base.as_deref(),
        &req.bot_token,
        &req.signing_secret,
    )
    .await?;
    Ok(Json(shown))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsRequest {
    /// The bot's Microsoft App ID.
    app_id: String,
    /// The app's client secret.
    app_password: String,
    /// The Bot Framework's OpenID metadata URL (default: the public one).
    #[serde(default)]
    openid_url: Option<String>,
    /// The token endpoint (default: the Bot Framework's).
    #[serde(default)]
    token_url: Option<String>,
}

/// Set the tenant's Teams bot and make Teams its chat.
#[utoipa::path(put, path = "/tenants/{tenant}/chat/teams", tag = "chat", summary = "Set the tenant's Teams bot (the secret is sealed, never shown again)", params(("tenant" = String, Path, description = "Tenant id")), request_body = TeamsRequest, responses((status = 200, description = "The settings, without secrets", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn set_teams(
    caller: Caller,
    Path(tenant): Path<String>,
    Body(req): Body<TeamsRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("setting a tenant's Teams bot")?;
    let shown = channel::set_teams(
        &caller.desk.store,
        &caller.desk.vault,
        &tenant,
        &req.app_id,
        &req.app_password,
        req.openid_url.as_deref(),
        req.token_url.as_deref(),
    )
    .await?;
    Ok(Json(shown))
}
