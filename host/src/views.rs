//! The JSON shapes capdesk shows of its records — tickets with notes and runs, runs with
//! their journal, approval requests, installed plugins — in one place, so that the
//! command line's `--json` and the HTTP API say the same thing with the same field
//! names. Loading is the caller's; these only shape what was loaded.

use serde_json::{Value, json};

use crate::connectors::TicketRecord;
use crate::journal::JournalEntry;
use crate::store::approvals::approval_label;
use crate::store::{ApprovalRow, InstalledPlugin, RunRow, run_label, ticket_label};

/// A ticket with its notes and the runs made for it.
pub fn ticket(tenant: &str, record: &TicketRecord, runs: &[RunRow]) -> Value {
    let runs: Vec<_> = runs
        .iter()
        .map(|r| json!({ "run": run_label(r.id), "plugin": r.plugin, "status": r.status, "reason": r.reason }))
        .collect();
    let details = &record.ticket.details;
    json!({
        "ticket": record.ticket.id, "tenant": tenant, "status": record.status,
        "subject": details.subject, "body": details.body,
        "requester": details.requester, "channel": details.channel,
        "requester_verified": details.requester_verified,
        "fields": details.fields, "parent": record.parent,
        "notes": record.notes, "runs": runs,
    })
}

/// A run with every call it made, in order: what the plugin asked, what was decided
/// and what the connector did.
pub fn run(run: &RunRow, journal: &[JournalEntry]) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(json!(text));
    let calls: Vec<Value> = journal
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "function": e.function, "capability": e.capability,
                "arguments": parse(&e.args), "decision": e.decision, "state": e.state,
                "result": parse(&e.result), "at": e.at,
            })
        })
        .collect();
    json!({
        "run": run_label(run.id), "tenant": run.tenant, "ticket": ticket_label(run.ticket),
        "plugin": run.plugin, "plugin_version": run.plugin_version, "plugin_hash": run.plugin_hash,
        "status": run.status, "mode": run.mode, "reason": run.reason,
        "scores": serde_json::from_str::<Value>(&run.scores).unwrap_or_default(),
        "guest_us": run.guest_us, "started_at": run.started_at, "finished_at": run.finished_at,
        "calls": calls,
        "waiting_for": run.waiting_for.as_deref().and_then(|w| serde_json::from_str::<Value>(w).ok()),
    })
}

/// An approval request: what, for which ticket and run, under which rule, who may
/// answer, and until when.
pub fn approval(a: &ApprovalRow) -> Value {
    json!({
        "id": approval_label(a.id), "tenant": a.tenant, "run": run_label(a.run),
        "ticket": ticket_label(a.ticket), "summary": a.summary, "rule": a.rule,
        "requester": a.requester, "approvers": a.approver_emails(), "status": a.status,
        "requested_at": a.requested_at, "expires_at": a.expires_at,
        "answered_by": a.answered_by, "answered_at": a.answered_at, "comment": a.comment,
    })
}

/// An installed plugin with the capabilities its manifest requests.
pub fn plugin(p: &InstalledPlugin) -> Value {
    let manifest: Value = serde_json::from_str(&p.manifest).unwrap_or_default();
    let imports: Value = serde_json::from_str(&p.imports).unwrap_or_default();
    json!({
        "id": p.id, "version": p.version, "category": p.category, "description": p.description,
        "hash": p.hash, "size_bytes": p.size_bytes, "installed_at": p.installed_at,
        "capabilities": manifest["capabilities"], "imports": imports,
    })
}
