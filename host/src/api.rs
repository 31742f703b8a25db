//! The HTTP API (`capdesk serve`): `/healthz`, `/readyz`, `/metrics` and the REST API
//! under `/api/v1`. Every `/api/v1` request carries a bearer token (see [`auth`]);
//! every error is JSON `{error, detail}` (see [`error`]). Runs — submissions, answers
//! and approvals — go through the server's [`RunQueue`], so a tenant's flood waits
//! behind itself. The API shapes records with [`crate::views`], as the command line's
//! `--json` does, and changes them through the same `Desk` methods.

mod admin;
pub mod auth;
pub mod botauth;
mod chat_admin;
mod chat_intake;
pub mod error;
pub mod hooks;
mod metrics;
mod secrets;
pub mod signing;
pub mod slack;
pub mod teams;
pub mod work;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
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
    pub(crate) async fn queued<T: Send + 'static>(
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

/// Every route, and the OpenAPI document generated from the handlers' annotations
/// (served at `/api/v1/openapi.json`).
pub fn router(api: Api) -> Router {
    let (routes, doc) = documented_routes();
    let doc = Arc::new(doc);
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route(
            "/secret/{id}/{key}",
            get(secrets::offer).post(secrets::reveal),
        )
        .merge(crate::console::routes())
        .merge(crate::webchat::routes())
        .route("/style.css", get(crate::pages::stylesheet))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/console") }),
        )
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(api)
}

/// The span of one request: its method and route template, never the concrete path (a
/// one-time link's path holds its key).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", |m| m.as_str());
    tracing::info_span!("request", method = %request.method(), route)
}

/// The OpenAPI description of the API, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().1
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "capdesk",
        description = "The capdesk service desk API. Every /api/v1 request carries `Authorization: Bearer TOKEN` (`capdesk token create`); every error is JSON `{error, detail}`."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Bearer tokens, required on every operation.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

fn documented_routes() -> (Router<Api>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let v1 = OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(admin::tenants, admin::add_tenant))
        .routes(routes!(admin::tenant))
        .routes(routes!(admin::plugins, admin::install_plugin))
        .routes(routes!(admin::inspect_plugin))
        .routes(routes!(admin::grants))
        .routes(routes!(admin::grant))
        .routes(routes!(admin::revoke))
        .routes(routes!(admin::policy, admin::set_policy))
        .routes(routes!(admin::modes))
        .routes(routes!(admin::set_mode))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::verify_audit))
        .routes(routes!(admin::sandbox_users, admin::add_sandbox_user))
        .routes(routes!(admin::sandbox_user))
        .routes(routes!(chat_admin::chat, chat_admin::choose))
        .routes(routes!(chat_admin::set_slack))
        .routes(routes!(chat_admin::set_teams))
        .routes(routes!(work::tickets, work::submit))
        .routes(routes!(work::ticket))
        .routes(routes!(work::run))
        .routes(routes!(work::answer))
        .routes(routes!(work::escalations))
        .routes(routes!(work::approvals))
        .routes(routes!(work::approval))
        .routes(routes!(work::approve))
        .routes(routes!(work::reject));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(hooks::psa))
        .routes(routes!(slack::events))
        .routes(routes!(slack::interactivity))
        .routes(routes!(teams::messages))
        .nest("/api/v1", v1)
        .split_for_parts()
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "Up", body = serde_json::Value)))]
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// The database answers and plugins are installed: tickets can be taken.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, description = "Ready", body = serde_json::Value), (status = 503, description = "Not ready, and why", body = error::ErrorBody)))]
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
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"), (status = "default", description = "An error", body = error::ErrorBody)))]
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
#[utoipa::path(get, path = "/me", tag = "tokens", responses((status = 200, description = "The token (never its secret)", body = serde_json::Value), (status = "default", description = "An error", body = error::ErrorBody)))]
async fn me(caller: Caller) -> impl IntoResponse {
    axum::Json(json!(caller.token))
}
