//! Shared by the benchmarks: in-memory connectors (so the numbers measure the runtime,
//! not SQLite), the benchmark playbook component, and its native-Rust twin.

#![allow(dead_code, reason = "each benchmark binary uses its own subset")]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use capdesk::capability::Capability;
use capdesk::connectors::{
    Chat, ConnectorError, Connectors, DirectoryUser, Effect, Idp, MailboxRight, NewTicket, Person,
    Psa, Secret, Ticket, TicketRecord, TicketStatus, Visibility,
};
use capdesk::guard::{CallError, Guard, RunScope};
use capdesk::journal::Journal;
use capdesk::mode::Mode;
use capdesk::policy::Policy;
use capdesk_sdk::triage::Signals;

/// A directory, ticket store and chat held in memory.
#[derive(Default)]
pub struct MemorySystems {
    users: Mutex<HashMap<String, DirectoryUser>>,
    notes: Mutex<Vec<String>>,
    messages: Mutex<Vec<String>>,
}

fn add(list: &mut Vec<String>, v: &str) -> Effect {
    if list.iter().any(|x| x == v) {
        Effect::Unchanged
    } else {
        list.push(v.to_string());
        Effect::Changed
    }
}

impl MemorySystems {
    pub fn with_user(email: &str) -> Arc<MemorySystems> {
        let s = MemorySystems::default();
        s.users.lock().unwrap().insert(
            email.to_string(),
            DirectoryUser {
                email: email.into(),
                name: "Ann Archer".into(),
                enabled: true,
                locked: true,
                privileged: false,
                manager: None,
                department: None,
                groups: vec![],
                licenses: vec![],
                mfa_methods: vec![],
                mailboxes: vec![],
            },
        );
        Arc::new(s)
    }

    fn with<T>(
        &self,
        email: &str,
        f: impl FnOnce(&mut DirectoryUser) -> T,
    ) -> Result<T, ConnectorError> {
        let mut users = self.users.lock().unwrap();
        let u = users
            .get_mut(email)
            .ok_or_else(|| ConnectorError::NotFound(email.into()))?;
        Ok(f(u))
    }
}

#[async_trait]
impl Idp for MemorySystems {
    async fn contact_methods(&self, _email: &str) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<String>, ConnectorError> {
        let users = self.users.lock().unwrap();
        Ok(users
            .values()
            .filter(|u| u.groups.iter().any(|g| g == group))
            .map(|u| u.email.clone())
            .collect())
    }

    async fn find_user(&self, email: &str) -> Result<DirectoryUser, ConnectorError> {
        self.with(email, |u| u.clone())
    }
    async fn unlock_account(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |u| {
            let was = u.locked;
            u.locked = false;
            if was {
                Effect::Changed
            } else {
                Effect::Unchanged
            }
        })
    }
    async fn set_temporary_password(&self, email: &str, _: &Secret) -> Result<(), ConnectorError> {
        self.with(email, |_| ())
    }
    async fn require_mfa_reregistration(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |u| {
            let had = !u.mfa_methods.is_empty();
            u.mfa_methods.clear();
            if had {
                Effect::Changed
            } else {
                Effect::Unchanged
            }
        })
    }
    async fn revoke_sessions(&self, email: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |_| Effect::Changed)
    }
    async fn add_group_member(&self, group: &str, email: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |u| add(&mut u.groups, group))
    }
    async fn remove_group_member(
        &self,
        group: &str,
        email: &str,
    ) -> Result<Effect, ConnectorError> {
        self.with(email, |u| {
            let before = u.groups.len();
            u.groups.retain(|g| g != group);
            if before == u.groups.len() {
                Effect::Unchanged
            } else {
                Effect::Changed
            }
        })
    }
    async fn assign_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |u| add(&mut u.licenses, sku))
    }
    async fn remove_license(&self, email: &str, sku: &str) -> Result<Effect, ConnectorError> {
        self.with(email, |u| {
            let before = u.licenses.len();
            u.licenses.retain(|l| l != sku);
            if before == u.licenses.len() {
                Effect::Unchanged
            } else {
                Effect::Changed
            }
        })
    }
    async fn grant_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError> {
        self.with(email, |u| {
            add(&mut u.mailboxes, &format!("{mailbox}:{}", right.name()))
        })
    }
    async fn remove_mailbox_access(
        &self,
        mailbox: &str,
        email: &str,
        right: MailboxRight,
    ) -> Result<Effect, ConnectorError> {
        let key = format!("{mailbox}:{}", right.name());
        self.with(email, |u| {
            let before = u.mailboxes.len();
            u.mailboxes.retain(|m| *m != key);
            if before == u.mailboxes.len() {
                Effect::Unchanged
            } else {
                Effect::Changed
            }
        })
    }
}

#[async_trait]
impl Psa for MemorySystems {
    async fn create_ticket(&self, t: &NewTicket) -> Result<Ticket, ConnectorError> {
        Ok(Ticket {
            id: "T-1".into(),
            details: t.clone(),
        })
    }
    async fn get_ticket(&self, id: &str) -> Result<TicketRecord, ConnectorError> {
        Err(ConnectorError::NotFound(id.into()))
    }
    async fn add_note(
        &self,
        _: &str,
        text: &str,
        _: Visibility,
        _: &str,
    ) -> Result<(), ConnectorError> {
        self.notes.lock().unwrap().push(text.into());
        Ok(())
    }
    async fn set_status(&self, _: &str, _: TicketStatus) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn link_to_parent(&self, _: &str, _: &str) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[async_trait]
impl Chat for MemorySystems {
    async fn send(&self, _: &str, text: &str) -> Result<(), ConnectorError> {
        self.messages.lock().unwrap().push(text.into());
        Ok(())
    }
}

pub const REQUESTER: &str = "ann@acme.test";

pub fn ticket() -> Ticket {
    Ticket {
        id: "T-1".into(),
        details: NewTicket {
            subject: "Locked out of my account".into(),
            body: "Typed the wrong password too many times, please unlock".into(),
            requester: Person {
                email: REQUESTER.into(),
                name: "Ann Archer".into(),
            },
            channel: "chat".into(),
            requester_verified: true,
            fields: vec![],
        },
    }
}

/// The benchmark's policy: the default policy's deny of privileged accounts, and its
/// owner self-service rule widened to every directory change (the benchmark playbook
/// changes groups, licenses and mailboxes, which the default policy would ask about),
/// so every side-effecting call is decided by Cedar with conditions, as in production.
pub const BENCH_POLICY: &str = r#"
[[rule]]
name = "privileged-accounts"
deny = ["*"]
when = "context.target.privileged"

[[rule]]
name = "owner-self-service"
allow = ["idp.*"]
when = "context.requester.verified && context.requester.is_target"

[[rule]]
name = "tickets-and-chat"
allow = ["psa.write", "chat.send", "chat.ask"]
"#;

/// What the benchmark playbook runs with: every capability, auto mode, [`BENCH_POLICY`].
pub fn scope() -> RunScope {
    static POLICY: std::sync::OnceLock<Arc<Policy>> = std::sync::OnceLock::new();
    RunScope {
        tenant: "acme".into(),
        plugin: "bench-playbook".into(),
        category: "account-unlock".into(),
        granted: Capability::ALL.into_iter().collect::<BTreeSet<_>>(),
        mode: Mode::Auto,
        policy: POLICY
            .get_or_init(|| Arc::new(Policy::parse(BENCH_POLICY).expect("the bench policy parses")))
            .clone(),
        ticket: ticket(),
    }
}

/// In-memory systems holding the requester.
pub fn connectors() -> Connectors {
    let systems = MemorySystems::with_user(REQUESTER);
    Connectors {
        credentials: None,
        idp: systems.clone(),
        psa: systems.clone(),
        chat: systems,
    }
}

/// A guard with every capability over fresh in-memory systems.
pub fn guard() -> Guard {
    Guard::new(scope(), connectors(), Journal::in_memory())
}

/// The component bytes of the test guest `tests/guests/<name>` (`bench-playbook`,
/// `bench-asks`), built for wasm32-wasip2 the way plugins are.
pub fn component(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = capdesk_build::build_crate(&root.join("tests/guests").join(name))
        .expect("building the bench playbook");
    std::fs::read(path).unwrap()
}

/// The native twin of `tests/guests/bench-playbook`: same triage, same ten host calls,
/// through the same guard, without the sandbox.
pub async fn native_run(ticket: &Ticket, mut guard: Guard) -> (f32, Result<String, CallError>) {
    let score = Signals::from_text(&format!(
        "{}\n{}",
        ticket.details.subject, ticket.details.body
    ))
    .any(&["locked out", "account locked"], 0.85)
    .phrase("unlock", 0.5)
    .against(&["printer", "phishing"], 0.8)
    .score();
    let result = async {
        let email = &ticket.details.requester.email;
        let user = guard.find_user(email).await?;
        guard.log(capdesk::guard::LogLine {
            level: "info".into(),
            message: "found user".into(),
            fields: vec![("email".into(), email.clone())],
        });
        guard.unlock_account(email).await?;
        guard.revoke_sessions(email).await?;
        guard.add_group_member("vpn-users", email).await?;
        guard.assign_license(email, "M365-E3").await?;
        guard
            .grant_mailbox_access("shared@acme.test", email, MailboxRight::FullAccess)
            .await?;
        guard
            .add_note(
                &ticket.id,
                &format!("onboarded {}", user.name),
                Visibility::Internal,
            )
            .await?;
        guard
            .set_status(&ticket.id, TicketStatus::InProgress)
            .await?;
        guard.send(email, "You're all set.").await?;
        Ok(format!("done for {}", user.name))
    }
    .await;
    (score, result)
}
