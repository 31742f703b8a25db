//! The one-time credential pages: `GET /secret/{id}/{key}` says a temporary password is
//! waiting and offers a button; the button's `POST` reveals it once and destroys the
//! sealed copy (see [`crate::credentials`]). Pages are never cached, indexed or sent as
//! a referrer.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::Api;
use super::error::ApiError;
use crate::credentials::{self, Opened};

/// A page with the headers every credential page carries.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:34rem;\
         margin:3rem auto;padding:0 1rem;line-height:1.5}}code{{font-size:1.4rem;padding:.3rem .5rem;\
         background:#f3f3f3;border-radius:4px;user-select:all}}button{{font-size:1rem;padding:.5rem 1rem}}\
         </style></head><body><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn gone() -> Response {
    page(
        StatusCode::GONE,
        "This link no longer works",
        "<p>It was opened already, or it expired (links work once, for a limited time). \
         Reply to your ticket and the service desk will send a new one.</p>",
    )
}

/// The page that offers to reveal the password.
pub async fn offer(
    State(api): State<Api>,
    Path((id, _key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !credentials::waiting(api.desk.store.pool(), &id)
        .await
        .map_err(anyhow::Error::from)?
    {
        return Ok(gone());
    }
    Ok(page(
        StatusCode::OK,
        "Your temporary password",
        "<p>The service desk reset your password. The temporary password can be shown \
         <strong>once</strong>: have your sign-in page ready, then show it.</p>\
         <form method=\"post\"><button type=\"submit\">Show my temporary password</button></form>",
    ))
}

/// Reveal the password once.
pub async fn reveal(
    State(api): State<Api>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match credentials::open(api.desk.store.pool(), &id, &key)
        .await
        .map_err(anyhow::Error::from)?
    {
        Opened::Gone => Ok(gone()),
        Opened::Secret { recipient, secret } => {
            tracing::info!(%recipient, "a one-time credential link was opened");
            Ok(page(
                StatusCode::OK,
                "Your temporary password",
                &format!(
                    "<p>Temporary password for {}:</p><p><code>{}</code></p>\
                     <p>Sign in with it now: you will be asked to choose a new password \
                     straight away. This page cannot be shown again.</p>",
                    html_escape(&recipient),
                    html_escape(secret.expose())
                ),
            ))
        }
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
