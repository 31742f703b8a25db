//! The admin console and the web chat in a real headless Chromium against a real
//! `capdesk serve`: an admin signs in and toggles a grant, which changes what the next
//! ticket may do; an approver approves a pending request and sees the run complete; an
//! invalid policy is refused with its problems shown beside the text.

mod support;

use serde_json::json;
use support::browser::{self, Browser};
use support::server::{Server, expect};

/// Sign in to the console with `token`.
fn sign_in(browser: &mut Browser, server: &Server, token: &str) {
    browser.goto(&format!("{}/console", server.base));
    browser.wait_for("input[name=token]");
    assert!(
        browser.url().contains("/console/login"),
        "{}",
        browser.url()
    );
    browser.fill("input[name=token]", token);
    browser.click("form[action='/console/login'] button[type=submit]");
}

fn sign_out(browser: &mut Browser) {
    browser.click("form[action='/console/logout'] button");
    browser.wait_for_text("body", "You are signed out");
}

#[test]
fn an_admin_toggles_a_grant_and_an_approver_approves_and_sees_the_run_complete() {
    if !browser::available() {
        return;
    }
    let server = Server::start(&[]);
    let mut browser = Browser::start();

    // A wrong token is refused on the sign-in page.
    sign_in(&mut browser, &server, "cdk_not-a-real-token");
    browser.wait_for_text(".error", "unknown or revoked");

    sign_in(&mut browser, &server, &server.admin);
    browser.wait_for_text("h1", "Tenants");
    assert!(
        browser.text("table").contains("Demo"),
        "{}",
        browser.text("table")
    );

    // Revoke account-unlock's idp.unlock in the grant matrix.
    let cell = "button.cell[data-plugin='account-unlock'][data-capability='idp.unlock']";
    browser.goto(&format!("{}/console/tenants/demo/grants", server.base));
    assert_eq!(browser.attr(cell, "data-granted").as_deref(), Some("true"));
    browser.click(cell);
    browser.wait_for_text(".notice", "Revoked idp.unlock from account-unlock");
    assert_eq!(browser.attr(cell, "data-granted").as_deref(), Some("false"));

    // The next unlock is denied at the host and goes to a technician.
    let admin = &server.admin;
    let locked_out = json!({"from": "ann@demo.test", "subject": "Locked out",
        "body": "I'm locked out of my account, please unlock it", "verified": true});
    let s = expect(
        server.post(admin, "/api/v1/tenants/demo/tickets", locked_out.clone()),
        201,
    );
    assert_eq!(s["status"], "escalated", "{s}");
    let run = s["run"].as_str().unwrap().to_string();
    browser.goto(&format!("{}/console/runs/{run}", server.base));
    browser.wait_for_text("#run-status", "escalated");
    assert!(
        browser.count(".timeline li.denied") >= 1,
        "{}",
        browser.text(".timeline")
    );

    // Grant it back: the same request now resolves.
    browser.goto(&format!("{}/console/tenants/demo/grants", server.base));
    browser.click(cell);
    browser.wait_for_text(".notice", "Granted idp.unlock to account-unlock");
    assert_eq!(browser.attr(cell, "data-granted").as_deref(), Some("true"));
    let s = expect(
        server.post(admin, "/api/v1/tenants/demo/tickets", locked_out),
        201,
    );
    assert_eq!(s["status"], "resolved", "{s}");

    // An invalid policy is refused, its problem shown, and the old one stays.
    browser.goto(&format!("{}/console/tenants/demo/policy", server.base));
    let before = expect(server.get(admin, "/api/v1/tenants/demo/policy"), 200);
    browser.fill(
        "textarea[name=source]",
        "[[rule]]\nname = \"broken\"\neffect = \"sometimes\"\n",
    );
    browser.click("form button.primary");
    browser.wait_for("#policy-error");
    assert!(browser.text("#policy-error").contains("not saved"));
    let after = expect(server.get(admin, "/api/v1/tenants/demo/policy"), 200);
    assert_eq!(before["source"], after["source"]);

    // Put account-unlock in shadow mode: the next unlock only proposes, and a person
    // judges the proposal on the shadow review page.
    browser.goto(&format!("{}/console/tenants/demo/modes", server.base));
    browser.select("#mode-account-unlock select", "shadow");
    browser.click("#mode-account-unlock button");
    browser.wait_for_text(".notice", "account-unlock now runs in shadow mode");
    let s = expect(
        server.post(admin, "/api/v1/tenants/demo/tickets", json!({"from": "carol@demo.test",
            "subject": "Account locked", "body": "My account is locked out, please unlock.", "verified": true})),
        201,
    );
    assert_eq!(s["status"], "shadowed", "{s}");
    let shadow_run = s["run"].as_str().unwrap().to_string();
    browser.goto(&format!("{}/console/tenants/demo/shadow", server.base));
    let card = format!("#shadow-{shadow_run}");
    browser.wait_for_text(&card, "unlock");
    browser.click(&format!("{card} button[value=correct]"));
    browser.wait_for_text(".notice", &format!("Run {shadow_run} marked correct"));
    browser.wait_for_text("#scores", "1 (100%)");
    sign_out(&mut browser);

    // Dave asks to join finance: Carol, his manager, must approve.
    let s = expect(
        server.post(
            admin,
            "/api/v1/tenants/demo/tickets",
            json!({
            "from": "dave@demo.test", "subject": "Add me to the finance group",
            "body": "Please add me to the finance group", "verified": true}),
        ),
        201,
    );
    assert_eq!(s["status"], "waiting", "{s}");
    let approval = s["approval"]["id"].as_str().unwrap().to_string();
    let run = s["run"].as_str().unwrap().to_string();

    let carol = server.token(&[
        "--role",
        "technician",
        "--tenant",
        "demo",
        "--person",
        "carol@demo.test",
        "--name",
        "Carol",
    ]);
    sign_in(&mut browser, &server, &carol);
    browser.goto(&format!("{}/console/approvals", server.base));
    let card = format!("#approval-{approval}");
    browser.wait_for_text(&card, "add dave@demo.test to the group finance");
    browser.click(&format!("{card} button[value=approve]"));
    browser.wait_for_text(".notice", &format!("Approved {approval}"));
    assert!(
        browser.url().contains(&format!("/console/runs/{run}")),
        "{}",
        browser.url()
    );
    browser.wait_for_text("#run-status", "resolved");
    assert!(
        browser.text("#approval").contains("approved"),
        "{}",
        browser.text("#approval")
    );

    let user = expect(
        server.get(admin, "/api/v1/tenants/demo/sandbox/users/dave@demo.test"),
        200,
    );
    assert!(user.to_string().contains("finance"), "{user}");
    // Nothing is left waiting.
    browser.goto(&format!("{}/console/approvals", server.base));
    browser.wait_for_text("main", "Nothing is waiting for your approval");
}

/// The newest sign-in code the sandbox sent (to a phone or personal inbox).
fn sign_in_code(server: &Server) -> String {
    let outbox = server.desk.json(&["sandbox", "outbox", "demo"]);
    outbox
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find_map(|m| {
            let rest = m["text"].as_str()?.split("sign-in code is ").nth(1)?;
            Some(rest.chars().take(6).collect::<String>())
        })
        .expect("a sign-in code was sent")
}

/// Sign in to the demo tenant's web chat as `email`.
fn chat_sign_in(browser: &mut Browser, server: &Server, email: &str) {
    browser.goto(&format!("{}/chat/demo", server.base));
    browser.fill("input[name=email]", email);
    browser.click("form[action='/chat/demo/code'] button");
    browser.wait_for_text("main", "we sent a 6-digit sign-in code");
    let code = sign_in_code(server);
    browser.fill("input[name=code]", &code);
    browser.click("form[action='/chat/demo/signin'] button");
    browser.wait_for("textarea[name=text]");
}

#[test]
fn an_end_user_gets_help_in_the_web_chat() {
    if !browser::available() {
        return;
    }
    let server = Server::start(&[]);
    let mut browser = Browser::start();

    // A wrong code is refused, with the tries left.
    browser.goto(&format!("{}/chat/demo", server.base));
    browser.fill("input[name=email]", "dave@demo.test");
    browser.click("form[action='/chat/demo/code'] button");
    let real = sign_in_code(&server);
    let wrong = if real == "000000" { "111111" } else { "000000" };
    browser.fill("input[name=code]", wrong);
    browser.click("form[action='/chat/demo/signin'] button");
    browser.wait_for_text(".error", "not the one we sent");
    browser.fill("input[name=code]", &real);
    browser.click("form[action='/chat/demo/signin'] button");
    browser.wait_for("textarea[name=text]");

    // Dave asks to join a list without naming it: capdesk asks which, he answers, done.
    browser.fill(
        "textarea[name=text]",
        "Please add me to a distribution list",
    );
    browser.click("form.say button");
    browser.wait_for_text(".question", "Which group or distribution list");
    browser.fill(".question input[name=text]", "marketing");
    browser.click(".question button");
    // Marketing needs Carol's approval; the chat says so, then shows the outcome when
    // she approves (the page refreshes itself while he waits).
    browser.wait_for_text("#conversation", "needs approval");
    let carol = server.token(&[
        "--role",
        "approver",
        "--tenant",
        "demo",
        "--person",
        "carol@demo.test",
    ]);
    let pending = expect(server.get(&carol, "/api/v1/approvals"), 200);
    let id = pending[0]["id"].as_str().unwrap().to_string();
    expect(
        server.post(
            &carol,
            &format!("/api/v1/approvals/{id}/approve"),
            json!({}),
        ),
        200,
    );
    browser.wait_for_text(".tickets", "resolved");
    let conversation = browser.text("#conversation");
    assert!(
        conversation.contains("Please add me to a distribution list"),
        "{conversation}"
    );
    assert!(conversation.contains("marketing"), "{conversation}");
    let user = expect(
        server.get(
            &server.admin,
            "/api/v1/tenants/demo/sandbox/users/dave@demo.test",
        ),
        200,
    );
    assert!(user.to_string().contains("marketing"), "{user}");
    browser.click("form[action='/chat/demo/signout'] button");
    browser.wait_for("input[name=email]");

    // Bob forgot his password: the temporary one comes as a link that opens once.
    chat_sign_in(&mut browser, &server, "bob@demo.test");
    browser.fill(
        "textarea[name=text]",
        "Back from holiday and I can't remember my password. Can you reset it?",
    );
    browser.click("form.say button");
    browser.wait_for_text(".tickets", "resolved");
    let link = browser
        .attr(".line.desk a[href*='/secret/']", "href")
        .expect("a one-time link");
    assert!(
        !browser
            .text("#conversation")
            .contains("Temporary password:")
    );
    browser.goto(&link);
    browser.click("form button");
    browser.wait_for("code");
    let password = browser.text("code");
    assert!(password.len() >= 12, "{password}");
    // Used once, the link is gone.
    browser.goto(&link);
    browser.wait_for_text("h1", "no longer works");
    // And the sandbox directory accepts the password.
    let signed_in = server
        .desk
        .json(&["sandbox", "sign-in", "demo", "bob@demo.test", &password]);
    assert_eq!(signed_in["result"], "must-change-password", "{signed_in}");
}
