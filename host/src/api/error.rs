//! The API's errors: every 4xx and 5xx answer is JSON `{error, detail}`, where `error`
//! is a stable code a client can branch on and `detail` says, in words, what was wrong
//! and what to do. Also the JSON body extractor whose rejections take the same shape.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::connectors::ConnectorError;
use crate::engine::{Conflict, Refused};
use crate::store::NotFound;
use crate::workers::Refusal;

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `refused`, `not_found`, `conflict`,
    /// `bad_request`, `unprocessable`, `invalid_policy`, `busy`, `unavailable`, ...
    pub error: String,
    /// What was wrong and what to do, in words.
    pub detail: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, detail = %self.detail, "request failed");
        }
        let body = Json(ErrorBody {
            error: self.error.to_string(),
            detail: self.detail,
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// What capdesk's own errors mean for the client: a missing record is 404, a refused
/// approver or answerer 403, a request that does not fit the current state 409, a
/// database failure 500, and anything else the request's own fault (422: what to fix
/// is in the detail).
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        let detail = format!("{e:#}");
        for cause in e.chain() {
            if cause.is::<NotFound>() {
                return ApiError::not_found(detail);
            }
            if cause.is::<Refused>() {
                return ApiError::new(StatusCode::FORBIDDEN, "refused", detail);
            }
            if cause.is::<Conflict>() {
                return ApiError::new(StatusCode::CONFLICT, "conflict", detail);
            }
            match cause.downcast_ref::<ConnectorError>() {
                Some(ConnectorError::NotFound(_)) => return ApiError::not_found(detail),
                Some(ConnectorError::Upstream(_)) => {
                    return ApiError::new(StatusCode::BAD_GATEWAY, "upstream", detail);
                }
                _ => {}
            }
            if cause.is::<sqlx::Error>() {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!(
                        "the database failed ({detail}); retry, and tell the MSP's admin if it persists"
                    ),
                );
            }
        }
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::Full { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", r.to_string())
            }
            Refusal::Closed => ApiError::unavailable(r.to_string()),
        }
    }
}

/// A JSON request body; malformed JSON, a wrong content type or a body over the limit
/// are answered as `{error, detail}` like every other error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let text = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "too_large",
            format!("the body is larger than capdesk accepts ({text})"),
        ),
        _ => ApiError::bad_request(format!(
            "the JSON body is not what this endpoint takes: {text}"
        )),
    }
}

/// The answer to a request no route matches.
pub async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {}; the API is under /api/v1 (its OpenAPI document: /api/v1/openapi.json)",
        uri.path()
    ))
}

/// The answer to a method a route does not take.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}
