//! Inbound Slack: the Events API endpoint (`POST /hooks/slack/{tenant}/events`: the URL
//! verification challenge, and a direct message to the app, which becomes a ticket — or
//! the answer to the question a run is waiting for the sender to type) and the
//! interactivity endpoint (`POST /hooks/slack/{tenant}/interactivity`: clicks on the
//! Approve / Reject and answer buttons). Every request is verified with the tenant's
//! signing secret (`v0=` hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`, compared in
//! constant time, at most five minutes off) before anything is read from it; unsigned,
//! stale, tampered, oversized, malformed and other tenants' requests get a 4xx
//! `{error, detail}` and write nothing. The Slack user is known by the email of their
//! Slack profile, matched against the tenant's directory; what a click may do is decided
//! again here and in `Desk::decide_approval` / `Desk::answer`, never by the button.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::Api;
use super::chat_intake::{Click, take_message, upstream};
use super::error::{ApiError, ErrorBody};
use super::signing::{self, Scheme};
use crate::connectors::channel::{SLACK, SlackConfig, slack_config};
use crate::connectors::slack::{ANSWER_PREFIX, APPROVE, REJECT, SlackApi};
use crate::store::approvals::Answer;

/// The largest Slack request body.
pub const MAX_SLACK_BYTES: usize = 64 * 1024;
/// How long an event id is remembered to recognise Slack's retries of it.
const EVENT_MEMORY_SECS: i64 = 24 * 3600;

/// An unknown tenant, one without Slack and a wrong signature get the same words, so
/// nothing about which tenants exist leaks to an unauthenticated sender.
const BAD_SIGNATURE: &str = "the request is not signed with this tenant's Slack signing secret \
     (`capdesk tenant slack TENANT --signing-secret-file FILE` sets it; Slack signs with the \
     app's Signing Secret from Basic Information)";

/// Slack's signing scheme: `v0=` hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
const SCHEME: Scheme = Scheme("v0");

/// The `X-Slack-Signature` of `body` sent at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    SCHEME.sign(secret, timestamp, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    if headers.get_all(name).iter().count() > 1 {
        return Err(ApiError::unauthorized(format!(
            "the request has more than one {name} header; Slack sends exactly one"
        )));
    }
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(format!(
                "the request has no {name} header; only Slack, signing with the app's signing \
                 secret, may call this endpoint"
            ))
        })
}

/// Read the body (size-limited) and check it is Slack's, signed for `tenant`; the
/// tenant's Slack configuration and the raw body.
async fn verified(
    api: &Api,
    tenant: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(SlackConfig, Bytes), ApiError> {
    let body = signing::read_body(body, MAX_SLACK_BYTES, "a Slack request body").await?;
    let timestamp = header(headers, "x-slack-request-timestamp")?;
    let signature = header(headers, "x-slack-signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| {
        ApiError::unauthorized("X-Slack-Request-Timestamp must be the Unix time in seconds")
    })?;
    signing::check_clock(
        sent,
        crate::store::unix_now(),
        "the request",
        "a replayed request, or a clock to fix",
    )?;
    let config = slack_config(&api.desk.store, &api.desk.vault, tenant)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!(
                "capdesk cannot read this tenant's Slack configuration: {e:#}"
            ))
        })?
        .ok_or_else(|| ApiError::unauthorized(BAD_SIGNATURE))?;
    SCHEME.verify(
        config.signing_secret.expose(),
        sent,
        &body,
        signature,
        BAD_SIGNATURE,
    )?;
    Ok((config, body))
}

/// Slack events: the URL verification challenge, and direct messages to the app.
#[utoipa::path(
    post,
    path = "/hooks/slack/{tenant}/events",
    tag = "intake",
    security(()),
    params(
        ("tenant" = String, Path),
        ("X-Slack-Request-Timestamp" = i64, Header, description = "Unix time of sending, in seconds"),
        ("X-Slack-Signature" = String, Header, description = "`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the Slack app's signing secret"),
    ),
    request_body(content = serde_json::Value, description = "A Slack Events API request", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken (a ticket or an answer is queued), ignored (with why), or the challenge", body = serde_json::Value),
        (status = "default", description = "Refused, and why", body = ErrorBody),
    )
)]
pub async fn events(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let (config, body) = verified(&api, &tenant, &headers, body).await?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a Slack event (JSON): {e}")))?;
    match request["type"].as_str() {
        Some("url_verification") => {
            let challenge = request["challenge"].as_str().ok_or_else(|| {
                ApiError::bad_request("a url_verification request needs its `challenge`")
            })?;
            return Ok(Json(json!({ "challenge": challenge })));
        }
        Some("event_callback") => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "capdesk takes Slack `url_verification` and `event_callback` requests, not {}",
                other.unwrap_or("one without a type")
            )));
        }
    }
    let event_id = request["event_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::bad_request("the event has no `event_id`"))?;
    let event = &request["event"];
    let ignored = if event["type"] != "message" {
        Some("capdesk takes only messages")
    } else if event["bot_id"].is_string() || event["subtype"].is_string() {
        Some("a bot's message, or a change to a message, is not a request")
    } else if event["channel_type"] != "im" {
        Some("capdesk takes only direct messages to the app")
    } else {
        None
    };
    if let Some(why) = ignored {
        return Ok(Json(json!({ "ok": true, "ignored": why })));
    }
    let user = event["user"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("the message has no `user`"))?;
    let text = event["text"]
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
            &tenant,
            SLACK,
            event_id,
            crate::store::unix_now(),
            EVENT_MEMORY_SECS,
        )
        .await?
    {
        return Ok(Json(json!({ "ok": true, "duplicate": event_id })));
    }
    // From here on a failure forgets the event, so Slack's retry is taken.
    let forget = || async {
        if let Err(e) = store.forget_chat_event(&tenant, SLACK, event_id).await {
            tracing::warn!("could not forget Slack event {event_id}: {e:#}");
        }
    };
    let slack = SlackApi::new(api.desk.http.clone(), &config);
    let person = match slack.user(user).await {
        Ok(p) => p,
        Err(e) => {
            forget().await;
            return Err(upstream(e));
        }
    };
    if person.is_bot {
        return Ok(Json(
            json!({ "ok": true, "ignored": "a bot's message is not a request" }),
        ));
    }
    let Some(email) = person.email else {
        let hint = "I can't see the email address of your Slack account, so I can't tell who \
                    you are. Ask your IT team to give the capdesk app the users:read.email scope.";
        if let Err(e) = slack.post(user, hint, None).await {
            tracing::warn!("could not tell Slack user {user} their email is unreadable: {e}");
        }
        return Ok(Json(
            json!({ "ok": true, "ignored": "the sender's Slack profile shows no email" }),
        ));
    };
    store.set_chat_address(&tenant, SLACK, &email, user).await?;
    let actor = format!("chat:slack:{tenant}");
    match take_message(&api, &tenant, actor, &email, person.name, text).await {
        Ok(taken) => Ok(Json(taken)),
        Err(e) => {
            forget().await;
            Err(e)
        }
    }
}

/// Clicks on capdesk's buttons (Slack `block_actions`).
#[utoipa::path(
    post,
    path = "/hooks/slack/{tenant}/interactivity",
    tag = "intake",
    security(()),
    params(
        ("tenant" = String, Path),
        ("X-Slack-Request-Timestamp" = i64, Header, description = "Unix time of sending, in seconds"),
        ("X-Slack-Signature" = String, Header, description = "`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the Slack app's signing secret"),
    ),
    request_body(content = String, description = "`payload=<JSON>`, form-encoded, with `type: block_actions`", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The decision or answer was taken; the run's new state", body = serde_json::Value),
        (status = "default", description = "Refused, and why", body = ErrorBody),
    )
)]
pub async fn interactivity(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let (config, body) = verified(&api, &tenant, &headers, body).await?;
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|e| {
        ApiError::bad_request(format!("the body is not form-encoded `payload=...`: {e}"))
    })?;
    let payload = form
        .iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or_else(|| ApiError::bad_request("the body has no `payload` field"))?;
    let payload: Value = serde_json::from_str(payload)
        .map_err(|e| ApiError::bad_request(format!("the payload is not JSON: {e}")))?;
    if payload["type"] != "block_actions" {
        return Err(ApiError::bad_request(format!(
            "capdesk takes only button clicks (`block_actions`), not {}",
            payload["type"]
        )));
    }
    let action = &payload["actions"][0];
    let (Some(action_id), Some(value)) = (action["action_id"].as_str(), action["value"].as_str())
    else {
        return Err(ApiError::bad_request(
            "the payload has no action with an `action_id` and a `value`",
        ));
    };
    let user = payload["user"]["id"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("the payload has no `user.id`"))?;
    let click = match action_id {
        APPROVE => Click::decide(value, Answer::Approve)?,
        REJECT => Click::decide(value, Answer::Reject)?,
        id if id.starts_with(ANSWER_PREFIX) => {
            let routed: Value = serde_json::from_str(value).unwrap_or_default();
            let (Some(run), Some(choice)) = (routed["run"].as_str(), routed["choice"].as_str())
            else {
                return Err(ApiError::bad_request(
                    "an answer button's value must be {\"run\", \"choice\"}",
                ));
            };
            Click::answer(run, choice)?
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "`{other}` is not one of capdesk's buttons"
            )));
        }
    };
    click.check_tenant(&api, &tenant).await?;
    // Who clicked: their Slack profile's email.
    let slack = SlackApi::new(api.desk.http.clone(), &config);
    let email = slack.user(user).await.map_err(upstream)?.email.ok_or_else(|| {
        ApiError::forbidden(format!(
            "the Slack profile of {user} shows no email, so capdesk cannot tell who clicked; give \
             the app the users:read.email scope"
        ))
    })?;
    let actor = format!("chat:slack:{tenant}");
    let submission = click.perform(&api, &tenant, actor, email).await?;
    Ok(Json(json!({
        "ok": true, "run": submission.run, "ticket": submission.ticket, "status": submission.status,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_slacks_v0_scheme() {
        // Slack's documented example.
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            sign(
                "8f742231b10e8888abcd99yyyzzz85a5",
                1531420618,
                body.as_bytes()
            ),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }
}
