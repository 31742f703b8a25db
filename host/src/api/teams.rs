//! Inbound Microsoft Teams: the bot's messaging endpoint
//! (`POST /hooks/teams/{tenant}/messages`). Every activity must carry a Bot Framework
//! token for this tenant's bot (see [`super::botauth`]) whose `serviceUrl` is the
//! activity's; otherwise, and for oversized or malformed bodies, the answer is a 4xx
//! `{error, detail}` and nothing is written. A 1:1 message becomes a ticket (or the
//! answer the sender's waiting run needs) and stores the conversation reference capdesk
//! reaches the person by later; installing the bot for someone stores theirs too. A
//! click on an Adaptive Card's `Action.Execute` (invoke `adaptiveCard/action`) approves,
//! rejects or answers, re-checked server-side, and is answered with the card that
//! replaces the clicked one. The sender is known by their email from the conversation's
//! member record, matched against the tenant's directory.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::Api;
use super::chat_intake::{Click, take_message, upstream};
use super::error::{ApiError, ErrorBody};
use crate::connectors::channel::{TEAMS, TeamsConfig, check_base_url, teams_config};
use crate::connectors::teams::{
    ANSWER, APPROVE, BotConnector, CARD, ConversationReference, REJECT, outcome_card,
};
use crate::store::approvals::Answer;

/// The largest activity capdesk takes.
pub const MAX_TEAMS_BYTES: usize = 256 * 1024;
/// How long an activity id is remembered to recognise a redelivery.
const ACTIVITY_MEMORY_SECS: i64 = 24 * 3600;

/// An unknown tenant and one without Teams get the words of a bad token, so nothing about
/// which tenants exist leaks to an unauthenticated sender.
const NO_TOKEN: &str = "the request carries no Bot Framework token for this tenant's bot \
     (`Authorization: Bearer …`); only the Bot Framework may call this endpoint, for a bot \
     set up with `capdesk tenant teams TENANT ...`";

/// A string field of the activity, or a 400 naming it.
fn field<'a>(activity: &'a Value, pointer: &str) -> Result<&'a str, ApiError> {
    activity
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("the activity has no `{}`", &pointer[1..])))
}

/// An activity from the Bot Framework for this tenant's bot.
#[utoipa::path(
    post,
    path = "/hooks/teams/{tenant}/messages",
    tag = "intake",
    security(()),
    params(
        ("tenant" = String, Path),
        ("Authorization" = String, Header, description = "`Bearer` + the Bot Framework's JWT for this bot"),
    ),
    request_body(content = serde_json::Value, description = "A Bot Framework activity", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken, ignored (with why), or for a card action the card that replaces it", body = serde_json::Value),
        (status = "default", description = "Refused, and why", body = ErrorBody),
    )
)]
pub async fn messages(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let body = super::signing::read_body(body, MAX_TEAMS_BYTES, "an activity").await?;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized(NO_TOKEN))?;
    let config = teams_config(&api.desk.store, &api.desk.vault, &tenant)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!(
                "capdesk cannot read this tenant's Teams configuration: {e:#}"
            ))
        })?
        .ok_or_else(|| ApiError::unauthorized(NO_TOKEN))?;
    let claims =
        super::botauth::verify(&api.desk.http, &config.openid_url, &config.app_id, token).await?;
    let activity: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not a Bot Framework activity (JSON): {e}"
        ))
    })?;
    let service_url = field(&activity, "/serviceUrl")?;
    if claims
        .service_url
        .as_deref()
        .map(|s| s.trim_end_matches('/'))
        != Some(service_url.trim_end_matches('/'))
    {
        return Err(ApiError::unauthorized(format!(
            "the request's Bot Framework token is not accepted: it was issued for serviceUrl {}, \
             not the activity's {service_url}",
            claims.service_url.as_deref().unwrap_or("(none)")
        )));
    }
    check_base_url("serviceUrl", service_url).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match activity["type"].as_str() {
        Some("message") => message(&api, &tenant, &config, &activity).await,
        Some("invoke") if activity["name"] == "adaptiveCard/action" => {
            card_action(&api, &tenant, &config, &activity).await
        }
        Some("conversationUpdate") => installed(&api, &tenant, &config, &activity).await,
        other => Ok(Json(json!({
            "ok": true,
            "ignored": format!("capdesk does not act on {} activities", other.unwrap_or("untyped")),
        }))),
    }
}

/// The conversation reference of the activity's sender.
fn reference(activity: &Value) -> Result<ConversationReference, ApiError> {
    Ok(ConversationReference {
        service_url: field(activity, "/serviceUrl")?
            .trim_end_matches('/')
            .to_string(),
        conversation: field(activity, "/conversation/id")?.to_string(),
        user: field(activity, "/from/id")?.to_string(),
    })
}

/// A message to the bot.
async fn message(
    api: &Api,
    tenant: &str,
    config: &TeamsConfig,
    activity: &Value,
) -> Result<Json<Value>, ApiError> {
    let id = field(activity, "/id")?;
    let from = reference(activity)?;
    if activity["conversation"]["conversationType"]
        .as_str()
        .is_some_and(|t| t != "personal")
    {
        return Ok(Json(
            json!({ "ok": true, "ignored": "capdesk takes only 1:1 messages to the bot" }),
        ));
    }
    let text = activity["text"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    if text.is_empty() {
        return Ok(Json(
            json!({ "ok": true, "ignored": "the message has no text" }),
        ));
    }
    let store = &api.desk.store;
    if !store
        .first_chat_event(
            tenant,
            TEAMS,
            id,
            crate::store::unix_now(),
            ACTIVITY_MEMORY_SECS,
        )
        .await?
    {
        return Ok(Json(json!({ "ok": true, "duplicate": id })));
    }
    let forget = || async {
        if let Err(e) = store.forget_chat_event(tenant, TEAMS, id).await {
            tracing::warn!("could not forget Teams activity {id}: {e:#}");
        }
    };
    let bot = BotConnector::new(api.desk.http.clone(), config);
    let member = match bot
        .member(&from.service_url, &from.conversation, &from.user)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            forget().await;
            return Err(upstream(e));
        }
    };
    let Some(email) = member.email else {
        let hint = json!({ "type": "message", "text": "I can't see the email address of your \
            Teams account, so I can't tell who you are. Ask your IT team to check the capdesk app." });
        if let Err(e) = bot.send(&from, &hint).await {
            tracing::warn!("could not tell a Teams user their email is unreadable: {e}");
        }
        return Ok(Json(
            json!({ "ok": true, "ignored": "the sender's Teams account shows no email" }),
        ));
    };
    let address = serde_json::to_string(&from).map_err(anyhow::Error::from)?;
    store
        .set_chat_address(tenant, TEAMS, &email, &address)
        .await?;
    let actor = format!("chat:teams:{tenant}");
    match take_message(api, tenant, actor, &email, member.name, text).await {
        Ok(taken) => Ok(Json(taken)),
        Err(e) => {
            forget().await;
            Err(e)
        }
    }
}

/// A click on a card's `Action.Execute`.
async fn card_action(
    api: &Api,
    tenant: &str,
    config: &TeamsConfig,
    activity: &Value,
) -> Result<Json<Value>, ApiError> {
    let from = reference(activity)?;
    let action = &activity["value"]["action"];
    let data = &action["data"];
    let click = match action["verb"].as_str() {
        Some(APPROVE) => Click::decide(field(data, "/approval")?, Answer::Approve)?,
        Some(REJECT) => Click::decide(field(data, "/approval")?, Answer::Reject)?,
        Some(ANSWER) => Click::answer(field(data, "/run")?, field(data, "/choice")?)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "`{}` is not one of capdesk's card actions",
                other.unwrap_or("(no verb)")
            )));
        }
    };
    click.check_tenant(api, tenant).await?;
    let bot = BotConnector::new(api.desk.http.clone(), config);
    let member = bot
        .member(&from.service_url, &from.conversation, &from.user)
        .await
        .map_err(upstream)?;
    let email = member.email.ok_or_else(|| {
        ApiError::forbidden(
            "the Teams account that clicked shows no email, so capdesk cannot tell who it is",
        )
    })?;
    let what = match &click {
        Click::Decide(_, Answer::Approve) => "approved",
        Click::Decide(_, Answer::Reject) => "rejected",
        Click::Answer(..) => "answered",
    };
    let actor = format!("chat:teams:{tenant}");
    let by = email.clone();
    let submission = click.perform(api, tenant, actor, email).await?;
    let outcome = format!(
        "{what} by {by}; ticket {} is {}",
        submission.ticket,
        submission.status.name()
    );
    Ok(Json(json!({
        "statusCode": 200,
        "type": CARD,
        "value": outcome_card(&outcome),
    })))
}

/// The bot was added to a conversation: remember how to reach the people it was added
/// for, so capdesk can message them before they write.
async fn installed(
    api: &Api,
    tenant: &str,
    config: &TeamsConfig,
    activity: &Value,
) -> Result<Json<Value>, ApiError> {
    let service_url = field(activity, "/serviceUrl")?.trim_end_matches('/');
    let conversation = field(activity, "/conversation/id")?;
    let bot_id = activity["recipient"]["id"].as_str().unwrap_or_default();
    let bot = BotConnector::new(api.desk.http.clone(), config);
    let mut reached = Vec::new();
    for member in activity["membersAdded"].as_array().into_iter().flatten() {
        let Some(user) = member["id"].as_str().filter(|id| *id != bot_id) else {
            continue;
        };
        match bot.member(service_url, conversation, user).await {
            Ok(m) => {
                if let Some(email) = m.email {
                    let reference = ConversationReference {
                        service_url: service_url.to_string(),
                        conversation: conversation.to_string(),
                        user: user.to_string(),
                    };
                    let address = serde_json::to_string(&reference).map_err(anyhow::Error::from)?;
                    api.desk
                        .store
                        .set_chat_address(tenant, TEAMS, &email, &address)
                        .await?;
                    reached.push(email);
                }
            }
            Err(e) => tracing::warn!(%tenant, "could not read a new Teams member: {e}"),
        }
    }
    Ok(Json(json!({ "ok": true, "reachable": reached })))
}
