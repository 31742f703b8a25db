//! The server under load: a real `capdesk serve` process (release build, SQLite, the
//! sandbox connectors, the bundled plugins) on an ephemeral port; 100 tenants set up
//! over the API; then 10,000 password-reset tickets submitted over HTTP by 64
//! concurrent clients spread across the tenants. Reports throughput and latency, then
//! checks that no ticket was lost: every submission got an outcome, and each tenant's
//! ticket list holds exactly the tickets submitted to it, and what the server keeps
//! on disk. Prints Markdown.
//!
//! `cargo bench -p capdesk --bench api_load` (`API_LOAD_TICKETS=N` for a shorter run,
//! `API_LOAD_CLIENTS=N` for another number of clients, `API_LOAD_WORKERS=N` for the
//! server's `--workers` instead of its default)

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TENANTS: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let tickets: usize = std::env::var("API_LOAD_TICKETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let client_count: usize = std::env::var("API_LOAD_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_capdesk"));
    server
        .args(["--data"])
        .arg(dir.path())
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0"]);
    if let Ok(workers) = std::env::var("API_LOAD_WORKERS") {
        server.args(["--workers", &workers]);
    }
    let mut server = server
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting capdesk serve");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut admin = String::new();
    let base = loop {
        let line = lines.next().expect("capdesk serve exited").unwrap();
        if let Some(t) = line.strip_prefix("admin token: ") {
            admin = t.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("capdesk serving on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
    };

    let setup = Instant::now();
    for t in 0..TENANTS {
        let tenant = format!("t{t:03}");
        let steps = [
            (
                reqwest::Method::POST,
                "/api/v1/tenants".to_string(),
                json!({"id": tenant}),
            ),
            (
                reqwest::Method::PUT,
                format!("/api/v1/tenants/{tenant}/modes/*"),
                json!({"mode": "auto"}),
            ),
            (
                reqwest::Method::PUT,
                format!("/api/v1/tenants/{tenant}/grants/password-reset"),
                json!({}),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/tenants/{tenant}/sandbox/users"),
                json!({"email": format!("ann@{tenant}.test"), "name": "Ann Archer"}),
            ),
        ];
        for (method, path, body) in steps {
            let r = call(method, path.clone(), body).send().await.unwrap();
            assert!(
                r.status().is_success(),
                "{path}: {}",
                r.text().await.unwrap()
            );
        }
    }
    let setup = setup.elapsed();

    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..client_count {
        let (http, base, admin, next) = (http.clone(), base.clone(), admin.clone(), next.clone());
        clients.spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= tickets {
                    return seen;
                }
                let tenant = format!("t{:03}", i % TENANTS);
                let body = json!({
                    "from": format!("ann@{tenant}.test"),
                    "subject": "Forgot my password",
                    "body": "I forgot my password and cannot sign in, please reset it",
                    "verified": true,
                });
                let sent = Instant::now();
                let r = http
                    .post(format!("{base}/api/v1/tenants/{tenant}/tickets"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let outcome: Value = r.json().await.unwrap();
                seen.push((
                    tenant,
                    sent.elapsed(),
                    status.as_u16(),
                    outcome["status"].clone(),
                ));
            }
        });
    }
    let mut results = Vec::new();
    while let Some(r) = clients.join_next().await {
        results.extend(r.unwrap());
    }
    let elapsed = started.elapsed();

    let mut latencies: Vec<Duration> = results.iter().map(|r| r.1).collect();
    latencies.sort();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for r in &results {
        let key = if r.2 == 201 {
            r.3.as_str().unwrap_or("?").to_string()
        } else {
            format!("HTTP {}", r.2)
        };
        *outcomes.entry(key).or_default() += 1;
    }
    // No ticket lost: each tenant's ticket list holds what was submitted to it.
    let mut stored = 0;
    for t in 0..TENANTS {
        let list: Value = call(
            reqwest::Method::GET,
            format!("/api/v1/tenants/t{t:03}/tickets?limit=1000"),
            json!(null),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        stored += list.as_array().unwrap().len();
    }
    let ended: usize = ["resolved", "escalated", "waiting", "shadowed"]
        .iter()
        .map(|s| outcomes.get(*s).copied().unwrap_or(0))
        .sum();

    println!("| measure | result |\n|---|---|");
    println!(
        "| setup: {TENANTS} tenants over the API (tenant, mode, grant, user) | {:.1} s |",
        setup.as_secs_f64()
    );
    println!(
        "| tickets submitted | {tickets} by {client_count} concurrent clients across {TENANTS} tenants |"
    );
    println!(
        "| throughput, end to end | {:.0} tickets/s ({:.1} s) |",
        tickets as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "| latency p50 / p99 | {:.1} ms / {:.1} ms |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    // Taken while the server still runs: its write-ahead log is what a long-running
    // server keeps on disk beside the database.
    let on_disk = |file: &str| std::fs::metadata(dir.path().join(file)).map_or(0, |m| m.len());
    println!(
        "| on disk while serving: database / write-ahead log | {:.1} MiB / {:.1} MiB |",
        on_disk("capdesk.db") as f64 / 1048576.0,
        on_disk("capdesk.db-wal") as f64 / 1048576.0
    );
    println!("| outcomes | {outcomes:?} |");
    println!("| tickets stored / submitted | {stored} / {tickets} |");
    println!(
        "| no ticket lost | {} |",
        if ended == tickets && stored == tickets {
            "yes"
        } else {
            "NO"
        }
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    assert_eq!(
        ended, tickets,
        "every ticket must end resolved, escalated, waiting or shadowed"
    );
    assert_eq!(stored, tickets, "every ticket must be stored");
}
