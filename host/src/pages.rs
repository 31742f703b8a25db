//! The HTML pages capdesk serves (the admin console and the web chat): their templates,
//! compiled once into one minijinja environment with HTML escaping, the shared
//! stylesheet, and the headers every page carries (never cached, framed or leaked as a
//! referrer to another site).

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

/// Every template, by the name pages render it with.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "console/layout.html",
        include_str!("pages/console/layout.html"),
    ),
    (
        "console/login.html",
        include_str!("pages/console/login.html"),
    ),
    (
        "console/error.html",
        include_str!("pages/console/error.html"),
    ),
    ("console/home.html", include_str!("pages/console/home.html")),
    (
        "console/tenant.html",
        include_str!("pages/console/tenant.html"),
    ),
    (
        "console/ticket.html",
        include_str!("pages/console/ticket.html"),
    ),
    ("console/run.html", include_str!("pages/console/run.html")),
    (
        "console/grants.html",
        include_str!("pages/console/grants.html"),
    ),
    (
        "console/policy.html",
        include_str!("pages/console/policy.html"),
    ),
    (
        "console/modes.html",
        include_str!("pages/console/modes.html"),
    ),
    (
        "console/approvals.html",
        include_str!("pages/console/approvals.html"),
    ),
    (
        "console/escalations.html",
        include_str!("pages/console/escalations.html"),
    ),
    (
        "console/shadow.html",
        include_str!("pages/console/shadow.html"),
    ),
    (
        "console/plugins.html",
        include_str!("pages/console/plugins.html"),
    ),
    (
        "console/audit.html",
        include_str!("pages/console/audit.html"),
    ),
    (
        "console/outbox.html",
        include_str!("pages/console/outbox.html"),
    ),
    ("chat/signin.html", include_str!("pages/chat/signin.html")),
    ("chat/chat.html", include_str!("pages/chat/chat.html")),
    (
        "chat/conversation.html",
        include_str!("pages/chat/conversation.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("page template {name}: {e:#}"));
        }
        env
    })
}

/// Render template `name` with `ctx` to a page.
pub fn render(name: &str, ctx: Value) -> Result<Response, minijinja::Error> {
    let html = environment().get_template(name)?.render(ctx)?;
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// The stylesheet every page links.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("pages/style.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        let env = super::environment();
        for (name, _) in super::TEMPLATES {
            env.get_template(name).unwrap();
        }
    }
}
