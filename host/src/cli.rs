//! The `capdesk` command line (clap). Each command opens the data dir, does one thing
//! through the engine, store or sandbox, and prints it for a person or, with `--json`,
//! as JSON. The command and field names are a contract: add, don't rename.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;

use crate::capability::Capability;
use crate::connectors::sandbox::NewUser;
use crate::connectors::{NewTicket, Person, Psa as _};
use crate::engine::Desk;
use crate::store::{parse_run_id, parse_ticket_id, run_label, ticket_label};

mod chat;
mod guardrails;

#[derive(Parser, Debug)]
#[command(
    name = "capdesk",
    version,
    about = "Autonomous L1 service desk for MSPs: sandboxed WebAssembly playbooks resolve routine tickets"
)]
pub struct Cli {
    /// The data directory (SQLite database, installed plugins, compiled cache).
    #[arg(
        long,
        global = true,
        env = "CAPDESK_DATA",
        default_value = "./capdesk-data"
    )]
    pub data: PathBuf,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The lowest triage score that lets a plugin take a ticket (0 to 1); a ticket no
    /// plugin scores this high is `unmatched` and goes to a technician.
    #[arg(
        long,
        global = true,
        env = "CAPDESK_TRIAGE_THRESHOLD",
        default_value_t = crate::engine::DEFAULT_TRIAGE_THRESHOLD,
        value_parser = parse_threshold
    )]
    pub triage_threshold: f32,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage tenants (the MSP's clients).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Install, inspect and list plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Grant capabilities to a plugin for a tenant.
    Grant {
        tenant: String,
        plugin: String,
        /// Capabilities to grant (e.g. idp.read idp.unlock).
        #[arg(required_unless_present = "all")]
        capabilities: Vec<String>,
        /// Grant every capability the plugin's manifest asks for.
        #[arg(long, conflicts_with = "capabilities")]
        all: bool,
    },
    /// Take capabilities back from a plugin for a tenant.
    Revoke {
        tenant: String,
        plugin: String,
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
    /// List a tenant's grants, plugin by plugin.
    Grants { tenant: String },
    /// Memory and guest-time limits of runs.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// The embedded sandbox directory, sign-in and chat outbox.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Submit and look at tickets.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Look at runs.
    #[command(subcommand)]
    Run(RunCommand),
    /// Answer the question a waiting run asked, as the person it asked; resumes the run.
    Answer {
        /// The waiting run (`R-12`).
        run: String,
        /// Who is answering (must be the person the run asked).
        #[arg(long = "as")]
        by: String,
        /// The answer (one of the choices, when the question has choices).
        text: String,
    },
    /// A tenant's policy: which side effects are allowed, asked for, or denied.
    #[command(subcommand)]
    Policy(guardrails::PolicyCommand),
    /// How much autonomy a tenant gives each ticket category.
    #[command(subcommand)]
    Mode(guardrails::ModeCommand),
    /// A tenant's wording of a plugin's closeout templates.
    #[command(subcommand)]
    Template(guardrails::TemplateCommand),
    /// List pending approval requests, with their ids.
    Approvals {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Approve a pending request, as an entitled approver; resumes the run.
    Approve(guardrails::DecisionArgs),
    /// Reject a pending request, as an entitled approver; the plugin gets `rejected`.
    Reject(guardrails::DecisionArgs),
    /// Escalate waiting runs nobody answered within the tenant's timeout.
    Sweep,
    /// Resume runs that a stopped or killed capdesk process left running.
    Recover,
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Set up a demo tenant in a fresh temporary data dir and run a scripted set of tickets.
    Demo,
    /// Serve the HTTP API (and, on a fresh data dir, seed the demo tenant and print the
    /// first admin token).
    Serve(ServeArgs),
    /// API tokens for the HTTP API.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one and prints it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Do not seed the demo tenant into a fresh data dir.
    #[arg(long)]
    pub no_demo: bool,
    /// Runs executed at once. A run spends most of its life waiting on the directory,
    /// the PSA, chat or the database, so this is well above the number of cores.
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Tickets one tenant may have waiting for a worker before the API answers 429.
    #[arg(long, default_value_t = 1000)]
    pub queue_per_tenant: usize,
    /// The address users reach this server at (e.g. https://desk.example.com), used in
    /// one-time password links; the listening address by default.
    #[arg(long, env = "CAPDESK_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is kept).
    Create {
        #[arg(long, value_enum)]
        role: crate::store::tokens::Role,
        /// The one tenant it is for (required for approvers; technicians without it
        /// reach every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The person (email) it acts as when answering or approving.
        #[arg(long)]
        person: Option<String>,
        /// What it is for, to recognise it in `token list`.
        #[arg(long, default_value = "api token")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Issue (or rotate) the secret the tenant's PSA signs webhooks with; printed once
    /// here, and the previous secret stops working.
    WebhookSecret { tenant: String },
    /// Add a tenant.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Connect the tenant's Slack app and make Slack the tenant's chat.
    Slack(chat::SlackArgs),
    /// Connect the tenant's Teams bot and make Teams the tenant's chat.
    Teams(chat::TeamsArgs),
    /// Show the tenant's chat, or choose it: builtin, slack or teams.
    Chat(chat::ChatArgs),
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Install a plugin component (or the bundled plugins).
    Install {
        #[arg(required_unless_present = "bundled")]
        file: Option<PathBuf>,
        /// Install the plugins bundled into this binary.
        #[arg(long, conflicts_with = "file")]
        bundled: bool,
    },
    /// Show a component's manifest, requested capabilities and imports without installing it.
    Inspect { file: PathBuf },
    /// List installed plugins.
    List,
}

#[derive(Subcommand, Debug)]
pub enum LimitsCommand {
    /// Set limits; `*` as tenant or plugin means all.
    Set {
        tenant: String,
        plugin: String,
        #[arg(long)]
        memory_mib: Option<u32>,
        #[arg(long)]
        guest_ms: Option<u32>,
    },
    /// Show the limits a run of PLUGIN for TENANT gets.
    Show { tenant: String, plugin: String },
}

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Users of the sandbox directory.
    #[command(subcommand)]
    User(SandboxUserCommand),
    /// Sign in as a sandbox user, as they would at the login page.
    SignIn {
        tenant: String,
        email: String,
        password: String,
    },
    /// Messages capdesk sent to a tenant's people.
    Outbox { tenant: String },
    /// Simulate an outage: every call to FUNCTION (e.g. `idp.assign-license`, or `*`)
    /// fails as `upstream` until `sandbox heal`.
    Fail {
        tenant: String,
        function: String,
        #[arg(long, default_value = "service unavailable (simulated outage)")]
        message: String,
    },
    /// End a simulated outage (of FUNCTION, or all of the tenant's).
    Heal {
        tenant: String,
        function: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SandboxUserCommand {
    /// Add a user to a tenant's sandbox directory.
    Add(UserArgs),
    /// Show a user with their event log.
    Show { tenant: String, email: String },
    /// List a tenant's users.
    List { tenant: String },
}

#[derive(Args, Debug)]
pub struct UserArgs {
    tenant: String,
    email: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    locked: bool,
    #[arg(long)]
    disabled: bool,
    #[arg(long)]
    privileged: bool,
    #[arg(long)]
    manager: Option<String>,
    #[arg(long)]
    department: Option<String>,
    /// An initial password (otherwise the user has none until a reset).
    #[arg(long)]
    password: Option<String>,
    #[arg(long = "group")]
    groups: Vec<String>,
    #[arg(long = "license")]
    licenses: Vec<String>,
    #[arg(long = "mfa")]
    mfa_methods: Vec<String>,
    /// A contact method for identity challenges, not the user's work chat or mailbox
    /// (`sms:+15550142`, `email:ann@home.example`, `voice:+15550142`).
    #[arg(long = "contact")]
    contacts: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum TicketCommand {
    /// Submit a ticket: triage picks a plugin, the plugin runs, the outcome is printed.
    Submit {
        tenant: String,
        /// The requester's email.
        #[arg(long)]
        from: String,
        #[arg(long)]
        subject: String,
        #[arg(long, default_value = "")]
        body: String,
        /// The channel proved who the requester is (a signed-in chat or portal user).
        #[arg(long)]
        verified: bool,
        /// The requester's display name.
        #[arg(long)]
        name: Option<String>,
        /// Where the ticket came from.
        #[arg(long, default_value = "cli")]
        channel: String,
        /// A structured field, KEY=VALUE (e.g. target=ann@acme.test).
        #[arg(long = "field", value_parser = parse_field)]
        fields: Vec<(String, String)>,
    },
    /// Show a ticket: status, notes and runs.
    Show { id: String },
    /// List a tenant's tickets, newest first.
    List {
        tenant: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole chain; exits non-zero and names the first bad entry if broken.
    Verify,
    /// Print a tenant's audit entries as JSON lines.
    Export {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Show a run with every host call it made.
    Show { id: String },
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "`{s}` is not a score between 0 and 1 (the default is {})",
            crate::engine::DEFAULT_TRIAGE_THRESHOLD
        )),
    }
}

fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (for example target=ann@acme.test)"
        )),
    }
}

fn parse_capabilities(names: &[String]) -> anyhow::Result<Vec<Capability>> {
    names.iter().map(|n| Ok(n.parse::<Capability>()?)).collect()
}

/// Print `value` as JSON, or `text` for a person.
pub(crate) fn emit<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let t = text();
        if !t.is_empty() {
            println!("{}", t.trim_end());
        }
    }
    Ok(())
}

/// Run one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo => return crate::demo::run(cli.json).await,
        Command::Serve(args) => {
            let options = crate::serve::ServeOptions {
                listen: args.listen,
                demo: !args.no_demo,
                workers: args.workers,
                queue_per_tenant: args.queue_per_tenant,
                triage_threshold: cli.triage_threshold,
                public_url: args.public_url,
            };
            return crate::serve::serve(&cli.data, options).await;
        }
        _ => {}
    }
    let mut desk = Desk::open(&cli.data).await?;
    desk.triage_threshold = cli.triage_threshold;
    let result = execute(&desk, cli.json, cli.command).await;
    desk.store.close().await;
    result
}

async fn execute(desk: &Desk, json: bool, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo | Command::Serve(_) => unreachable!("handled above"),
        Command::Token(cmd) => token(desk, json, cmd).await,
        Command::Tenant(TenantCommand::Add { id, name }) => {
            let name = name.unwrap_or_else(|| id.clone());
            let tenant = desk.store.add_tenant(&id, &name).await?;
            emit(json, &tenant, || {
                format!("added tenant {} ({})", tenant.id, tenant.name)
            })
        }
        Command::Tenant(TenantCommand::WebhookSecret { tenant }) => {
            let secret = desk.store.rotate_webhook_secret(&tenant).await?;
            emit(json, &json!({ "tenant": tenant, "secret": secret }), || {
                format!(
                    "webhook secret of {tenant} (the previous one no longer works):\n{secret}\n\
                     POST /hooks/psa/{tenant} with X-Capdesk-Timestamp and X-Capdesk-Signature \
                     (see the README)"
                )
            })
        }
        Command::Tenant(TenantCommand::Slack(args)) => chat::slack(desk, json, args).await,
        Command::Tenant(TenantCommand::Teams(args)) => chat::teams(desk, json, args).await,
        Command::Tenant(TenantCommand::Chat(args)) => chat::choose(desk, json, args).await,
        Command::Tenant(TenantCommand::List) => {
            let tenants = desk.store.tenants().await?;
            emit(json, &tenants, || {
                if tenants.is_empty() {
                    return "no tenants yet; add one with `capdesk tenant add ID --name NAME`"
                        .into();
                }
                tenants
                    .iter()
                    .map(|t| format!("{:<24} {}\n", t.id, t.name))
                    .collect()
            })
        }
        Command::Plugin(PluginCommand::Install { file, bundled }) => {
            let installed = if bundled {
                desk.install_bundled().await?
            } else {
                let file = file.expect("clap requires FILE without --bundled");
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                vec![
                    desk.install_plugin(&bytes)
                        .await
                        .with_context(|| format!("installing {}", file.display()))?,
                ]
            };
            let out: Vec<_> = installed.iter().map(crate::views::plugin).collect();
            emit(json, &out, || {
                installed
                    .iter()
                    .map(|p| {
                        format!(
                            "installed {} {} (category {}, sha256 {}); grant it per tenant with `capdesk grant TENANT {} --all`\n",
                            p.id, p.version, p.category, &p.hash[..12], p.id
                        )
                    })
                    .collect()
            })
        }
        Command::Plugin(PluginCommand::Inspect { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (inspection, _) = desk.runtime.inspect(&bytes).await?;
            emit(json, &inspection, || {
                let mut s = format!(
                    "{} ({} bytes, sha256 {})\n",
                    file.display(),
                    inspection.size_bytes,
                    inspection.hash
                );
                if let Some(m) = &inspection.manifest {
                    s += &format!(
                        "plugin:       {} {}\ncategory:     {}\ndescription:  {}\n",
                        m.id, m.version, m.category, m.description
                    );
                    s += "capabilities:\n";
                    for c in &m.capabilities {
                        s += &format!("  {:<14} {}\n", c.name(), c.description());
                    }
                    let names: Vec<&str> = m.templates.iter().map(|t| t.name.as_str()).collect();
                    s += &format!("templates:    {}\n", names.join(", "));
                }
                s += "imports:\n";
                for i in &inspection.imports {
                    s += &format!("  {i}\n");
                }
                match &inspection.refused {
                    Some(why) => s += &format!("INSTALL WOULD BE REFUSED: {why}\n"),
                    None => s += "can be installed\n",
                }
                s
            })
        }
        Command::Plugin(PluginCommand::List) => {
            let plugins = desk.store.plugins().await?;
            let out: Vec<_> = plugins.iter().map(crate::views::plugin).collect();
            emit(json, &out, || {
                if plugins.is_empty() {
                    return "no plugins installed; `capdesk plugin install --bundled` installs the bundled ones".into();
                }
                plugins
                    .iter()
                    .map(|p| {
                        format!(
                            "{:<20} {:<8} {:<18} {}\n",
                            p.id, p.version, p.category, p.description
                        )
                    })
                    .collect()
            })
        }
        Command::Grant {
            tenant,
            plugin,
            capabilities,
            all,
        } => {
            let caps = parse_capabilities(&capabilities)?;
            let granted = desk
                .grant(&tenant, &plugin, (!all).then_some(caps.as_slice()))
                .await?;
            let given = if all { &granted } else { &caps };
            emit(
                json,
                &json!({ "tenant": tenant, "plugin": plugin, "granted": granted }),
                || {
                    format!(
                        "granted {} to {plugin} for {tenant}; it now holds: {}",
                        crate::admin::names(given),
                        crate::admin::names(&granted)
                    )
                },
            )
        }
        Command::Revoke {
            tenant,
            plugin,
            capabilities,
        } => {
            let caps = parse_capabilities(&capabilities)?;
            let granted = desk.revoke(&tenant, &plugin, &caps).await?;
            emit(
                json,
                &json!({ "tenant": tenant, "plugin": plugin, "granted": granted }),
                || {
                    format!(
                        "revoked {} from {plugin} for {tenant}; it now holds: {}",
                        crate::admin::names(&caps),
                        crate::admin::names(&granted)
                    )
                },
            )
        }
        Command::Grants { tenant } => {
            let rows = desk.grant_matrix(&tenant).await?;
            emit(json, &rows, || {
                let list = |caps: &[Capability]| match caps {
                    [] => "-".to_string(),
                    caps => caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(" "),
                };
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:<20} granted: {}\n{:<20} not granted: {}\n",
                            r.plugin,
                            list(&r.granted),
                            "",
                            list(&r.requested_not_granted)
                        )
                    })
                    .collect()
            })
        }
        Command::Limits(LimitsCommand::Set {
            tenant,
            plugin,
            memory_mib,
            guest_ms,
        }) => {
            if memory_mib.is_none() && guest_ms.is_none() {
                anyhow::bail!("say what to set: --memory-mib N and/or --guest-ms N");
            }
            if let Some(m) = memory_mib
                && !(1..=crate::runtime::MAX_MEMORY_MIB).contains(&m)
            {
                anyhow::bail!(
                    "--memory-mib must be between 1 and {}",
                    crate::runtime::MAX_MEMORY_MIB
                );
            }
            if guest_ms == Some(0) {
                anyhow::bail!("--guest-ms must be at least 1");
            }
            if tenant != "*" {
                desk.store.tenant(&tenant).await?;
            }
            desk.store
                .set_limits(&tenant, &plugin, memory_mib, guest_ms)
                .await?;
            let limits = desk.store.limits(&tenant, &plugin).await?;
            emit(json, &limits, || {
                format!(
                    "runs of {plugin} for {tenant}: {} MiB memory, {} ms guest time",
                    limits.memory_mib, limits.guest_ms
                )
            })
        }
        Command::Limits(LimitsCommand::Show { tenant, plugin }) => {
            let limits = desk.store.limits(&tenant, &plugin).await?;
            emit(json, &limits, || {
                format!(
                    "runs of {plugin} for {tenant}: {} MiB memory, {} ms guest time",
                    limits.memory_mib, limits.guest_ms
                )
            })
        }
        Command::Answer { run, by, text } => {
            let submission = desk.answer(parse_run_id(&run)?, &by, &text).await?;
            print_submission(json, &submission)
        }
        Command::Policy(cmd) => guardrails::policy(desk, json, cmd).await,
        Command::Mode(cmd) => guardrails::mode(desk, json, cmd).await,
        Command::Template(cmd) => guardrails::template(desk, json, cmd).await,
        Command::Approvals { tenant } => guardrails::approvals(desk, json, tenant.as_deref()).await,
        Command::Approve(args) => {
            let s =
                guardrails::decide(desk, args, crate::store::approvals::Answer::Approve).await?;
            print_submission(json, &s)
        }
        Command::Reject(args) => {
            let s = guardrails::decide(desk, args, crate::store::approvals::Answer::Reject).await?;
            print_submission(json, &s)
        }
        Command::Sweep => {
            let swept = desk.sweep().await?;
            emit(json, &swept, || {
                if swept.is_empty() {
                    return "no waiting run is past its timeout".into();
                }
                swept
                    .iter()
                    .map(submission_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Recover => {
            let recovered = desk.recover().await?;
            emit(json, &recovered, || {
                if recovered.is_empty() {
                    return "no run was left behind".into();
                }
                recovered
                    .iter()
                    .map(|s| format!("recovered {}", submission_line(s)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Sandbox(cmd) => sandbox(desk, json, cmd).await,
        Command::Ticket(cmd) => ticket(desk, json, cmd).await,
        Command::Audit(AuditCommand::Verify) => {
            match crate::audit::verify(desk.store.pool()).await? {
                Ok(count) => emit(json, &json!({ "intact": true, "entries": count }), || {
                    format!("audit log intact: {count} entries verified")
                }),
                Err(broken) => {
                    emit(
                        json,
                        &json!({ "intact": false, "first_bad_entry": broken.id, "problem": broken.problem }),
                        String::new,
                    )?;
                    Err(anyhow::anyhow!(
                        "the audit log has been tampered with: {broken}; entries before {} are intact",
                        broken.id
                    ))
                }
            }
        }
        Command::Audit(AuditCommand::Export { tenant }) => {
            desk.store.tenant(&tenant).await?;
            for entry in crate::audit::export(desk.store.pool(), &tenant).await? {
                let mut line = serde_json::to_value(&entry)?;
                line["detail"] = serde_json::from_str(&entry.detail).unwrap_or(json!(entry.detail));
                println!("{line}");
            }
            Ok(())
        }
        Command::Run(RunCommand::Show { id }) => {
            let run = desk.store.run(parse_run_id(&id)?).await?;
            let journal = desk.store.journal(run.id).await?;
            let out = crate::views::run(&run, &journal);
            emit(json, &out, || {
                let mut s = format!(
                    "{} for {} ({}): {} by {}\nreason: {}\nguest time: {} µs\n\n",
                    run_label(run.id),
                    ticket_label(run.ticket),
                    run.tenant,
                    run.status,
                    run.plugin.as_deref().unwrap_or("no plugin"),
                    run.reason,
                    run.guest_us
                );
                for e in &journal {
                    s += &format!(
                        "{:>3}  {:<32} {:<10} {}\n     args {}\n     → {}\n",
                        e.seq,
                        e.function,
                        e.decision.split(':').next().unwrap_or_default(),
                        e.capability.as_deref().unwrap_or(""),
                        e.args,
                        e.result
                    );
                }
                s
            })
        }
    }
}

async fn sandbox(desk: &Desk, json: bool, cmd: SandboxCommand) -> anyhow::Result<()> {
    match cmd {
        SandboxCommand::User(SandboxUserCommand::Add(u)) => {
            desk.store.tenant(&u.tenant).await?;
            let user = desk
                .sandbox(&u.tenant)
                .add_user(&NewUser {
                    email: u.email,
                    name: u.name.unwrap_or_default(),
                    locked: u.locked,
                    disabled: u.disabled,
                    privileged: u.privileged,
                    manager: u.manager,
                    department: u.department,
                    password: u.password,
                    groups: u.groups,
                    licenses: u.licenses,
                    mfa_methods: u.mfa_methods,
                    contacts: u.contacts,
                })
                .await?;
            emit(json, &user, || {
                format!(
                    "added {} ({}) to {}'s sandbox directory",
                    user.email, user.name, u.tenant
                )
            })
        }
        SandboxCommand::User(SandboxUserCommand::Show { tenant, email }) => {
            desk.store.tenant(&tenant).await?;
            let report = desk.sandbox(&tenant).user_report(&email).await?;
            emit(json, &report, || {
                let u = &report.user;
                let yes = |b: bool| if b { "yes" } else { "no" };
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                let mut s = format!(
                    "{} ({})\nenabled: {}  locked: {}  privileged: {}  must change password: {}  sessions: {}\nmanager: {}  department: {}\ngroups: {}\nlicenses: {}\nmfa methods: {}\nmailboxes: {}\nevents:\n",
                    u.email,
                    u.name,
                    yes(u.enabled),
                    yes(u.locked),
                    yes(u.privileged),
                    yes(report.must_change_password),
                    report.active_sessions,
                    u.manager.as_deref().unwrap_or("-"),
                    u.department.as_deref().unwrap_or("-"),
                    list(&u.groups),
                    list(&u.licenses),
                    list(&u.mfa_methods),
                    list(&u.mailboxes)
                );
                for e in &report.events {
                    s += &format!("  {}  {:<18} {}\n", e.at, e.action, e.detail);
                }
                s
            })
        }
        SandboxCommand::User(SandboxUserCommand::List { tenant }) => {
            desk.store.tenant(&tenant).await?;
            let users = desk.sandbox(&tenant).users().await?;
            emit(json, &users, || {
                users
                    .iter()
                    .map(|u| {
                        let mut flags = Vec::new();
                        if u.locked {
                            flags.push("locked")
                        }
                        if !u.enabled {
                            flags.push("disabled")
                        }
                        if u.privileged {
                            flags.push("privileged")
                        }
                        format!("{:<32} {:<24} {}\n", u.email, u.name, flags.join(" "))
                    })
                    .collect()
            })
        }
        SandboxCommand::SignIn {
            tenant,
            email,
            password,
        } => {
            desk.store.tenant(&tenant).await?;
            let result = desk.sandbox(&tenant).sign_in(&email, &password).await?;
            emit(
                json,
                &json!({ "email": email, "result": result }),
                || match result {
                    crate::connectors::sandbox::SignIn::Ok => format!("{email} signed in"),
                    crate::connectors::sandbox::SignIn::MustChangePassword => format!(
                        "{email} signed in with a temporary password and must choose a new one"
                    ),
                    crate::connectors::sandbox::SignIn::BadPassword => {
                        format!("sign-in refused: wrong password for {email}")
                    }
                    crate::connectors::sandbox::SignIn::Locked => {
                        format!("sign-in refused: {email} is locked out")
                    }
                    crate::connectors::sandbox::SignIn::Disabled => {
                        format!("sign-in refused: {email} is disabled")
                    }
                    crate::connectors::sandbox::SignIn::NoPasswordSet => {
                        format!("sign-in refused: {email} has no password yet")
                    }
                },
            )
        }
        SandboxCommand::Fail {
            tenant,
            function,
            message,
        } => {
            desk.store.tenant(&tenant).await?;
            desk.sandbox(&tenant).fail(&function, &message).await?;
            emit(
                json,
                &json!({ "tenant": tenant, "function": function, "message": message }),
                || {
                    format!(
                        "{tenant}: every call to {function} now fails as upstream ({message}); `capdesk sandbox heal {tenant}` ends it"
                    )
                },
            )
        }
        SandboxCommand::Heal { tenant, function } => {
            desk.store.tenant(&tenant).await?;
            let healed = desk.sandbox(&tenant).heal(function.as_deref()).await?;
            emit(json, &json!({ "tenant": tenant, "healed": healed }), || {
                format!("{tenant}: {healed} simulated outage(s) ended")
            })
        }
        SandboxCommand::Outbox { tenant } => {
            desk.store.tenant(&tenant).await?;
            let messages = desk.sandbox(&tenant).outbox().await?;
            emit(json, &messages, || {
                if messages.is_empty() {
                    return format!("no messages sent to {tenant}'s people yet");
                }
                messages
                    .iter()
                    .map(|m| {
                        format!(
                            "#{} {} to {}\n{}\n\n",
                            m.id,
                            m.at,
                            m.recipient,
                            indent(&m.text)
                        )
                    })
                    .collect()
            })
        }
    }
}

fn submission_line(s: &crate::engine::Submission) -> String {
    format!(
        "{} {} ({}, {}): {}",
        s.ticket,
        s.status.name(),
        s.plugin.as_deref().unwrap_or("no plugin"),
        s.run,
        s.reason
    )
}

pub(crate) fn print_submission(json: bool, s: &crate::engine::Submission) -> anyhow::Result<()> {
    emit(json, s, || {
        let mut text = submission_line(s);
        if let Some(a) = &s.approval {
            text += &format!(
                "\napproval {} asked of {} (rule {}); expires {}\n\
                 answer with: capdesk approve {} --as EMAIL  |  capdesk reject {} --as EMAIL",
                a.id,
                a.approvers.join(", "),
                a.rule,
                a.expires_at,
                a.id,
                a.id
            );
        }
        for (i, p) in s.proposed.iter().enumerate() {
            text += &format!("\n  proposed {}. {p}", i + 1);
        }
        if let Some(w) = &s.waiting_for {
            text += &format!(
                "\nanswer with: capdesk answer {} --as {} ANSWER",
                s.run, w.to
            );
            if !w.choices.is_empty() {
                text += &format!("  (one of: {})", w.choices.join(", "));
            }
        }
        text
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn ticket(desk: &Desk, json: bool, cmd: TicketCommand) -> anyhow::Result<()> {
    match cmd {
        TicketCommand::Submit {
            tenant,
            from,
            subject,
            body,
            verified,
            name,
            channel,
            fields,
        } => {
            let submission = desk
                .submit(
                    &tenant,
                    NewTicket {
                        subject,
                        body,
                        requester: Person {
                            email: from,
                            name: name.unwrap_or_default(),
                        },
                        channel,
                        requester_verified: verified,
                        fields,
                    },
                )
                .await?;
            print_submission(json, &submission)
        }
        TicketCommand::Show { id } => {
            let number = parse_ticket_id(&id)?;
            let tenant = desk.store.ticket_tenant(number).await?;
            let record = desk
                .sandbox(&tenant)
                .get_ticket(&ticket_label(number))
                .await?;
            let runs = desk.store.runs_of_ticket(number).await?;
            let out = crate::views::ticket(&tenant, &record, &runs);
            emit(json, &out, || {
                let t = &record.ticket;
                let mut s = format!(
                    "{} [{}] {}\nfrom {} via {}{}\n\n{}\n\nnotes:\n",
                    t.id,
                    record.status.name(),
                    t.details.subject,
                    t.details.requester.email,
                    t.details.channel,
                    if t.details.requester_verified {
                        " (verified)"
                    } else {
                        ""
                    },
                    t.details.body
                );
                for n in &record.notes {
                    s += &format!(
                        "  [{}] {} by {}\n{}\n",
                        n.visibility.name(),
                        n.created_at,
                        n.author,
                        indent(&indent(&n.text))
                    );
                }
                s += "runs:\n";
                for r in &runs {
                    s += &format!(
                        "  {} {} {}: {}\n",
                        run_label(r.id),
                        r.status,
                        r.plugin.as_deref().unwrap_or("-"),
                        r.reason
                    );
                }
                s
            })
        }
        TicketCommand::List { tenant, limit } => {
            desk.store.tenant(&tenant).await?;
            let tickets = desk.sandbox(&tenant).tickets(limit).await?;
            emit(json, &tickets, || {
                tickets
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<8} {:<12} {:<28} {}\n",
                            t.ticket.id,
                            t.status.name(),
                            t.ticket.details.requester.email,
                            t.ticket.details.subject
                        )
                    })
                    .collect()
            })
        }
    }
}

async fn token(desk: &Desk, json: bool, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            role,
            tenant,
            person,
            name,
        } => {
            let (token, secret) = desk
                .store
                .create_token(crate::store::tokens::NewToken {
                    role,
                    tenant: tenant.as_deref(),
                    person: person.as_deref(),
                    name: &name,
                })
                .await?;
            emit(json, &json!({ "token": token, "secret": secret }), || {
                format!(
                    "created token {} ({} {}); it is shown only now:\n{secret}",
                    token.id,
                    token.role.name(),
                    token
                        .tenant
                        .as_deref()
                        .map_or("for every tenant".to_string(), |t| format!(
                            "for tenant {t}"
                        ))
                )
            })
        }
        TokenCommand::List => {
            let tokens = desk.store.tokens().await?;
            emit(json, &tokens, || {
                if tokens.is_empty() {
                    return "no API tokens; create one with `capdesk token create --role admin`"
                        .into();
                }
                tokens
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<4} {:<11} {:<16} {:<28} {}{}\n",
                            t.id,
                            t.role.name(),
                            t.tenant.as_deref().unwrap_or("*"),
                            t.person.as_deref().unwrap_or("-"),
                            t.name,
                            if t.revoked_at.is_some() {
                                " (revoked)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect()
            })
        }
        TokenCommand::Revoke { id } => {
            let token = desk.store.revoke_token(id).await?;
            emit(json, &token, || {
                format!("revoked token {} ({})", token.id, token.name)
            })
        }
    }
}
