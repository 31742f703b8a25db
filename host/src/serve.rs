//! `capdesk serve`: what an MSP runs. On a fresh data dir it starts on the embedded
//! default — SQLite, the sandbox connectors, the bundled plugins installed and a demo
//! tenant seeded (unless `--no-demo`) — and, while no API token exists, creates an admin
//! token and prints it once. Then it serves the HTTP API with a bounded, tenant-fair run
//! queue, resumes runs a previous process left behind, and on SIGINT or SIGTERM stops
//! taking requests, lets the runs in progress finish and exits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::api::{Api, Metrics};
use crate::engine::Desk;
use crate::store::tokens::{NewToken, Role};
use crate::workers::RunQueue;

/// How `capdesk serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Seed the demo tenant into a data dir that has no tenant yet.
    pub demo: bool,
    /// Runs executed at once.
    pub workers: usize,
    /// Tickets a tenant may have waiting for a worker before the API answers 429.
    pub queue_per_tenant: usize,
    /// The lowest triage score that lets a plugin take a ticket.
    pub triage_threshold: f32,
    /// The address users reach this server at, for one-time credential links; the
    /// listening address when `None`.
    pub public_url: Option<String>,
}

/// Start, serve until a shutdown signal, and shut down cleanly.
pub async fn serve(data: &Path, options: ServeOptions) -> anyhow::Result<()> {
    let mut desk = Desk::open(data).await?;
    desk.triage_threshold = options.triage_threshold;
    for line in first_start(&desk, options.demo).await? {
        println!("{line}");
    }
    let recovered = desk.recover().await?;
    if !recovered.is_empty() {
        println!(
            "resumed {} run(s) a previous capdesk process left behind",
            recovered.len()
        );
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| {
            format!(
                "listening on {}; choose another address with --listen",
                options.listen
            )
        })?;
    let address = listener.local_addr()?;
    desk.credential_links = Some(
        options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}")),
    );
    let api = Api {
        desk: Arc::new(desk),
        queue: Arc::new(RunQueue::start(options.workers, options.queue_per_tenant)),
        metrics: Arc::new(Metrics::default()),
    };
    println!(
        "capdesk serving on http://{address} (data dir {})",
        data.display()
    );
    let queue = api.queue.clone();
    let desk = api.desk.clone();
    axum::serve(listener, crate::api::router(api))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    println!("shutting down: finishing the runs in progress");
    queue.close().await;
    desk.store.close().await;
    println!("capdesk stopped");
    Ok(())
}

/// On a data dir without tenants: the bundled plugins and (with `demo`) the demo
/// tenant; on one without plugins: the bundled plugins; while no API token exists: an
/// admin token, shown once. Returns what was done, a line each.
async fn first_start(desk: &Desk, demo: bool) -> anyhow::Result<Vec<String>> {
    let mut said = Vec::new();
    if demo && desk.store.tenants().await?.is_empty() {
        said.extend(crate::demo::seed(desk).await?);
        said.push("seeded the demo tenant `demo` (start with --no-demo for an empty desk)".into());
    } else if desk.store.plugins().await?.is_empty() {
        for p in desk.install_bundled().await? {
            said.push(format!("installed bundled plugin {} {}", p.id, p.version));
        }
    }
    if desk.store.tokens().await?.is_empty() {
        let (_, secret) = desk
            .store
            .create_token(NewToken {
                role: Role::Admin,
                tenant: None,
                person: None,
                name: "first admin (created by capdesk serve)",
            })
            .await?;
        said.push(format!(
            "created the first admin API token (shown only now; keep it safe):\nadmin token: {secret}"
        ));
    }
    Ok(said)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
