//! The technician's side of the API: submit and read tickets, read runs with their
//! journal, answer a waiting run's question, the escalation queue, and approval
//! requests (list, read, approve, reject). Runs go through the run queue; reads check
//! the token's tenant before they show anything.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::auth::Caller;
use super::error::{ApiError, Body, ErrorBody};
use crate::connectors::{NewTicket, Person};
use crate::engine::Submission;
use crate::store::approvals::Answer;
use crate::store::tokens::Role;
use crate::store::{parse_approval_id, parse_run_id, parse_ticket_id};

/// A ticket as the API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// The requester's email.
    from: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    /// `api` unless said (`chat`, `email`, `portal`, ...).
    #[serde(default)]
    channel: Option<String>,
    /// The integration already proved who the requester is.
    #[serde(default)]
    verified: bool,
    /// Intake form fields (`target`, `group`, ...).
    #[serde(default)]
    fields: std::collections::BTreeMap<String, String>,
}

impl TicketRequest {
    /// The ticket, arriving by `channel` unless the request names one.
    pub fn into_ticket(self, channel: &str) -> Result<NewTicket, ApiError> {
        if !self.from.contains('@') {
            return Err(ApiError::bad_request(format!(
                "`from` must be the requester's email address, not {:?}",
                self.from
            )));
        }
        Ok(NewTicket {
            subject: self.subject,
            body: self.body,
            requester: Person {
                email: self.from.trim().to_string(),
                name: self.name,
            },
            channel: self.channel.unwrap_or_else(|| channel.into()),
            requester_verified: self.verified,
            fields: self.fields.into_iter().collect(),
        })
    }
}

/// Submit a ticket: it is recorded, triaged and run; the answer is the outcome.
#[utoipa::path(post, path = "/tenants/{tenant}/tickets", tag = "tickets", summary = "Submit a ticket; answers with its outcome", params(("tenant" = String, Path, description = "Tenant id")), request_body = TicketRequest, responses((status = 201, description = "The outcome, as `ticket submit --json` prints it", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn submit(
    State(api): State<Api>,
    caller: Caller,
    Path(tenant): Path<String>,
    Body(req): Body<TicketRequest>,
) -> Result<(StatusCode, Json<Submission>), ApiError> {
    caller.require(&[Role::Admin, Role::Technician], "submitting a ticket")?;
    caller.tenant(&tenant)?;
    let ticket = req.into_ticket("api")?;
    let desk = caller.desk;
    let t = tenant.clone();
    let submission = api
        .queued(&tenant, async move { desk.submit(&t, ticket).await })
        .await?;
    Ok((StatusCode::CREATED, Json(submission)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    tenant: Option<String>,
}

/// A tenant's tickets, newest first.
#[utoipa::path(get, path = "/tenants/{tenant}/tickets", tag = "tickets", summary = "A tenant's tickets, newest first", params(("tenant" = String, Path, description = "Tenant id"), ("limit" = Option<i64>, Query)), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn tickets(
    caller: Caller,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Technician], "listing tickets")?;
    caller.tenant(&tenant)?;
    caller.desk.store.tenant(&tenant).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let records = caller
        .desk
        .sandbox(&tenant)
        .tickets(limit)
        .await
        .map_err(anyhow::Error::from)?;
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "ticket": r.ticket.id, "status": r.status, "subject": r.ticket.details.subject,
                "requester": r.ticket.details.requester, "channel": r.ticket.details.channel,
            })
        })
        .collect();
    Ok(Json(json!(out)))
}

/// A ticket with its notes and runs.
#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets", summary = "A ticket with its notes and runs", params(("id" = String, Path, description = "`T-12`")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn ticket(caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Technician], "reading a ticket")?;
    let number = parse_ticket_id(&id)?;
    let tenant = caller.desk.store.ticket_tenant(number).await?;
    caller.tenant(&tenant)?;
    let record = caller
        .desk
        .connectors(&tenant)
        .psa
        .get_ticket(&id)
        .await
        .map_err(anyhow::Error::from)?;
    let runs = caller.desk.store.runs_of_ticket(number).await?;
    Ok(Json(crate::views::ticket(&tenant, &record, &runs)))
}

/// A run with every call it made.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs", summary = "A run with every call it made", params(("id" = String, Path, description = "`R-12`")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn run(caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Technician], "reading a run")?;
    let run = caller.desk.store.run(parse_run_id(&id)?).await?;
    caller.tenant(&run.tenant)?;
    let journal = caller.desk.store.journal(run.id).await?;
    Ok(Json(crate::views::run(&run, &journal)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    text: String,
}

/// Answer the question a waiting run asked, as the token's person; resumes the run.
#[utoipa::path(post, path = "/runs/{id}/answer", tag = "runs", summary = "Answer a waiting run's question as the token's person", params(("id" = String, Path)), request_body = AnswerRequest, responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn answer(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<AnswerRequest>,
) -> Result<Json<Submission>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Technician],
        "answering a run's question",
    )?;
    let run = caller.desk.store.run(parse_run_id(&id)?).await?;
    caller.tenant(&run.tenant)?;
    let by = caller.person()?.to_string();
    let desk = caller.desk;
    let submission = api
        .queued(&run.tenant, async move {
            desk.answer(run.id, &by, &req.text).await
        })
        .await?;
    Ok(Json(submission))
}

/// Tickets handed to a technician, newest first, with the reason of their last run.
#[utoipa::path(get, path = "/escalations", tag = "tickets", summary = "Tickets handed to a technician, with the reason", params(("tenant" = Option<String>, Query), ("limit" = Option<i64>, Query)), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn escalations(
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Technician],
        "reading the escalation queue",
    )?;
    let tenants: Vec<String> = match (caller.own_tenant(), &q.tenant) {
        (Some(own), _) => {
            if let Some(asked) = &q.tenant {
                caller.tenant(asked)?;
            }
            vec![own.to_string()]
        }
        (None, Some(asked)) => {
            caller.desk.store.tenant(asked).await?;
            vec![asked.clone()]
        }
        (None, None) => caller
            .desk
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect(),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let out = caller.desk.escalations(&tenants, limit).await?;
    Ok(Json(json!(out)))
}

/// Pending approval requests the caller may answer: all of them for an admin; for a
/// technician or an approver, those in their tenant that name them.
#[utoipa::path(get, path = "/approvals", tag = "approvals", summary = "Pending approvals the caller may answer", params(("tenant" = Option<String>, Query)), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn approvals(
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(t) = &q.tenant {
        caller.tenant(t)?;
        caller.desk.store.tenant(t).await?;
    }
    let tenant = q.tenant.as_deref().or(caller.own_tenant());
    let pending = caller.desk.store.pending_approvals(tenant).await?;
    let out: Vec<Value> = pending
        .iter()
        .filter(|a| caller.may_answer(a))
        .map(crate::views::approval)
        .collect();
    Ok(Json(json!(out)))
}

/// One approval request, pending or answered.
#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals", summary = "One approval request", params(("id" = String, Path, description = "`A-3`")), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn approval(caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let row = caller.desk.store.approval(parse_approval_id(&id)?).await?;
    caller.tenant(&row.tenant)?;
    // A technician reads any of their tenant's requests; an approver only their own.
    if caller.token.role == Role::Approver {
        let person = caller.person()?;
        if !row
            .approver_emails()
            .iter()
            .any(|e| e.eq_ignore_ascii_case(person))
        {
            return Err(ApiError::forbidden(format!(
                "approval {id} does not name {person}"
            )));
        }
    }
    Ok(Json(crate::views::approval(&row)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[serde(default)]
    comment: Option<String>,
}

#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals", summary = "Approve as the token's person; resumes the run", params(("id" = String, Path)), request_body(content = Option<DecisionRequest>), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn approve(
    api: State<Api>,
    caller: Caller,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Submission>, ApiError> {
    decide(api, caller, id, body, Answer::Approve).await
}

#[utoipa::path(post, path = "/approvals/{id}/reject", tag = "approvals", summary = "Reject as the token's person; the plugin gets `rejected`", params(("id" = String, Path)), request_body(content = Option<DecisionRequest>), responses((status = 200, description = "OK", body = serde_json::Value), (status = "default", description = "An error: `{error, detail}` saying what was wrong and what to do", body = ErrorBody)))]
pub async fn reject(
    api: State<Api>,
    caller: Caller,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Submission>, ApiError> {
    decide(api, caller, id, body, Answer::Reject).await
}

/// Approve or reject as the token's person; only an entitled approver is heard (anyone
/// else is refused and the attempt audited). Resumes the run.
async fn decide(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
    answer: Answer,
) -> Result<Json<Submission>, ApiError> {
    let number = parse_approval_id(&id)?;
    // The body is optional: `{"comment": "..."}` or nothing.
    let comment = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<DecisionRequest>(&body)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "the body must be empty or {{\"comment\": \"...\"}}: {e}"
                ))
            })?
            .comment
    };
    let submission = decide_approval(&api, caller, number, answer, comment).await?;
    Ok(Json(submission))
}

/// Answer approval `number` as the caller's person, on the run queue: the API's and the
/// console's approve and reject buttons both come here.
pub async fn decide_approval(
    api: &Api,
    caller: Caller,
    number: i64,
    answer: Answer,
    comment: Option<String>,
) -> Result<Submission, ApiError> {
    let row = caller.desk.store.approval(number).await?;
    caller.tenant(&row.tenant)?;
    let by = caller.person()?.to_string();
    let desk = caller.desk;
    api.queued(&row.tenant, async move {
        desk.decide_approval(number, &by, answer, comment.as_deref())
            .await
    })
    .await
}
