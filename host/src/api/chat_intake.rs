//! What the Slack and Teams endpoints share once a request is verified and its sender
//! known by email: a message becomes the answer to the question a run waits for the
//! sender to type, or else a new ticket (queued, so the vendor gets its quick 200); a
//! button click is checked to belong to the endpoint's tenant and to come from a person
//! of the tenant's directory, then goes through `Desk::decide_approval` or
//! `Desk::answer`, which decide whether this person may answer. Owns no vendor format.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Api;
use super::error::ApiError;
use crate::connectors::{ConnectorError, NewTicket, Person};
use crate::engine::Submission;
use crate::store::approvals::{Answer, approval_label};
use crate::store::{parse_approval_id, parse_run_id, run_label};

/// The longest ticket subject taken from the first line of a message.
const SUBJECT_CHARS: usize = 80;

/// The subject of a ticket made from a chat message: its first line, shortened.
pub fn subject_of(text: &str) -> String {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if first.chars().count() <= SUBJECT_CHARS {
        return first.to_string();
    }
    let mut cut: String = first.chars().take(SUBJECT_CHARS - 1).collect();
    cut.push('…');
    cut
}

pub fn upstream(e: ConnectorError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string())
}

/// Take a message `text` from `email` (shown as `name` when the directory does not
/// know them) for `tenant`: answer the run waiting for them to type, or open a ticket.
/// The work is queued; the answer says which. `actor` names the channel in the audit.
pub async fn take_message(
    api: &Api,
    tenant: &str,
    actor: String,
    email: &str,
    name: String,
    text: String,
) -> Result<Value, ApiError> {
    let connectors = api.desk.connectors(tenant);
    // A chat account whose email is a person of the tenant's directory is that person.
    let directory = connectors.idp.find_user(email).await.ok();
    let desk = api.desk.acting_as(actor);
    let (t, who) = (tenant.to_string(), email.to_string());
    type Job = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
    let (job, taken): (Job, Value) =
        match api.desk.store.run_waiting_for_text(tenant, email).await? {
            Some(run) => (
                Box::pin(async move { desk.answer(run, &who, &text).await.map(drop) }),
                json!({ "ok": true, "answer": run_label(run) }),
            ),
            None => {
                let ticket = NewTicket {
                    subject: subject_of(&text),
                    body: text,
                    requester: Person {
                        email: email.to_string(),
                        name: directory.as_ref().map_or(name, |u| u.name.clone()),
                    },
                    channel: "chat".into(),
                    requester_verified: directory.is_some(),
                    fields: Vec::new(),
                };
                (
                    Box::pin(async move { desk.submit(&t, ticket).await.map(drop) }),
                    json!({ "ok": true, "ticket": "queued" }),
                )
            }
        };
    let chat = connectors.chat.clone();
    let to = email.to_string();
    api.queue.push(tenant, async move {
        if let Err(e) = job.await {
            tracing::warn!(email = %to, "a chat message could not be taken: {e:#}");
            let sorry = format!("capdesk could not take your message: {e:#}");
            if let Err(e) = chat.send(&to, &sorry).await {
                tracing::warn!(email = %to, "could not tell them: {e}");
            }
        }
    })?;
    Ok(taken)
}

/// What a click on a button asks for.
pub enum Click {
    Decide(i64, Answer),
    Answer(i64, String),
}

impl Click {
    /// Approve or reject approval `id` (`A-12`).
    pub fn decide(id: &str, answer: Answer) -> Result<Click, ApiError> {
        let id = parse_approval_id(id).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Click::Decide(id, answer))
    }

    /// Answer run `run` (`R-7`) with `choice`.
    pub fn answer(run: &str, choice: &str) -> Result<Click, ApiError> {
        let run = parse_run_id(run).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Click::Answer(run, choice.to_string()))
    }

    /// Refuse a click on another tenant's approval or run: it looks exactly like one
    /// that does not exist. Writes nothing.
    pub async fn check_tenant(&self, api: &Api, tenant: &str) -> Result<(), ApiError> {
        let store = &api.desk.store;
        let (owner, what) = match self {
            Click::Decide(id, _) => (
                store.approval(*id).await.map(|a| a.tenant),
                format!("approval {}", approval_label(*id)),
            ),
            Click::Answer(run, _) => (
                store.run(*run).await.map(|r| r.tenant),
                format!("run {}", run_label(*run)),
            ),
        };
        if owner.is_ok_and(|t| t == tenant) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "tenant {tenant} has no {what}; the button is not one of this tenant's"
            )))
        }
    }

    /// Do what the click asks, as `email` (who must be a person of the tenant's
    /// directory; whether they may answer is the desk's to decide).
    pub async fn perform(
        self,
        api: &Api,
        tenant: &str,
        actor: String,
        email: String,
    ) -> Result<Submission, ApiError> {
        match api.desk.connectors(tenant).idp.find_user(&email).await {
            Ok(_) => {}
            Err(ConnectorError::NotFound(_)) => {
                return Err(ApiError::forbidden(format!(
                    "{email} is not a person of tenant {tenant}'s directory, so capdesk does \
                     not take their clicks"
                )));
            }
            Err(e) => return Err(upstream(e)),
        }
        let desk = api.desk.acting_as(actor);
        match self {
            Click::Decide(id, answer) => {
                api.queued(tenant, async move {
                    desk.decide_approval(id, &email, answer, None).await
                })
                .await
            }
            Click::Answer(run, choice) => {
                api.queued(
                    tenant,
                    async move { desk.answer(run, &email, &choice).await },
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_the_first_line_shortened() {
        assert_eq!(subject_of("\n  locked out \nplease help"), "locked out");
        let long = "a".repeat(200);
        assert_eq!(subject_of(&long).chars().count(), SUBJECT_CHARS);
    }
}
