//! The console's guardrail pages for one tenant: the grant matrix (plugins × the
//! capabilities they ask for, each a toggle), the policy editor (problems shown beside
//! the text, the old policy kept until a valid one is saved) and the mode of each
//! category. Anyone who may see the tenant reads them; only an MSP admin changes them.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::{Notice, Operator, PageError, done};
use crate::capability::Capability;
use crate::mode::Mode;
use crate::store::tokens::Role;

const READERS: &[Role] = &[Role::Admin, Role::Technician];

/// Plugins × capabilities: what each asks for and what the tenant granted it.
pub async fn grants(
    operator: Operator,
    Path(tenant): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(READERS, "the grant matrix")?;
    operator.tenant(&tenant)?;
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(&tenant).await?;
    let matrix = desk.grant_matrix(&tenant).await?;
    let capabilities: Vec<_> = Capability::ALL
        .iter()
        .map(|c| context! { name => c.name(), meaning => c.description() })
        .collect();
    let rows: Vec<_> = matrix
        .iter()
        .map(|row| {
            let cells: Vec<_> = Capability::ALL
                .iter()
                .map(|c| {
                    context! {
                        capability => c.name(),
                        requested => row.requested.contains(c),
                        granted => row.granted.contains(c),
                    }
                })
                .collect();
            context! {
                plugin => row.plugin, category => row.category, cells,
                missing => row.requested_not_granted.len(),
            }
        })
        .collect();
    operator.render(
        "grants.html",
        context! {
            title => format!("{} — grants", t.name), tenant => t, tab => "grants",
            capabilities, rows, notice => n.notice,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct GrantForm {
    csrf: String,
    plugin: String,
    capability: String,
    /// `grant` or `revoke`.
    action: String,
}

/// Grant or revoke one capability of one plugin.
pub async fn toggle_grant(
    operator: Operator,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<GrantForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    operator.require(&[Role::Admin], "changing grants")?;
    let capability: Capability = form.capability.parse().map_err(|e| {
        PageError::page(
            StatusCode::BAD_REQUEST,
            "Unknown capability",
            format!("{e}"),
        )
    })?;
    let desk = &operator.caller.desk;
    let notice = match form.action.as_str() {
        "grant" => {
            desk.grant(&tenant, &form.plugin, Some(&[capability]))
                .await?;
            format!("Granted {} to {}", capability.name(), form.plugin)
        }
        "revoke" => {
            desk.revoke(&tenant, &form.plugin, &[capability]).await?;
            format!("Revoked {} from {}", capability.name(), form.plugin)
        }
        other => {
            return Err(PageError::page(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                format!("the action must be grant or revoke, not {other:?}"),
            ));
        }
    };
    Ok(done(&format!("/console/tenants/{tenant}/grants"), &notice))
}

/// The policy editor.
pub async fn policy(
    operator: Operator,
    Path(tenant): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(READERS, "the policy")?;
    operator.tenant(&tenant)?;
    let view = operator.caller.desk.policy_view(&tenant).await?;
    policy_page(&operator, &tenant, view.source.clone(), None, n.notice).await
}

async fn policy_page(
    operator: &Operator,
    tenant: &str,
    text: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(tenant).await?;
    let view = desk.policy_view(tenant).await?;
    let failed = error.is_some();
    let mut page = operator.render(
        "policy.html",
        context! {
            title => format!("{} — policy", t.name), tenant => t, tab => "policy",
            view, text, error, notice,
        },
    )?;
    if failed {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    csrf: String,
    source: String,
}

/// Save the policy; an invalid one is shown again with its problems, and the old one
/// stays in force.
pub async fn save_policy(
    operator: Operator,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<PolicyForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    operator.require(&[Role::Admin], "changing the policy")?;
    operator.tenant(&tenant)?;
    operator.caller.desk.store.tenant(&tenant).await?;
    match operator.caller.desk.set_policy(&tenant, &form.source).await {
        Ok(_) => Ok(done(
            &format!("/console/tenants/{tenant}/policy"),
            "Policy saved; it applies to the next call every run makes",
        )),
        Err(e) => {
            policy_page(
                &operator,
                &tenant,
                form.source,
                Some(format!("{e:#}")),
                None,
            )
            .await
        }
    }
}

/// The mode of each category.
pub async fn modes(
    operator: Operator,
    Path(tenant): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(READERS, "modes")?;
    operator.tenant(&tenant)?;
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(&tenant).await?;
    let set: Vec<(String, String)> = desk.store.modes_of(&tenant).await?;
    let default = set
        .iter()
        .find(|(c, _)| c == "*")
        .map_or(Mode::NEW_TENANT.name().to_string(), |(_, m)| m.clone());
    let mut categories: Vec<String> = desk
        .store
        .plugins()
        .await?
        .into_iter()
        .map(|p| p.category)
        .collect();
    categories.extend(set.iter().filter(|(c, _)| c != "*").map(|(c, _)| c.clone()));
    categories.sort();
    categories.dedup();
    let rows: Vec<_> = categories
        .iter()
        .map(|c| {
            let own = set.iter().find(|(cat, _)| cat == c).map(|(_, m)| m.clone());
            context! {
                category => c, inherited => own.is_none(),
                mode => own.unwrap_or_else(|| default.clone()),
            }
        })
        .collect();
    let modes: Vec<_> = Mode::ALL
        .iter()
        .map(|m| context! { name => m.name(), meaning => m.description() })
        .collect();
    operator.render(
        "modes.html",
        context! {
            title => format!("{} — modes", t.name), tenant => t, tab => "modes",
            default, rows, modes, notice => n.notice,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ModeForm {
    csrf: String,
    category: String,
    mode: String,
}

/// Set one category's mode (`*`: the tenant's default).
pub async fn save_mode(
    operator: Operator,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<ModeForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    operator.require(&[Role::Admin], "changing a mode")?;
    let mode: Mode = form.mode.parse().map_err(|e: crate::mode::UnknownMode| {
        PageError::page(StatusCode::BAD_REQUEST, "Unknown mode", e.to_string())
    })?;
    operator
        .caller
        .desk
        .set_mode(&tenant, &form.category, mode)
        .await?;
    let what = if form.category == "*" {
        "Every category without its own mode".to_string()
    } else {
        form.category.clone()
    };
    Ok(done(
        &format!("/console/tenants/{tenant}/modes"),
        &format!("{what} now runs in {} mode", mode.name()),
    ))
}
