//! The guardrail and per-tenant commands: `policy set|show|check|default`,
//! `mode set|show`, `template set|show|reset`, `approvals`, `approve`, `reject`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::emit;
use crate::engine::{Desk, Submission};
use crate::mode::Mode;
use crate::policy::Policy;
use crate::store::approvals::{Answer, approval_label};
use crate::store::{run_label, ticket_label};

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check a policy file and make it the tenant's policy (the old one stays in force
    /// if the file has mistakes).
    Set { tenant: String, file: PathBuf },
    /// Print the tenant's policy file (the default one if it never set its own).
    Show { tenant: String },
    /// Check a policy file without setting it.
    Check { file: PathBuf },
    /// Print the default policy, a starting point for a tenant's own.
    Default,
}

#[derive(Subcommand, Debug)]
pub enum ModeCommand {
    /// Set the mode of a category (`*` for every category without its own).
    Set {
        tenant: String,
        /// A plugin category (e.g. `account-unlock`), or `*`.
        category: String,
        /// off, shadow, supervised or auto.
        mode: String,
    },
    /// Show a tenant's modes.
    Show { tenant: String },
}

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Use FILE (minijinja) as the tenant's wording of a plugin's closeout template.
    Set {
        tenant: String,
        plugin: String,
        template: String,
        file: PathBuf,
    },
    /// Print the template a tenant's closeouts use (its own, or the plugin's).
    Show {
        tenant: String,
        plugin: String,
        template: String,
    },
    /// Go back to the plugin's own wording.
    Reset {
        tenant: String,
        plugin: String,
        template: String,
    },
}

#[derive(Args, Debug)]
pub struct DecisionArgs {
    /// The approval (`A-3`).
    pub id: String,
    /// Who is answering (must be an approver the request named).
    #[arg(long = "as")]
    pub by: String,
    /// Why, for the ticket and the audit log.
    #[arg(long)]
    pub comment: Option<String>,
}

fn read_policy_file(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("reading the policy file {}", file.display()))
}

pub async fn policy(desk: &Desk, json: bool, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Set { tenant, file } => {
            let source = read_policy_file(&file)?;
            let policy = desk.set_policy(&tenant, &source).await?;
            let rules: Vec<_> = policy
                .rules()
                .iter()
                .map(|r| r.name().to_string())
                .collect();
            emit(json, &json!({ "tenant": tenant, "rules": rules }), || {
                format!(
                    "policy of {tenant} set: {} rules ({})",
                    rules.len(),
                    rules.join(", ")
                )
            })
        }
        PolicyCommand::Show { tenant } => {
            let view = desk.policy_view(&tenant).await?;
            emit(json, &view, || {
                let origin = if view.default {
                    format!("# {tenant} uses the default policy")
                } else {
                    format!("# policy of {tenant}")
                };
                format!("{origin}\n{}", view.source)
            })
        }
        PolicyCommand::Check { file } => {
            let source = read_policy_file(&file)?;
            let policy = Policy::parse(&source)
                .map_err(|e| anyhow::anyhow!("{} has mistakes:\n{e}", file.display()))?;
            let rules: Vec<_> = policy
                .rules()
                .iter()
                .map(|r| r.name().to_string())
                .collect();
            emit(json, &json!({ "valid": true, "rules": rules }), || {
                format!("{} is valid: {} rules", file.display(), rules.len())
            })
        }
        PolicyCommand::Default => {
            print!("{}", Policy::default_policy().source());
            Ok(())
        }
    }
}

pub async fn mode(desk: &Desk, json: bool, cmd: ModeCommand) -> anyhow::Result<()> {
    match cmd {
        ModeCommand::Set {
            tenant,
            category,
            mode,
        } => {
            let mode: Mode = mode.parse()?;
            let category = category.trim();
            desk.set_mode(&tenant, category, mode).await?;
            emit(
                json,
                &json!({ "tenant": tenant, "category": category, "mode": mode }),
                || {
                    let what = if category == "*" {
                        "every category without its own mode".to_string()
                    } else {
                        category.to_string()
                    };
                    format!("{tenant}: {what} is now {mode} ({})", mode.description())
                },
            )
        }
        ModeCommand::Show { tenant } => {
            desk.store.tenant(&tenant).await?;
            let rows = desk.store.modes_of(&tenant).await?;
            let out: Vec<_> = rows
                .iter()
                .map(|(c, m)| json!({ "category": c, "mode": m }))
                .collect();
            emit(json, &out, || {
                let mut s = String::new();
                for (c, m) in &rows {
                    s += &format!("{c:<24} {m}\n");
                }
                if !rows.iter().any(|(c, _)| c == "*") {
                    s += &format!("{:<24} {} (the default)\n", "*", Mode::NEW_TENANT);
                }
                s
            })
        }
    }
}

pub async fn template(desk: &Desk, json: bool, cmd: TemplateCommand) -> anyhow::Result<()> {
    match cmd {
        TemplateCommand::Set {
            tenant,
            plugin,
            template,
            file,
        } => {
            let body = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the template file {}", file.display()))?;
            desk.set_template(&tenant, &plugin, &template, Some(&body))
                .await?;
            emit(
                json,
                &json!({ "tenant": tenant, "plugin": plugin, "template": template, "own": true }),
                || format!("{tenant} now words {plugin}'s `{template}` closeout its own way"),
            )
        }
        TemplateCommand::Reset {
            tenant,
            plugin,
            template,
        } => {
            desk.set_template(&tenant, &plugin, &template, None).await?;
            emit(
                json,
                &json!({ "tenant": tenant, "plugin": plugin, "template": template, "own": false }),
                || format!("{tenant} uses {plugin}'s own `{template}` closeout again"),
            )
        }
        TemplateCommand::Show {
            tenant,
            plugin,
            template,
        } => {
            desk.store.tenant(&tenant).await?;
            let own = desk
                .store
                .template_override(&tenant, &plugin, &template)
                .await?;
            let record = desk.store.plugin(&plugin).await?;
            let manifest = crate::runtime::Manifest::of(&record)?;
            let shipped = manifest
                .templates
                .iter()
                .find(|t| t.name == template)
                .map(|t| t.body.clone());
            let Some(body) = own.clone().or(shipped) else {
                anyhow::bail!("plugin {plugin} has no closeout template `{template}`");
            };
            let out = json!({ "tenant": tenant, "plugin": plugin, "template": template,
                              "own": own.is_some(), "body": body });
            emit(json, &out, || body.clone())
        }
    }
}

pub async fn approvals(desk: &Desk, json: bool, tenant: Option<&str>) -> anyhow::Result<()> {
    if let Some(t) = tenant {
        desk.store.tenant(t).await?;
    }
    let pending = desk.store.pending_approvals(tenant).await?;
    let out: Vec<_> = pending.iter().map(crate::views::approval).collect();
    emit(json, &out, || {
        if pending.is_empty() {
            return "no pending approvals".into();
        }
        pending
            .iter()
            .map(|a| {
                format!(
                    "{}  {}  {} {}: {}\n     rule {}; requested by {}; approvers: {}; expires {}",
                    approval_label(a.id),
                    a.tenant,
                    ticket_label(a.ticket),
                    run_label(a.run),
                    a.summary,
                    a.rule,
                    a.requester,
                    a.approver_emails().join(", "),
                    a.expires_at
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub async fn decide(desk: &Desk, args: DecisionArgs, answer: Answer) -> anyhow::Result<Submission> {
    let id = crate::store::parse_approval_id(&args.id)?;
    desk.decide_approval(id, &args.by, answer, args.comment.as_deref())
        .await
}
