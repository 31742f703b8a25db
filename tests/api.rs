//! The HTTP API against a real `capdesk serve` process on an ephemeral port: the
//! embedded default on a fresh data dir, tokens and roles, tenant isolation, approvals
//! answered over the API, JSON errors, metrics, and a clean stop on SIGTERM.

mod support;

use reqwest::StatusCode;
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};
use support::server::{Server, expect, expect_error, now};

#[test]
fn a_fresh_server_starts_on_the_embedded_default_and_resolves_a_ticket() {
    let server = Server::start(&[]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("seeded the demo tenant")),
        "{:?}",
        server.banner
    );
    assert!(server.admin.starts_with("cdk_"), "{:?}", server.banner);
    let health = expect(server.http.get(format!("{}/healthz", server.base)), 200);
    assert_eq!(health["status"], "ok");
    let ready = expect(server.http.get(format!("{}/readyz", server.base)), 200);
    assert!(ready["plugins"].as_u64().unwrap() >= 6, "{ready}");

    let admin = &server.admin;
    let tenants = expect(server.get(admin, "/api/v1/tenants"), 200);
    assert_eq!(tenants[0]["id"], "demo");
    let s = expect(
        server.post(
            admin,
            "/api/v1/tenants/demo/tickets",
            json!({"from": "ann@demo.test", "subject": "Locked out of my account",
                   "body": "I typed my password wrong too many times", "verified": true}),
        ),
        201,
    );
    assert_eq!(s["status"], "resolved", "{s}");
    assert_eq!(s["plugin"], "account-unlock");

    let ticket = expect(
        server.get(
            admin,
            &format!("/api/v1/tickets/{}", s["ticket"].as_str().unwrap()),
        ),
        200,
    );
    assert_eq!(ticket["status"], "resolved");
    assert_eq!(ticket["channel"], "api");
    assert!(
        ticket["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["visibility"] == "public")
    );
    let run = expect(
        server.get(
            admin,
            &format!("/api/v1/runs/{}", s["run"].as_str().unwrap()),
        ),
        200,
    );
    let unlock = run["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["function"] == "idp.unlock-account")
        .expect("the run journaled the unlock");
    assert!(
        unlock["decision"].as_str().unwrap().starts_with("allowed"),
        "{unlock}"
    );
    let ann = expect(
        server.get(admin, "/api/v1/tenants/demo/sandbox/users/ann@demo.test"),
        200,
    );
    assert_eq!(ann["locked"], false, "{ann}");

    // The change is audited under the API token that made it.
    let audit = expect(server.get(admin, "/api/v1/tenants/demo/audit"), 200);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "run.finished")
    );
    assert_eq!(
        expect(server.get(admin, "/api/v1/audit/verify"), 200)["intact"],
        true
    );
}

#[test]
fn requests_without_a_valid_token_or_with_a_bad_body_are_refused_in_json() {
    let server = Server::start(&["--no-demo"]);
    let url = |p: &str| format!("{}{p}", server.base);
    expect_error(server.http.get(url("/api/v1/tenants")), 401, "unauthorized");
    expect_error(
        server.get("cdk_not-a-token", "/api/v1/tenants"),
        401,
        "unauthorized",
    );
    expect_error(
        server.get(&server.admin, "/api/v1/nothing-here"),
        404,
        "not_found",
    );
    expect_error(
        server
            .http
            .delete(url("/api/v1/tenants"))
            .bearer_auth(&server.admin),
        405,
        "method_not_allowed",
    );
    let detail = expect_error(
        server
            .http
            .post(url("/api/v1/tenants"))
            .bearer_auth(&server.admin)
            .header("content-type", "application/json")
            .body("{\"id\": "),
        400,
        "bad_request",
    );
    assert!(detail.contains("JSON"), "{detail}");
    expect_error(
        server
            .http
            .post(url("/api/v1/tenants"))
            .bearer_auth(&server.admin)
            .body("id=acme"),
        415,
        "unsupported_media_type",
    );
    expect_error(
        server.post(
            &server.admin,
            "/api/v1/tenants",
            json!({"id": "acme", "colour": "red"}),
        ),
        400,
        "bad_request",
    );
    let detail = expect_error(
        server.post(
            &server.admin,
            "/api/v1/tenants",
            json!({"id": "no spaces allowed"}),
        ),
        422,
        "unprocessable",
    );
    assert!(detail.contains("tenant id"), "{detail}");
    // None of the refused requests wrote anything.
    assert_eq!(
        expect(server.get(&server.admin, "/api/v1/tenants"), 200),
        json!([])
    );

    expect(
        server.post(&server.admin, "/api/v1/tenants", json!({"id": "acme"})),
        201,
    );
    let detail = expect_error(
        server.post(&server.admin, "/api/v1/tenants", json!({"id": "acme"})),
        422,
        "unprocessable",
    );
    assert!(detail.contains("already exists"), "{detail}");
    let detail = expect_error(
        server
            .http
            .put(url("/api/v1/tenants/acme/policy"))
            .bearer_auth(&server.admin)
            .body("[[rule]]\nname = \"broken\"\neffect = \"perhaps\"\n"),
        422,
        "invalid_policy",
    );
    assert!(detail.contains("policy was not changed"), "{detail}");
    assert_eq!(
        expect(
            server.get(&server.admin, "/api/v1/tenants/acme/policy"),
            200
        )["default"],
        true
    );

    // A revoked token stops working at once.
    let secret = server.token(&["--role", "admin", "--name", "short-lived"]);
    expect(server.get(&secret, "/api/v1/tenants"), 200);
    let id = server.desk.json(&["token", "list"])[0]["id"]
        .as_i64()
        .unwrap();
    server.desk.ok(&["token", "revoke", &id.to_string()]);
    expect_error(server.get(&secret, "/api/v1/tenants"), 401, "unauthorized");
}

#[test]
fn a_token_of_one_tenant_can_neither_read_nor_act_on_another() {
    let server = Server::start(&["--no-demo"]);
    server.acme();
    let admin = &server.admin;
    expect(
        server.post(admin, "/api/v1/tenants", json!({"id": "globex"})),
        201,
    );
    expect(
        server.put(
            admin,
            "/api/v1/tenants/globex/modes/*",
            json!({"mode": "auto"}),
        ),
        200,
    );
    let theirs = expect(
        server.post(
            admin,
            "/api/v1/tenants/globex/tickets",
            json!({"from": "gil@globex.test", "subject": "printer jammed"}),
        ),
        201,
    );

    let tech = server.token(&[
        "--role",
        "technician",
        "--tenant",
        "acme",
        "--person",
        "tech@msp.test",
    ]);
    let tenants = expect(server.get(&tech, "/api/v1/tenants"), 200);
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");
    assert_eq!(tenants[0]["id"], "acme");
    for path in [
        "/api/v1/tenants/globex".to_string(),
        "/api/v1/tenants/globex/grants".to_string(),
        "/api/v1/tenants/globex/tickets".to_string(),
        "/api/v1/tenants/globex/sandbox/users".to_string(),
        format!("/api/v1/tickets/{}", theirs["ticket"].as_str().unwrap()),
        format!("/api/v1/runs/{}", theirs["run"].as_str().unwrap()),
    ] {
        let detail = expect_error(server.get(&tech, &path), 403, "forbidden");
        assert!(detail.contains("tenant acme"), "{path}: {detail}");
    }
    expect_error(
        server.post(
            &tech,
            "/api/v1/tenants/globex/tickets",
            json!({"from": "x@globex.test", "subject": "locked out"}),
        ),
        403,
        "forbidden",
    );
    let escalations = expect(server.get(&tech, "/api/v1/escalations"), 200);
    assert!(
        escalations
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "acme"),
        "{escalations}"
    );
    expect_error(
        server.get(&tech, "/api/v1/escalations?tenant=globex"),
        403,
        "forbidden",
    );
    // A technician works tickets but does not administer.
    expect_error(
        server.put(
            &tech,
            "/api/v1/tenants/acme/grants/account-unlock",
            json!({}),
        ),
        403,
        "forbidden",
    );
    expect_error(server.get(&tech, "/metrics"), 403, "forbidden");
    let own = expect(
        server.post(
            &tech,
            "/api/v1/tenants/acme/tickets",
            json!({"from": "ann@acme.test", "subject": "locked out", "verified": true}),
        ),
        201,
    );
    assert_eq!(own["status"], "resolved", "{own}");
}

#[test]
fn an_approval_is_answered_over_the_api_by_the_entitled_approver_only() {
    let server = Server::start(&["--no-demo"]);
    server.acme();
    let admin = &server.admin;
    let s = expect(
        server.post(
            admin,
            "/api/v1/tenants/acme/tickets",
            json!({"from": "ann@acme.test", "subject": "Security group",
                   "body": "Please add me to the SG-Finance-ReadOnly security group.", "verified": true}),
        ),
        201,
    );
    assert_eq!(s["status"], "waiting", "{s}");
    let approval = s["approval"]["id"].as_str().unwrap().to_string();
    assert_eq!(s["approval"]["approvers"], json!(["max@acme.test"]));

    let max = server.token(&[
        "--role",
        "approver",
        "--tenant",
        "acme",
        "--person",
        "max@acme.test",
    ]);
    let zoe = server.token(&[
        "--role",
        "approver",
        "--tenant",
        "acme",
        "--person",
        "zoe@acme.test",
    ]);
    let pending = expect(server.get(&max, "/api/v1/approvals"), 200);
    assert_eq!(pending[0]["id"], approval.as_str(), "{pending}");
    assert_eq!(
        expect(server.get(&zoe, "/api/v1/approvals"), 200),
        json!([])
    );
    expect_error(
        server.get(&zoe, &format!("/api/v1/approvals/{approval}")),
        403,
        "forbidden",
    );
    assert_eq!(
        expect(
            server.get(&max, &format!("/api/v1/approvals/{approval}")),
            200
        )["status"],
        "pending"
    );
    // An approver answers approvals, not a run's questions.
    expect_error(
        server.post(
            &max,
            &format!("/api/v1/runs/{}/answer", s["run"].as_str().unwrap()),
            json!({"text": "yes"}),
        ),
        403,
        "forbidden",
    );
    // An approver reads nothing else.
    expect_error(
        server.get(
            &max,
            &format!("/api/v1/runs/{}", s["run"].as_str().unwrap()),
        ),
        403,
        "forbidden",
    );

    let detail = expect_error(
        server.post(
            &zoe,
            &format!("/api/v1/approvals/{approval}/approve"),
            json!({}),
        ),
        403,
        "refused",
    );
    assert!(detail.contains("not an approver"), "{detail}");
    let done = expect(
        server.post(
            &max,
            &format!("/api/v1/approvals/{approval}/approve"),
            json!({"comment": "fine by me"}),
        ),
        200,
    );
    assert_eq!(done["status"], "resolved", "{done}");
    let again = expect_error(
        server.post(
            &max,
            &format!("/api/v1/approvals/{approval}/reject"),
            json!({}),
        ),
        409,
        "conflict",
    );
    assert!(again.contains("already"), "{again}");
    let ann = expect(
        server.get(admin, "/api/v1/tenants/acme/sandbox/users/ann@acme.test"),
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
    let answered = expect(
        server.get(admin, &format!("/api/v1/approvals/{approval}")),
        200,
    );
    assert_eq!(answered["status"], "approved");
    assert_eq!(answered["answered_by"], "max@acme.test");
    assert_eq!(answered["comment"], "fine by me");
}

#[test]
fn metrics_count_runs_and_the_server_stops_cleanly_on_sigterm() {
    let server = Server::start(&[]);
    let admin = server.admin.clone();
    expect(
        server.post(
            &admin,
            "/api/v1/tenants/demo/tickets",
            json!({"from": "ann@demo.test", "subject": "locked out", "verified": true}),
        ),
        201,
    );
    let response = server
        .http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().unwrap();
    assert!(
        text.contains(
            "capdesk_runs{tenant=\"demo\",category=\"account-unlock\",status=\"resolved\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("capdesk_run_seconds_count 1"), "{text}");
    assert!(
        text.contains("# TYPE capdesk_approval_wait_seconds histogram"),
        "{text}"
    );

    let status = server.stop();
    assert!(status.success(), "capdesk serve exited with {status}");
}

#[test]
fn the_openapi_document_describes_the_endpoints() {
    let server = Server::start(&["--no-demo"]);
    let doc = expect(
        server
            .http
            .get(format!("{}/api/v1/openapi.json", server.base)),
        200,
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/hooks/psa/{tenant}", "post"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/tenants/{tenant}/tickets", "post"),
        ("/api/v1/tenants/{tenant}/grants/{plugin}", "put"),
        (
            "/api/v1/tenants/{tenant}/grants/{plugin}/{capability}",
            "delete",
        ),
        ("/api/v1/approvals/{id}/approve", "post"),
        ("/api/v1/runs/{id}", "get"),
    ] {
        assert!(
            paths.get(path).is_some_and(|p| p[method].is_object()),
            "{method} {path} is not in the document: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "TicketRequest",
        "ErrorBody",
        "GrantRow",
        "PolicyView",
        "NewUser",
    ] {
        assert!(schemas[schema].is_object(), "no schema {schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// A PSA webhook delivery for `tenant`, signed with `secret` at `timestamp`.
fn delivery(
    server: &Server,
    tenant: &str,
    secret: &str,
    timestamp: i64,
    body: &str,
) -> RequestBuilder {
    server
        .http
        .post(format!("{}/hooks/psa/{tenant}", server.base))
        .header("content-type", "application/json")
        .header("x-capdesk-timestamp", timestamp.to_string())
        .header(
            "x-capdesk-signature",
            capdesk::api::hooks::sign(secret, timestamp, body.as_bytes()),
        )
        .body(body.to_string())
}

#[test]
fn psa_webhooks_take_signed_tickets_and_refuse_everything_else() {
    let server = Server::start(&["--no-demo"]);
    server.acme();
    expect(
        server.post(&server.admin, "/api/v1/tenants", json!({"id": "globex"})),
        201,
    );
    let secret = server.desk.json(&["tenant", "webhook-secret", "acme"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = server.desk.json(&["tenant", "webhook-secret", "globex"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let body = r#"{"from": "ann@acme.test", "subject": "locked out", "body": "locked out of my account", "verified": true}"#;
    let tickets = || {
        expect(
            server.get(&server.admin, "/api/v1/tenants/acme/tickets"),
            200,
        )
        .as_array()
        .unwrap()
        .len()
    };

    // Each refusal writes nothing.
    let unsigned = server
        .http
        .post(format!("{}/hooks/psa/acme", server.base))
        .header("content-type", "application/json")
        .body(body);
    expect_error(unsigned, 401, "unauthorized");
    let tampered =
        delivery(&server, "acme", &secret, now(), body).body(body.replace("ann@", "zoe@"));
    expect_error(tampered, 401, "unauthorized");
    let detail = expect_error(
        delivery(&server, "acme", &secret, now() - 600, body),
        401,
        "unauthorized",
    );
    assert!(detail.contains("clock"), "{detail}");
    expect_error(
        delivery(&server, "acme", &globex, now(), body),
        401,
        "unauthorized",
    );
    expect_error(
        delivery(&server, "nobody", &secret, now(), body),
        401,
        "unauthorized",
    );
    expect_error(
        delivery(&server, "acme", &secret, now(), "{\"from\": "),
        400,
        "bad_request",
    );
    let huge = format!(
        r#"{{"from": "ann@acme.test", "subject": "x", "body": "{}"}}"#,
        "a".repeat(70_000)
    );
    expect_error(
        delivery(&server, "acme", &secret, now(), &huge),
        413,
        "too_large",
    );
    assert_eq!(tickets(), 0, "a refused delivery made a ticket");

    let sent = now();
    let s = expect(delivery(&server, "acme", &secret, sent, body), 201);
    assert_eq!(s["status"], "resolved", "{s}");
    let ticket = expect(
        server.get(
            &server.admin,
            &format!("/api/v1/tickets/{}", s["ticket"].as_str().unwrap()),
        ),
        200,
    );
    assert_eq!(ticket["channel"], "psa");
    let detail = expect_error(
        delivery(&server, "acme", &secret, sent, body),
        409,
        "replayed",
    );
    assert!(detail.contains("accepted already"), "{detail}");
    assert_eq!(tickets(), 1);

    // Rotating the secret retires the old one.
    server.desk.ok(&["tenant", "webhook-secret", "acme"]);
    expect_error(
        delivery(&server, "acme", &secret, now(), body),
        401,
        "unauthorized",
    );
}

#[test]
fn concurrent_tickets_across_tenants_all_complete() {
    let server = Server::start(&["--no-demo", "--workers", "4"]);
    let admin = &server.admin;
    for tenant in ["acme", "globex"] {
        expect(
            server.post(admin, "/api/v1/tenants", json!({"id": tenant})),
            201,
        );
        expect(
            server.put(
                admin,
                &format!("/api/v1/tenants/{tenant}/modes/*"),
                json!({"mode": "auto"}),
            ),
            200,
        );
        expect(
            server.put(
                admin,
                &format!("/api/v1/tenants/{tenant}/grants/password-reset"),
                json!({}),
            ),
            200,
        );
        expect(
            server.post(
                admin,
                &format!("/api/v1/tenants/{tenant}/sandbox/users"),
                json!({"email": format!("ann@{tenant}.test")}),
            ),
            201,
        );
    }
    // Runs write to one SQLite file at once; none may fail for it ("database is locked").
    let statuses: Vec<Value> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|client| {
                let server = &server;
                scope.spawn(move || {
                    (0..5)
                        .map(|i| {
                            let tenant = if (client + i) % 2 == 0 { "acme" } else { "globex" };
                            let s = expect(
                                server.post(
                                    &server.admin,
                                    &format!("/api/v1/tenants/{tenant}/tickets"),
                                    json!({"from": format!("ann@{tenant}.test"), "subject": "Forgot my password",
                                           "body": "I forgot my password, please reset it", "verified": true}),
                                ),
                                201,
                            );
                            json!({"status": s["status"], "reason": s["reason"]})
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 40);
    for s in &statuses {
        assert_eq!(s["status"], "resolved", "{s}");
    }
}

#[test]
fn a_temporary_password_goes_out_as_a_link_that_opens_once() {
    let server = Server::start(&[]);
    let s = expect(
        server.post(
            &server.admin,
            "/api/v1/tenants/demo/tickets",
            json!({"from": "bob@demo.test", "subject": "Forgot my password",
                   "body": "I forgot my password and cannot sign in", "verified": true}),
        ),
        201,
    );
    assert_eq!(s["status"], "resolved", "{s}");
    let outbox = server.desk.json(&["sandbox", "outbox", "demo"]);
    let message = outbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == "bob@demo.test")
        .filter_map(|m| m["text"].as_str())
        .find(|t| t.contains("/secret/"))
        .unwrap_or_else(|| panic!("no link sent to bob: {outbox}"))
        .to_string();
    assert!(!message.contains("temporary password is:"), "{message}");
    let link = message
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/secret/", server.base)))
        .unwrap()
        .to_string();

    // Looking (as a chat app's link preview does) does not use it up.
    for _ in 0..2 {
        let offer = server.http.get(&link).send().unwrap();
        assert_eq!(offer.status(), StatusCode::OK);
        assert_eq!(offer.headers()["cache-control"], "no-store");
        assert!(offer.text().unwrap().contains("Show my temporary password"));
    }
    // A wrong key reveals nothing and spoils nothing.
    let (id_part, _) = link.rsplit_once('/').unwrap();
    let wrong = format!("{id_part}/{}", "0".repeat(64));
    assert_eq!(
        server.http.post(&wrong).send().unwrap().status(),
        StatusCode::GONE
    );

    let page = server.http.post(&link).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().unwrap();
    let password = page
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the page shows the password")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"");
    let signed_in = server
        .desk
        .json(&["sandbox", "sign-in", "demo", "bob@demo.test", &password]);
    assert_eq!(signed_in["result"], "must-change-password", "{signed_in}");

    assert_eq!(
        server.http.post(&link).send().unwrap().status(),
        StatusCode::GONE
    );
    assert_eq!(
        server.http.get(&link).send().unwrap().status(),
        StatusCode::GONE
    );
    // The password is nowhere capdesk keeps records.
    let run = expect(
        server.get(
            &server.admin,
            &format!("/api/v1/runs/{}", s["run"].as_str().unwrap()),
        ),
        200,
    );
    let ticket = expect(
        server.get(
            &server.admin,
            &format!("/api/v1/tickets/{}", s["ticket"].as_str().unwrap()),
        ),
        200,
    );
    assert!(!run.to_string().contains(&password));
    assert!(!ticket.to_string().contains(&password));
    let db = std::fs::read(server.desk.dir.path().join("capdesk.db")).unwrap();
    assert!(
        !db.windows(password.len()).any(|w| w == password.as_bytes()),
        "the password is in the database file"
    );
}

#[test]
fn the_served_demo_tenant_resolves_every_bundled_category_over_the_api() {
    let server = Server::start(&[]);
    let mut tokens = std::collections::HashMap::<String, String>::new();
    let mut token_of = |person: &str, role: &str| {
        tokens
            .entry(person.to_string())
            .or_insert_with(|| {
                server.token(&["--role", role, "--tenant", "demo", "--person", person])
            })
            .clone()
    };
    let tickets = [
        (
            "account-unlock",
            json!({"from": "ann@demo.test", "subject": "Locked out of my account",
            "body": "I typed my password wrong too many times and now I'm locked out.", "verified": true}),
        ),
        (
            "password-reset",
            json!({"from": "bob@demo.test", "subject": "Forgot my password",
            "body": "Back from holiday and I can't remember my password. Can you reset it?", "verified": true}),
        ),
        (
            "mfa-reenroll",
            json!({"from": "ann@demo.test", "subject": "New phone - authenticator app",
            "body": "I got a new phone and the authenticator app is gone. Can you reset my MFA so I can set it up again?", "verified": true}),
        ),
        (
            "mailbox-access",
            json!({"from": "erin@demo.test", "subject": "Access to the finance shared mailbox",
            "body": "Please give me full access to the finance shared mailbox.", "verified": true,
            "fields": {"mailbox": "finance@demo.test", "right": "full-access"}}),
        ),
        (
            "license-change",
            json!({"from": "bob@demo.test", "subject": "Upgrade my license to E5",
            "body": "I need Power BI Pro and Teams Phone, please upgrade me from E3 to E5.", "verified": true,
            "fields": {"license": "M365-E5"}}),
        ),
        (
            "group-membership",
            json!({"from": "dave@demo.test", "subject": "Add me to the marketing DL",
            "body": "Hi, please add me to the marketing distribution list. Thanks, Dave", "verified": false,
            "fields": {"group": "marketing", "action": "add"}}),
        ),
    ];
    for (category, ticket) in tickets {
        let mut s = expect(
            server.post(&server.admin, "/api/v1/tenants/demo/tickets", ticket),
            201,
        );
        assert_eq!(s["plugin"], category, "{s}");
        // Answer what the run waits for, as the person it waits for, over the API.
        for _ in 0..6 {
            if let Some(approval) = s.get("approval") {
                let by = approval["approvers"][0].as_str().unwrap().to_string();
                let token = token_of(&by, "approver");
                let id = approval["id"].as_str().unwrap();
                s = expect(
                    server.post(
                        &token,
                        &format!("/api/v1/approvals/{id}/approve"),
                        json!({}),
                    ),
                    200,
                );
            } else if let Some(waiting) = s.get("waiting_for") {
                let to = waiting["to"].as_str().unwrap().to_string();
                let answer = if waiting["question"].as_str().unwrap().contains("code") {
                    let outbox = server.desk.json(&["sandbox", "outbox", "demo"]);
                    outbox
                        .as_array()
                        .unwrap()
                        .iter()
                        .rev()
                        .find_map(|m| {
                            let rest = m["text"].as_str()?.split("verification code is ").nth(1)?;
                            Some(rest.chars().take(6).collect::<String>())
                        })
                        .expect("a code was sent")
                } else {
                    waiting["choices"][0].as_str().unwrap().to_string()
                };
                let token = token_of(&to, "technician");
                let run = s["run"].as_str().unwrap().to_string();
                s = expect(
                    server.post(
                        &token,
                        &format!("/api/v1/runs/{run}/answer"),
                        json!({"text": answer}),
                    ),
                    200,
                );
            } else {
                break;
            }
        }
        assert_eq!(s["status"], "resolved", "{category}: {s}");
    }
}

#[test]
fn console_pages_and_forms_keep_to_the_signed_in_tokens_tenant_and_role() {
    let server = Server::start(&[]);
    server.acme();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |token: &str| -> String {
        let r = http
            .post(format!("{}/console/login", server.base))
            .form(&[("token", token), ("next", "/console")])
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_string()
    };
    let page = |cookie: &str, path: &str| {
        http.get(format!("{}{path}", server.base))
            .header("cookie", cookie)
            .send()
            .unwrap()
    };

    // Without a session the console sends you to sign in; a bad token stays there.
    let r = page("", "/console/tenants/demo");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/console/login")
    );
    let r = http
        .post(format!("{}/console/login", server.base))
        .form(&[("token", "cdk_wrong")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A technician of acme reads acme, never demo, and changes nothing.
    let tech = server.token(&["--role", "technician", "--tenant", "acme"]);
    let cookie = sign_in(&tech);
    assert_eq!(
        page(&cookie, "/console/tenants/acme").status(),
        StatusCode::OK
    );
    for path in [
        "/console/tenants/demo",
        "/console/tenants/demo/grants",
        "/console/tenants/demo/policy",
        "/console/tenants/demo/outbox",
    ] {
        let r = page(&cookie, path);
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.text().unwrap().contains("cannot reach tenant demo"),
            "{path}"
        );
    }
    let home = page(&cookie, "/console").text().unwrap();
    assert!(home.contains("/console/tenants/acme") && !home.contains("/console/tenants/demo"));
    let grants = page(&cookie, "/console/tenants/acme/grants")
        .text()
        .unwrap();
    let csrf = grants
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let before = expect(
        server.get(&server.admin, "/api/v1/tenants/acme/grants"),
        200,
    );
    let toggle = |cookie: &str, csrf: &str| {
        http.post(format!("{}/console/tenants/acme/grants", server.base))
            .header("cookie", cookie)
            .form(&[
                ("csrf", csrf),
                ("plugin", "account-unlock"),
                ("capability", "idp.unlock"),
                ("action", "revoke"),
            ])
            .send()
            .unwrap()
    };
    // Only an admin changes grants.
    assert_eq!(toggle(&cookie, &csrf).status(), StatusCode::FORBIDDEN);
    // An admin's form without this session's CSRF token is refused too.
    let admin = sign_in(&server.admin);
    assert_eq!(toggle(&admin, "forged").status(), StatusCode::FORBIDDEN);
    assert_eq!(
        expect(
            server.get(&server.admin, "/api/v1/tenants/acme/grants"),
            200
        ),
        before
    );
    // A revoked token's session ends at once.
    let tokens = server.desk.json(&["token", "list"]);
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "technician")
        .unwrap()["id"]
        .to_string();
    server.desk.ok(&["token", "revoke", id.trim_matches('"')]);
    assert_eq!(
        page(&cookie, "/console/tenants/acme").status(),
        StatusCode::SEE_OTHER
    );
}
