//! The HTTP API (`capdesk serve`): `/healthz`, `/readyz`, `/metrics` and the REST API
//! under `/api/v1`. Every `/api/v1` request carries a bearer token (see [`auth`]);
//! every error is JSON `{error, detail}` (see [`error`]). Runs — submissions, answers
//! and approvals — go through the server's [`RunQueue`], so a tenant's flood waits
//! behind itself. The API shapes records with [`crate::views`], as the command line's
//! `--json` does, and changes them through the same `Desk` methods.

mod admin;
pub mod auth;
pub mod error;
mod metrics;
mod work;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use serde_json::json;

use crate::engine::Desk;
use crate::workers::RunQueue;
use auth::Caller;
use error::ApiError;
pub use metrics::Metrics;

/// The largest request body: a plugin component upload.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub desk: Arc<Desk>,
    pub queue: Arc<RunQueue>,
    pub metrics: Arc<Metrics>,
}

impl Api {
    /// Run `work` for `tenant` on the run queue and wait for its outcome.
    async fn queued<T: Send + 'static>(
        &self,
        tenant: &str,
        work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        self.queue.push(tenant, async move {
            let outcome = work.await;
            metrics.run_took(started.elapsed());
            let _ = tx.send(outcome);
        })?;
        match rx.await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(ApiError::unavailable(
                "capdesk shut down before this request's turn came; nothing was done, send it again",
            )),
        }
    }
}

/// Every route.
pub fn router(api: Api) -> Router {
    let v1 = Router::new()
        .route("/me", get(me))
        .route("/tenants", get(admin::tenants).post(admin::add_tenant))
        .route("/tenants/{tenant}", get(admin::tenant))
        .route("/plugins", get(admin::plugins).post(admin::install_plugin))
        .route("/plugins/inspect", post(admin::inspect_plugin))
        .route("/tenants/{tenant}/grants", get(admin::grants))
        .route("/tenants/{tenant}/grants/{plugin}", put(admin::grant))
        .route(
            "/tenants/{tenant}/grants/{plugin}/{capability}",
            delete(admin::revoke),
        )
        .route(
            "/tenants/{tenant}/policy",
            get(admin::policy).put(admin::set_policy),
        )
        .route("/tenants/{tenant}/modes", get(admin::modes))
        .route("/tenants/{tenant}/modes/{category}", put(admin::set_mode))
        .route("/tenants/{tenant}/audit", get(admin::audit))
        .route("/audit/verify", get(admin::verify_audit))
        .route(
            "/tenants/{tenant}/sandbox/users",
            get(admin::sandbox_users).post(admin::add_sandbox_user),
        )
        .route(
            "/tenants/{tenant}/sandbox/users/{email}",
            get(admin::sandbox_user),
        )
        .route(
            "/tenants/{tenant}/tickets",
            get(work::tickets).post(work::submit),
        )
        .route("/tickets/{id}", get(work::ticket))
        .route("/runs/{id}", get(work::run))
        .route("/runs/{id}/answer", post(work::answer))
        .route("/escalations", get(work::escalations))
        .route("/approvals", get(work::approvals))
        .route("/approvals/{id}", get(work::approval))
        .route("/approvals/{id}/approve", post(work::approve))
        .route("/approvals/{id}/reject", post(work::reject));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", v1)
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(api)
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// The database answers and plugins are installed: tickets can be taken.
async fn readyz(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    let plugins = match api.desk.store.plugins().await {
        Ok(p) => p.len(),
        Err(e) => {
            return Err(ApiError::unavailable(format!(
                "the database does not answer: {e:#}"
            )));
        }
    };
    if plugins == 0 {
        return Err(ApiError::unavailable(
            "no plugins are installed, so no ticket can be resolved; install them with \
             `capdesk plugin install --bundled` or POST /api/v1/plugins",
        ));
    }
    Ok(axum::Json(json!({ "status": "ready", "plugins": plugins })))
}

/// Prometheus metrics; an admin token is required (tenant names are in the labels).
async fn metrics(State(api): State<Api>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.admin("reading metrics")?;
    let text = api
        .metrics
        .render(api.desk.store.pool(), &api.queue.depth())
        .await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    ))
}

/// The caller's own token: role, tenant and person.
async fn me(caller: Caller) -> impl IntoResponse {
    axum::Json(json!(caller.token))
}
