//! A real `capdesk serve` process on an ephemeral port and a scratch data dir, for the
//! tests that go through HTTP (the API, the console and web chat in a browser), with
//! helpers to send requests and check JSON answers.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use super::Desk;

/// A running `capdesk serve` on a scratch data dir.
pub struct Server {
    pub desk: Desk,
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub http: Client,
    /// What the server printed before it was ready.
    pub banner: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(Desk::new(), extra)
    }

    pub fn start_in(desk: Desk, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = desk
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting capdesk serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let mut admin = String::new();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("capdesk serve exited early:\n{}", banner.join("\n")))
                .unwrap();
            if let Some(token) = line.strip_prefix("admin token: ") {
                admin = token.trim().to_string();
            }
            if let Some(rest) = line.strip_prefix("capdesk serving on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            banner.push(line);
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            desk,
            child,
            base,
            admin,
            http: Client::new(),
            banner,
        }
    }

    pub fn get(&self, token: &str, path: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    pub fn post(&self, token: &str, path: &str, body: Value) -> RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
    }

    pub fn put(&self, token: &str, path: &str, body: Value) -> RequestBuilder {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
    }

    /// A token made with `capdesk token create` while the server runs.
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        self.desk.json(&all)["secret"].as_str().unwrap().to_string()
    }

    /// An acme tenant in auto mode with the bundled plugins granted, Ann (managed by
    /// Max) and Max in its directory.
    pub fn acme(&self) {
        let admin = &self.admin;
        expect(
            self.post(
                admin,
                "/api/v1/tenants",
                json!({"id": "acme", "name": "Acme"}),
            ),
            201,
        );
        expect(
            self.put(
                admin,
                "/api/v1/tenants/acme/modes/*",
                json!({"mode": "auto"}),
            ),
            200,
        );
        for plugin in ["account-unlock", "group-membership"] {
            expect(
                self.put(
                    admin,
                    &format!("/api/v1/tenants/acme/grants/{plugin}"),
                    json!({}),
                ),
                200,
            );
        }
        for user in [
            json!({"email": "ann@acme.test", "name": "Ann Archer", "manager": "max@acme.test", "locked": true}),
            json!({"email": "max@acme.test", "name": "Max Mole"}),
            json!({"email": "zoe@acme.test", "name": "Zoe Zed"}),
        ] {
            expect(
                self.post(admin, "/api/v1/tenants/acme/sandbox/users", user),
                201,
            );
        }
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        terminate(&self.child);
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn terminate(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Send; the status must be `status`; the JSON body.
pub fn expect(request: RequestBuilder, status: u16) -> Value {
    let response: Response = request.send().expect("the server answers");
    let got = response.status();
    let text = response.text().unwrap();
    assert_eq!(got.as_u16(), status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// An error answer: the status, and JSON `{error, detail}` with this `error`.
pub fn expect_error(request: RequestBuilder, status: u16, error: &str) -> String {
    let body = expect(request, status);
    assert_eq!(body["error"], error, "{body}");
    let detail = body["detail"].as_str().expect("a detail").to_string();
    assert!(!detail.is_empty());
    detail
}

/// The Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
