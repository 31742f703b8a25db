//! Scenario tests for a playbook, run with `cargo test` against the real capdesk runtime
//! and its sandbox directory, ticket store and chat: no external system needed.
//!
//! ```ignore
//! use capdesk_sdk::harness::{Scenario, ticket, user};
//!
//! #[tokio::test]
//! async fn unlocks_a_verified_owner() {
//!     Scenario::new()
//!         .user(user("ann@acme.test").locked())
//!         .ticket(ticket("ann@acme.test").subject("I'm locked out").verified())
//!         .run()
//!         .await
//!         .assert_status("resolved")
//!         .assert_called("idp.unlock-account")
//!         .assert_message_to("ann@acme.test", "unlocked")
//!         .assert_user("ann@acme.test", |u| assert!(!u.user.locked));
//! }
//! ```
//!
//! The plugin under test is the crate whose tests are running (cargo sets
//! `CARGO_MANIFEST_DIR`); it is built once per test process for `wasm32-wasip2` with
//! [`capdesk_build`]. Each scenario gets a fresh data dir, a tenant `acme` and, unless
//! told otherwise, every capability the plugin's manifest asks for.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub use capdesk::capability::Capability;
pub use capdesk::connectors::Visibility;
use capdesk::connectors::sandbox::NewUser;
pub use capdesk::connectors::sandbox::{OutboxMessage, UserReport};
use capdesk::connectors::{NewTicket, Person, Psa as _, TicketRecord};
use capdesk::engine::{Desk, PendingApproval, Submission, WaitingFor};
use capdesk::journal::JournalEntry;
pub use capdesk::mode::Mode;
use capdesk::store::approvals::Answer;
use capdesk::store::{parse_approval_id, parse_run_id};

/// The tenant every scenario runs in.
pub const TENANT: &str = "acme";

/// A directory user for a scenario.
#[derive(Debug, Clone)]
pub struct UserSpec(NewUser);

/// Start a user with this email (enabled, unlocked, not privileged).
pub fn user(email: &str) -> UserSpec {
    UserSpec(NewUser {
        email: email.into(),
        ..NewUser::default()
    })
}

impl UserSpec {
    pub fn name(mut self, name: &str) -> Self {
        self.0.name = name.into();
        self
    }
    pub fn locked(mut self) -> Self {
        self.0.locked = true;
        self
    }
    pub fn disabled(mut self) -> Self {
        self.0.disabled = true;
        self
    }
    pub fn privileged(mut self) -> Self {
        self.0.privileged = true;
        self
    }
    pub fn manager(mut self, email: &str) -> Self {
        self.0.manager = Some(email.into());
        self
    }
    pub fn department(mut self, name: &str) -> Self {
        self.0.department = Some(name.into());
        self
    }
    pub fn password(mut self, password: &str) -> Self {
        self.0.password = Some(password.into());
        self
    }
    pub fn group(mut self, group: &str) -> Self {
        self.0.groups.push(group.into());
        self
    }
    pub fn license(mut self, sku: &str) -> Self {
        self.0.licenses.push(sku.into());
        self
    }
    pub fn mfa(mut self, method: &str) -> Self {
        self.0.mfa_methods.push(method.into());
        self
    }
    /// A contact method for identity challenges (`sms:+15550142`, `email:…`).
    pub fn contact(mut self, contact: &str) -> Self {
        self.0.contacts.push(contact.into());
        self
    }
}

/// The ticket of a scenario.
#[derive(Debug, Clone)]
pub struct TicketSpec(NewTicket);

/// Start a ticket from this requester (channel `chat`, not verified).
pub fn ticket(from: &str) -> TicketSpec {
    TicketSpec(NewTicket {
        subject: String::new(),
        body: String::new(),
        requester: Person {
            email: from.into(),
            name: String::new(),
        },
        channel: "chat".into(),
        requester_verified: false,
        fields: Vec::new(),
    })
}

impl TicketSpec {
    pub fn subject(mut self, s: &str) -> Self {
        self.0.subject = s.into();
        self
    }
    pub fn body(mut self, s: &str) -> Self {
        self.0.body = s.into();
        self
    }
    /// The channel proved who the requester is.
    pub fn verified(mut self) -> Self {
        self.0.requester_verified = true;
        self
    }
    pub fn channel(mut self, c: &str) -> Self {
        self.0.channel = c.into();
        self
    }
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.0.fields.push((key.into(), value.into()));
        self
    }
}

/// A directory state, a ticket, and the grants the plugin runs with.
#[derive(Debug, Clone)]
pub struct Scenario {
    plugin_dir: Option<PathBuf>,
    users: Vec<UserSpec>,
    ticket: Option<TicketSpec>,
    revoked: Vec<Capability>,
    responses: Vec<Response>,
    mode: Mode,
    policy: Option<String>,
    outages: Vec<String>,
}

/// How a person responds when the run waits, in order.
#[derive(Debug, Clone)]
enum Response {
    Answer(String),
    /// Approve or reject, as this approver (or the first one the request names).
    Decide(Answer, Option<String>),
    /// Answer an identity challenge with the code that was sent (`true`), or with
    /// wrong codes until it fails (`false`).
    Challenge(bool),
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario {
            plugin_dir: None,
            users: Vec::new(),
            ticket: None,
            revoked: Vec::new(),
            responses: Vec::new(),
            mode: Mode::Auto,
            policy: None,
            outages: Vec::new(),
        }
    }

    /// The connected system fails every call to `function` (e.g. `idp.assign-license`,
    /// or `*`) as an upstream outage.
    pub fn upstream_failure(mut self, function: &str) -> Self {
        self.outages.push(function.into());
        self
    }

    /// Run in this mode (default `auto`: the policy decides).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Use this policy file (TOML) instead of the default policy.
    pub fn policy(mut self, source: &str) -> Self {
        self.policy = Some(source.into());
        self
    }

    /// When the run waits for an approval, the first approver it names approves it.
    pub fn approve(mut self) -> Self {
        self.responses.push(Response::Decide(Answer::Approve, None));
        self
    }

    /// When the run waits for an approval, `approver` approves it (refusals panic).
    pub fn approve_as(mut self, approver: &str) -> Self {
        let by = Some(approver.to_string());
        self.responses.push(Response::Decide(Answer::Approve, by));
        self
    }

    /// When the run challenges the requester, they give the code the host sent to
    /// their contact method (read from the sandbox outbox).
    pub fn pass_challenge(mut self) -> Self {
        self.responses.push(Response::Challenge(true));
        self
    }

    /// When the run challenges the requester, they give a wrong code every time, so
    /// the challenge fails.
    pub fn fail_challenge(mut self) -> Self {
        self.responses.push(Response::Challenge(false));
        self
    }

    /// When the run waits for an approval, the first approver it names rejects it.
    pub fn reject(mut self) -> Self {
        self.responses.push(Response::Decide(Answer::Reject, None));
        self
    }

    /// Test the plugin crate at `dir` instead of the crate whose tests are running.
    pub fn plugin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dir = Some(dir.into());
        self
    }

    pub fn user(mut self, u: UserSpec) -> Self {
        self.users.push(u);
        self
    }

    pub fn ticket(mut self, t: TicketSpec) -> Self {
        self.ticket = Some(t);
        self
    }

    /// Run without this capability (by name, e.g. `idp.unlock`).
    pub fn revoke(mut self, capability: &str) -> Self {
        let cap = capability
            .parse()
            .unwrap_or_else(|e| panic!("Scenario::revoke: {e}"));
        self.revoked.push(cap);
        self
    }

    /// When the run waits on a question (`chat.ask`), the person asked answers this;
    /// call once per question, in order (interleaved with approvals as they come).
    pub fn answer(mut self, text: &str) -> Self {
        self.responses.push(Response::Answer(text.into()));
        self
    }

    /// Build (once) and install the plugin, set the scenario up, submit the ticket.
    pub async fn run(self) -> Report {
        let dir = match &self.plugin_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect(
                "CARGO_MANIFEST_DIR is unset: run under cargo test, or use Scenario::plugin_dir",
            )),
        };
        let component = component_for(&dir);
        let ticket = self
            .ticket
            .expect("a scenario needs a ticket: .ticket(ticket(\"from@x\").subject(...))");

        let data = tempfile::tempdir().expect("a temporary data dir");
        let desk = Desk::open(data.path()).await.expect("opening capdesk");
        let bytes = std::fs::read(&component).expect("reading the built component");
        let plugin = desk
            .install_plugin(&bytes)
            .await
            .unwrap_or_else(|e| panic!("installing the plugin: {e:#}"));
        desk.store
            .add_tenant(TENANT, "Acme (test)")
            .await
            .expect("adding the tenant");
        desk.grant_all(TENANT, &plugin.id).await.expect("granting");
        desk.store
            .set_mode(TENANT, "*", self.mode)
            .await
            .expect("setting the mode");
        if let Some(source) = &self.policy {
            desk.set_policy(TENANT, source)
                .await
                .unwrap_or_else(|e| panic!("setting the scenario's policy: {e:#}"));
        }
        desk.store
            .revoke(TENANT, &plugin.id, &self.revoked)
            .await
            .expect("revoking");
        let sandbox = desk.sandbox(TENANT);
        for u in &self.users {
            sandbox
                .add_user(&u.0)
                .await
                .unwrap_or_else(|e| panic!("adding user {}: {e}", u.0.email));
        }
        for function in &self.outages {
            sandbox
                .fail(function, "service unavailable (scenario outage)")
                .await
                .unwrap_or_else(|e| panic!("Scenario::upstream_failure: {e}"));
        }
        let mut submission = desk
            .submit(TENANT, ticket.0)
            .await
            .unwrap_or_else(|e| panic!("submitting the ticket: {e:#}"));
        let mut questions = Vec::new();
        let mut approvals = Vec::new();
        for response in &self.responses {
            let run = parse_run_id(&submission.run).expect("run id");
            submission = match (response, &submission.waiting_for, &submission.approval) {
                (Response::Answer(answer), Some(waiting), _) => {
                    questions.push(waiting.clone());
                    desk.answer(run, &waiting.to, answer)
                        .await
                        .unwrap_or_else(|e| {
                            panic!("answering {:?} with {answer:?}: {e:#}", waiting.question)
                        })
                }
                (Response::Challenge(pass), Some(waiting), _) => {
                    questions.push(waiting.clone());
                    let outbox = sandbox.outbox().await.expect("reading the outbox");
                    let code = outbox
                        .iter()
                        .rev()
                        .find_map(|m| sent_code(&m.text))
                        .unwrap_or_else(|| panic!("no verification code was sent{outbox:?}"));
                    if *pass {
                        desk.answer(run, &waiting.to, &code)
                            .await
                            .unwrap_or_else(|e| panic!("giving the right code: {e:#}"))
                    } else {
                        let wrong = wrong_code(&code);
                        let mut last = None;
                        for _ in 0..capdesk::guard::CHALLENGE_ATTEMPTS {
                            let s = desk
                                .answer(run, &waiting.to, &wrong)
                                .await
                                .unwrap_or_else(|e| panic!("giving a wrong code: {e:#}"));
                            let still_waiting = s.status == capdesk::engine::RunStatus::Waiting
                                && s.reason.starts_with("wrong verification code");
                            last = Some(s);
                            if !still_waiting {
                                break;
                            }
                        }
                        last.expect("at least one attempt")
                    }
                }
                (Response::Decide(answer, by), _, Some(approval)) => {
                    approvals.push(approval.clone());
                    let by = by.clone().unwrap_or_else(|| approval.approvers[0].clone());
                    let id = parse_approval_id(&approval.id).expect("approval id");
                    desk.decide_approval(id, &by, *answer, None)
                        .await
                        .unwrap_or_else(|e| panic!("{answer:?} {} as {by}: {e:#}", approval.id))
                }
                _ => break,
            };
        }
        if let Some(w) = &submission.waiting_for {
            questions.push(w.clone());
        }
        if let Some(a) = &submission.approval {
            approvals.push(a.clone());
        }
        let journal = desk
            .store
            .journal(parse_run_id(&submission.run).expect("run id"))
            .await
            .expect("reading the journal");
        // Read the outcome with the systems up again.
        sandbox
            .heal(None)
            .await
            .expect("ending the scenario's outages");
        let sandbox = desk.sandbox(TENANT);
        let record = sandbox
            .get_ticket(&submission.ticket)
            .await
            .expect("reading the ticket");
        let outbox = sandbox.outbox().await.expect("reading the outbox");
        let mut users = HashMap::new();
        for u in sandbox.users().await.expect("listing users") {
            let report = sandbox.user_report(&u.email).await.expect("reading a user");
            users.insert(u.email, report);
        }
        Report {
            submission,
            questions,
            approvals,
            journal,
            ticket: record,
            outbox,
            users,
        }
    }
}

/// The code in a verification message the host sent (`... code is 123456. ...`).
fn sent_code(text: &str) -> Option<String> {
    let rest = text.split("verification code is ").nth(1)?;
    let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (code.len() == 6).then_some(code)
}

/// A six-digit code that is not `code`.
fn wrong_code(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect()
}

/// A journaled call that reached its connector and finished.
fn took_effect(e: &JournalEntry) -> bool {
    e.state == "done"
        && e.capability.is_some()
        && (e.decision.starts_with("allowed") || e.decision.starts_with("approved"))
}

fn component_for(dir: &Path) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(dir) {
        return p.clone();
    }
    let path = capdesk_build::build_crate(dir)
        .unwrap_or_else(|e| panic!("building the plugin under test:\n{e}"));
    built.insert(dir.to_path_buf(), path.clone());
    path
}

/// Everything a scenario produced, with assertions that explain themselves.
#[derive(Debug)]
pub struct Report {
    pub submission: Submission,
    /// Every question the run asked, in order (the last may still be unanswered).
    pub questions: Vec<WaitingFor>,
    /// Every approval the run asked for, in order (the last may still be pending).
    pub approvals: Vec<PendingApproval>,
    pub journal: Vec<JournalEntry>,
    pub ticket: TicketRecord,
    pub outbox: Vec<OutboxMessage>,
    pub users: HashMap<String, UserReport>,
}

impl Report {
    /// `resolved`, `escalated`, `unmatched`, `waiting` or `shadowed`.
    pub fn status(&self) -> &str {
        self.submission.status.name()
    }

    pub fn reason(&self) -> &str {
        &self.submission.reason
    }

    fn story(&self) -> String {
        let mut s = format!(
            "\n--- scenario: {} {} by {:?}: {}\n--- host calls:\n",
            self.submission.ticket,
            self.status(),
            self.submission.plugin,
            self.submission.reason
        );
        for e in &self.journal {
            let _ = writeln!(
                s,
                "  {:>2} {:<30} {:<8} {} -> {}",
                e.seq, e.function, e.decision, e.args, e.result
            );
        }
        s += "--- notes:\n";
        for n in &self.ticket.notes {
            let _ = writeln!(s, "  [{}] {}", n.visibility.name(), n.text);
        }
        s += "--- messages:\n";
        for m in &self.outbox {
            let _ = writeln!(s, "  to {}: {}", m.recipient, m.text);
        }
        s
    }

    pub fn assert_status(&self, status: &str) -> &Self {
        assert_eq!(self.status(), status, "unexpected status{}", self.story());
        self
    }

    /// The run asked a question containing `text`.
    pub fn assert_asked(&self, text: &str) -> &Self {
        assert!(
            self.questions.iter().any(|q| q.question.contains(text)),
            "expected a question containing {text:?}; asked: {:?}{}",
            self.questions,
            self.story()
        );
        self
    }

    pub fn assert_reason_contains(&self, text: &str) -> &Self {
        assert!(
            self.reason().contains(text),
            "the reason does not mention {text:?}{}",
            self.story()
        );
        self
    }

    /// The run asked for an approval under this policy rule.
    pub fn assert_approval_asked(&self, rule: &str) -> &Self {
        assert!(
            self.approvals.iter().any(|a| a.rule == rule),
            "expected an approval request under rule {rule:?}; asked: {:?}{}",
            self.approvals,
            self.story()
        );
        self
    }

    /// The plugin made this host call (e.g. `idp.unlock-account`) and it took effect
    /// (allowed by grant and policy, or approved).
    pub fn assert_called(&self, function: &str) -> &Self {
        assert!(
            self.journal
                .iter()
                .any(|e| e.function == function && took_effect(e)),
            "expected an allowed call to {function}{}",
            self.story()
        );
        self
    }

    /// The plugin never made this call with effect (a denied attempt is fine).
    pub fn assert_not_called(&self, function: &str) -> &Self {
        assert!(
            !self
                .journal
                .iter()
                .any(|e| e.function == function && took_effect(e)),
            "expected no allowed call to {function}{}",
            self.story()
        );
        self
    }

    /// A call needing `capability` was denied.
    pub fn assert_denied(&self, capability: &str) -> &Self {
        assert!(
            self.journal
                .iter()
                .any(|e| e.capability.as_deref() == Some(capability)
                    && e.decision.starts_with("denied")),
            "expected a call needing {capability} to be denied{}",
            self.story()
        );
        self
    }

    pub fn assert_note(&self, visibility: Visibility, contains: &str) -> &Self {
        assert!(
            self.ticket
                .notes
                .iter()
                .any(|n| n.visibility == visibility && n.text.contains(contains)),
            "expected a {} note containing {contains:?}{}",
            visibility.name(),
            self.story()
        );
        self
    }

    pub fn assert_message_to(&self, to: &str, contains: &str) -> &Self {
        assert!(
            self.outbox
                .iter()
                .any(|m| m.recipient == to && m.text.contains(contains)),
            "expected a message to {to} containing {contains:?}{}",
            self.story()
        );
        self
    }

    /// No message, note or journal entry contains `text` (for secrets).
    pub fn assert_nowhere_but_outbox(&self, text: &str) -> &Self {
        let in_journal = self
            .journal
            .iter()
            .any(|e| e.args.contains(text) || e.result.contains(text));
        let in_notes = self.ticket.notes.iter().any(|n| n.text.contains(text));
        assert!(
            !in_journal && !in_notes,
            "{text:?} leaked into the journal or notes{}",
            self.story()
        );
        self
    }

    pub fn assert_user(&self, email: &str, check: impl FnOnce(&UserReport)) -> &Self {
        let u = self
            .users
            .get(email)
            .unwrap_or_else(|| panic!("no user {email} in the scenario's directory"));
        check(u);
        self
    }
}
