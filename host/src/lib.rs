//! capdesk: an autonomous L1 service desk for MSPs. Ticket categories are resolved by
//! sandboxed WebAssembly playbooks; the host exposes capability-scoped identity, PSA and
//! chat functions, and every call goes through the tenant's grants.

pub mod admin;
pub mod api;
pub mod approvals;
pub mod audit;
pub mod bundled;
pub mod capability;
pub mod cli;
pub mod connectors;
pub mod console;
pub mod credentials;
pub mod datadir;
pub mod demo;
pub mod engine;
#[cfg(feature = "failpoints")]
pub mod failpoints;
pub mod guard;
pub mod journal;
pub mod mode;
pub mod owner;
pub mod pages;
pub mod policy;
pub mod queues;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod vault;
pub mod views;
pub mod webchat;
pub mod workers;
