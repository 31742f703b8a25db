//! The MSP admin's side of the API: tenants, plugins (upload to install or inspect),
//! the grant matrix, policies, modes, the audit log, and the sandbox directory. Reads a
//! technician may make (tenants, plugins, grants, policy, modes) are scoped to their
//! tenant; every change needs an admin token and is audited under it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::auth::Caller;
use super::error::{ApiError, Body, ErrorBody};
use crate::admin::{GrantRow, PolicyView};
use crate::capability::Capability;
use crate::connectors::sandbox::NewUser;
use crate::mode::Mode;
use crate::store::tokens::Role;

const READERS: &[Role] = &[Role::Admin, Role::Technician];

/// The tenants the token reaches.
#[utoipa::path(get, path = "/tenants", tag = "tenants", summary = "The tenants the token reaches", responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn tenants(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "listing tenants")?;
    let all = caller.desk.store.tenants().await?;
    let visible: Vec<_> = all
        .into_iter()
        .filter(|t| caller.tenant(&t.id).is_ok())
        .collect();
    Ok(Json(json!(visible)))
}

#[utoipa::path(get, path = "/tenants/{tenant}", tag = "tenants", summary = "A tenant with its modes", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn tenant(caller: Caller, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "reading a tenant")?;
    caller.tenant(&tenant)?;
    let t = caller.desk.store.tenant(&tenant).await?;
    let modes = caller.desk.store.modes_of(&tenant).await?;
    let modes: Vec<_> = modes
        .iter()
        .map(|(c, m)| json!({ "category": c, "mode": m }))
        .collect();
    Ok(Json(
        json!({ "id": t.id, "name": t.name, "created_at": t.created_at, "modes": modes }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// Add a tenant (it starts in shadow mode with the default policy).
#[utoipa::path(post, path = "/tenants", tag = "tenants", summary = "Add a tenant (it starts in shadow mode)", request_body = NewTenant, responses((status = 201, description = "Created", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn add_tenant(
    caller: Caller,
    Body(req): Body<NewTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.admin("adding a tenant")?;
    let name = req.name.unwrap_or_else(|| req.id.clone());
    let t = caller.desk.store.add_tenant(&req.id, &name).await?;
    Ok((StatusCode::CREATED, Json(json!(t))))
}

#[utoipa::path(get, path = "/plugins", tag = "plugins", summary = "Installed plugins with the capabilities they ask for", responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn plugins(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "listing plugins")?;
    let plugins = caller.desk.store.plugins().await?;
    Ok(Json(json!(
        plugins.iter().map(crate::views::plugin).collect::<Vec<_>>()
    )))
}

/// Install the component in the body (`application/wasm`).
#[utoipa::path(post, path = "/plugins", tag = "plugins", summary = "Install the plugin component in the body", request_body(content = Vec<u8>, content_type = "application/wasm"), responses((status = 201, description = "Installed", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn install_plugin(
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.admin("installing a plugin")?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send the plugin component (.wasm) as the request body",
        ));
    }
    let installed = caller.desk.install_plugin(&body).await?;
    Ok((StatusCode::CREATED, Json(crate::views::plugin(&installed))))
}

/// What installing the component in the body would do, without installing it.
#[utoipa::path(post, path = "/plugins/inspect", tag = "plugins", summary = "What installing the component in the body would do", request_body(content = Vec<u8>, content_type = "application/wasm"), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn inspect_plugin(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.admin("inspecting a plugin")?;
    let (inspection, _) = api.desk.runtime.inspect(&body).await?;
    Ok(Json(json!(inspection)))
}

/// The grant matrix: per plugin, what it asks for and what the tenant granted.
#[utoipa::path(get, path = "/tenants/{tenant}/grants", tag = "grants", summary = "The grant matrix: requested, granted and not granted, per plugin", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = Vec<GrantRow>), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn grants(
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<GrantRow>>, ApiError> {
    caller.require(READERS, "reading grants")?;
    caller.tenant(&tenant)?;
    Ok(Json(caller.desk.grant_matrix(&tenant).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The capabilities to grant; every one the plugin asks for when absent.
    #[serde(default)]
    capabilities: Option<Vec<String>>,
}

fn parse_capabilities(names: &[String]) -> Result<Vec<Capability>, ApiError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Capability>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect()
}

/// Grant capabilities (or everything the plugin asks for).
#[utoipa::path(put, path = "/tenants/{tenant}/grants/{plugin}", tag = "grants", summary = "Grant capabilities (all the plugin asks for when none are named)", params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path)), request_body = GrantRequest, responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn grant(
    caller: Caller,
    Path((tenant, plugin)): Path<(String, String)>,
    Body(req): Body<GrantRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("granting capabilities")?;
    let caps = req
        .capabilities
        .as_deref()
        .map(parse_capabilities)
        .transpose()?;
    let granted = caller.desk.grant(&tenant, &plugin, caps.as_deref()).await?;
    Ok(Json(
        json!({ "tenant": tenant, "plugin": plugin, "granted": granted }),
    ))
}

/// Take one capability back.
#[utoipa::path(delete, path = "/tenants/{tenant}/grants/{plugin}/{capability}", tag = "grants", summary = "Revoke one capability", params(("tenant" = String, Path, description = "Tenant id"), ("plugin" = String, Path), ("capability" = String, Path)), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn revoke(
    caller: Caller,
    Path((tenant, plugin, capability)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("revoking capabilities")?;
    let caps = parse_capabilities(&[capability])?;
    let granted = caller.desk.revoke(&tenant, &plugin, &caps).await?;
    Ok(Json(
        json!({ "tenant": tenant, "plugin": plugin, "granted": granted }),
    ))
}

#[utoipa::path(get, path = "/tenants/{tenant}/policy", tag = "policy", summary = "The policy that applies (the tenant's own or the default)", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = PolicyView), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn policy(
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<PolicyView>, ApiError> {
    caller.require(READERS, "reading a policy")?;
    caller.tenant(&tenant)?;
    Ok(Json(caller.desk.policy_view(&tenant).await?))
}

/// Replace the tenant's policy with the TOML in the body; a policy with mistakes is
/// refused with every problem listed, and the old one stays.
#[utoipa::path(put, path = "/tenants/{tenant}/policy", tag = "policy", summary = "Replace the policy with the TOML in the body", params(("tenant" = String, Path, description = "Tenant id")), request_body(content = String, content_type = "application/toml"), responses((status = 200, description = "OK", body = PolicyView), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn set_policy(
    caller: Caller,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Json<PolicyView>, ApiError> {
    caller.admin("setting a policy")?;
    let source = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the policy must be UTF-8 TOML text"))?;
    caller.desk.set_policy(&tenant, source).await.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
            format!("{e:#}"),
        )
    })?;
    Ok(Json(caller.desk.policy_view(&tenant).await?))
}

#[utoipa::path(get, path = "/tenants/{tenant}/modes", tag = "modes", summary = "Modes by category", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn modes(caller: Caller, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "reading modes")?;
    caller.tenant(&tenant)?;
    caller.desk.store.tenant(&tenant).await?;
    let rows = caller.desk.store.modes_of(&tenant).await?;
    Ok(Json(json!(
        rows.iter()
            .map(|(c, m)| json!({ "category": c, "mode": m }))
            .collect::<Vec<_>>()
    )))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    mode: String,
}

#[utoipa::path(put, path = "/tenants/{tenant}/modes/{category}", tag = "modes", summary = "Set a category's mode (`*`: every category without its own)", params(("tenant" = String, Path, description = "Tenant id"), ("category" = String, Path)), request_body = ModeRequest, responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn set_mode(
    caller: Caller,
    Path((tenant, category)): Path<(String, String)>,
    Body(req): Body<ModeRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.admin("setting a mode")?;
    let mode: Mode = req
        .mode
        .parse()
        .map_err(|e: crate::mode::UnknownMode| ApiError::bad_request(e.to_string()))?;
    caller.desk.set_mode(&tenant, &category, mode).await?;
    Ok(Json(
        json!({ "tenant": tenant, "category": category, "mode": mode }),
    ))
}

/// The tenant's audit entries, oldest first.
#[utoipa::path(get, path = "/tenants/{tenant}/audit", tag = "audit", summary = "The tenant's audit entries, oldest first", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn audit(caller: Caller, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.admin("reading the audit log")?;
    caller.desk.store.tenant(&tenant).await?;
    let entries = crate::audit::export(caller.desk.store.pool(), &tenant)
        .await
        .map_err(anyhow::Error::from)?;
    let out: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["detail"] = serde_json::from_str(&e.detail).unwrap_or(json!(e.detail));
            v
        })
        .collect();
    Ok(Json(json!(out)))
}

/// Check the whole hash chain.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", summary = "Check the audit log's hash chain", responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn verify_audit(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.admin("verifying the audit log")?;
    Ok(Json(
        match crate::audit::verify(caller.desk.store.pool()).await? {
            Ok(count) => json!({ "intact": true, "entries": count }),
            Err(broken) => {
                json!({ "intact": false, "first_bad_entry": broken.id, "problem": broken.problem })
            }
        },
    ))
}

#[utoipa::path(get, path = "/tenants/{tenant}/sandbox/users", tag = "sandbox", summary = "Users of the tenant's sandbox directory", params(("tenant" = String, Path, description = "Tenant id")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn sandbox_users(
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "reading the sandbox directory")?;
    caller.tenant(&tenant)?;
    caller.desk.store.tenant(&tenant).await?;
    let users = caller
        .desk
        .sandbox(&tenant)
        .users()
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!(users)))
}

#[utoipa::path(get, path = "/tenants/{tenant}/sandbox/users/{email}", tag = "sandbox", summary = "A sandbox user with their event log", params(("tenant" = String, Path, description = "Tenant id"), ("email" = String, Path)), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn sandbox_user(
    caller: Caller,
    Path((tenant, email)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READERS, "reading the sandbox directory")?;
    caller.tenant(&tenant)?;
    caller.desk.store.tenant(&tenant).await?;
    let report = caller
        .desk
        .sandbox(&tenant)
        .user_report(&email)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!(report)))
}

#[utoipa::path(post, path = "/tenants/{tenant}/sandbox/users", tag = "sandbox", summary = "Add a user to the sandbox directory", params(("tenant" = String, Path, description = "Tenant id")), request_body = NewUser, responses((status = 201, description = "Created", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn add_sandbox_user(
    caller: Caller,
    Path(tenant): Path<String>,
    Body(user): Body<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.admin("adding a sandbox user")?;
    caller.desk.store.tenant(&tenant).await?;
    let added = caller
        .desk
        .sandbox(&tenant)
        .add_user(&user)
        .await
        .map_err(anyhow::Error::from)?;
    Ok((StatusCode::CREATED, Json(json!(added))))
}
