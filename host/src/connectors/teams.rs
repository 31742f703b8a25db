//! Microsoft Teams as a tenant's chat, through the Bot Framework connector: the bot's
//! access token (client credentials at the configured token endpoint, scope
//! `https://api.botframework.com/.default`, cached until shortly before it expires),
//! messages and Adaptive Cards sent to a person's conversation
//! (`POST {serviceUrl}/v3/conversations/{id}/activities`), cards updated to show a
//! decision (`PUT …/activities/{activityId}`), and a member's email
//! (`GET …/conversations/{id}/members/{userId}`). Approvals and choices are cards with
//! `Action.Execute` buttons whose data carries only the approval or run they route back
//! to. A person is reached through the conversation reference stored when they messaged
//! the bot (or installed it). Owns the wire format; inbound requests are `api::teams`'s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channel::{TEAMS, TeamsConfig};
use super::{ApprovalRequest, Chat, ConnectorError, Secret};
use crate::store::Store;
use crate::store::chat::PostedMessage;

/// The scope of the bot's outbound token.
pub const BOT_SCOPE: &str = "https://api.botframework.com/.default";
/// The content type of an Adaptive Card attachment.
pub const CARD: &str = "application/vnd.microsoft.card.adaptive";
/// The verbs of capdesk's `Action.Execute` buttons.
pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
pub const ANSWER: &str = "answer";

/// Where a person is reached: their 1:1 conversation with the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationReference {
    pub service_url: String,
    pub conversation: String,
    pub user: String,
}

/// A member of a conversation, as the connector tells.
#[derive(Debug, Clone)]
pub struct Member {
    /// `email`, or else `userPrincipalName`, lowercased.
    pub email: Option<String>,
    pub name: String,
}

/// Bot tokens by (token URL, app id): (token, good until).
type TokenCache = Mutex<HashMap<(String, String), (String, Instant)>>;

fn tokens() -> &'static TokenCache {
    static TOKENS: std::sync::OnceLock<TokenCache> = std::sync::OnceLock::new();
    TOKENS.get_or_init(TokenCache::default)
}

/// The Bot Framework connector, as one bot.
pub struct BotConnector {
    http: reqwest::Client,
    app_id: String,
    app_password: Secret,
    token_url: String,
}

fn upstream(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Upstream(format!("Teams: {what} failed: {e}"))
}

impl BotConnector {
    pub fn new(http: reqwest::Client, config: &TeamsConfig) -> BotConnector {
        BotConnector {
            http,
            app_id: config.app_id.clone(),
            app_password: Secret::new(config.app_password.expose().to_string()),
            token_url: config.token_url.clone(),
        }
    }

    /// The bot's access token, from the cache or the token endpoint.
    async fn token(&self) -> Result<String, ConnectorError> {
        let key = (self.token_url.clone(), self.app_id.clone());
        if let Some((token, until)) = tokens().lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.app_id),
                ("client_secret", self.app_password.expose()),
                ("scope", BOT_SCOPE),
            ])
            .send()
            .await
            .map_err(|e| upstream("reaching the token endpoint", e))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = answer["access_token"]
            .as_str()
            .filter(|_| status.is_success())
        else {
            return Err(ConnectorError::Upstream(format!(
                "Teams: the token endpoint refused the bot's credentials (HTTP {status}, {}); set \
                 the app id and a current client secret with `capdesk tenant teams TENANT ...`",
                answer["error"].as_str().unwrap_or("no error code")
            )));
        };
        let lifetime = answer["expires_in"].as_u64().unwrap_or(3600);
        // Renewed five minutes early, so a token never expires on its way.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(300).max(30));
        tokens()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (token.to_string(), until));
        Ok(token.to_string())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let token = self.token().await?;
        let mut request = self.http.request(method, &url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| upstream(what, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ConnectorError::NotFound(format!(
                "Teams: {what}: not found"
            )));
        }
        if !status.is_success() {
            return Err(upstream(what, format!("HTTP {status}")));
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// Who a member of a conversation is.
    pub async fn member(
        &self,
        service_url: &str,
        conversation: &str,
        user: &str,
    ) -> Result<Member, ConnectorError> {
        let url = format!(
            "{}/v3/conversations/{}/members/{}",
            service_url.trim_end_matches('/'),
            segment(conversation),
            segment(user)
        );
        let m = self
            .call(reqwest::Method::GET, url, None, "reading a member")
            .await?;
        let email = [&m["email"], &m["userPrincipalName"]]
            .into_iter()
            .find_map(|v| v.as_str().map(str::trim).filter(|s| s.contains('@')))
            .map(str::to_ascii_lowercase);
        Ok(Member {
            email,
            name: m["name"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// Send an activity to a conversation; its id.
    pub async fn send(
        &self,
        to: &ConversationReference,
        activity: &Value,
    ) -> Result<String, ConnectorError> {
        let url = format!(
            "{}/v3/conversations/{}/activities",
            to.service_url.trim_end_matches('/'),
            segment(&to.conversation)
        );
        let answer = self
            .call(
                reqwest::Method::POST,
                url,
                Some(activity),
                "sending a message",
            )
            .await?;
        Ok(answer["id"].as_str().unwrap_or_default().to_string())
    }

    /// Replace an activity sent earlier.
    pub async fn update(
        &self,
        to: &ConversationReference,
        id: &str,
        activity: &Value,
    ) -> Result<(), ConnectorError> {
        let url = format!(
            "{}/v3/conversations/{}/activities/{}",
            to.service_url.trim_end_matches('/'),
            segment(&to.conversation),
            segment(id)
        );
        self.call(
            reqwest::Method::PUT,
            url,
            Some(activity),
            "updating a message",
        )
        .await?;
        Ok(())
    }
}

/// A path segment, percent-encoded (Teams conversation ids hold `:` and `@`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An Adaptive Card.
fn card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = json!(actions);
    }
    card
}

fn text(s: &str, bold: bool) -> Value {
    let mut block = json!({ "type": "TextBlock", "text": s, "wrap": true });
    if bold {
        block["weight"] = json!("Bolder");
    }
    block
}

/// A message activity holding one card.
fn card_activity(summary: &str, card: Value) -> Value {
    json!({
        "type": "message",
        "summary": summary,
        "attachments": [{ "contentType": CARD, "content": card }],
    })
}

/// The card of an approval request, with Approve and Reject buttons.
pub fn approval_card(r: &ApprovalRequest<'_>) -> Value {
    let data = json!({ "approval": r.id });
    card(
        vec![
            text(&format!("Approval needed ({})", r.id), true),
            text(&format!("capdesk wants to {}.", r.summary), false),
            text(
                &format!(
                    "Ticket {} \"{}\", requested by {}. Policy rule `{}` asks for your approval. \
                     Without an answer by {} the ticket goes to a technician.",
                    r.ticket, r.subject, r.requester, r.rule, r.expires_at
                ),
                false,
            ),
        ],
        vec![
            json!({ "type": "Action.Execute", "title": "Approve", "verb": APPROVE, "data": data, "style": "positive" }),
            json!({ "type": "Action.Execute", "title": "Reject", "verb": REJECT, "data": data, "style": "destructive" }),
        ],
    )
}

/// The card of a question, with a button per choice.
pub fn question_card(question: &str, choices: &[String], run: &str) -> Value {
    let actions = choices
        .iter()
        .map(|c| {
            json!({ "type": "Action.Execute", "title": c, "verb": ANSWER,
                    "data": { "run": run, "choice": c } })
        })
        .collect();
    card(vec![text(question, false)], actions)
}

/// The card that replaces a settled request: the outcome, no buttons.
pub fn outcome_card(outcome: &str) -> Value {
    card(vec![text(outcome, true)], Vec::new())
}

/// Teams as one tenant's chat.
pub struct TeamsChat {
    bot: BotConnector,
    store: Store,
    tenant: String,
}

impl TeamsChat {
    pub fn new(
        http: reqwest::Client,
        config: &TeamsConfig,
        store: Store,
        tenant: &str,
    ) -> TeamsChat {
        TeamsChat {
            bot: BotConnector::new(http, config),
            store,
            tenant: tenant.to_string(),
        }
    }

    fn db(e: anyhow::Error) -> ConnectorError {
        ConnectorError::Upstream(format!("capdesk's database failed: {e:#}"))
    }

    /// The conversation that reaches `email`.
    async fn reference(&self, email: &str) -> Result<ConversationReference, ConnectorError> {
        let stored = self
            .store
            .chat_address(&self.tenant, TEAMS, email)
            .await
            .map_err(Self::db)?
            .ok_or_else(|| {
                ConnectorError::NotFound(format!(
                    "{email} has not started a conversation with the capdesk bot in Teams, so \
                     capdesk cannot reach them there yet; install the app for them (a Teams app \
                     setup policy does it for everyone) or ask them to message the bot once"
                ))
            })?;
        serde_json::from_str(&stored).map_err(|e| Self::db(e.into()))
    }

    /// Send a card to `to` and remember it under `subject` so it can be updated.
    async fn send_remembered(
        &self,
        to: &str,
        subject: &str,
        summary: &str,
        card: Value,
    ) -> Result<(), ConnectorError> {
        let reference = self.reference(to).await?;
        let id = self
            .bot
            .send(&reference, &card_activity(summary, card))
            .await?;
        let posted = PostedMessage {
            recipient: to.trim().to_ascii_lowercase(),
            place: serde_json::to_string(&reference).map_err(|e| Self::db(e.into()))?,
            message: id,
        };
        self.store
            .add_chat_message(&self.tenant, TEAMS, subject, &posted)
            .await
            .map_err(Self::db)
    }
}

#[async_trait]
impl Chat for TeamsChat {
    async fn send(&self, to: &str, text: &str) -> Result<(), ConnectorError> {
        if text.trim().is_empty() {
            return Err(ConnectorError::Invalid("a message needs some text".into()));
        }
        let reference = self.reference(to).await?;
        self.bot
            .send(&reference, &json!({ "type": "message", "text": text }))
            .await?;
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
        self.send_remembered(to, run, question, question_card(question, choices, run))
            .await
    }

    async fn request_approval(
        &self,
        to: &str,
        request: &ApprovalRequest<'_>,
    ) -> Result<(), ConnectorError> {
        let summary = format!("Approval needed ({}): {}", request.id, request.summary);
        self.send_remembered(to, request.id, &summary, approval_card(request))
            .await
    }

    async fn settled(&self, subject: &str, outcome: &str) -> Result<(), ConnectorError> {
        let messages = self
            .store
            .chat_messages(&self.tenant, TEAMS, subject)
            .await
            .map_err(Self::db)?;
        let activity = card_activity(outcome, outcome_card(outcome));
        let mut failed = None;
        for m in messages {
            let Ok(reference) = serde_json::from_str::<ConversationReference>(&m.place) else {
                continue;
            };
            if let Err(e) = self.bot.update(&reference, &m.message, &activity).await {
                tracing::warn!(subject, recipient = %m.recipient, "updating the Teams card failed: {e}");
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
    fn conversation_ids_are_escaped_in_paths() {
        assert_eq!(segment("a:1/b c"), "a:1%2Fb%20c");
    }

    #[test]
    fn approval_buttons_carry_only_the_approval() {
        let r = ApprovalRequest {
            id: "A-3",
            summary: "add ann to SG",
            rule: "r",
            ticket: "T-1",
            subject: "s",
            requester: "ann@x.test",
            expires_at: "soon",
            text: "plain",
        };
        let card = approval_card(&r);
        assert_eq!(card["actions"][0]["verb"], APPROVE);
        assert_eq!(card["actions"][1]["data"], json!({ "approval": "A-3" }));
    }
}
