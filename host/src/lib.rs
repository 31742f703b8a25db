//! capdesk: an autonomous L1 service desk for MSPs. Ticket categories are resolved by
//! sandboxed WebAssembly playbooks; the host exposes capability-scoped identity, PSA and
//! chat functions, and every call goes through the tenant's grants.

pub mod audit;
pub mod bundled;
pub mod capability;
pub mod cli;
pub mod connectors;
pub mod datadir;
pub mod demo;
pub mod engine;
pub mod guard;
pub mod runtime;
pub mod store;
