//! Waiting runs: what 10,000 runs waiting on an answer cost (database bytes, process
//! memory: they hold no instance), and how long resuming one takes: the replay alone
//! (instantiate, triage, replay twenty journaled calls, finish, against in-memory
//! connectors) and the whole `answer` path with its SQLite writes. Prints Markdown.
//!
//! `cargo bench -p capdesk --bench waiting`

mod support;

use std::time::{Duration, Instant};

use capdesk::connectors::sandbox::NewUser;
use capdesk::connectors::{NewTicket, Person, Psa as _};
use capdesk::engine::{Desk, RunStatus};
use capdesk::guard::{Guard, RunScope};
use capdesk::journal::Journal;
use capdesk::mode::Mode;
use capdesk::runtime::Ending;
use capdesk::store::{Limits, parse_run_id, ticket_label};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WAITING: usize = 10_000;
const ANSWERED: usize = 300;
const REPLAYS: usize = 2_000;
const EMAIL: &str = "ann@acme.test";

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    ["capdesk.db", "capdesk.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn p(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::open(dir.path()).await.unwrap();
        let plugin = desk.install_plugin(&support::component("bench-asks")).await.unwrap();
        desk.store.add_tenant("acme", "Acme").await.unwrap();
        desk.grant_all("acme", &plugin.id).await.unwrap();
        desk.store.set_mode("acme", "*", Mode::Auto).await.unwrap();
        // Measure the wait for an answer alone: the group change needs no approval here.
        desk.set_policy("acme", support::BENCH_POLICY).await.unwrap();
        desk.sandbox("acme")
            .add_user(&NewUser { email: EMAIL.into(), name: "Ann".into(), ..NewUser::default() })
            .await
            .unwrap();
        let ticket = || NewTicket {
            subject: "bench-asks".into(),
            body: String::new(),
            requester: Person { email: EMAIL.into(), name: "Ann".into() },
            channel: "chat".into(),
            requester_verified: true,
            fields: vec![],
        };

        let (rss0, disk0) = (resident_kib(), disk_bytes(dir.path()));
        let started = Instant::now();
        let mut runs = Vec::with_capacity(WAITING);
        for _ in 0..WAITING {
            let s = desk.submit("acme", ticket()).await.unwrap();
            assert_eq!(s.status, RunStatus::Waiting);
            runs.push(parse_run_id(&s.run).unwrap());
        }
        let submit_secs = started.elapsed().as_secs_f64();
        let (rss1, disk1) = (resident_kib(), disk_bytes(dir.path()));

        // The replay alone, against in-memory connectors.
        let row = desk.store.run(runs[0]).await.unwrap();
        let mut recorded = desk.store.journal(runs[0]).await.unwrap();
        desk.store.record_answer(runs[0], EMAIL, "sales").await.unwrap();
        recorded = {
            let answered = desk.store.journal(runs[0]).await.unwrap();
            assert_eq!(answered.len(), recorded.len());
            answered
        };
        let loaded = desk.runtime.load(&plugin.hash).await.unwrap();
        let the_ticket = desk.sandbox("acme").get_ticket(&ticket_label(row.ticket)).await.unwrap().ticket;
        let mut replays = Vec::with_capacity(REPLAYS);
        for _ in 0..REPLAYS {
            let scope = RunScope { ticket: the_ticket.clone(), ..support::scope() };
            let t = Instant::now();
            let mut instance = desk.runtime.instantiate(&loaded, Limits::default(), row.seed as u64).await.unwrap();
            instance.triage(&the_ticket).await.unwrap();
            let journal = Journal::replaying(recorded.clone());
            let guard = Guard::new(scope, support::connectors(), journal);
            let resolve = instance.resolve(&the_ticket, guard).await;
            replays.push(t.elapsed());
            assert!(matches!(&resolve.ending, Ending::Finished(o) if o.resolved), "{:?}", resolve.ending);
        }
        replays.sort();

        // The whole answer path: check, claim, record, replay, write back.
        let mut answers = Vec::with_capacity(ANSWERED);
        for run in &runs[1..=ANSWERED] {
            let t = Instant::now();
            let s = desk.answer(*run, EMAIL, "sales").await.unwrap();
            answers.push(t.elapsed());
            assert_eq!(s.status, RunStatus::Resolved);
        }
        answers.sort();

        println!("| measure | result |");
        println!("|---|---|");
        println!("| runs made to wait | {WAITING} ({:.0} submissions/s through SQLite) |", WAITING as f64 / submit_secs);
        println!("| database growth per waiting run (ticket, run, journal, notes, audit) | {:.1} KiB |", (disk1 - disk0) as f64 / 1024.0 / WAITING as f64);
        println!("| process memory for all {WAITING} waiting runs | {} KiB ({} → {} KiB; no instance is held) |", rss1.saturating_sub(rss0), rss0, rss1);
        println!("| resume by replay (instantiate, triage, replay 20 calls, finish), p50 / p99 | {:.1} µs / {:.1} µs |", p(&replays, 0.5), p(&replays, 0.99));
        println!("| `answer` end to end with its SQLite writes, p50 / p99 | {:.0} µs / {:.0} µs |", p(&answers, 0.5), p(&answers, 0.99));
    });
}
