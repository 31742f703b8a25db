//! The queues people work from: tickets handed to a technician, each with the reason of
//! its last run. The API and the console show the same queue from here.

use serde::Serialize;

use crate::connectors::{Person, TicketStatus};
use crate::engine::Desk;
use crate::store::{parse_ticket_id, run_label};

/// An escalated ticket and why.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub ticket: String,
    pub tenant: String,
    pub subject: String,
    pub requester: Person,
    pub run: Option<String>,
    pub plugin: Option<String>,
    pub reason: Option<String>,
}

impl Desk {
    /// The escalated tickets of `tenants`, newest first, looking at each tenant's latest
    /// `limit` tickets.
    pub async fn escalations(
        &self,
        tenants: &[String],
        limit: i64,
    ) -> anyhow::Result<Vec<Escalation>> {
        let mut out = Vec::new();
        for tenant in tenants {
            let records = self.sandbox(tenant).tickets(limit).await?;
            for r in records
                .iter()
                .filter(|r| r.status == TicketStatus::Escalated)
            {
                let last = self
                    .store
                    .runs_of_ticket(parse_ticket_id(&r.ticket.id)?)
                    .await?
                    .pop();
                out.push(Escalation {
                    ticket: r.ticket.id.clone(),
                    tenant: tenant.clone(),
                    subject: r.ticket.details.subject.clone(),
                    requester: r.ticket.details.requester.clone(),
                    run: last.as_ref().map(|l| run_label(l.id)),
                    plugin: last.as_ref().and_then(|l| l.plugin.clone()),
                    reason: last.map(|l| l.reason),
                });
            }
        }
        Ok(out)
    }
}
