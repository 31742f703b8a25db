//! Slack as a tenant's chat: the Web API calls capdesk makes (`chat.postMessage`,
//! `chat.update`, `users.info`, `users.lookupByEmail`) and the Block Kit messages it
//! posts — questions with a button per choice, approval requests with Approve / Reject
//! buttons — whose buttons carry only the run or approval they route back to (the
//! interactivity endpoint re-checks everything). Slack answers errors as HTTP 200
//! `{"ok": false, "error": …}` and rate limits as 429 with `Retry-After`, which is
//! honoured a few times before giving up. Owns the wire format; inbound requests are
//! `api::slack`'s.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::channel::{SLACK, SlackConfig};
use super::{ApprovalRequest, Chat, ConnectorError, Secret};
use crate::store::Store;
use crate::store::chat::PostedMessage;

/// Rate-limited calls are tried this many times in all.
const ATTEMPTS: u32 = 3;
/// The longest `Retry-After` capdesk waits out; longer ones fail the call.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// The `action_id`s of capdesk's buttons.
pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
/// Answer buttons are `answer-0`, `answer-1`, … (ids are unique within a block).
pub const ANSWER_PREFIX: &str = "answer-";

/// A Slack user, as `users.info` tells.
#[derive(Debug, Clone)]
pub struct SlackUser {
    pub email: Option<String>,
    pub name: String,
    pub is_bot: bool,
}

/// A Slack workspace's Web API, as one app's bot.
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl SlackApi {
    pub fn new(http: reqwest::Client, config: &SlackConfig) -> SlackApi {
        SlackApi {
            http,
            base: config.api_base.clone(),
            token: Secret::new(config.bot_token.expose().to_string()),
        }
    }

    /// Call `method` (JSON body for writes, query for reads) and return its answer when
    /// `ok`; Slack's own errors become connector errors saying what to do.
    async fn call(
        &self,
        method: &str,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Result<Value, ConnectorError> {
        let url = format!("{}/{method}", self.base);
        for attempt in 1..=ATTEMPTS {
            let request = match body {
                Some(body) => self.http.post(&url).json(body),
                None => self.http.get(&url).query(query),
            };
            let response = request
                .bearer_auth(self.token.expose())
                .send()
                .await
                .map_err(|e| {
                    ConnectorError::Upstream(format!("Slack could not be reached ({method}): {e}"))
                })?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs);
                if attempt == ATTEMPTS || wait > MAX_RETRY_AFTER {
                    return Err(ConnectorError::Upstream(format!(
                        "Slack is rate limiting {method} (retry after {}s); try again later",
                        wait.as_secs()
                    )));
                }
                tracing::info!(method, wait_s = wait.as_secs(), "Slack rate limit; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(ConnectorError::Upstream(format!(
                    "Slack answered HTTP {status} to {method}"
                )));
            }
            let answer: Value = response.json().await.map_err(|e| {
                ConnectorError::Upstream(format!("Slack's answer to {method} is not JSON: {e}"))
            })?;
            if answer["ok"] == json!(true) {
                return Ok(answer);
            }
            let error = answer["error"].as_str().unwrap_or("unknown_error");
            return Err(slack_error(method, error, &answer));
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Who a Slack user is: their profile email (needs `users:read.email`) and name.
    pub async fn user(&self, id: &str) -> Result<SlackUser, ConnectorError> {
        let answer = self.call("users.info", None, &[("user", id)]).await?;
        let user = &answer["user"];
        let email = user["profile"]["email"]
            .as_str()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_ascii_lowercase);
        let name = [
            &user["real_name"],
            &user["profile"]["real_name"],
            &user["name"],
        ]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.trim().is_empty()))
        .unwrap_or_default()
        .to_string();
        Ok(SlackUser {
            email,
            name,
            is_bot: user["is_bot"] == json!(true),
        })
    }

    /// The Slack user id of the person with this email.
    pub async fn user_by_email(&self, email: &str) -> Result<String, ConnectorError> {
        let answer = self
            .call("users.lookupByEmail", None, &[("email", email)])
            .await?;
        answer["user"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                ConnectorError::Upstream("Slack's users.lookupByEmail answer has no user id".into())
            })
    }

    /// Post to `channel` (a user id posts in the person's direct messages with the
    /// app); returns the channel id and the message's `ts`.
    pub async fn post(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<(String, String), ConnectorError> {
        let mut body = json!({ "channel": channel, "text": text });
        if let Some(blocks) = blocks {
            body["blocks"] = blocks;
        }
        let answer = self.call("chat.postMessage", Some(&body), &[]).await?;
        let channel = answer["channel"].as_str().unwrap_or(channel).to_string();
        let ts = answer["ts"].as_str().unwrap_or_default().to_string();
        Ok((channel, ts))
    }

    /// Replace a posted message's text and blocks.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Value,
    ) -> Result<(), ConnectorError> {
        let body = json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks });
        self.call("chat.update", Some(&body), &[]).await?;
        Ok(())
    }
}

/// A Slack error code as a connector error that says what to do.
fn slack_error(method: &str, error: &str, answer: &Value) -> ConnectorError {
    match error {
        "users_not_found" | "user_not_found" => {
            ConnectorError::NotFound(format!("Slack has no such user ({method}: {error})"))
        }
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => {
            ConnectorError::Upstream(format!(
                "Slack refused the bot token ({error}); set the app's current Bot User OAuth \
                 Token with `capdesk tenant slack TENANT --bot-token-file FILE ...`"
            ))
        }
        "missing_scope" => ConnectorError::Upstream(format!(
            "the Slack app may not call {method}: it lacks the scope `{}`; add it under OAuth & \
             Permissions and reinstall the app",
            answer["needed"].as_str().unwrap_or("?")
        )),
        _ => ConnectorError::Upstream(format!("Slack {method} failed: {error}")),
    }
}

/// Text for a Slack `mrkdwn` field: `&`, `<` and `>` escaped, so a summary cannot
/// mention @channel or fake a link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A `plain_text` object, cut to Slack's `limit` characters.
fn plain(text: &str, limit: usize) -> Value {
    let text: String = text.chars().take(limit).collect();
    json!({ "type": "plain_text", "text": text })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

/// The blocks of a question with a button per choice.
pub fn question_blocks(question: &str, choices: &[String], run: &str) -> Value {
    let buttons: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, choice)| {
            json!({
                "type": "button",
                "action_id": format!("{ANSWER_PREFIX}{i}"),
                "text": plain(choice, 75),
                "value": json!({ "run": run, "choice": choice }).to_string(),
            })
        })
        .collect();
    json!([
        section(&escape(question)),
        { "type": "actions", "block_id": format!("capdesk-{run}"), "elements": buttons },
    ])
}

/// The blocks of an approval request with Approve and Reject buttons.
pub fn approval_blocks(r: &ApprovalRequest<'_>) -> Value {
    let text = format!(
        "*Approval needed ({id})*: capdesk wants to {summary}.\n\
         Ticket {ticket} \"{subject}\", requested by {requester}. Policy rule `{rule}` asks \
         for your approval.\nWithout an answer by {expires} the ticket goes to a technician.",
        id = r.id,
        summary = escape(r.summary),
        ticket = escape(r.ticket),
        subject = escape(r.subject),
        requester = escape(r.requester),
        rule = escape(r.rule),
        expires = escape(r.expires_at),
    );
    json!([
        section(&text),
        {
            "type": "actions",
            "block_id": format!("capdesk-{}", r.id),
            "elements": [
                { "type": "button", "action_id": APPROVE, "style": "primary",
                  "text": plain("Approve", 75), "value": r.id },
                { "type": "button", "action_id": REJECT, "style": "danger",
                  "text": plain("Reject", 75), "value": r.id,
                  "confirm": {
                      "title": plain("Reject this request?", 100),
                      "text": { "type": "mrkdwn", "text": format!("capdesk will not {}.", escape(r.summary)) },
                      "confirm": plain("Reject", 30),
                      "deny": plain("Cancel", 30),
                  } },
            ],
        },
    ])
}

/// Slack as one tenant's chat.
pub struct SlackChat {
    api: SlackApi,
    store: Store,
    tenant: String,
}

impl SlackChat {
    pub fn new(
        http: reqwest::Client,
        config: &SlackConfig,
        store: Store,
        tenant: &str,
    ) -> SlackChat {
        SlackChat {
            api: SlackApi::new(http, config),
            store,
            tenant: tenant.to_string(),
        }
    }

    fn db(e: anyhow::Error) -> ConnectorError {
        ConnectorError::Upstream(format!("capdesk's database failed: {e:#}"))
    }

    /// The Slack user id of `email`: remembered from their messages, or looked up.
    async fn user_id(&self, email: &str) -> Result<String, ConnectorError> {
        if let Some(id) = self
            .store
            .chat_address(&self.tenant, SLACK, email)
            .await
            .map_err(Self::db)?
        {
            return Ok(id);
        }
        let id = self
            .api
            .user_by_email(email.trim())
            .await
            .map_err(|e| match e {
                ConnectorError::NotFound(_) => ConnectorError::NotFound(format!(
                    "no one in the tenant's Slack workspace has the email {email}"
                )),
                other => other,
            })?;
        self.store
            .set_chat_address(&self.tenant, SLACK, email, &id)
            .await
            .map_err(Self::db)?;
        Ok(id)
    }

    /// Post to `to` and remember the message under `subject` so it can be updated.
    async fn post_remembered(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        blocks: Value,
    ) -> Result<(), ConnectorError> {
        let user = self.user_id(to).await?;
        let (channel, ts) = self.api.post(&user, text, Some(blocks)).await?;
        let posted = PostedMessage {
            recipient: to.trim().to_ascii_lowercase(),
            place: channel,
            message: ts,
        };
        self.store
            .add_chat_message(&self.tenant, SLACK, subject, &posted)
            .await
            .map_err(Self::db)
    }
}

#[async_trait]
impl Chat for SlackChat {
    async fn send(&self, to: &str, text: &str) -> Result<(), ConnectorError> {
        if text.trim().is_empty() {
            return Err(ConnectorError::Invalid("a message needs some text".into()));
        }
        let user = self.user_id(to).await?;
        self.api.post(&user, text, None).await?;
        Ok(())
    }

    async fn ask(
        &self,
        to: &str,
        question: &str,
        choices: &[String],
        run: &str,
    ) -> Result<(), ConnectorError> {
        if choices.is_empty() || run.is_empty() {
            let text = if choices.is_empty() {
                format!("{question}\n(Reply here with your answer.)")
            } else {
                format!("{question}\nAnswer with one of: {}", choices.join(", "))
            };
            return self.send(to, &text).await;
        }
        let blocks = question_blocks(question, choices, run);
        self.post_remembered(to, run, question, blocks).await
    }

    async fn request_approval(
        &self,
        to: &str,
        request: &ApprovalRequest<'_>,
    ) -> Result<(), ConnectorError> {
        let text = format!(
            "Approval needed ({}): capdesk wants to {}.",
            request.id, request.summary
        );
        self.post_remembered(to, request.id, &text, approval_blocks(request))
            .await
    }

    async fn settled(&self, subject: &str, outcome: &str) -> Result<(), ConnectorError> {
        let messages = self
            .store
            .chat_messages(&self.tenant, SLACK, subject)
            .await
            .map_err(Self::db)?;
        let blocks = json!([section(&format!("*{}*", escape(outcome)))]);
        let mut failed = None;
        for m in messages {
            if let Err(e) = self
                .api
                .update(&m.place, &m.message, outcome, blocks.clone())
                .await
            {
                tracing::warn!(subject, recipient = %m.recipient, "chat.update failed: {e}");
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_carry_only_what_routes_the_click() {
        let blocks = question_blocks("Which <b>?", &["Yes".into(), "No".into()], "R-7");
        assert_eq!(blocks[0]["text"]["text"], "Which &lt;b&gt;?");
        let buttons = blocks[1]["elements"].as_array().unwrap();
        assert_eq!(buttons[1]["action_id"], "answer-1");
        let value: Value = serde_json::from_str(buttons[1]["value"].as_str().unwrap()).unwrap();
        assert_eq!(value, json!({ "run": "R-7", "choice": "No" }));
    }
}
