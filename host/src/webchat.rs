//! The built-in web chat under `/chat/{tenant}`: where an end user of a tenant without
//! Slack or Teams asks for help. They sign in with a one-time code sent to a contact
//! method their directory holds (so what they ask is from a verified requester), state
//! their request, answer the questions capdesk asks, watch their tickets' progress, and
//! receive the closeout instructions and one-time credential links — the messages the
//! tenant's built-in chat sends them. The session rides in an HttpOnly, SameSite=Strict
//! cookie scoped to the tenant's chat; every form carries a CSRF token derived from it.

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::api::Api;
use crate::connectors::{NewTicket, Person};
use crate::store::webchat::{CODE_SECS, CodeRefused};

const COOKIE: &str = "capdesk_chat";

/// The web chat's routes.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/chat/{tenant}", get(chat))
        .route("/chat/{tenant}/conversation", get(conversation))
        .route("/chat/{tenant}/code", post(send_code))
        .route("/chat/{tenant}/signin", post(sign_in))
        .route("/chat/{tenant}/say", post(say))
        .route("/chat/{tenant}/answer", post(answer))
        .route("/chat/{tenant}/signout", post(sign_out))
}

/// A page that could not be shown, in the chat's own words.
pub struct ChatError {
    status: StatusCode,
    message: String,
}

impl ChatError {
    fn new(status: StatusCode, message: impl Into<String>) -> ChatError {
        ChatError {
            status,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for ChatError {
    fn from(e: anyhow::Error) -> ChatError {
        let api = crate::api::error::ApiError::from(e);
        if api.status.is_server_error() {
            tracing::error!(detail = %api.detail, "web chat request failed");
            return ChatError::new(
                api.status,
                "Something went wrong on our side. Please try again in a moment; if it keeps \
                 happening, contact your IT provider.",
            );
        }
        ChatError::new(api.status, api.detail)
    }
}

impl From<crate::api::error::ApiError> for ChatError {
    fn from(e: crate::api::error::ApiError) -> ChatError {
        ChatError::new(e.status, e.detail)
    }
}

impl From<minijinja::Error> for ChatError {
    fn from(e: minijinja::Error) -> ChatError {
        tracing::error!("web chat page failed to render: {e:#}");
        ChatError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This page could not be shown.",
        )
    }
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        let page = crate::pages::render(
            "chat/signin.html",
            context! { step => "error", error => self.message },
        );
        let mut response = match page {
            Ok(r) => r,
            Err(_) => self.message.into_response(),
        };
        *response.status_mut() = self.status;
        response
    }
}

/// The tenant exists, by its name.
async fn tenant_name(api: &Api, tenant: &str) -> Result<String, ChatError> {
    match api.desk.store.tenant(tenant).await {
        Ok(t) => Ok(t.name),
        Err(_) => Err(ChatError::new(
            StatusCode::NOT_FOUND,
            format!(
                "There is no service desk chat called {tenant:?}. Check the link your IT provider gave you."
            ),
        )),
    }
}

/// A signed-in end user.
pub struct ChatUser {
    tenant: String,
    email: String,
    session: String,
}

impl ChatUser {
    fn csrf(&self) -> String {
        hex::encode(&Sha256::digest(format!("capdesk-webchat-csrf:{}", self.session))[..16])
    }

    fn check(&self, csrf: &str) -> Result<(), ChatError> {
        if bool::from(csrf.as_bytes().ct_eq(self.csrf().as_bytes())) {
            Ok(())
        } else {
            Err(ChatError::new(
                StatusCode::FORBIDDEN,
                "This form is out of date. Reload the chat and send it again.",
            ))
        }
    }
}

/// The session of the chat's tenant, if the visitor has one.
async fn session_of(api: &Api, tenant: &str, jar: &CookieJar) -> anyhow::Result<Option<ChatUser>> {
    let Some(session) = jar.get(COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    Ok(api
        .desk
        .store
        .webchat_session(tenant, &session)
        .await?
        .map(|email| ChatUser {
            tenant: tenant.to_string(),
            email,
            session,
        }))
}

impl FromRequestParts<Api> for ChatUser {
    type Rejection = ChatError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<ChatUser, ChatError> {
        let tenant = parts
            .uri
            .path()
            .strip_prefix("/chat/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let jar = CookieJar::from_headers(&parts.headers);
        session_of(api, &tenant, &jar).await?.ok_or_else(|| {
            ChatError::new(
                StatusCode::UNAUTHORIZED,
                "Your chat session ended. Open the chat again and sign in.",
            )
        })
    }
}

/// The chat: the sign-in steps, or the conversation.
async fn chat(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    jar: CookieJar,
) -> Result<Response, ChatError> {
    let name = tenant_name(&api, &tenant).await?;
    match session_of(&api, &tenant, &jar).await? {
        Some(user) => {
            let conversation = conversation_context(&api, &user).await?;
            Ok(crate::pages::render(
                "chat/chat.html",
                context! { tenant, name, me => user.email, csrf => user.csrf(), ..conversation },
            )?)
        }
        None => Ok(crate::pages::render(
            "chat/signin.html",
            context! { tenant, name, step => "email" },
        )?),
    }
}

/// The conversation alone, for the page to refresh while the user waits.
async fn conversation(State(api): State<Api>, user: ChatUser) -> Result<Response, ChatError> {
    let ctx = conversation_context(&api, &user).await?;
    Ok(crate::pages::render(
        "chat/conversation.html",
        context! { tenant => user.tenant.clone(), csrf => user.csrf(), ..ctx },
    )?)
}

/// One line of the conversation.
#[derive(Serialize)]
struct Line {
    /// `you` or `desk`.
    from: &'static str,
    /// The text, cut where links are so the page can make them clickable.
    parts: Vec<Part>,
    at: String,
}

#[derive(Serialize)]
struct Part {
    text: String,
    link: bool,
}

/// Split a message into text and `http(s)://` links.
fn parts_of(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut plain = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        let url = trimmed.trim_end_matches(['.', ',', ')', ';']);
        if url.starts_with("https://") || url.starts_with("http://") {
            if !plain.is_empty() {
                parts.push(Part {
                    text: std::mem::take(&mut plain),
                    link: false,
                });
            }
            parts.push(Part {
                text: url.to_string(),
                link: true,
            });
            plain.push_str(&word[url.len()..]);
        } else {
            plain.push_str(word);
        }
    }
    if !plain.is_empty() {
        parts.push(Part {
            text: plain,
            link: false,
        });
    }
    parts
}

async fn conversation_context(api: &Api, user: &ChatUser) -> anyhow::Result<Value> {
    let desk = &api.desk;
    let mut lines: Vec<Line> = desk
        .store
        .webchat_transcript(&user.tenant, &user.email)
        .await?
        .into_iter()
        .map(|m| Line {
            from: "you",
            parts: parts_of(&m.text),
            at: m.at,
        })
        .collect();
    let sandbox = desk.sandbox(&user.tenant);
    lines.extend(
        sandbox
            .outbox()
            .await?
            .into_iter()
            .filter(|m| m.recipient.eq_ignore_ascii_case(&user.email))
            .map(|m| Line {
                from: "desk",
                parts: parts_of(&m.text),
                at: m.at,
            }),
    );
    lines.sort_by(|a, b| a.at.cmp(&b.at));
    let questions: Vec<Value> = desk
        .questions_for(&user.tenant, &user.email)
        .await?
        .into_iter()
        .map(|(run, q)| {
            context! {
                run => crate::store::run_label(run), question => q.question, choices => q.choices,
            }
        })
        .collect();
    let tickets: Vec<Value> = sandbox
        .tickets(200)
        .await?
        .into_iter()
        .filter(|r| {
            r.ticket
                .details
                .requester
                .email
                .eq_ignore_ascii_case(&user.email)
        })
        .map(|r| {
            context! {
                id => r.ticket.id, subject => r.ticket.details.subject, status => r.status.name(),
            }
        })
        .collect();
    Ok(context! { lines, questions, tickets })
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: String,
}

/// Send a sign-in code to a contact method the directory holds for `email`. The page
/// says the same whether or not the address is known, so the chat does not tell
/// strangers who works at the tenant.
async fn send_code(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<EmailForm>,
) -> Result<Response, ChatError> {
    let name = tenant_name(&api, &tenant).await?;
    let email = form.email.trim().to_ascii_lowercase();
    if !email.contains('@') || email.len() > 254 {
        let mut page = crate::pages::render(
            "chat/signin.html",
            context! { tenant, name, step => "email", error => "Enter your work email address, like name@company.com." },
        )?;
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(page);
    }
    let connectors = api.desk.connectors(&tenant);
    let contact = match connectors.idp.contact_methods(&email).await {
        Ok(methods) => methods.into_iter().next(),
        Err(e) => {
            tracing::info!(
                tenant,
                "web chat sign-in for an address the directory does not give: {e}"
            );
            None
        }
    };
    let mut notice = None;
    if let Some(contact) = contact {
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        if api
            .desk
            .store
            .keep_webchat_code(&tenant, &email, &code, &contact)
            .await?
        {
            let text = format!(
                "Your {name} service desk sign-in code is {code}. It works for {} minutes. \
                 If you did not ask for it, ignore this message.",
                CODE_SECS / 60
            );
            if let Err(e) = connectors.chat.send(&contact, &text).await {
                tracing::warn!(tenant, "could not send a web chat sign-in code: {e}");
                return Err(ChatError::new(
                    StatusCode::BAD_GATEWAY,
                    "We could not send your sign-in code just now. Please try again in a minute.",
                ));
            }
        } else {
            notice = Some(
                "We sent a code a moment ago; use that one, or wait half a minute to ask again.",
            );
        }
    }
    Ok(crate::pages::render(
        "chat/signin.html",
        context! { tenant, name, step => "code", email, notice },
    )?)
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    email: String,
    code: String,
}

/// Check the code; a right one opens a session.
async fn sign_in(
    State(api): State<Api>,
    Path(tenant): Path<String>,
    jar: CookieJar,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result<Response, ChatError> {
    let name = tenant_name(&api, &tenant).await?;
    let email = form.email.trim().to_ascii_lowercase();
    match api
        .desk
        .store
        .redeem_webchat_code(&tenant, &email, &form.code)
        .await?
    {
        Ok(session) => {
            tracing::info!(tenant, "web chat sign-in");
            let cookie = Cookie::build((COOKIE, session))
                .path(format!("/chat/{tenant}"))
                .http_only(true)
                .same_site(SameSite::Strict)
                .build();
            Ok((jar.add(cookie), Redirect::to(&format!("/chat/{tenant}"))).into_response())
        }
        Err(refused) => {
            let step = if matches!(refused, CodeRefused::Wrong(_)) {
                "code"
            } else {
                "email"
            };
            let mut page = crate::pages::render(
                "chat/signin.html",
                context! { tenant, name, step, email, error => refused.to_string() },
            )?;
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(page)
        }
    }
}

#[derive(Debug, Deserialize)]
struct SayForm {
    csrf: String,
    text: String,
}

/// A new request: it becomes a ticket from a verified requester and runs.
async fn say(
    State(api): State<Api>,
    user: ChatUser,
    axum::Form(form): axum::Form<SayForm>,
) -> Result<Response, ChatError> {
    user.check(&form.csrf)?;
    let text = form.text.trim().to_string();
    if text.is_empty() {
        return Ok(Redirect::to(&format!("/chat/{}", user.tenant)).into_response());
    }
    if text.len() > 4000 {
        return Err(ChatError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That message is too long for the chat (4,000 characters at most). Say what you need in a few lines.",
        ));
    }
    let desk = api.desk.acting_as(format!("webchat:{}", user.email));
    let name = desk
        .connectors(&user.tenant)
        .idp
        .find_user(&user.email)
        .await
        .map(|u| u.name)
        .unwrap_or_default();
    let subject: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    let ticket = NewTicket {
        subject,
        body: text.clone(),
        requester: Person {
            email: user.email.clone(),
            name,
        },
        channel: "webchat".into(),
        requester_verified: true,
        fields: Default::default(),
    };
    // What the user said is kept first, so the conversation shows it before the replies.
    desk.store
        .webchat_said(&user.tenant, &user.email, &text)
        .await?;
    let tenant = user.tenant.clone();
    api.queued(
        &user.tenant,
        async move { desk.submit(&tenant, ticket).await },
    )
    .await?;
    Ok(Redirect::to(&format!("/chat/{}", user.tenant)).into_response())
}

#[derive(Debug, Deserialize)]
struct AnswerForm {
    csrf: String,
    run: String,
    text: String,
}

/// An answer to a question a run put to this user.
async fn answer(
    State(api): State<Api>,
    user: ChatUser,
    axum::Form(form): axum::Form<AnswerForm>,
) -> Result<Response, ChatError> {
    user.check(&form.csrf)?;
    let run = crate::store::parse_run_id(&form.run)?;
    let asked = api.desk.questions_for(&user.tenant, &user.email).await?;
    if !asked.iter().any(|(r, _)| *r == run) {
        return Err(ChatError::new(
            StatusCode::CONFLICT,
            "That question was answered already or is no longer waiting. Reload the chat.",
        ));
    }
    let text = form.text.trim().to_string();
    if text.is_empty() {
        return Ok(Redirect::to(&format!("/chat/{}", user.tenant)).into_response());
    }
    let desk = api.desk.acting_as(format!("webchat:{}", user.email));
    // A code is not kept in the transcript; anything else is.
    let shown = if asked
        .iter()
        .any(|(r, q)| *r == run && q.question.contains("code"))
    {
        "(verification code sent)".to_string()
    } else {
        text.clone()
    };
    desk.store
        .webchat_said(&user.tenant, &user.email, &shown)
        .await?;
    let email = user.email.clone();
    api.queued(&user.tenant, async move {
        desk.answer(run, &email, &text).await
    })
    .await?;
    Ok(Redirect::to(&format!("/chat/{}", user.tenant)).into_response())
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(api): State<Api>,
    user: ChatUser,
    jar: CookieJar,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, ChatError> {
    user.check(&form.csrf)?;
    api.desk.store.end_webchat_session(&user.session).await?;
    let jar = jar.remove(Cookie::build(COOKIE).path(format!("/chat/{}", user.tenant)));
    Ok((jar, Redirect::to(&format!("/chat/{}", user.tenant))).into_response())
}
