//! Runs per second of the benchmark playbook on one and on two worker threads sharing
//! one runtime (and its native twin), run latency percentiles, and the resident memory
//! one live instance costs. Prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p capdesk --bench throughput`

mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capdesk::datadir::DataDir;
use capdesk::runtime::{Plugin, Runtime};
use capdesk::store::Limits;

const MEASURE: Duration = Duration::from_secs(3);
const LIVE_INSTANCES: usize = 500;

/// One full run as the engine does it: instantiate, triage, resolve on that instance.
async fn sandboxed(runtime: &Runtime, plugin: &Plugin) {
    let ticket = support::ticket();
    let mut instance = runtime
        .instantiate(plugin, Limits::default(), 7)
        .await
        .unwrap();
    let score = instance.triage(&ticket).await.unwrap();
    let run = instance.resolve(&ticket, support::guard()).await;
    assert!(
        score > 0.5 && matches!(&run.ending, capdesk::runtime::Ending::Finished(o) if o.resolved)
    );
}

async fn native() {
    let (score, result) = support::native_run(&support::ticket(), support::guard()).await;
    assert!(score > 0.5 && result.is_ok());
}

/// Run `workers` threads for MEASURE; returns runs/s and the latencies of worker 0.
fn measure(
    workers: usize,
    runtime: &Arc<Runtime>,
    plugin: &Arc<Plugin>,
    sandbox: bool,
) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (runtime, plugin) = (runtime.clone(), plugin.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut latencies = Vec::new();
                    while start.elapsed() < MEASURE {
                        let t = Instant::now();
                        if sandbox {
                            sandboxed(&runtime, &plugin).await;
                        } else {
                            native().await;
                        }
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
        })
        .collect();
    let all: Vec<Vec<Duration>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let runs: usize = all.iter().map(Vec::len).sum();
    (
        runs as f64 / start.elapsed().as_secs_f64(),
        all.into_iter().next().unwrap(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn main() {
    // `cargo bench` passes --bench; there is nothing to filter here.
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(Runtime::new(DataDir::open(dir.path()).unwrap()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin = rt
        .block_on(runtime.install(&support::component("bench-playbook")))
        .unwrap();

    // Warm up the pooling allocator's slots.
    measure(2, &runtime, &plugin, true);

    println!("| workers | sandboxed runs/s | native runs/s | sandboxed p50 | p99 | native p50 |");
    println!("|---|---|---|---|---|---|");
    let mut single = 0.0;
    for workers in [1, 2] {
        let (sandboxed_rate, mut lat) = measure(workers, &runtime, &plugin, true);
        let (native_rate, mut native_lat) = measure(workers, &runtime, &plugin, false);
        lat.sort();
        native_lat.sort();
        if workers == 1 {
            single = sandboxed_rate;
        }
        println!(
            "| {workers} | {sandboxed_rate:.0} | {native_rate:.0} | {:.1} µs | {:.1} µs | {:.1} µs |",
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6,
            percentile(&native_lat, 0.5).as_secs_f64() * 1e6,
        );
        if workers == 2 {
            println!("\ntwo workers / one: {:.2}×", sandboxed_rate / single);
        }
    }

    let before = resident_kib();
    let live: Vec<_> = (0..LIVE_INSTANCES)
        .map(|_| {
            rt.block_on(runtime.instantiate(&plugin, Limits::default(), 7))
                .unwrap()
        })
        .collect();
    let after = resident_kib();
    println!(
        "resident memory per live instance: {:.1} KiB ({LIVE_INSTANCES} instances, {} KiB → {} KiB)",
        (after.saturating_sub(before)) as f64 / LIVE_INSTANCES as f64,
        before,
        after
    );
    drop(live);
}
