//! The bearer token on a request the Bot Framework (Teams) sends a bot: an RS256 JWT
//! whose signing keys are published behind the configured OpenID metadata
//! (`jwks_uri`), issued by `https://api.botframework.com`, for the bot's app id as
//! audience, within its validity (five minutes of clock skew), and naming the
//! `serviceUrl` the activity will be answered at. Keys are cached per metadata URL for a
//! day; an unknown key id fetches them again, at most once a minute. Owns token checks
//! only; what the activity asks is `api::teams`'s.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError;
use crate::connectors::channel::check_base_url;

/// The issuer of the Bot Framework's tokens to bots.
pub const ISSUER: &str = "https://api.botframework.com";
/// Clock skew allowed on `exp` and `nbf`.
pub const SKEW_SECS: u64 = 300;
/// How long fetched keys are used before they are fetched again.
const KEYS_FOR: Duration = Duration::from_secs(24 * 3600);
/// How soon an unknown key id may fetch the keys again.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// What capdesk reads from a verified token.
#[derive(Debug, Deserialize)]
pub struct BotClaims {
    #[serde(rename = "serviceUrl")]
    pub service_url: Option<String>,
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Instant,
}

type KeyCache = tokio::sync::Mutex<HashMap<String, KeySet>>;

fn cache() -> &'static KeyCache {
    static KEYS: OnceLock<KeyCache> = OnceLock::new();
    KEYS.get_or_init(KeyCache::default)
}

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::unauthorized(format!(
        "the request's Bot Framework token is not accepted: {why}"
    ))
}

/// Fetch the signing keys behind `openid_url`.
async fn fetch(http: &reqwest::Client, openid_url: &str) -> Result<KeySet, ApiError> {
    let unavailable = |what: String| {
        ApiError::unavailable(format!(
            "capdesk cannot check the request: {what}; the Bot Framework will retry"
        ))
    };
    let metadata: serde_json::Value = http
        .get(openid_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| {
            unavailable(format!(
                "the OpenID metadata {openid_url} could not be read ({e})"
            ))
        })?
        .json()
        .await
        .map_err(|e| unavailable(format!("the OpenID metadata is not JSON ({e})")))?;
    let jwks_uri = metadata["jwks_uri"]
        .as_str()
        .ok_or_else(|| unavailable("the OpenID metadata has no jwks_uri".into()))?;
    let jwks_uri = check_base_url("jwks_uri", jwks_uri).map_err(|e| unavailable(e.to_string()))?;
    let set: JwkSet = http
        .get(&jwks_uri)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| {
            unavailable(format!(
                "the signing keys {jwks_uri} could not be read ({e})"
            ))
        })?
        .json()
        .await
        .map_err(|e| unavailable(format!("the signing keys are not a JWK set ({e})")))?;
    let keys = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
        })
        .collect();
    Ok(KeySet {
        keys,
        fetched: Instant::now(),
    })
}

/// The key `kid` behind `openid_url`, from the cache or freshly fetched.
async fn key(http: &reqwest::Client, openid_url: &str, kid: &str) -> Result<DecodingKey, ApiError> {
    let mut cache = cache().lock().await;
    let fresh = cache
        .get(openid_url)
        .is_some_and(|set| set.fetched.elapsed() < KEYS_FOR);
    if fresh && let Some(key) = cache[openid_url].keys.get(kid) {
        return Ok(key.clone());
    }
    let recently = cache
        .get(openid_url)
        .is_some_and(|set| set.fetched.elapsed() < REFETCH_AFTER);
    if !recently {
        let set = fetch(http, openid_url).await?;
        cache.insert(openid_url.to_string(), set);
    }
    cache
        .get(openid_url)
        .and_then(|set| set.keys.get(kid))
        .cloned()
        .ok_or_else(|| {
            refused(format!(
                "it is signed with key `{kid}`, which the Bot Framework does not publish"
            ))
        })
}

/// Check `token` for a bot with app id `app_id` whose keys are behind `openid_url`.
pub async fn verify(
    http: &reqwest::Client,
    openid_url: &str,
    app_id: &str,
    token: &str,
) -> Result<BotClaims, ApiError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused("it is not a JWT"))?;
    if header.alg != Algorithm::RS256 {
        return Err(refused(format!(
            "it is signed with {:?}, not RS256",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| refused("it names no signing key (kid)"))?;
    let key = key(http, openid_url, &kid).await?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[app_id]);
    validation.leeway = SKEW_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<BotClaims>(token, &key, &validation).map_err(|e| {
        refused(match e.kind() {
            ErrorKind::InvalidIssuer => format!("its issuer is not {ISSUER}"),
            ErrorKind::InvalidAudience => {
                "it is for another bot (its audience is not this tenant's app id)".into()
            }
            ErrorKind::ExpiredSignature => "it has expired".into(),
            ErrorKind::ImmatureSignature => "it is not valid yet".into(),
            ErrorKind::InvalidSignature => "its signature does not verify".into(),
            ErrorKind::MissingRequiredClaim(c) => format!("it has no `{c}` claim"),
            other => format!("{other:?}"),
        })
    })?;
    Ok(data.claims)
}
