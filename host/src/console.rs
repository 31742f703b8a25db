//! The admin console: server-rendered pages under `/console` for the MSP's admins,
//! technicians and tenant approvers. A person signs in with their API token (the same
//! tokens, roles and tenant scoping as the API, see [`crate::api::auth`]); the token
//! rides in an HttpOnly, SameSite=Strict cookie, and every form carries a CSRF token
//! derived from it. Pages read and change records through the same `Desk` methods and
//! run queue as the API. This module owns the session, the page rendering and the
//! error page; the pages themselves live in [`tenancy`] (grants, policy, modes),
//! [`work`] (tickets, runs, approvals, escalations, shadow review) and [`records`]
//! (plugins, audit, the sandbox outbox).

mod records;
mod tenancy;
mod work;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::{Value, context};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::api::Api;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::store::tokens::Role;

/// The cookie that carries the signed-in person's API token.
const SESSION_COOKIE: &str = "capdesk_console";

/// The console's routes.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console", get(work::home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/plugins", get(records::plugins))
        .route("/console/tenants/{tenant}", get(work::tenant))
        .route(
            "/console/tenants/{tenant}/grants",
            get(tenancy::grants).post(tenancy::toggle_grant),
        )
        .route(
            "/console/tenants/{tenant}/policy",
            get(tenancy::policy).post(tenancy::save_policy),
        )
        .route(
            "/console/tenants/{tenant}/modes",
            get(tenancy::modes).post(tenancy::save_mode),
        )
        .route(
            "/console/tenants/{tenant}/shadow",
            get(work::shadow).post(work::review_shadow),
        )
        .route("/console/tenants/{tenant}/audit", get(records::audit))
        .route("/console/tenants/{tenant}/outbox", get(records::outbox))
        .route("/console/tickets/{ticket}", get(work::ticket))
        .route("/console/runs/{run}", get(work::run))
        .route("/console/approvals", get(work::approvals))
        .route("/console/approvals/{id}", post(work::decide))
        .route("/console/escalations", get(work::escalations))
}

/// The signed-in person: their token's caller, and the CSRF token their forms carry.
pub struct Operator {
    pub caller: Caller,
    pub csrf: String,
    /// The tenants this person may see.
    pub tenants: Vec<String>,
}

/// The CSRF token of a session: derived from the token secret, so it needs no storage
/// and a page of another site can neither read nor compute it.
fn csrf_of(secret: &str) -> String {
    hex::encode(&Sha256::digest(format!("capdesk-console-csrf:{secret}"))[..16])
}

impl FromRequestParts<Api> for Operator {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Operator, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let next = parts
            .uri
            .path_and_query()
            .map_or("/console", |p| p.as_str())
            .to_string();
        let Some(secret) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(PageError::SignIn { next });
        };
        let caller = match Caller::from_secret(api, &secret, "console").await {
            Ok(caller) => caller,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                return Err(PageError::SignIn { next });
            }
            Err(e) => return Err(e.into()),
        };
        let tenants = match &caller.token.tenant {
            Some(own) => vec![own.clone()],
            None => caller
                .desk
                .store
                .tenants()
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .map(|t| t.id)
                .collect(),
        };
        Ok(Operator {
            caller,
            csrf: csrf_of(&secret),
            tenants,
        })
    }
}

impl Operator {
    /// A form's CSRF token must be this session's.
    pub fn check(&self, csrf: &str) -> Result<(), PageError> {
        if bool::from(csrf.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this console session (or the session changed since \
                 the page was loaded). Go back, reload the page and try again.",
            ))
        }
    }

    /// Only these roles may see or do this.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), PageError> {
        Ok(self.caller.require(roles, what)?)
    }

    /// The person may see `tenant`.
    pub fn tenant(&self, tenant: &str) -> Result<(), PageError> {
        self.caller.tenant(tenant)?;
        Ok(())
    }

    /// What every page's layout shows of the session.
    fn layout(&self) -> Value {
        let token = &self.caller.token;
        context! {
            me => context! {
                name => token.name, role => token.role.name(), tenant => token.tenant,
                person => token.person, admin => token.role == Role::Admin,
                approver => token.role == Role::Approver,
            },
            tenants => self.tenants,
            csrf => self.csrf,
        }
    }

    /// Render page `name` with the layout's context and the page's own.
    pub fn render(&self, name: &str, page: Value) -> Result<Response, PageError> {
        Ok(crate::pages::render(
            &format!("console/{name}"),
            context! { ..page, ..self.layout() },
        )?)
    }
}

/// Why a page could not be shown: sign in first, or an error page saying what was wrong
/// and what to do.
pub enum PageError {
    SignIn {
        next: String,
    },
    Page {
        status: StatusCode,
        title: String,
        detail: String,
    },
}

impl PageError {
    pub fn page(status: StatusCode, title: &str, detail: impl Into<String>) -> PageError {
        PageError::Page {
            status,
            title: title.to_string(),
            detail: detail.into(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        if e.status.is_server_error() {
            tracing::error!(status = %e.status, detail = %e.detail, "console page failed");
        }
        let title = match e.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Already done",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        PageError::page(e.status, title, e.detail)
    }
}

impl From<minijinja::Error> for PageError {
    fn from(e: minijinja::Error) -> PageError {
        PageError::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This page could not be shown",
            format!("rendering it failed: {e:#}"),
        )
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let to = format!("/console/login?next={}", urlencode(&next));
                Redirect::to(&to).into_response()
            }
            PageError::Page {
                status,
                title,
                detail,
            } => {
                let page = crate::pages::render("console/error.html", context! { title, detail });
                let mut response =
                    page.unwrap_or_else(|_| (status, format!("{title}: {detail}")).into_response());
                *response.status_mut() = status;
                response
            }
        }
    }
}

/// Percent-encode a value for a query string.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Redirect after a form, with a notice the next page shows.
pub fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}notice={}", urlencode(notice))).into_response()
}

/// The notice a redirect carried.
#[derive(Debug, Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    pub notice: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

/// Only same-site console paths are followed after signing in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains("://") => n,
        _ => "/console",
    }
}

async fn login_page(Query(q): Query<LoginQuery>) -> Result<Response, PageError> {
    Ok(crate::pages::render(
        "console/login.html",
        context! { next => safe_next(q.next.as_deref()), notice => q.notice },
    )?)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(api): State<Api>,
    jar: CookieJar,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    let secret = form.token.trim().to_string();
    let next = safe_next(form.next.as_deref()).to_string();
    if secret.is_empty() {
        return login_failed(&next, "Paste your API token to sign in.");
    }
    match Caller::from_secret(&api, &secret, "console").await {
        Ok(caller) => {
            tracing::info!(token = caller.token.id, "console sign-in");
            let cookie = Cookie::build((SESSION_COOKIE, secret))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .build();
            let to = if caller.token.role == Role::Approver && next == "/console" {
                "/console/approvals".to_string()
            } else {
                next
            };
            Ok((jar.add(cookie), Redirect::to(&to)).into_response())
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => login_failed(
            &next,
            "That token is unknown or revoked. Check you pasted all of it, or ask the MSP's \
             admin for a new one (`capdesk token create`).",
        ),
        Err(e) => Err(e.into()),
    }
}

fn login_failed(next: &str, why: &str) -> Result<Response, PageError> {
    let mut page = crate::pages::render("console/login.html", context! { next, error => why })?;
    *page.status_mut() = StatusCode::UNAUTHORIZED;
    Ok(page)
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    operator: Operator,
    jar: CookieJar,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((
        jar,
        Redirect::to("/console/login?notice=You%20are%20signed%20out."),
    )
        .into_response())
}
