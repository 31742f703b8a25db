//! The console's record pages: the installed plugins with what they ask for, a
//! tenant's audit log with the state of the hash chain, and the sandbox outbox (what
//! capdesk sent to people and to the phones and inboxes of one-time codes).

use axum::extract::Path;
use axum::response::Response;
use minijinja::context;
use serde_json::Value;

use super::{Operator, PageError};
use crate::runtime::Manifest;
use crate::store::tokens::Role;

/// The installed plugins.
pub async fn plugins(operator: Operator) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "the installed plugins")?;
    let mut rows = Vec::new();
    for p in operator.caller.desk.store.plugins().await? {
        let manifest = Manifest::of(&p)?;
        let asks: Vec<_> = manifest
            .capabilities
            .iter()
            .map(|c| context! { name => c.name(), meaning => c.description() })
            .collect();
        rows.push(context! {
            id => p.id, version => p.version, category => p.category,
            description => p.description, hash => p.hash.get(..12).unwrap_or(&p.hash),
            size_kib => p.size_bytes / 1024, installed_at => p.installed_at, asks,
        });
    }
    operator.render("plugins.html", context! { title => "Plugins", rows })
}

/// A tenant's audit entries, newest first, under the chain's state.
pub async fn audit(operator: Operator, Path(tenant): Path<String>) -> Result<Response, PageError> {
    operator.require(&[Role::Admin], "the audit log")?;
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(&tenant).await?;
    let pool = desk.store.pool();
    let chain = match crate::audit::verify(pool).await? {
        Ok(entries) => context! { intact => true, entries },
        Err(broken) => context! { intact => false, id => broken.id, problem => broken.problem },
    };
    let mut entries = crate::audit::export(pool, &tenant)
        .await
        .map_err(anyhow::Error::from)?;
    entries.reverse();
    let total = entries.len();
    let rows: Vec<_> = entries
        .iter()
        .take(500)
        .map(|e| {
            let detail = serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null);
            let fields: Vec<(String, String)> = match detail {
                Value::Object(map) => map
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect(),
                _ => vec![(String::new(), e.detail.clone())],
            };
            context! {
                id => e.id, at => e.at, kind => e.kind, actor => e.actor, fields,
                hash => e.hash.get(..12).unwrap_or(&e.hash),
            }
        })
        .collect();
    operator.render(
        "audit.html",
        context! {
            title => format!("{} — audit", t.name), tenant => t, tab => "audit",
            chain, rows, total,
        },
    )
}

/// What the tenant's sandbox chat sent, newest first.
pub async fn outbox(operator: Operator, Path(tenant): Path<String>) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "the sandbox outbox")?;
    operator.tenant(&tenant)?;
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(&tenant).await?;
    let mut rows = desk
        .sandbox(&tenant)
        .outbox()
        .await
        .map_err(anyhow::Error::from)?;
    rows.reverse();
    operator.render(
        "outbox.html",
        context! { title => format!("{} — sandbox outbox", t.name), tenant => t, tab => "outbox", rows },
    )
}
