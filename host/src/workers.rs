//! The server's run queue: work waits in one queue per tenant, and a fixed number of
//! workers take it round-robin across the tenants that have any, so a tenant's flood
//! waits behind itself and never starves another tenant. Each tenant's queue is bounded
//! (a full one refuses more, and the API answers 429); closing the queue stops new work,
//! drops what has not started (its submitter sees the queue close) and lets the work in
//! progress finish.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinSet;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why work was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("tenant {tenant} already has {limit} tickets waiting for a worker; retry shortly")]
    Full { tenant: String, limit: usize },
    #[error("capdesk is shutting down and takes no new work; retry against a running server")]
    Closed,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, VecDeque<Job>>,
    /// Tenants with queued work, in the order they are served next.
    turn: VecDeque<String>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Notify,
    per_tenant: usize,
}

/// The queue and its workers.
pub struct RunQueue {
    shared: Arc<Shared>,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

impl RunQueue {
    /// Start `workers` workers; each tenant may have `per_tenant` jobs waiting.
    pub fn start(workers: usize, per_tenant: usize) -> RunQueue {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Notify::new(),
            per_tenant: per_tenant.max(1),
        });
        let mut set = JoinSet::new();
        for _ in 0..workers.max(1) {
            set.spawn(work(shared.clone()));
        }
        RunQueue {
            shared,
            workers: tokio::sync::Mutex::new(set),
        }
    }

    /// Queue `job` for `tenant`.
    pub fn push(
        &self,
        tenant: &str,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Refusal> {
        let mut state = self.shared.state.lock().expect("run queue lock");
        if state.closed {
            return Err(Refusal::Closed);
        }
        let queue = state.queues.entry(tenant.to_string()).or_default();
        if queue.len() >= self.shared.per_tenant {
            return Err(Refusal::Full {
                tenant: tenant.to_string(),
                limit: self.shared.per_tenant,
            });
        }
        queue.push_back(Box::pin(job));
        if queue.len() == 1 {
            state.turn.push_back(tenant.to_string());
        }
        drop(state);
        self.shared.work.notify_one();
        Ok(())
    }

    /// How many jobs wait, by tenant (for `/metrics`).
    pub fn depth(&self) -> Vec<(String, usize)> {
        let state = self.shared.state.lock().expect("run queue lock");
        let mut depth: Vec<_> = state
            .queues
            .iter()
            .map(|(t, q)| (t.clone(), q.len()))
            .collect();
        depth.sort();
        depth
    }

    /// Take no more work, drop what has not started, and wait for the work in progress.
    pub async fn close(&self) {
        {
            let mut state = self.shared.state.lock().expect("run queue lock");
            state.closed = true;
            state.queues.clear();
            state.turn.clear();
        }
        self.shared.work.notify_waiters();
        let mut workers = self.workers.lock().await;
        while workers.join_next().await.is_some() {}
    }
}

/// One worker: take the next tenant's next job, run it, repeat until closed.
async fn work(shared: Arc<Shared>) {
    loop {
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let job = {
            let mut state = shared.state.lock().expect("run queue lock");
            if state.closed {
                return;
            }
            next(&mut state)
        };
        match job {
            Some(job) => job.await,
            None => notified.await,
        }
    }
}

/// The first job of the tenant whose turn it is; that tenant goes to the back of the
/// line if it has more.
fn next(state: &mut State) -> Option<Job> {
    let tenant = state.turn.pop_front()?;
    let queue = state.queues.get_mut(&tenant)?;
    let job = queue.pop_front();
    if queue.is_empty() {
        state.queues.remove(&tenant);
    } else {
        state.turn.push_back(tenant);
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queue `jobs` (tenant, label) on one worker and return the labels in the order
    /// they ran.
    async fn run_order(jobs: &[(&str, &'static str)]) -> Vec<&'static str> {
        let queue = RunQueue::start(1, 100);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (tenant, label) in jobs {
            let tx = tx.clone();
            let label = *label;
            queue
                .push(tenant, async move {
                    tx.send(label).unwrap();
                })
                .unwrap();
        }
        let mut order = Vec::new();
        for _ in jobs {
            order.push(rx.recv().await.unwrap());
        }
        queue.close().await;
        order
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flood_from_one_tenant_does_not_starve_another() {
        let order = run_order(&[
            ("acme", "a1"),
            ("acme", "a2"),
            ("acme", "a3"),
            ("acme", "a4"),
            ("globex", "g1"),
            ("acme", "a5"),
            ("initech", "i1"),
        ])
        .await;
        assert_eq!(order, ["a1", "g1", "i1", "a2", "a3", "a4", "a5"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_tenant_queue_refuses_without_touching_others() {
        let queue = RunQueue::start(1, 2);
        let (hold, wait) = tokio::sync::oneshot::channel::<()>();
        // The worker takes the first job and blocks on it; two more fill acme's queue.
        queue
            .push("acme", async move {
                wait.await.ok();
            })
            .unwrap();
        tokio::task::yield_now().await;
        queue.push("acme", async {}).unwrap();
        queue.push("acme", async {}).unwrap();
        assert_eq!(
            queue.push("acme", async {}),
            Err(Refusal::Full {
                tenant: "acme".into(),
                limit: 2
            })
        );
        queue.push("globex", async {}).unwrap();
        assert_eq!(
            queue.depth(),
            [("acme".to_string(), 2), ("globex".to_string(), 1)]
        );
        hold.send(()).unwrap();
        queue.close().await;
        assert_eq!(queue.push("acme", async {}), Err(Refusal::Closed));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn closing_lets_the_job_in_progress_finish_and_drops_the_rest() {
        let queue = Arc::new(RunQueue::start(1, 10));
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let (finish_tx, finish) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        let first_done = done_tx.clone();
        queue
            .push("acme", async move {
                started_tx.send(()).unwrap();
                finish.await.ok();
                first_done.send("first").unwrap();
            })
            .unwrap();
        queue
            .push("acme", async move {
                done_tx.send("second").unwrap();
            })
            .unwrap();
        started.await.unwrap();
        let closing = tokio::spawn({
            let queue = queue.clone();
            async move { queue.close().await }
        });
        tokio::task::yield_now().await;
        finish_tx.send(()).unwrap();
        closing.await.unwrap();
        assert_eq!(done.recv().await, Some("first"));
        assert_eq!(
            done.recv().await,
            None,
            "the job that had not started is dropped"
        );
    }
}
