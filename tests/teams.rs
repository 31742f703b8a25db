//! Microsoft Teams as a tenant's chat, against a real `capdesk serve` process and a fake
//! Bot Framework on a local port (OpenID metadata and keys, token endpoint, connector
//! API) that signs with a locally generated RSA key set: a valid token's message
//! becomes a ticket and the reply goes back to the conversation; tokens from another
//! issuer, for another bot, expired, signed with an unknown or a wrong key, or for
//! another serviceUrl are refused and write nothing; an approval card's Approve counts
//! only from the entitled approver, and the card is replaced with the decision.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::blocking::RequestBuilder;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use support::fake::FakeServer;
use support::server::{Server, expect, expect_error, now};

const APP_ID: &str = "11111111-2222-3333-4444-555555555555";
const PASSWORD: &str = "bot-client-secret";
const BOT_TOKEN: &str = "bot-access-token";
const ISSUER: &str = "https://api.botframework.com";

/// Teams users of the fake tenant: Bot Framework id and email.
const PEOPLE: &[(&str, &str)] = &[
    ("29:ann", "ann@acme.test"),
    ("29:max", "max@acme.test"),
    ("29:zoe", "zoe@acme.test"),
];

#[derive(Default)]
struct BotFramework {
    base: OnceLock<String>,
    jwks: Value,
    /// (method, path, body) of every connector call.
    calls: Mutex<Vec<(String, String, Value)>>,
    tokens_issued: Mutex<u32>,
}

type Shared = Arc<BotFramework>;

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {BOT_TOKEN}"))
}

async fn openid(State(bf): State<Shared>) -> impl IntoResponse {
    axum::Json(json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{}/keys", bf.base.get().unwrap()),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn keys(State(bf): State<Shared>) -> impl IntoResponse {
    axum::Json(bf.jwks.clone())
}

async fn token(
    State(bf): State<Shared>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> axum::response::Response {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials")
        || get("client_id") != Some(APP_ID)
        || get("client_secret") != Some(PASSWORD)
        || get("scope") != Some("https://api.botframework.com/.default")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    *bf.tokens_issued.lock().unwrap() += 1;
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": BOT_TOKEN}))
        .into_response()
}

async fn member(
    headers: HeaderMap,
    Path((_conversation, user)): Path<(String, String)>,
) -> axum::response::Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match PEOPLE.iter().find(|(id, _)| *id == user) {
        Some((id, email)) => axum::Json(json!({
            "id": id, "name": format!("Person {id}"), "email": email, "userPrincipalName": email,
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn send_activity(
    State(bf): State<Shared>,
    headers: HeaderMap,
    Path(conversation): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut calls = bf.calls.lock().unwrap();
    calls.push(("POST".into(), conversation, body));
    axum::Json(json!({ "id": format!("act-{}", calls.len()) })).into_response()
}

async fn update_activity(
    State(bf): State<Shared>,
    headers: HeaderMap,
    Path((conversation, id)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut calls = bf.calls.lock().unwrap();
    calls.push(("PUT".into(), format!("{conversation}/{id}"), body));
    axum::Json(json!({ "id": id })).into_response()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A locally generated signing key and its JWK.
struct Key {
    der: Vec<u8>,
    jwk: Value,
}

fn generate(kid: &str) -> Key {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
    let public = private.to_public_key();
    Key {
        der: private.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        jwk: json!({
            "kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256",
            "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
            "endorsements": ["msteams"],
        }),
    }
}

struct Desk {
    server: Server,
    fake: FakeServer,
    bf: Shared,
    /// Published as `k1`.
    key: Key,
    /// Never published.
    stranger: Key,
}

impl Desk {
    fn start() -> Desk {
        let key = generate("k1");
        let stranger = generate("k1");
        let bf: Shared = Arc::new(BotFramework {
            jwks: json!({ "keys": [key.jwk.clone()] }),
            ..BotFramework::default()
        });
        let router = axum::Router::new()
            .route("/openid", get(openid))
            .route("/keys", get(keys))
            .route("/token", post(token))
            .route(
                "/v3/conversations/{conversation}/members/{user}",
                get(member),
            )
            .route(
                "/v3/conversations/{conversation}/activities",
                post(send_activity),
            )
            .route(
                "/v3/conversations/{conversation}/activities/{id}",
                put(update_activity),
            )
            .with_state(bf.clone());
        let fake = FakeServer::start(router);
        bf.base.set(fake.url("")).unwrap();
        let server = Server::start(&["--no-demo"]);
        server.acme();
        let password = server.desk.dir.path().join("teams-password");
        std::fs::write(&password, PASSWORD).unwrap();
        server.desk.ok(&[
            "tenant",
            "teams",
            "acme",
            "--app-id",
            APP_ID,
            "--app-password-file",
            password.to_str().unwrap(),
            "--openid-url",
            &fake.url("/openid"),
            "--token-url",
            &fake.url("/token"),
        ]);
        Desk {
            server,
            fake,
            bf,
            key,
            stranger,
        }
    }

    fn service_url(&self) -> String {
        self.fake.url("/")
    }

    /// A token signed with `key` under `kid`, with these claims changed.
    fn token_with(&self, key: &Key, kid: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = json!({
            "iss": ISSUER, "aud": APP_ID, "exp": now() + 3600, "nbf": now() - 60,
            "serviceUrl": self.service_url(),
        });
        change(&mut claims);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&key.der)).unwrap()
    }

    fn token(&self) -> String {
        self.token_with(&self.key, "k1", |_| {})
    }

    fn activity(&self, kind: &str, id: &str, user: &str, text: &str) -> Value {
        json!({
            "type": kind, "id": id, "channelId": "msteams", "serviceUrl": self.service_url(),
            "from": { "id": user, "name": format!("Person {user}") },
            "recipient": { "id": "28:capdesk-bot" },
            "conversation": { "id": format!("a:{user}"), "conversationType": "personal" },
            "text": text,
        })
    }

    fn send(&self, token: Option<&str>, activity: &Value) -> RequestBuilder {
        let request = self
            .server
            .http
            .post(format!("{}/hooks/teams/acme/messages", self.server.base))
            .json(activity);
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn tickets(&self) -> Vec<Value> {
        expect(
            self.server
                .get(&self.server.admin, "/api/v1/tenants/acme/tickets"),
            200,
        )
        .as_array()
        .unwrap()
        .clone()
    }

    fn calls(&self) -> Vec<(String, String, Value)> {
        self.bf.calls.lock().unwrap().clone()
    }

    fn eventually<T>(&self, what: &str, mut check: impl FnMut(&Desk) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn only_valid_bot_framework_tokens_are_accepted() {
    let desk = Desk::start();
    let locked = desk.activity("message", "m1", "29:ann", "I'm locked out of my account");
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong issuer",
            desk.token_with(&desk.key, "k1", |c| c["iss"] = json!("https://sts.example")),
        ),
        (
            "wrong audience",
            desk.token_with(&desk.key, "k1", |c| c["aud"] = json!("another-bot")),
        ),
        (
            "expired",
            desk.token_with(&desk.key, "k1", |c| c["exp"] = json!(now() - 600)),
        ),
        (
            "not valid yet",
            desk.token_with(&desk.key, "k1", |c| c["nbf"] = json!(now() + 600)),
        ),
        ("unknown kid", desk.token_with(&desk.key, "k9", |_| {})),
        (
            "bad signature",
            desk.token_with(&desk.stranger, "k1", |_| {}),
        ),
        (
            "serviceUrl mismatch",
            desk.token_with(&desk.key, "k1", |c| {
                c["serviceUrl"] = json!("https://smba.trafficmanager.net/emea/")
            }),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, token) in &refused {
        let detail = expect_error(desk.send(Some(token), &locked), 401, "unauthorized");
        assert!(detail.contains("token"), "{what}: {detail}");
    }
    expect_error(desk.send(None, &locked), 401, "unauthorized");
    let mut tampered = locked.clone();
    tampered["serviceUrl"] = json!("https://attacker.example/");
    expect_error(
        desk.send(Some(&desk.token()), &tampered),
        401,
        "unauthorized",
    );
    let huge = desk.activity("message", "m2", "29:ann", &"a".repeat(300_000));
    expect_error(desk.send(Some(&desk.token()), &huge), 413, "too_large");
    assert!(
        desk.tickets().is_empty(),
        "a refused activity made a ticket"
    );
    assert!(
        desk.calls().is_empty(),
        "a refused activity reached the connector"
    );

    // Two minutes past expiry is within the five minutes of skew.
    let late = desk.token_with(&desk.key, "k1", |c| c["exp"] = json!(now() - 120));
    let taken = expect(desk.send(Some(&late), &locked), 200);
    assert_eq!(taken["ticket"], "queued", "{taken}");
    let ticket = desk.eventually("the ticket to resolve", |d| {
        d.tickets().into_iter().find(|t| t["status"] == "resolved")
    });
    assert_eq!(ticket["requester"]["email"], "ann@acme.test");
    assert_eq!(ticket["channel"], "chat");
    // The reply went to Ann's conversation with the bot, with the bot's token.
    let replies = desk.eventually("the reply in Teams", |d| {
        let calls = d.calls();
        (!calls.is_empty()).then_some(calls)
    });
    assert!(
        replies
            .iter()
            .all(|(m, conv, _)| m == "POST" && conv == "a:29:ann"),
        "{replies:?}"
    );
    // A redelivery of the same activity does nothing.
    let again = expect(desk.send(Some(&desk.token()), &locked), 200);
    assert_eq!(again["duplicate"], "m1");
    assert_eq!(desk.tickets().len(), 1);
    assert_eq!(
        *desk.bf.tokens_issued.lock().unwrap(),
        1,
        "the bot token is cached"
    );
}

#[test]
fn an_approval_card_counts_only_from_the_entitled_approver_and_is_replaced() {
    let desk = Desk::start();
    // The app is installed for Max, so capdesk can reach him before he writes.
    let mut install = desk.activity("conversationUpdate", "u1", "29:max", "");
    install["membersAdded"] = json!([{ "id": "29:max" }, { "id": "28:capdesk-bot" }]);
    let installed = expect(desk.send(Some(&desk.token()), &install), 200);
    assert_eq!(installed["reachable"], json!(["max@acme.test"]));

    let ask = desk.activity(
        "message",
        "m1",
        "29:ann",
        "Please add me to the SG-Finance-ReadOnly security group.",
    );
    expect(desk.send(Some(&desk.token()), &ask), 200);
    let (card_id, card) = desk.eventually("the approval card to Max", |d| {
        d.calls()
            .iter()
            .enumerate()
            .find_map(|(i, (m, conv, body))| {
                (m == "POST" && conv == "a:29:max" && body["attachments"].is_array())
                    .then(|| (format!("act-{}", i + 1), body["attachments"][0].clone()))
            })
    });
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let approve = &card["content"]["actions"][0];
    assert_eq!(approve["type"], "Action.Execute");
    assert_eq!(approve["verb"], "approve");
    let approval = approve["data"]["approval"].as_str().unwrap().to_string();

    let click = |user: &str| {
        let mut invoke = desk.activity("invoke", "i1", user, "");
        invoke["name"] = json!("adaptiveCard/action");
        invoke["value"] = json!({ "action": { "type": "Action.Execute", "verb": "approve",
                                               "data": { "approval": approval } } });
        invoke
    };
    let detail = expect_error(
        desk.send(Some(&desk.token()), &click("29:zoe")),
        403,
        "refused",
    );
    assert!(detail.contains("not an approver"), "{detail}");
    let pending = expect(
        desk.server
            .get(&desk.server.admin, &format!("/api/v1/approvals/{approval}")),
        200,
    );
    assert_eq!(pending["status"], "pending");

    let response = expect(desk.send(Some(&desk.token()), &click("29:max")), 200);
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["type"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(response["value"]["type"], "AdaptiveCard");
    assert!(
        response["value"]
            .to_string()
            .contains("approved by max@acme.test"),
        "{response}"
    );
    let answered = expect(
        desk.server
            .get(&desk.server.admin, &format!("/api/v1/approvals/{approval}")),
        200,
    );
    assert_eq!(answered["status"], "approved");
    assert_eq!(answered["answered_by"], "max@acme.test");
    // The card Max was sent now shows the decision, without buttons.
    let update = desk
        .calls()
        .into_iter()
        .find(|(m, _, _)| m == "PUT")
        .expect("the card was updated");
    assert_eq!(update.1, format!("a:29:max/{card_id}"));
    assert!(update.2["attachments"][0]["content"]["actions"].is_null());
}
