//! `/metrics` in the Prometheus text format: runs by tenant, category and status,
//! approvals pending, policy denials and how long approvals took to be answered (from
//! the database, so they survive a restart and agree across processes); run latency as a
//! histogram of what this process served; and the run queue's depth by tenant.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::SqlitePool;

/// Upper bounds of the latency buckets, in seconds.
const RUN_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const APPROVAL_BUCKETS: &[f64] = &[60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0];

/// A cumulative histogram.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// What this process measured.
pub struct Metrics {
    runs: Mutex<Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            runs: Mutex::new(Histogram::new(RUN_BUCKETS)),
        }
    }
}

impl Metrics {
    /// A run (submission, answer or approval, through to its outcome) took `took`.
    pub fn run_took(&self, took: Duration) {
        self.runs
            .lock()
            .expect("metrics lock")
            .observe(took.as_secs_f64());
    }

    /// The exposition text.
    pub async fn render(
        &self,
        pool: &SqlitePool,
        queue: &[(String, usize)],
    ) -> anyhow::Result<String> {
        let mut out = String::new();
        let tickets: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT tenant, COALESCE(category, 'unmatched'), status, COUNT(*) FROM runs
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .fetch_all(pool)
        .await?;
        out.push_str(
            "# HELP capdesk_runs Runs by tenant, ticket category and status.\n# TYPE capdesk_runs gauge\n",
        );
        for (tenant, category, status, n) in tickets {
            let _ = writeln!(
                out,
                "capdesk_runs{{tenant=\"{}\",category=\"{}\",status=\"{}\"}} {n}",
                label(&tenant),
                label(&category),
                label(&status)
            );
        }
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT tenant, COUNT(*) FROM approvals WHERE status = 'pending' GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(pool)
        .await?;
        by_tenant(
            &mut out,
            "capdesk_approvals_pending",
            "gauge",
            "Approval requests waiting for an answer.",
            &pending,
        );
        let denials: Vec<(String, i64)> = sqlx::query_as(
            "SELECT r.tenant, COUNT(*) FROM run_calls c JOIN runs r ON r.id = c.run
             WHERE c.decision LIKE 'denied%' GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(pool)
        .await?;
        by_tenant(
            &mut out,
            "capdesk_denials_total",
            "counter",
            "Plugin calls refused by grants or policy.",
            &denials,
        );
        let queue: Vec<(String, i64)> = queue.iter().map(|(t, n)| (t.clone(), *n as i64)).collect();
        by_tenant(
            &mut out,
            "capdesk_queue_depth",
            "gauge",
            "Tickets waiting for a worker.",
            &queue,
        );
        self.runs.lock().expect("metrics lock").write(
            &mut out,
            "capdesk_run_seconds",
            "Time from a request to the run's outcome (submit, answer, approve), in this process.",
        );
        let waits: Vec<(f64,)> = sqlx::query_as(
            "SELECT (julianday(answered_at) - julianday(requested_at)) * 86400.0 FROM approvals
             WHERE answered_at IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        let mut approvals = Histogram::new(APPROVAL_BUCKETS);
        for (seconds,) in waits {
            approvals.observe(seconds);
        }
        approvals.write(
            &mut out,
            "capdesk_approval_wait_seconds",
            "Time from an approval request to its answer.",
        );
        Ok(out)
    }
}

/// One metric with a `tenant` label: its HELP and TYPE lines, then a sample per tenant.
fn by_tenant(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (tenant, n) in rows {
        let _ = writeln!(out, "{name}{{tenant=\"{}\"}} {n}", label(tenant));
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.01, 0.1, 1.0]);
        h.observe(0.005);
        h.observe(0.05);
        h.observe(5.0);
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.01\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
