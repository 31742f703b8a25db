//! Triage quality: how well the installed plugins' `triage` scores pick a ticket's
//! category, measured on the hand-labelled tickets in `tests/data/triage/` (see its
//! README for the labels and the look-alike policy). Every ticket goes through
//! `Desk::classify` exactly as intake would score it (bundled plugins, default
//! threshold, nothing submitted, nothing run); the predicted label is the winning
//! plugin's category, or `none` when no plugin reaches the threshold. Prints Markdown:
//! precision, recall and F1 per installed category, the `none` row, accuracy, macro-F1,
//! the look-alikes that were wrongly claimed, a confusion table and classify latency.
//! Categories of the set with no installed plugin are reported on their own line: their
//! tickets are expected to stay unmatched until that plugin exists.
//!
//! `cargo bench -p capdesk --bench triage`

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use capdesk::connectors::{NewTicket, Person, Ticket};
use capdesk::engine::Desk;
use capdesk::store::Limits;
use serde::Deserialize;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DATASET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/triage/labelled-tickets.jsonl"
);
const COMMAND: &str = "cargo bench -p capdesk --bench triage";
const TENANT: &str = "triage-eval";
const REQUESTER: &str = "user@example.test";
/// The label for tickets no category should take.
const NONE: &str = "none";
/// Every label the set may use: the six L1 categories and `none`.
const LABELS: [&str; 7] = [
    "password-reset",
    "account-unlock",
    "mfa-reenroll",
    "mailbox-access",
    "license-change",
    "group-membership",
    NONE,
];
const CHANNELS: [&str; 3] = ["chat", "email", "portal"];
const MIN_TICKETS: usize = 300;
/// Passes over the whole set; the first gives the predictions, all give latencies.
const PASSES: usize = 5;
/// How many wrongly claimed `none` tickets to list by id.
const LISTED: usize = 20;
/// How many missed tickets of installed categories to list by id.
const MISSES_LISTED: usize = 40;

/// One row of `labelled-tickets.jsonl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelledTicket {
    id: String,
    subject: String,
    body: String,
    channel: String,
    fields: Vec<(String, String)>,
    label: String,
    #[serde(default)]
    note: Option<String>,
}

impl LabelledTicket {
    /// A `none` ticket written to share vocabulary with a category (its note starts
    /// with `look-alike`).
    fn is_look_alike(&self) -> bool {
        self.label == NONE
            && self
                .note
                .as_deref()
                .is_some_and(|n| n.starts_with("look-alike"))
    }

    fn ticket(&self) -> Ticket {
        Ticket {
            id: self.id.clone(),
            details: NewTicket {
                subject: self.subject.clone(),
                body: self.body.clone(),
                requester: Person {
                    email: REQUESTER.into(),
                    name: "Labelled Requester".into(),
                },
                channel: self.channel.clone(),
                requester_verified: false,
                fields: self.fields.clone(),
            },
        }
    }
}

/// Read and check the labelled set; any problem stops the evaluation with its line.
fn load(path: &Path) -> Vec<LabelledTicket> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the labelled set {}: {e}\n(run from the workspace: {COMMAND})",
            path.display()
        )
    });
    let mut rows = Vec::new();
    let mut ids = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row: LabelledTicket = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{}:{n}: not a labelled ticket ({e}); each line is one JSON object with \
                 id, subject, body, channel, fields, label and an optional note",
                path.display()
            )
        });
        if row.id.trim().is_empty() {
            panic!("{}:{n}: the id is empty", path.display());
        }
        if !ids.insert(row.id.clone()) {
            panic!(
                "{}:{n}: id {} is used twice; ids must be unique",
                path.display(),
                row.id
            );
        }
        if !LABELS.contains(&row.label.as_str()) {
            panic!(
                "{}:{n}: ticket {} has unknown label {:?}; the labels are {}",
                path.display(),
                row.id,
                row.label,
                LABELS.join(", ")
            );
        }
        if !CHANNELS.contains(&row.channel.as_str()) {
            panic!(
                "{}:{n}: ticket {} has channel {:?}; use one of {}",
                path.display(),
                row.id,
                row.channel,
                CHANNELS.join(", ")
            );
        }
        if row.subject.trim().is_empty() && row.body.trim().is_empty() {
            panic!(
                "{}:{n}: ticket {} has neither a subject nor a body",
                path.display(),
                row.id
            );
        }
        rows.push(row);
    }
    if rows.len() < MIN_TICKETS {
        panic!(
            "{} has {} tickets; the evaluation needs at least {MIN_TICKETS} to mean anything",
            path.display(),
            rows.len()
        );
    }
    rows
}

/// What classify made of one ticket.
struct Prediction {
    /// The predicted label: the winner's category, or `none`.
    label: String,
    /// The winning plugin, if any.
    plugin: Option<String>,
    /// Every plugin's score, with the plugin's category.
    scores: Vec<(String, String, f32)>,
}

impl Prediction {
    /// The winner's score, or 0 when nothing won.
    fn winning_score(&self) -> f32 {
        self.scores
            .iter()
            .find(|(plugin, ..)| Some(plugin) == self.plugin.as_ref())
            .map_or(0.0, |(.., s)| *s)
    }

    /// The best score among the plugins of `category`.
    fn score_for(&self, category: &str) -> f32 {
        self.scores
            .iter()
            .filter(|(_, c, _)| c == category)
            .map(|(.., s)| *s)
            .fold(0.0, f32::max)
    }
}

/// Precision, recall and F1 for one label; `None` where the ratio has no denominator.
struct Quality {
    support: usize,
    predicted: usize,
    tp: usize,
    precision: Option<f64>,
    recall: Option<f64>,
    f1: Option<f64>,
}

impl Quality {
    /// Measured over the tickets `counted` lets through.
    fn of(
        label: &str,
        rows: &[LabelledTicket],
        predictions: &[Prediction],
        counted: impl Fn(&LabelledTicket) -> bool,
    ) -> Quality {
        let pairs = || rows.iter().zip(predictions).filter(|(r, _)| counted(r));
        let support = pairs().filter(|(r, _)| r.label == label).count();
        let predicted = pairs().filter(|(_, p)| p.label == label).count();
        let tp = pairs()
            .filter(|(r, p)| r.label == label && p.label == label)
            .count();
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            // No prediction at all for a label that has tickets: nothing found.
            (None, Some(_)) => Some(0.0),
            _ => None,
        };
        Quality {
            support,
            predicted,
            tp,
            precision,
            recall,
            f1,
        }
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.3}"))
}

fn micros(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6
}

/// A short one-line form of a ticket's subject for the failure lists.
fn headline(row: &LabelledTicket) -> String {
    let text = if row.subject.trim().is_empty() {
        &row.body
    } else {
        &row.subject
    };
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = line.chars().take(60).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short.replace('|', "/")
}

fn main() {
    let rows = load(Path::new(DATASET));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::open(dir.path()).await.unwrap();
        desk.install_bundled().await.unwrap();
        desk.store
            .add_tenant(TENANT, "Triage evaluation")
            .await
            .unwrap();
        let plugins = desk.store.plugins().await.unwrap();
        let category_of: HashMap<String, String> = plugins
            .iter()
            .map(|p| (p.id.clone(), p.category.clone()))
            .collect();
        let installed: BTreeSet<&str> = plugins.iter().map(|p| p.category.as_str()).collect();

        let tickets: Vec<Ticket> = rows.iter().map(LabelledTicket::ticket).collect();
        let mut predictions = Vec::with_capacity(rows.len());
        let mut latencies = Vec::with_capacity(rows.len() * PASSES);
        let mut triage_errors: BTreeMap<String, usize> = BTreeMap::new();
        for pass in 0..PASSES {
            for (i, ticket) in tickets.iter().enumerate() {
                let started = Instant::now();
                let (scores, winner) = desk.classify(TENANT, ticket).await.unwrap();
                latencies.push(started.elapsed());
                if pass > 0 {
                    let first: &Prediction = &predictions[i];
                    assert_eq!(
                        first.plugin, winner,
                        "triage is not deterministic: ticket {} went to {:?}, then {:?}",
                        ticket.id, first.plugin, winner
                    );
                    continue;
                }
                for s in scores.iter().filter(|s| s.error.is_some()) {
                    *triage_errors.entry(s.plugin.clone()).or_default() += 1;
                }
                let label = match &winner {
                    Some(id) => category_of
                        .get(id)
                        .unwrap_or_else(|| panic!("classify chose {id}, which is not installed"))
                        .clone(),
                    None => NONE.to_string(),
                };
                predictions.push(Prediction {
                    label,
                    plugin: winner,
                    scores: scores
                        .iter()
                        .map(|s| (s.plugin.clone(), category_of[&s.plugin].clone(), s.score))
                        .collect(),
                });
            }
        }
        latencies.sort();

        // The guest side alone: a fresh instance and `triage` for every plugin, without
        // the store reads classify makes per ticket.
        let loaded = {
            let mut loaded = Vec::new();
            for p in &plugins {
                loaded.push(desk.runtime.load(&p.hash).await.unwrap());
            }
            loaded
        };
        let mut guest = Vec::with_capacity(tickets.len() * PASSES);
        for _ in 0..PASSES {
            for ticket in &tickets {
                let started = Instant::now();
                for plugin in &loaded {
                    let mut instance = desk
                        .runtime
                        .instantiate(plugin, Limits::default(), 0)
                        .await
                        .unwrap();
                    instance.triage(ticket).await.unwrap();
                }
                guest.push(started.elapsed());
            }
        }
        guest.sort();

        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *count.entry(r.label.as_str()).or_default() += 1;
        }
        let measured: Vec<&str> = LABELS
            .iter()
            .copied()
            .filter(|l| *l != NONE && installed.contains(l))
            .collect();
        let not_installed: Vec<&str> = LABELS
            .iter()
            .copied()
            .filter(|l| *l != NONE && !installed.contains(l))
            .collect();
        let unlabelled: Vec<&str> = installed
            .iter()
            .copied()
            .filter(|c| !LABELS.contains(c))
            .collect();
        let pairs = || rows.iter().zip(&predictions);

        println!("## Triage evaluation\n");
        println!(
            "{} labelled tickets ({}); plugins installed: {}; threshold {:.2}.\n",
            rows.len(),
            LABELS
                .iter()
                .map(|l| format!("{l} {}", count.get(l).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", "),
            plugins
                .iter()
                .map(|p| format!("{} ({})", p.id, p.category))
                .collect::<Vec<_>>()
                .join(", "),
            desk.triage_threshold,
        );

        println!("| label | support | predicted | TP | precision | recall | F1 |");
        println!("|---|---|---|---|---|---|---|");
        let mut f1s = Vec::new();
        for label in &measured {
            let q = Quality::of(label, &rows, &predictions, |_| true);
            f1s.extend(q.f1);
            println!(
                "| {label} | {} | {} | {} | {} | {} | {} |",
                q.support,
                q.predicted,
                q.tp,
                fmt(q.precision),
                fmt(q.recall),
                fmt(q.f1)
            );
        }
        // Tickets of categories without a plugin are reported on their own lines below,
        // not as misses of `none`.
        let none = Quality::of(NONE, &rows, &predictions, |r| {
            r.label == NONE || installed.contains(r.label.as_str())
        });
        println!(
            "| none ({} left unmatched, {} wrongly claimed) | {} | {} | {} | {} | {} | {} |",
            none.tp,
            none.support - none.tp,
            none.support,
            none.predicted,
            none.tp,
            fmt(none.precision),
            fmt(none.recall),
            fmt(none.f1)
        );
        println!();
        println!(
            "A category's `predicted` counts every ticket its plugins took, whatever the label \
             (tickets of categories with no plugin yet too). The `none` row leaves those tickets \
             out: its `predicted` is the tickets of installed categories and `none` left unmatched.\n"
        );

        for label in &not_installed {
            let theirs: Vec<_> = pairs().filter(|(r, _)| r.label == *label).collect();
            let claimed: Vec<_> = theirs.iter().filter(|(_, p)| p.label != NONE).collect();
            let by: Vec<String> = claimed
                .iter()
                .map(|(r, p)| format!("{} → {}", r.id, p.plugin.as_deref().unwrap_or("?")))
                .collect();
            println!(
                "- **{label}: not installed** — {} tickets, {} left unmatched as expected, {} claimed by \
                 another plugin{}",
                theirs.len(),
                theirs.len() - claimed.len(),
                claimed.len(),
                if by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by.join(", "))
                }
            );
        }
        for category in &unlabelled {
            let took = pairs().filter(|(_, p)| p.label == *category).count();
            println!(
                "- **{category}: installed, but the set has no label for it** — took {took} tickets (all counted wrong)"
            );
        }

        let strict = pairs().filter(|(r, p)| r.label == p.label).count();
        // Today's target: a ticket of a category without a plugin should stay unmatched.
        let expected = |r: &LabelledTicket| {
            if r.label == NONE || installed.contains(r.label.as_str()) {
                r.label.clone()
            } else {
                NONE.to_string()
            }
        };
        let today = pairs().filter(|(r, p)| expected(r) == p.label).count();
        let macro_f1 = (!f1s.is_empty()).then(|| f1s.iter().sum::<f64>() / f1s.len() as f64);
        let look_alikes: Vec<_> = pairs().filter(|(r, _)| r.is_look_alike()).collect();
        let fooled: Vec<_> = look_alikes
            .iter()
            .filter(|(_, p)| p.label != NONE)
            .collect();
        println!();
        println!("| measure | result |");
        println!("|---|---|");
        println!(
            "| accuracy, categories without a plugin expected unmatched | {:.3} ({today}/{}) |",
            today as f64 / rows.len() as f64,
            rows.len()
        );
        println!(
            "| accuracy against every label (the goal once all six plugins exist) | {:.3} ({strict}/{}) |",
            strict as f64 / rows.len() as f64,
            rows.len()
        );
        println!(
            "| macro-F1 over categories with plugins ({}) | {} |",
            measured.join(", "),
            fmt(macro_f1)
        );
        println!(
            "| look-alike `none` tickets wrongly claimed | {} of {} |",
            fooled.len(),
            look_alikes.len()
        );
        println!(
            "| `Desk::classify` latency per ticket ({} plugins, {} calls), p50 / p90 / p99 | {:.0} µs / {:.0} µs / {:.0} µs |",
            plugins.len(),
            latencies.len(),
            micros(&latencies, 0.5),
            micros(&latencies, 0.9),
            micros(&latencies, 0.99)
        );
        println!(
            "| of which in the guests: instantiate + triage of every plugin, p50 / p99 | {:.0} µs / {:.0} µs |",
            micros(&guest, 0.5),
            micros(&guest, 0.99)
        );
        if !triage_errors.is_empty() {
            let errors: Vec<String> = triage_errors
                .iter()
                .map(|(p, n)| format!("{p} ×{n}"))
                .collect();
            println!(
                "| plugins that failed in triage (scored 0) | {} |",
                errors.join(", ")
            );
        }

        println!("\n### Look-alikes wrongly claimed\n");
        if fooled.is_empty() {
            println!("None.");
        } else {
            println!("| ticket | claimed by | score | subject | why it is a look-alike |");
            println!("|---|---|---|---|---|");
            for (r, p) in fooled.iter().take(LISTED) {
                println!(
                    "| {} | {} | {:.2} | {} | {} |",
                    r.id,
                    p.plugin.as_deref().unwrap_or("?"),
                    p.winning_score(),
                    headline(r),
                    r.note.as_deref().unwrap_or("").replace('|', "/")
                );
            }
            if fooled.len() > LISTED {
                println!("\n…and {} more.", fooled.len() - LISTED);
            }
        }

        let other_claims: Vec<_> = pairs()
            .filter(|(r, p)| r.label == NONE && !r.is_look_alike() && p.label != NONE)
            .collect();
        if !other_claims.is_empty() {
            println!("\n### Other `none` tickets wrongly claimed\n");
            for (r, p) in other_claims.iter().take(LISTED) {
                println!(
                    "- {} → {} ({:.2}): {}",
                    r.id,
                    p.plugin.as_deref().unwrap_or("?"),
                    p.winning_score(),
                    headline(r)
                );
            }
        }

        let misses: Vec<_> = pairs()
            .filter(|(r, p)| measured.contains(&r.label.as_str()) && p.label != r.label)
            .collect();
        println!("\n### Missed or misrouted tickets of installed categories\n");
        if misses.is_empty() {
            println!("None.");
        } else {
            println!("| ticket | label | its category's score | predicted | subject |");
            println!("|---|---|---|---|---|");
            for (r, p) in misses.iter().take(MISSES_LISTED) {
                let predicted = match &p.plugin {
                    Some(plugin) => format!("{} ({plugin} {:.2})", p.label, p.winning_score()),
                    None => NONE.to_string(),
                };
                println!(
                    "| {} | {} | {:.2} | {predicted} | {} |",
                    r.id,
                    r.label,
                    p.score_for(&r.label),
                    headline(r)
                );
            }
            if misses.len() > MISSES_LISTED {
                println!("\n…and {} more.", misses.len() - MISSES_LISTED);
            }
        }

        let columns: Vec<&str> = measured
            .iter()
            .copied()
            .chain(unlabelled.iter().copied())
            .chain([NONE])
            .collect();
        println!("\n### Confusion (rows: label, columns: predicted)\n");
        println!("| label \\ predicted | {} |", columns.join(" | "));
        println!("|---|{}", "---|".repeat(columns.len()));
        for label in LABELS {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    pairs()
                        .filter(|(r, p)| r.label == label && p.label == *c)
                        .count()
                        .to_string()
                })
                .collect();
            let marker = if label != NONE && !installed.contains(label) {
                " (not installed)"
            } else {
                ""
            };
            println!("| {label}{marker} | {} |", cells.join(" | "));
        }

        println!("\nReproduce: `{COMMAND}`");
    });
}
