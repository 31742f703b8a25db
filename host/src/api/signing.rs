//! Signed request bodies: HMAC-SHA256 over `{version}:{timestamp}:{body}`, sent as
//! `{version}=` + hex. Slack signs its requests this way (`v0`), and capdesk's PSA
//! webhook takes the same scheme (`v1`); both also limit the body's size and refuse a
//! timestamp more than [`MAX_SKEW_SECS`] from capdesk's clock.

use axum::body::Bytes;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::ApiError;

/// How far the sender's clock may be from ours.
pub const MAX_SKEW_SECS: i64 = 300;

/// One signing scheme, by its version prefix.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

impl Scheme {
    /// The HMAC of `body` sent at `timestamp` with `secret`, before finalizing.
    fn mac(self, secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("{}:{timestamp}:", self.0).as_bytes());
        mac.update(body);
        mac
    }

    /// The signature header's value for `body` sent at `timestamp` with `secret`.
    pub fn sign(self, secret: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(secret, timestamp, body).finalize().into_bytes();
        format!("{}={}", self.0, hex::encode(tag))
    }

    /// Check `signature` (the header's value) in constant time; the tag it carried.
    /// Anything wrong is refused with `bad_signature`'s words.
    pub fn verify(
        self,
        secret: &str,
        timestamp: i64,
        body: &[u8],
        signature: &str,
        bad_signature: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let given = signature
            .strip_prefix(self.0)
            .and_then(|s| s.strip_prefix('='))
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| ApiError::unauthorized(bad_signature))?;
        // verify_slice compares in constant time.
        self.mac(secret, timestamp, body)
            .verify_slice(&given)
            .map_err(|_| ApiError::unauthorized(bad_signature))?;
        Ok(given)
    }
}

/// Read a body of at most `max` bytes; `what` names it in the refusal ("a webhook body").
pub async fn read_body(body: axum::body::Body, max: usize, what: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{what} may be at most {max} bytes"),
        )
    })
}

/// Refuse a timestamp more than [`MAX_SKEW_SECS`] from `now`; `what` names it ("the
/// delivery") and `advice` says what to do.
pub fn check_clock(sent: i64, now: i64, what: &str, advice: &str) -> Result<(), ApiError> {
    if (now - sent).abs() > MAX_SKEW_SECS {
        return Err(ApiError::unauthorized(format!(
            "{what}'s timestamp is {}s from capdesk's clock (at most {MAX_SKEW_SECS}s is \
             accepted); {advice}",
            now - sent
        )));
    }
    Ok(())
}
