//! # capdesk-sdk: write capdesk resolution playbooks in Rust
//!
//! A playbook resolves one category of help-desk ticket. You implement [`Playbook`]
//! (describe, triage, resolve), register it with [`export_playbook!`], and build the
//! crate for `wasm32-wasip2`. Everything the playbook does to the outside world goes
//! through the host functions in [`idp`], [`psa`], [`chat`] and [`log`]; each needs a
//! capability the tenant's admin grants, and an ungranted call returns
//! [`Failure::Denied`] naming it.
//!
//! ```ignore
//! use capdesk_sdk::{export_playbook, idp, Failure, Manifest, Outcome, Playbook, Ticket};
//!
//! struct Unlock;
//!
//! impl Playbook for Unlock {
//!     fn manifest() -> Manifest {
//!         Manifest::new("account-unlock", env!("CARGO_PKG_VERSION"), "account-unlock")
//!             .description("Unlocks a locked-out account for its verified owner")
//!             .capabilities(&["idp.read", "idp.unlock"])
//!     }
//!     fn triage(ticket: &Ticket) -> f32 {
//!         capdesk_sdk::triage::Signals::new(ticket).phrase("locked out", 0.8).score()
//!     }
//!     fn resolve(ticket: &Ticket) -> Result<Outcome, Failure> {
//!         idp::unlock_account(&ticket.requester.email)?;
//!         Ok(Outcome::resolved("unlocked the account"))
//!     }
//! }
//!
//! export_playbook!(Unlock);
//! ```
//!
//! ## Staying fast
//! A run is a fresh instance: instantiate, triage, resolve, drop. Keep it cheap:
//! - build with `capdesk-build` (release, `opt-level = "s"`, LTO, a 32 KiB stack);
//! - keep the plugin's memory small. After every run the host resets all of the
//!   plugin's linear memory: its stack, its static data (string tables, templates) and
//!   its heap. A plugin whose stack, data and heap fit in one 64 KiB WebAssembly page is
//!   reset fastest; each further page cost about 1.5 µs a run here. The benchmark
//!   playbook fits in one page with a 32 KiB stack and took 1.5 µs longer a run with
//!   64 KiB. A plugin that recurses deeply can build by hand with a larger
//!   `-C link-arg=-zstack-size=N`; running out of stack stops the run with a clear
//!   reason, it never corrupts memory;
//! - keep global state out of statics that need initialization at start-up, allocate
//!   little on the hot path (reuse `String`s, avoid large `Vec`s in triage);
//! - never call host functions from `triage` (they are denied there: triage runs for
//!   every installed plugin on every ticket).
//!
//! ## Testing
//! With the `harness` feature (in `[dev-dependencies]`), [`harness`] runs your plugin in
//! the real capdesk runtime against the sandbox directory, ticket store and chat:
//! see that module.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "playbook",
        pub_export_macro: true,
        export_macro_name: "__export_playbook_bindings",
        default_bindings_module: "capdesk_sdk::bindings",
    });
}

pub mod account;
pub mod checks;
pub mod people;
pub mod triage;
pub mod wording;

#[cfg(all(feature = "harness", not(target_family = "wasm")))]
pub mod harness;

pub use bindings::capdesk::playbook::types::{
    Effect, Failure, Manifest, Outcome, Person, Resolution, Template, Ticket,
};

/// The identity provider: find users, unlock, reset passwords, MFA, sessions, groups,
/// licenses, mailboxes. Each function's capability is in its documentation.
pub mod idp {
    pub use crate::bindings::capdesk::playbook::idp::*;
}

/// The PSA: read tickets, add notes, set status, link to a parent incident.
pub mod psa {
    pub use crate::bindings::capdesk::playbook::psa::*;
}

/// Chat: message a person, or ask them a question.
pub mod chat {
    pub use crate::bindings::capdesk::playbook::chat::*;
}

/// Structured log lines that go into the run's record.
pub mod log {
    pub use crate::bindings::capdesk::playbook::log::Level;
    use crate::bindings::capdesk::playbook::log::emit;

    pub fn debug(message: &str, fields: &[(&str, &str)]) {
        write(Level::Debug, message, fields)
    }
    pub fn info(message: &str, fields: &[(&str, &str)]) {
        write(Level::Info, message, fields)
    }
    pub fn warn(message: &str, fields: &[(&str, &str)]) {
        write(Level::Warn, message, fields)
    }
    pub fn error(message: &str, fields: &[(&str, &str)]) {
        write(Level::Error, message, fields)
    }

    fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        emit(level, message, &fields);
    }
}

/// A resolution playbook. Implement it on a unit struct and register it with
/// [`export_playbook!`].
pub trait Playbook {
    /// Who the plugin is and what it needs. Called once, at install.
    fn manifest() -> Manifest;

    /// How sure the plugin is that it resolves `ticket`, 0.0 to 1.0. Look only at the
    /// ticket: host functions are not available here.
    fn triage(ticket: &Ticket) -> f32;

    /// Resolve the ticket. Returning `Err(failure)` (for example with `?` on a host
    /// call) escalates the ticket to a technician with the failure as the reason.
    fn resolve(ticket: &Ticket) -> Result<Outcome, Failure>;
}

impl Manifest {
    /// A manifest with no capabilities and no templates yet.
    pub fn new(id: &str, version: &str, category: &str) -> Manifest {
        Manifest {
            id: id.into(),
            version: version.into(),
            category: category.into(),
            description: String::new(),
            capabilities: Vec::new(),
            templates: Vec::new(),
        }
    }

    /// One sentence an admin reads before granting anything.
    pub fn description(mut self, text: &str) -> Manifest {
        self.description = text.into();
        self
    }

    /// The capabilities the plugin calls for (`idp.read`, `idp.unlock`, ...).
    pub fn capabilities(mut self, names: &[&str]) -> Manifest {
        self.capabilities
            .extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// A closeout template (minijinja syntax) that outcomes can name.
    pub fn template(mut self, name: &str, body: &str) -> Manifest {
        self.templates.push(Template {
            name: name.into(),
            body: body.into(),
        });
        self
    }
}

impl Outcome {
    /// The request was carried out; `note` tells the technician what was done.
    pub fn resolved(note: impl Into<String>) -> Outcome {
        Outcome {
            resolution: Resolution::Resolved,
            note: note.into(),
            closeout: None,
            vars: Vec::new(),
        }
    }

    /// A technician must take over; `note` says why, in words they understand.
    pub fn escalated(note: impl Into<String>) -> Outcome {
        Outcome {
            resolution: Resolution::Escalated,
            note: note.into(),
            closeout: None,
            vars: Vec::new(),
        }
    }

    /// Send the requester the closeout template `name` from the manifest.
    pub fn closeout(mut self, name: &str) -> Outcome {
        self.closeout = Some(name.into());
        self
    }

    /// A value for the closeout template's `{{ key }}`.
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Outcome {
        self.vars.push((key.into(), value.into()));
        self
    }
}

impl Failure {
    /// The failure's kind and message, for notes and logs.
    pub fn describe(&self) -> String {
        match self {
            Failure::Denied(m) => format!("denied: {m}"),
            Failure::Rejected(m) => format!("rejected by the approver: {m}"),
            Failure::NotFound(m) => format!("not found: {m}"),
            Failure::Invalid(m) => format!("invalid request: {m}"),
            Failure::Upstream(m) => format!("the connected system failed: {m}"),
            Failure::Incomplete(m) => format!("done only in part: {m}"),
        }
    }
}

impl Ticket {
    /// A structured field the intake filled in.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[doc(hidden)]
pub fn __resolve<P: Playbook>(ticket: &Ticket) -> Outcome {
    match P::resolve(ticket) {
        Ok(outcome) => outcome,
        Err(failure) => Outcome::escalated(format!("stopped: {}", failure.describe())),
    }
}

/// Register a [`Playbook`] implementation as the component's exports.
#[macro_export]
macro_rules! export_playbook {
    ($playbook:ty) => {
        #[doc(hidden)]
        pub struct __CapdeskPlaybookExport;

        impl $crate::bindings::exports::capdesk::playbook::handler::Guest for __CapdeskPlaybookExport {
            fn describe() -> $crate::Manifest {
                <$playbook as $crate::Playbook>::manifest()
            }
            fn triage(ticket: $crate::Ticket) -> f32 {
                <$playbook as $crate::Playbook>::triage(&ticket)
            }
            fn resolve(ticket: $crate::Ticket) -> $crate::Outcome {
                $crate::__resolve::<$playbook>(&ticket)
            }
        }

        // Native builds of a plugin crate (cargo build/test/clippy on the workspace)
        // carry no component exports: their names are not valid native symbols.
        #[cfg(target_family = "wasm")]
        $crate::bindings::__export_playbook_bindings!(__CapdeskPlaybookExport with_types_in $crate::bindings);
    };
}
