//! The console's work pages: the home page, a tenant's tickets, one ticket, a run's
//! journal as a timeline (what the plugin asked, what was decided, what the connector
//! did), the approvals queue with approve and reject, the technician's escalation
//! queue, and the review of shadow runs.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Notice, Operator, PageError, done};
use crate::api::Api;
use crate::connectors::{Psa as _, TicketStatus};
use crate::journal::JournalEntry;
use crate::store::approvals::{Answer, approval_label};
use crate::store::tokens::Role;
use crate::store::{
    ApprovalRow, RunRow, parse_approval_id, parse_run_id, parse_ticket_id, run_label, ticket_label,
};

/// The tenants with what waits in each; an approver goes straight to their queue.
pub async fn home(operator: Operator, Query(n): Query<Notice>) -> Result<Response, PageError> {
    if operator.caller.token.role == Role::Approver {
        return Ok(Redirect::to("/console/approvals").into_response());
    }
    let store = &operator.caller.desk.store;
    let pending = store
        .pending_approvals(operator.caller.own_tenant())
        .await?;
    let mut tenants = Vec::new();
    for t in store.tenants().await? {
        if !operator.tenants.contains(&t.id) {
            continue;
        }
        let records = operator
            .caller
            .desk
            .sandbox(&t.id)
            .tickets(500)
            .await
            .map_err(anyhow::Error::from)?;
        let count = |s: TicketStatus| records.iter().filter(|r| r.status == s).count();
        tenants.push(context! {
            id => t.id, name => t.name,
            tickets => records.len(),
            resolved => count(TicketStatus::Resolved),
            waiting => count(TicketStatus::Waiting),
            escalated => count(TicketStatus::Escalated),
            approvals => pending.iter().filter(|a| a.tenant == t.id).count(),
        });
    }
    operator.render(
        "home.html",
        context! { title => "Tenants", rows => tenants, notice => n.notice },
    )
}

/// A tenant's latest tickets.
pub async fn tenant(
    operator: Operator,
    Path(tenant): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "a tenant's tickets")?;
    operator.tenant(&tenant)?;
    let desk = &operator.caller.desk;
    let t = desk.store.tenant(&tenant).await?;
    let records = desk
        .sandbox(&tenant)
        .tickets(200)
        .await
        .map_err(anyhow::Error::from)?;
    let mut rows = Vec::new();
    for r in &records {
        let last = desk
            .store
            .runs_of_ticket(parse_ticket_id(&r.ticket.id)?)
            .await?
            .pop();
        rows.push(context! {
            id => r.ticket.id, subject => r.ticket.details.subject,
            requester => r.ticket.details.requester.email,
            channel => r.ticket.details.channel, status => r.status.name(),
            plugin => last.as_ref().and_then(|l| l.plugin.clone()),
            run => last.as_ref().map(|l| run_label(l.id)),
            reason => last.map(|l| l.reason),
        });
    }
    operator.render(
        "tenant.html",
        context! { title => t.name.clone(), tenant => t, tab => "tickets", rows, notice => n.notice },
    )
}

/// One ticket: what was asked, its notes (public and internal), and its runs.
pub async fn ticket(operator: Operator, Path(id): Path<String>) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "a ticket")?;
    let number = parse_ticket_id(&id)?;
    let desk = &operator.caller.desk;
    let tenant = desk.store.ticket_tenant(number).await?;
    operator.tenant(&tenant)?;
    let record = desk
        .sandbox(&tenant)
        .get_ticket(&ticket_label(number))
        .await
        .map_err(anyhow::Error::from)?;
    let runs: Vec<_> = desk
        .store
        .runs_of_ticket(number)
        .await?
        .iter()
        .map(run_summary)
        .collect();
    let details = &record.ticket.details;
    let fields: Vec<(String, String)> = details.fields.clone().into_iter().collect();
    operator.render(
        "ticket.html",
        context! {
            title => format!("{} {}", record.ticket.id, details.subject),
            tenant, ticket => record.ticket.id, status => record.status.name(),
            subject => details.subject, body => details.body, requester => details.requester,
            channel => details.channel, verified => details.requester_verified, fields,
            parent => record.parent, notes => record.notes, runs,
        },
    )
}

fn run_summary(r: &RunRow) -> minijinja::Value {
    context! {
        id => run_label(r.id), plugin => r.plugin, version => r.plugin_version,
        status => r.status, mode => r.mode, reason => r.reason,
        started_at => r.started_at, finished_at => r.finished_at,
    }
}

/// One step of a run's timeline.
#[derive(Serialize)]
struct Step {
    seq: i64,
    function: String,
    /// `plugin` for the plugin's calls, `host` for what capdesk did around them.
    by: &'static str,
    capability: Option<String>,
    asked: Vec<(String, String)>,
    decision: String,
    /// `allowed`, `denied`, `ask`, `shadow` or `none`: how to colour the decision.
    verdict: &'static str,
    outcome: String,
    ok: bool,
    state: String,
    at: String,
}

fn step(e: &JournalEntry) -> Step {
    let args = serde_json::from_str::<Value>(&e.args).unwrap_or(Value::String(e.args.clone()));
    let asked = match &args {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), words(v))).collect(),
        Value::Null => Vec::new(),
        other => vec![(String::new(), words(other))],
    };
    let d = e.decision.as_str();
    let verdict = if d.starts_with("allowed") {
        "allowed"
    } else if d.starts_with("denied") {
        "denied"
    } else if d.starts_with("ask") || d.starts_with("approved") || d.starts_with("rejected") {
        "ask"
    } else if d.starts_with("shadow") {
        "shadow"
    } else {
        "none"
    };
    let result = serde_json::from_str::<Value>(&e.result).unwrap_or(Value::Null);
    let (outcome, ok) = match &result {
        Value::Object(map) if map.contains_key("error") => (words(&map["error"]), false),
        Value::Object(map) if map.contains_key("ok") => match &map["ok"] {
            Value::Null => ("done".to_string(), true),
            Value::String(s) if s.is_empty() => ("done".to_string(), true),
            v => (words(v), true),
        },
        Value::Null if e.state == "waiting" => ("waiting".to_string(), true),
        Value::Null => ("not known yet".to_string(), true),
        v => (words(v), true),
    };
    let host = e.function.starts_with("host.") || e.function.starts_with("log.");
    Step {
        seq: e.seq,
        function: e.function.clone(),
        by: if host { "host" } else { "plugin" },
        capability: e.capability.clone(),
        asked,
        // The badge says the verdict; the words say the rest (the rule, the reason).
        decision: if d == "-" {
            String::new()
        } else {
            d.strip_prefix(verdict)
                .unwrap_or(d)
                .trim_start_matches([':', ' '])
                .to_string()
        },
        verdict,
        outcome,
        ok,
        state: e.state.clone(),
        at: e.at.clone(),
    }
}

/// A JSON value in words: strings as they are, lists joined, objects as `key: value`.
fn words(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(words).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", words(v)))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// A run's journal as a timeline.
pub async fn run(
    operator: Operator,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "a run's journal")?;
    let desk = &operator.caller.desk;
    let row = desk.store.run(parse_run_id(&id)?).await?;
    operator.tenant(&row.tenant)?;
    let steps: Vec<Step> = desk.store.journal(row.id).await?.iter().map(step).collect();
    let approval = desk
        .store
        .approval_of_run(row.id)
        .await?
        .map(|a| approval_view(&a));
    let waiting_for = row
        .waiting_for
        .as_deref()
        .and_then(|w| serde_json::from_str::<Value>(w).ok())
        .map(|w| words(&w));
    operator.render(
        "run.html",
        context! {
            title => format!("Run {}", run_label(row.id)),
            run => run_summary(&row), tenant => row.tenant, ticket => ticket_label(row.ticket),
            guest_us => row.guest_us, waiting_for, approval, steps, notice => n.notice,
        },
    )
}

fn approval_view(a: &ApprovalRow) -> minijinja::Value {
    context! {
        id => approval_label(a.id), tenant => a.tenant, run => run_label(a.run),
        ticket => ticket_label(a.ticket), summary => a.summary, rule => a.rule,
        requester => a.requester, approvers => a.approver_emails(), status => a.status,
        requested_at => a.requested_at, expires_at => a.expires_at,
        answered_by => a.answered_by, answered_at => a.answered_at, comment => a.comment,
    }
}

/// The pending approvals this person may answer.
pub async fn approvals(operator: Operator, Query(n): Query<Notice>) -> Result<Response, PageError> {
    let caller = &operator.caller;
    let pending = caller
        .desk
        .store
        .pending_approvals(caller.own_tenant())
        .await?;
    let rows: Vec<_> = pending
        .iter()
        .filter(|a| caller.may_answer(a))
        .map(approval_view)
        .collect();
    operator.render(
        "approvals.html",
        context! { title => "Approvals", rows, notice => n.notice },
    )
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Approve or reject as the signed-in person; then show the run (or the queue, to an
/// approver, who cannot read runs).
pub async fn decide(
    State(api): State<Api>,
    operator: Operator,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    let answer = match form.decision.as_str() {
        "approve" => Answer::Approve,
        "reject" => Answer::Reject,
        other => {
            return Err(PageError::page(
                StatusCode::BAD_REQUEST,
                "Unknown decision",
                format!("the decision must be approve or reject, not {other:?}"),
            ));
        }
    };
    let number = parse_approval_id(&id)?;
    let comment = Some(form.comment.trim().to_string()).filter(|c| !c.is_empty());
    let approver = operator.caller.token.role == Role::Approver;
    let submission =
        crate::api::work::decide_approval(&api, operator.caller, number, answer, comment).await?;
    let notice = format!(
        "{} {}: run {} is {} — {}",
        if matches!(answer, Answer::Approve) {
            "Approved"
        } else {
            "Rejected"
        },
        approval_label(number),
        submission.run,
        submission.status.name(),
        submission.reason
    );
    if approver {
        Ok(done("/console/approvals", &notice))
    } else {
        Ok(done(&format!("/console/runs/{}", submission.run), &notice))
    }
}

/// Tickets handed to a technician, with the reason.
pub async fn escalations(operator: Operator) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "the escalation queue")?;
    let rows = operator
        .caller
        .desk
        .escalations(&operator.tenants, 200)
        .await?;
    operator.render(
        "escalations.html",
        context! { title => "Escalations", rows },
    )
}

/// A tenant's shadow runs: what each proposed, and the verdict given on it.
pub async fn shadow(
    operator: Operator,
    Path(tenant): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    operator.require(&[Role::Admin, Role::Technician], "shadow-run review")?;
    operator.tenant(&tenant)?;
    let store = &operator.caller.desk.store;
    let t = store.tenant(&tenant).await?;
    let reviews = store.shadow_reviews(&tenant).await?;
    let mut rows = Vec::new();
    for r in store.shadow_runs(&tenant, 100).await? {
        let proposed: Vec<String> = store
            .journal(r.id)
            .await?
            .iter()
            .filter(|e| e.decision.starts_with("shadow"))
            .map(|e| {
                e.decision
                    .trim_start_matches("shadow")
                    .trim_start_matches([':', ' '])
                    .to_string()
            })
            .collect();
        let review = reviews.iter().find(|v| v.run == r.id);
        rows.push(context! {
            run => run_summary(&r), ticket => ticket_label(r.ticket), proposed, review,
        });
    }
    let scores = store.shadow_scores(&tenant).await?;
    operator.render(
        "shadow.html",
        context! {
            title => format!("{} — shadow review", t.name), tenant => t, tab => "shadow",
            rows, scores, notice => n.notice,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    run: String,
    /// `correct` or `incorrect`.
    verdict: String,
    #[serde(default)]
    note: String,
}

/// Record a verdict on a shadow run.
pub async fn review_shadow(
    operator: Operator,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<ReviewForm>,
) -> Result<Response, PageError> {
    operator.check(&form.csrf)?;
    operator.require(&[Role::Admin, Role::Technician], "reviewing shadow runs")?;
    operator.tenant(&tenant)?;
    let run = parse_run_id(&form.run)?;
    let store = &operator.caller.desk.store;
    if store.run(run).await?.tenant != tenant {
        return Err(PageError::page(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("run {} is not one of tenant {tenant}'s", form.run),
        ));
    }
    let correct = match form.verdict.as_str() {
        "correct" => true,
        "incorrect" => false,
        other => {
            return Err(PageError::page(
                StatusCode::BAD_REQUEST,
                "Unknown verdict",
                format!("the verdict must be correct or incorrect, not {other:?}"),
            ));
        }
    };
    let by = operator
        .caller
        .token
        .person
        .clone()
        .unwrap_or_else(|| format!("token {}", operator.caller.token.name));
    store
        .review_shadow_run(run, correct, &form.note, &by)
        .await?;
    Ok(done(
        &format!("/console/tenants/{tenant}/shadow"),
        &format!("Run {} marked {}", form.run, form.verdict),
    ))
}
