//! Inbound PSA webhooks: `POST /hooks/psa/{tenant}` turns a signed JSON body into a
//! ticket. The sender signs with the tenant's secret (`capdesk tenant webhook-secret`):
//! `X-Capdesk-Timestamp` is the Unix time in seconds and `X-Capdesk-Signature` is
//! `v1=` and the hex HMAC-SHA256 of `v1:{timestamp}:{body}`. Unsigned, badly signed,
//! stale (over five minutes off), replayed, oversized and malformed deliveries are
//! refused with a 4xx and write nothing; a tenant's secret signs only for that tenant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::Api;
use super::error::{ApiError, ErrorBody};
use super::signing::{self, MAX_SKEW_SECS, Scheme};
use super::work::TicketRequest;
use crate::engine::Submission;

/// The largest webhook body.
pub const MAX_HOOK_BYTES: usize = 64 * 1024;

/// The refusal of a delivery whose signature does not check out. An unknown tenant and
/// one without a secret get the same words, so nothing about which tenants exist leaks
/// to an unauthenticated sender.
const BAD_SIGNATURE: &str = "the signature does not match this tenant's webhook secret \
     (`capdesk tenant webhook-secret TENANT` issues one)";

/// The PSA webhook's signing scheme: `v1=` hex HMAC-SHA256 of `v1:{timestamp}:{body}`.
const SCHEME: Scheme = Scheme("v1");

/// The signature header's value for `body` sent at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    SCHEME.sign(secret, timestamp, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(format!(
                "the delivery has no {name} header; sign it as the README's PSA webhook section says"
            ))
        })
}

/// A ticket from the tenant's PSA.
#[utoipa::path(
    post,
    path = "/hooks/psa/{tenant}",
    tag = "intake",
    security(()),
    params(
        ("tenant" = String, Path),
        ("X-Capdesk-Timestamp" = i64, Header, description = "Unix time of sending, in seconds"),
        ("X-Capdesk-Signature" = String, Header, description = "`v1=` + hex HMAC-SHA256 of `v1:{timestamp}:{body}` with the tenant's webhook secret"),
    ),
    request_body = TicketRequest,
    responses(
        (status = 201, description = "The ticket's outcome", body = serde_json::Value),
        (status = "default", description = "Refused, and why", body = ErrorBody),
    )
)]
pub async fn psa(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Submission>), ApiError> {
    let body: Bytes = signing::read_body(body, MAX_HOOK_BYTES, "a webhook body").await?;
    let timestamp = header(&headers, "x-capdesk-timestamp")?;
    let signature = header(&headers, "x-capdesk-signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| {
        ApiError::unauthorized("X-Capdesk-Timestamp must be the Unix time in seconds")
    })?;
    let now = crate::store::unix_now();
    signing::check_clock(
        sent,
        now,
        "the delivery",
        "check the sender's clock and send it again",
    )?;
    let secret = api
        .desk
        .store
        .webhook_secret(&tenant)
        .await?
        .ok_or_else(|| ApiError::unauthorized(BAD_SIGNATURE))?;
    let given = SCHEME.verify(&secret, sent, &body, signature, BAD_SIGNATURE)?;
    // The verified signature, as `sign` writes it, is what a replay would repeat.
    let delivery = format!("v1={}", hex::encode(&given));
    let request: TicketRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("the body is not a ticket this endpoint takes: {e}"))
    })?;
    let ticket = request.into_ticket("psa")?;
    if !api
        .desk
        .store
        .first_delivery(&tenant, &delivery, now, 2 * MAX_SKEW_SECS)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "replayed",
            "this delivery was accepted already; nothing was done again",
        ));
    }
    let desk = api.desk.acting_as(format!("webhook:psa:{tenant}"));
    let t = tenant.clone();
    let submission = api
        .queued(&tenant, async move { desk.submit(&t, ticket).await })
        .await?;
    Ok((StatusCode::CREATED, Json(submission)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let a = sign("whsec_x", 1_700_000_000, b"{\"from\":\"a@b.c\"}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64, "{a}");
        assert_ne!(a, sign("whsec_x", 1_700_000_001, b"{\"from\":\"a@b.c\"}"));
        assert_ne!(a, sign("whsec_x", 1_700_000_000, b"{\"from\":\"a@b.d\"}"));
        assert_ne!(a, sign("whsec_y", 1_700_000_000, b"{\"from\":\"a@b.c\"}"));
    }
}
