//! Runtime costs, each beside its native baseline where one exists:
//! compile at install, load from the precompiled cache, instantiate, and a full run
//! (instantiate, triage, resolve with ten host calls, on one instance as the engine does) of the benchmark
//! playbook against in-memory connectors vs the same playbook in native Rust, and one
//! policy decision as the guard makes it (remembered after the first).
//!
//! `cargo bench -p capdesk --bench runtime`

mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use capdesk::capability::HostFunction;
use capdesk::datadir::DataDir;
use capdesk::journal::CallState;
use capdesk::policy::{Decision, Policy, Request, Requester, Target};
use capdesk::runtime::Runtime;
use capdesk::store::Limits;
use criterion::{Criterion, criterion_group, criterion_main};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(Runtime::new(DataDir::open(dir.path()).unwrap()).unwrap());
    let bytes = support::component("bench-playbook");
    let plugin = rt.block_on(runtime.install(&bytes)).unwrap();

    let ticket = support::ticket();
    let limits = Limits::default();

    let mut g = c.benchmark_group("install");
    g.sample_size(20);
    g.bench_function("compile", |b| {
        b.iter(|| wasmtime::component::Component::new(runtime.engine(), &bytes).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("load");
    g.bench_function("from_precompiled_cache", |b| {
        b.iter(|| runtime.load_component(&plugin.hash).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("instantiate");
    g.bench_function("sandboxed", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(runtime.instantiate(&plugin, limits, 7).await.unwrap()) })
    });
    g.finish();

    let mut g = c.benchmark_group("full_run");
    g.bench_function("sandboxed", |b| {
        b.to_async(&rt).iter(|| async {
            let mut instance = runtime.instantiate(&plugin, limits, 7).await.unwrap();
            let score = instance.triage(&ticket).await.unwrap();
            let run = instance.resolve(&ticket, support::guard()).await;
            assert!(
                score > 0.5
                    && matches!(&run.ending, capdesk::runtime::Ending::Finished(o) if o.resolved)
                    && run
                        .guard
                        .journal()
                        .filter(|e| e.state == CallState::Done)
                        .count()
                        == 10
            );
        })
    });
    g.bench_function("native", |b| {
        b.to_async(&rt).iter(|| async {
            let (score, result) = support::native_run(&ticket, support::guard()).await;
            assert!(score > 0.5 && result.is_ok());
        })
    });
    g.finish();

    // One policy decision as the guard asks it: a verified owner's unlock, under the
    // shipped default policy (seven rules). After the first, the policy remembers it:
    // Cedar's own evaluation is timed by the ignored test `decision_speed_by_case`.
    let policy = Policy::default_policy();
    let groups = vec!["all-staff".to_string()];
    let mut g = c.benchmark_group("policy");
    g.bench_function("decide_default_policy_remembered", |b| {
        b.iter(|| {
            let mut request = Request::new(
                "acme",
                "account-unlock",
                HostFunction::UnlockAccount,
                "account-unlock",
            );
            request.requester = Requester {
                email: support::REQUESTER,
                verified: true,
            };
            request.target = Some(Target {
                email: support::REQUESTER,
                enabled: true,
                groups: &groups,
                ..Target::default()
            });
            let decision = policy.decide(&request);
            assert!(matches!(decision, Decision::Allow { .. }), "{decision:?}");
        })
    });
    g.finish();
}

criterion_group!(runtime_benches, benches);
criterion_main!(runtime_benches);
