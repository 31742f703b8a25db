//! Approver routing and what approvers are told. An "ask" names approvers abstractly
//! (the target's manager, the department head, a directory group, named people); this
//! module turns them into the people entitled to answer for one request, never
//! including the requester, and writes the request message. Knows nothing of SQL or
//! wasmtime: it reads the directory through the IdP connector.

use crate::connectors::{DirectoryUser, Idp};
use crate::policy::{ApproverSpec, Policy};
use crate::store::ApprovalRow;

/// The emails entitled to answer: every approver the specs resolve to for this target,
/// in order, without duplicates and without the requester.
pub async fn resolve(
    specs: &[ApproverSpec],
    target: Option<&DirectoryUser>,
    policy: &Policy,
    idp: &dyn Idp,
    requester: &str,
) -> Vec<String> {
    let mut people: Vec<String> = Vec::new();
    for spec in specs {
        match spec {
            ApproverSpec::Manager => match target.and_then(|t| t.manager.as_deref()) {
                // A manager asking for a change to their own report cannot approve it:
                // the next level up does, as in any approval chain.
                Some(manager) if manager.trim().eq_ignore_ascii_case(requester.trim()) => {
                    match idp.find_user(manager).await {
                        Ok(boss) => people.extend(boss.manager),
                        Err(e) => {
                            tracing::warn!(%manager, "the manager's manager could not be read: {e}")
                        }
                    }
                }
                Some(manager) => people.push(manager.to_string()),
                None => {}
            },
            ApproverSpec::DepartmentHead => people.extend(
                target
                    .and_then(|t| t.department.as_deref())
                    .and_then(|d| policy.department_head(d))
                    .map(str::to_string),
            ),
            ApproverSpec::Group(group) => match idp.group_members(group).await {
                Ok(members) => people.extend(members),
                Err(e) => tracing::warn!(%group, "approver group could not be read: {e}"),
            },
            ApproverSpec::Person(email) => people.push(email.clone()),
        }
    }
    let mut entitled: Vec<String> = Vec::new();
    for p in people {
        let p = p.trim().to_ascii_lowercase();
        if !p.is_empty() && p != requester.trim().to_ascii_lowercase() && !entitled.contains(&p) {
            entitled.push(p);
        }
    }
    entitled
}

/// Why `by` may not answer this request, if they may not.
pub fn refusal(row: &ApprovalRow, by: &str) -> Option<String> {
    let by = by.trim();
    if by.eq_ignore_ascii_case(&row.requester) {
        return Some(format!(
            "{by} asked for this change and cannot approve their own request"
        ));
    }
    let entitled = row.approver_emails();
    if !entitled.iter().any(|e| e.eq_ignore_ascii_case(by)) {
        return Some(format!(
            "{by} is not an approver for this request (rule {}); it can be answered by: {}",
            row.rule,
            entitled.join(", ")
        ));
    }
    None
}

/// The message an approver receives.
pub fn request_message(
    label: &str,
    summary: &str,
    rule: &str,
    ticket: &str,
    subject: &str,
    requester: &str,
    expires_at: &str,
) -> String {
    format!(
        "Approval needed ({label}): capdesk wants to {summary}.\n\
         Ticket {ticket} \"{subject}\", requested by {requester}. Policy rule `{rule}` asks for \
         your approval.\n\
         Approve: capdesk approve {label} --as YOUR-EMAIL [--comment ...]\n\
         Reject:  capdesk reject {label} --as YOUR-EMAIL [--comment ...]\n\
         Without an answer by {expires_at} the ticket goes to a technician."
    )
}
