//! Who is calling: the bearer token on every `/api/v1` request, looked up by its hash,
//! and what its role and tenant let it do. An MSP admin may do everything; a technician
//! works tickets, runs, escalations and the approvals that name them, for one tenant or
//! all; a tenant approver sees and answers only their tenant's approvals that name them.
//! A token of one tenant can neither read nor act on another.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Api;
use super::error::ApiError;
use crate::engine::Desk;
use crate::store::tokens::{Role, Token};

/// The caller of a request, with a desk that audits their changes under their token.
pub struct Caller {
    pub token: Token,
    pub desk: Desk,
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "send `Authorization: Bearer TOKEN`; an admin creates tokens with `capdesk token create`",
                )
            })?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?;
        Caller::from_secret(api, secret, "api").await
    }
}

impl Caller {
    /// The caller holding the token `secret`, its changes audited as made through
    /// `door` (`api`, `console`).
    pub async fn from_secret(api: &Api, secret: &str, door: &str) -> Result<Caller, ApiError> {
        let token = api
            .desk
            .store
            .token_by_secret(secret)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "this token is unknown or revoked; ask the MSP's admin for a new one",
                )
            })?;
        let actor = format!(
            "{door}:token-{} ({} {})",
            token.id,
            token.role.name(),
            token.name
        );
        let desk = api.desk.acting_as(actor);
        Ok(Caller { token, desk })
    }

    /// Only these roles may do this.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.token.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        Err(ApiError::forbidden(format!(
            "{what} needs a token of role {}; this one is {}",
            allowed.join(" or "),
            self.token.role.name()
        )))
    }

    /// Only an admin may do this.
    pub fn admin(&self, what: &str) -> Result<(), ApiError> {
        self.require(&[Role::Admin], what)
    }

    /// The token may reach `tenant`'s records.
    pub fn tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match &self.token.tenant {
            Some(own) if own != tenant => Err(ApiError::forbidden(format!(
                "this token is for tenant {own} and cannot reach tenant {tenant}"
            ))),
            _ => Ok(()),
        }
    }

    /// The one tenant the token is for, if it is for one.
    pub fn own_tenant(&self) -> Option<&str> {
        self.token.tenant.as_deref()
    }

    /// Whether the caller may answer approval request `a`: an admin any; anyone else
    /// only the requests that name their person.
    pub fn may_answer(&self, a: &crate::store::ApprovalRow) -> bool {
        self.token.role == Role::Admin
            || self.token.person.as_deref().is_some_and(|p| {
                a.approver_emails()
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(p))
            })
    }

    /// The person the token acts as, for approvals and answers.
    pub fn person(&self) -> Result<&str, ApiError> {
        self.token.person.as_deref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "no_person",
                "this token acts for no person, so it cannot answer or approve; create one with \
                 `capdesk token create --person EMAIL`",
            )
        })
    }
}
