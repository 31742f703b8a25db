//! Slack as a tenant's chat, against a real `capdesk serve` process and a fake Slack Web
//! API on a local port that answers as Slack documents (errors as HTTP 200 with
//! `ok: false`, rate limits as 429 with `Retry-After`): a direct message becomes a
//! ticket that resolves, approvals are buttons only the entitled approver's click
//! answers (and the request's message is then updated to show the decision), and every
//! request that is not Slack's, signed for this tenant, is refused and writes nothing.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};
use support::fake::FakeServer;
use support::server::{Server, expect, expect_error, now};

const TOKEN: &str = "xoxb-acme-test";
const SECRET: &str = "acme-signing-secret";
const GLOBEX_SECRET: &str = "globex-signing-secret";

/// The workspace's people: Slack user id and profile email.
const PEOPLE: &[(&str, &str)] = &[
    ("UANN", "ann@acme.test"),
    ("UMAX", "max@acme.test"),
    ("UZOE", "zoe@acme.test"),
    ("UBOT", ""),
];

/// What the fake Slack was asked: (method, JSON body or query).
#[derive(Default)]
struct Workspace {
    calls: Vec<(String, Value)>,
    /// `chat.postMessage` calls still to answer with 429.
    rate_limited: u32,
    posted: u32,
}

type Shared = Arc<Mutex<Workspace>>;

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

fn fail(error: &str) -> axum::response::Response {
    axum::Json(json!({ "ok": false, "error": error })).into_response()
}

async fn users_info(
    State(ws): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Value>,
) -> axum::response::Response {
    ws.lock()
        .unwrap()
        .calls
        .push(("users.info".into(), q.clone()));
    if !authorized(&headers) {
        return fail("invalid_auth");
    }
    let id = q["user"].as_str().unwrap_or_default();
    match PEOPLE.iter().find(|(u, _)| *u == id) {
        Some((u, email)) => axum::Json(json!({
            "ok": true,
            "user": { "id": u, "real_name": format!("Person {u}"), "is_bot": email.is_empty(),
                      "profile": { "email": email } }
        }))
        .into_response(),
        None => fail("user_not_found"),
    }
}

async fn lookup_by_email(
    State(ws): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Value>,
) -> axum::response::Response {
    ws.lock()
        .unwrap()
        .calls
        .push(("users.lookupByEmail".into(), q.clone()));
    if !authorized(&headers) {
        return fail("invalid_auth");
    }
    let email = q["email"].as_str().unwrap_or_default();
    match PEOPLE.iter().find(|(_, e)| !e.is_empty() && *e == email) {
        Some((u, _)) => axum::Json(json!({ "ok": true, "user": { "id": u } })).into_response(),
        None => fail("users_not_found"),
    }
}

async fn post_message(
    State(ws): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    let mut ws = ws.lock().unwrap();
    ws.calls.push(("chat.postMessage".into(), body.clone()));
    if !authorized(&headers) {
        return fail("invalid_auth");
    }
    if ws.rate_limited > 0 {
        ws.rate_limited -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({ "ok": false, "error": "ratelimited" })),
        )
            .into_response();
    }
    ws.posted += 1;
    let channel = format!("D{}", body["channel"].as_str().unwrap_or_default());
    axum::Json(
        json!({ "ok": true, "channel": channel, "ts": format!("1700000000.{:06}", ws.posted) }),
    )
    .into_response()
}

async fn update(
    State(ws): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    ws.lock().unwrap().calls.push(("chat.update".into(), body));
    if !authorized(&headers) {
        return fail("invalid_auth");
    }
    axum::Json(json!({ "ok": true })).into_response()
}

/// A fake Slack Web API; the first `rate_limited` posts are answered 429.
fn fake_slack(rate_limited: u32) -> (FakeServer, Shared) {
    let ws: Shared = Arc::new(Mutex::new(Workspace {
        rate_limited,
        ..Workspace::default()
    }));
    let router = axum::Router::new()
        .route("/api/users.info", get(users_info))
        .route("/api/users.lookupByEmail", get(lookup_by_email))
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/chat.update", post(update))
        .with_state(ws.clone());
    (FakeServer::start(router), ws)
}

/// capdesk serving acme (and globex), both on Slack apps of the fake workspace.
struct Desk {
    server: Server,
    ws: Shared,
}

impl Desk {
    fn start(rate_limited: u32) -> Desk {
        let (slack, ws) = fake_slack(rate_limited);
        let server = Server::start(&["--no-demo"]);
        server.acme();
        expect(
            server.post(&server.admin, "/api/v1/tenants", json!({"id": "globex"})),
            201,
        );
        let dir = server.desk.dir.path();
        for (tenant, secret) in [("acme", SECRET), ("globex", GLOBEX_SECRET)] {
            let token_file = dir.join(format!("{tenant}-token"));
            let secret_file = dir.join(format!("{tenant}-secret"));
            std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
            std::fs::write(&secret_file, secret).unwrap();
            server.desk.ok(&[
                "tenant",
                "slack",
                tenant,
                "--bot-token-file",
                token_file.to_str().unwrap(),
                "--signing-secret-file",
                secret_file.to_str().unwrap(),
                "--api-base",
                &slack.url("/api"),
            ]);
        }
        Desk { server, ws }
    }

    /// A request to `/hooks/slack/{tenant}/{endpoint}` signed with `secret` at `timestamp`.
    fn signed(
        &self,
        tenant: &str,
        endpoint: &str,
        secret: &str,
        timestamp: i64,
        body: &str,
    ) -> RequestBuilder {
        let content_type = if endpoint == "events" {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        self.server
            .http
            .post(format!(
                "{}/hooks/slack/{tenant}/{endpoint}",
                self.server.base
            ))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header(
                "x-slack-signature",
                capdesk::api::slack::sign(secret, timestamp, body.as_bytes()),
            )
            .body(body.to_string())
    }

    /// Send a correctly signed request to acme.
    fn acme(&self, endpoint: &str, body: &str) -> RequestBuilder {
        self.signed("acme", endpoint, SECRET, now(), body)
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.ws
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn tickets(&self, tenant: &str) -> Vec<Value> {
        expect(
            self.server.get(
                &self.server.admin,
                &format!("/api/v1/tenants/{tenant}/tickets"),
            ),
            200,
        )
        .as_array()
        .unwrap()
        .clone()
    }

    fn audit(&self, tenant: &str) -> Vec<Value> {
        expect(
            self.server.get(
                &self.server.admin,
                &format!("/api/v1/tenants/{tenant}/audit"),
            ),
            200,
        )
        .as_array()
        .unwrap()
        .clone()
    }

    /// Wait (up to a deadline) until `check` gives a value.
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

/// A direct message from `user`, as the Events API delivers it.
fn message(event_id: &str, user: &str, text: &str) -> String {
    json!({
        "type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
        "event_time": now(),
        "event": { "type": "message", "channel_type": "im", "channel": format!("D{user}"),
                   "user": user, "text": text, "ts": "1700000000.000100" },
    })
    .to_string()
}

/// A click on one of capdesk's buttons, as Slack's interactivity request delivers it.
fn click(user: &str, action_id: &str, value: &str) -> String {
    let payload = json!({
        "type": "block_actions", "user": { "id": user }, "team": { "id": "T1" },
        "actions": [{ "action_id": action_id, "value": value, "type": "button" }],
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

#[test]
fn a_direct_message_becomes_a_ticket_that_resolves_and_retries_are_ignored() {
    // The first answer to the bot is a rate limit, which capdesk waits out.
    let desk = Desk::start(1);
    let challenge = expect(
        desk.acme(
            "events",
            &json!({"type": "url_verification", "challenge": "c-123", "token": "x"}).to_string(),
        ),
        200,
    );
    assert_eq!(challenge, json!({"challenge": "c-123"}));

    let text = "Locked out of my account\nI typed my password wrong too many times.";
    let taken = expect(desk.acme("events", &message("Ev1", "UANN", text)), 200);
    assert_eq!(taken["ticket"], "queued", "{taken}");
    let ticket = desk.eventually("the ticket to resolve", |d| {
        d.tickets("acme")
            .into_iter()
            .find(|t| t["status"] == "resolved")
    });
    assert_eq!(ticket["channel"], "chat");
    assert_eq!(ticket["subject"], "Locked out of my account");
    assert_eq!(ticket["requester"]["email"], "ann@acme.test");
    assert_eq!(
        ticket["requester"]["name"], "Ann Archer",
        "named as the directory knows her"
    );
    let ann = expect(
        desk.server.get(
            &desk.server.admin,
            "/api/v1/tenants/acme/sandbox/users/ann@acme.test",
        ),
        200,
    );
    assert_eq!(ann["locked"], false, "{ann}");
    // Ann hears back in Slack, in her direct messages with the app (after one 429).
    let posts = desk.eventually("the closeout in Slack", |d| {
        let posts = d.calls("chat.postMessage");
        (posts.len() >= 2).then_some(posts)
    });
    assert!(posts.iter().all(|p| p["channel"] == "UANN"), "{posts:?}");

    // Slack's retry of the same event, a bot's message and a message edit do nothing.
    let again = expect(desk.acme("events", &message("Ev1", "UANN", text)), 200);
    assert_eq!(again["duplicate"], "Ev1", "{again}");
    let mut bot: Value = serde_json::from_str(&message("Ev2", "UBOT", "hello")).unwrap();
    bot["event"]["bot_id"] = json!("B1");
    assert!(expect(desk.acme("events", &bot.to_string()), 200)["ignored"].is_string());
    let mut edit: Value = serde_json::from_str(&message("Ev3", "UANN", "locked out")).unwrap();
    edit["event"]["subtype"] = json!("message_changed");
    assert!(expect(desk.acme("events", &edit.to_string()), 200)["ignored"].is_string());
    assert_eq!(desk.tickets("acme").len(), 1);
}

#[test]
fn an_approval_button_counts_only_from_the_entitled_approver_and_updates_the_message() {
    let desk = Desk::start(0);
    let text = "Please add me to the SG-Finance-ReadOnly security group.";
    expect(desk.acme("events", &message("Ev1", "UANN", text)), 200);
    // Max, Ann's manager, gets the request with Approve and Reject buttons.
    let request = desk.eventually("the approval request in Slack", |d| {
        d.calls("chat.postMessage")
            .into_iter()
            .find(|p| p["channel"] == "UMAX" && p["blocks"].is_array())
    });
    let buttons = request["blocks"][1]["elements"].as_array().unwrap().clone();
    assert_eq!(buttons[0]["action_id"], "approve");
    assert_eq!(buttons[1]["action_id"], "reject");
    let approval = buttons[0]["value"].as_str().unwrap().to_string();
    assert!(approval.starts_with("A-"), "{approval}");
    let status = |d: &Desk| {
        expect(
            d.server
                .get(&d.server.admin, &format!("/api/v1/approvals/{approval}")),
            200,
        )["status"]
            .clone()
    };
    assert_eq!(status(&desk), "pending");

    // Zoe is in the directory but not an approver: refused, and the attempt recorded.
    let detail = expect_error(
        desk.acme("interactivity", &click("UZOE", "approve", &approval)),
        403,
        "refused",
    );
    assert!(detail.contains("not an approver"), "{detail}");
    assert_eq!(status(&desk), "pending");
    assert!(
        desk.audit("acme")
            .iter()
            .any(|e| e["kind"] == "approval.refused" && e["actor"] == "zoe@acme.test"),
        "the refused click is audited"
    );
    // Globex's own Slack app cannot click on acme's approval.
    let audit_before = desk.audit("acme").len();
    expect_error(
        desk.signed(
            "globex",
            "interactivity",
            GLOBEX_SECRET,
            now(),
            &click("UMAX", "approve", &approval),
        ),
        404,
        "not_found",
    );
    assert_eq!(status(&desk), "pending");
    assert_eq!(desk.audit("acme").len(), audit_before);
    assert!(desk.calls("chat.update").is_empty());

    let done = expect(
        desk.acme("interactivity", &click("UMAX", "approve", &approval)),
        200,
    );
    assert_eq!(done["status"], "resolved", "{done}");
    assert_eq!(status(&desk), "approved");
    let ann = expect(
        desk.server.get(
            &desk.server.admin,
            "/api/v1/tenants/acme/sandbox/users/ann@acme.test",
        ),
        200,
    );
    assert!(
        ann["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "SG-Finance-ReadOnly"),
        "{ann}"
    );
    // The request's message now shows the decision instead of its buttons.
    let updates = desk.calls("chat.update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["channel"], "DUMAX");
    let posted_ts = desk.eventually("the post's ts", |d| {
        let posts = d.calls("chat.postMessage");
        let i = posts.iter().position(|p| p["channel"] == "UMAX")?;
        Some(format!("1700000000.{:06}", i + 1))
    });
    assert_eq!(updates[0]["ts"], posted_ts.as_str());
    let shown = updates[0]["text"].as_str().unwrap();
    assert!(shown.contains("approved by max@acme.test"), "{shown}");
    assert!(updates[0]["blocks"].to_string().find("approve\"").is_none());

    // A second click on the stale button changes nothing.
    expect_error(
        desk.acme("interactivity", &click("UMAX", "reject", &approval)),
        409,
        "conflict",
    );
}

#[test]
fn requests_not_signed_by_slack_for_this_tenant_are_refused_and_write_nothing() {
    let desk = Desk::start(0);
    let body = message("Ev1", "UANN", "I'm locked out of my account");
    let audit_before = desk.audit("acme").len();
    let url = format!("{}/hooks/slack/acme/events", desk.server.base);

    // No signature headers at all, or only one of them.
    let unsigned = desk
        .server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(body.clone());
    let detail = expect_error(unsigned, 401, "unauthorized");
    assert!(
        detail.contains("X-Slack-Request-Timestamp") || detail.contains("x-slack"),
        "{detail}"
    );
    let no_signature = desk
        .server
        .http
        .post(&url)
        .header("x-slack-request-timestamp", now().to_string())
        .body(body.clone());
    expect_error(no_signature, 401, "unauthorized");
    // Signed, then changed on the way.
    let tampered = desk
        .acme("events", &body)
        .body(body.replace("locked out", "an admin now"));
    expect_error(tampered, 401, "unauthorized");
    // A signature that is not hex.
    let garbled = desk
        .server
        .http
        .post(&url)
        .header("x-slack-request-timestamp", now().to_string())
        .header("x-slack-signature", "v0=not-hex")
        .body(body.clone());
    expect_error(garbled, 401, "unauthorized");
    // Two signatures, one of them right: ambiguous, so refused.
    let doubled = desk
        .acme("events", &body)
        .header("x-slack-signature", "v0=00");
    expect_error(doubled, 401, "unauthorized");
    // Correctly signed, but six minutes old (a replay).
    let detail = expect_error(
        desk.signed("acme", "events", SECRET, now() - 360, &body),
        401,
        "unauthorized",
    );
    assert!(detail.contains("clock"), "{detail}");
    // Another tenant's secret, and a tenant that does not exist.
    expect_error(
        desk.signed("acme", "events", GLOBEX_SECRET, now(), &body),
        401,
        "unauthorized",
    );
    expect_error(
        desk.signed("globex", "events", SECRET, now(), &body),
        401,
        "unauthorized",
    );
    expect_error(
        desk.signed("nobody", "events", SECRET, now(), &body),
        401,
        "unauthorized",
    );
    // Too big, even when signed.
    let huge = message("Ev2", "UANN", &"a".repeat(70_000));
    expect_error(desk.acme("events", &huge), 413, "too_large");
    // Signed but malformed.
    expect_error(desk.acme("events", "{\"type\": "), 400, "bad_request");
    expect_error(
        desk.acme("interactivity", "payload=%7Bnot-json"),
        400,
        "bad_request",
    );
    expect_error(
        desk.acme("interactivity", &click("UMAX", "approve", "not-an-id")),
        400,
        "bad_request",
    );
    expect_error(
        desk.acme("interactivity", &click("UMAX", "approve", "A-999")),
        404,
        "not_found",
    );

    assert!(
        desk.tickets("acme").is_empty(),
        "a refused request made a ticket"
    );
    assert!(desk.tickets("globex").is_empty());
    assert_eq!(
        desk.audit("acme").len(),
        audit_before,
        "a refused request was audited"
    );
    let ws = desk.ws.lock().unwrap();
    assert!(
        ws.calls.is_empty(),
        "a refused request reached Slack: {:?}",
        ws.calls
    );
}

#[test]
fn slack_settings_are_checked_and_secrets_never_shown() {
    let desk = Desk::start(0);
    let dir = desk.server.desk.dir.path();
    let bad_token = dir.join("bad-token");
    std::fs::write(&bad_token, "not-a-bot-token").unwrap();
    let secret = dir.join("acme-secret");
    let out = desk.server.desk.run(&[
        "tenant",
        "slack",
        "acme",
        "--bot-token-file",
        bad_token.to_str().unwrap(),
        "--signing-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert!(!out.ok);
    assert!(out.stderr.contains("xoxb-"), "{}", out.stderr);
    let out = desk.server.desk.run(&[
        "tenant",
        "slack",
        "acme",
        "--bot-token-file",
        dir.join("acme-token").to_str().unwrap(),
        "--signing-secret-file",
        secret.to_str().unwrap(),
        "--api-base",
        "http://slack.example/api",
    ]);
    assert!(!out.ok);
    assert!(out.stderr.contains("https://"), "{}", out.stderr);

    let shown = desk.server.desk.json(&["tenant", "chat", "acme"]);
    assert_eq!(shown["chat"], "slack");
    let text = shown.to_string();
    assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
    let audit = serde_json::to_string(&desk.audit("acme")).unwrap();
    assert!(!audit.contains(TOKEN) && !audit.contains(SECRET), "{audit}");
    // The database holds the secrets sealed, not in clear text.
    for file in std::fs::read_dir(dir).unwrap() {
        let file = file.unwrap();
        if !file.file_name().to_string_lossy().starts_with("capdesk.db") {
            continue;
        }
        let bytes = std::fs::read(file.path()).unwrap();
        for secret in [TOKEN, SECRET] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in {:?} in clear text",
                file.file_name()
            );
        }
    }

    // Back to the built-in chat: messages stay inside capdesk.
    desk.server.desk.ok(&["tenant", "chat", "acme", "builtin"]);
    let s = desk.server.desk.json(&[
        "ticket",
        "submit",
        "acme",
        "--from",
        "ann@acme.test",
        "--subject",
        "Locked out of my account",
        "--verified",
    ]);
    assert_eq!(s["status"], "resolved", "{s}");
    assert!(desk.calls("chat.postMessage").is_empty());
}

#[test]
fn a_question_is_answered_by_its_buttons_or_by_a_direct_message() {
    let desk = Desk::start(0);
    let ask = "Can you sort out my SG-Finance-ReadOnly group membership?";
    expect(desk.acme("events", &message("Ev1", "UANN", ask)), 200);
    let question = desk.eventually("the question in Slack", |d| {
        d.calls("chat.postMessage")
            .into_iter()
            .find(|p| p["channel"] == "UANN" && p["blocks"].is_array())
    });
    let buttons = question["blocks"][1]["elements"]
        .as_array()
        .unwrap()
        .clone();
    let labels: Vec<&str> = buttons
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["add", "remove"]);
    let add = buttons[0]["value"].as_str().unwrap().to_string();
    let action = buttons[0]["action_id"].as_str().unwrap().to_string();

    // Only the person asked can answer.
    let detail = expect_error(
        desk.acme("interactivity", &click("UZOE", &action, &add)),
        403,
        "refused",
    );
    assert!(detail.contains("only ann@acme.test"), "{detail}");
    let answered = expect(
        desk.acme("interactivity", &click("UANN", &action, &add)),
        200,
    );
    // Adding to this group needs Max's approval next.
    assert_eq!(answered["status"], "waiting", "{answered}");
    let updates = desk.calls("chat.update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["channel"], "DUANN");
    assert!(
        updates[0]["text"]
            .as_str()
            .unwrap()
            .contains("answered: add"),
        "{updates:?}"
    );
    desk.eventually("the approval request to Max", |d| {
        d.calls("chat.postMessage")
            .into_iter()
            .find(|p| p["channel"] == "UMAX" && p["blocks"].is_array())
    });

    // A question without choices is answered by writing back in the direct messages.
    expect(
        desk.acme(
            "events",
            &message("Ev2", "UANN", "Please add me to a group"),
        ),
        200,
    );
    desk.eventually("the open question", |d| {
        d.calls("chat.postMessage").into_iter().find(|p| {
            p["channel"] == "UANN"
                && p["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Which group"))
        })
    });
    let taken = expect(
        desk.acme("events", &message("Ev3", "UANN", "SG-Finance-ReadOnly")),
        200,
    );
    assert!(
        taken["answer"]
            .as_str()
            .is_some_and(|r| r.starts_with("R-")),
        "{taken}"
    );
    desk.eventually("the second approval request to Max", |d| {
        let requests = d
            .calls("chat.postMessage")
            .into_iter()
            .filter(|p| p["channel"] == "UMAX" && p["blocks"].is_array())
            .count();
        (requests == 2).then_some(())
    });
    assert_eq!(
        desk.tickets("acme").len(),
        2,
        "the answer made no ticket of its own"
    );
}

#[test]
fn an_admin_sets_the_chat_over_the_api_and_never_reads_a_secret_back() {
    let desk = Desk::start(0);
    let admin = &desk.server.admin;
    let server = &desk.server;
    let detail = expect_error(
        server.put(
            admin,
            "/api/v1/tenants/acme/chat/slack",
            json!({"bot_token": "nope", "signing_secret": "s"}),
        ),
        422,
        "unprocessable",
    );
    assert!(detail.contains("xoxb-"), "{detail}");
    let set = expect(
        server.put(
            admin,
            "/api/v1/tenants/acme/chat/slack",
            json!({"bot_token": "xoxb-rotated", "signing_secret": "rotated-secret",
                   "api_base": "https://slack.com/api/"}),
        ),
        200,
    );
    assert_eq!(set["settings"]["api_base"], "https://slack.com/api");
    let technician = server.token(&["--role", "technician", "--tenant", "acme"]);
    let shown = expect(server.get(&technician, "/api/v1/tenants/acme/chat"), 200);
    assert_eq!(shown["chat"], "slack");
    assert_eq!(shown["configured"]["slack"]["secrets"], "set");
    for body in [set.to_string(), shown.to_string()] {
        assert!(
            !body.contains("xoxb-rotated") && !body.contains("rotated-secret"),
            "{body}"
        );
    }
    // A technician reads but does not change; another tenant's token does neither.
    expect_error(
        server.put(
            &technician,
            "/api/v1/tenants/acme/chat",
            json!({"chat": "builtin"}),
        ),
        403,
        "forbidden",
    );
    let globex = server.token(&["--role", "technician", "--tenant", "globex"]);
    expect_error(
        server.get(&globex, "/api/v1/tenants/acme/chat"),
        403,
        "forbidden",
    );
    // Teams cannot be chosen before it is configured; builtin always can.
    let detail = expect_error(
        server.put(admin, "/api/v1/tenants/acme/chat", json!({"chat": "teams"})),
        422,
        "unprocessable",
    );
    assert!(detail.contains("capdesk tenant teams"), "{detail}");
    let back = expect(
        server.put(
            admin,
            "/api/v1/tenants/acme/chat",
            json!({"chat": "builtin"}),
        ),
        200,
    );
    assert_eq!(back["chat"], "builtin");
}

#[test]
fn an_approval_nobody_answers_in_time_loses_its_buttons() {
    let desk = Desk::start(0);
    let policy = desk.server.desk.dir.path().join("quick.toml");
    let default = desk.server.desk.ok(&["policy", "default"]);
    let quick = default.replacen("approval_timeout = \"4h\"", "approval_timeout = \"1s\"", 1);
    assert_ne!(
        quick, default,
        "the default policy sets approval_timeout = \"4h\""
    );
    std::fs::write(&policy, quick).unwrap();
    desk.server
        .desk
        .ok(&["policy", "set", "acme", policy.to_str().unwrap()]);

    let text = "Please add me to the SG-Finance-ReadOnly security group.";
    expect(desk.acme("events", &message("Ev1", "UANN", text)), 200);
    desk.eventually("the approval request to Max", |d| {
        d.calls("chat.postMessage")
            .into_iter()
            .find(|p| p["channel"] == "UMAX" && p["blocks"].is_array())
    });
    // `capdesk sweep` escalates the wait once its second is over.
    desk.eventually("the sweep to escalate the run", |d| {
        let swept = d.server.desk.json(&["sweep"]);
        (!swept.as_array().unwrap().is_empty()).then_some(swept)
    });
    let updates = desk.calls("chat.update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["channel"], "DUMAX");
    let shown = updates[0]["text"].as_str().unwrap();
    assert!(shown.contains("no answer in time"), "{shown}");
}
