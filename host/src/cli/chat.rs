//! The chat commands of a tenant: `tenant slack` (connect a Slack app), `tenant teams`
//! (connect a Teams bot) and `tenant chat` (show, or pick the chat the tenant uses).
//! Secrets are read from files, never from the command line (where `ps` and shell
//! history would keep them), and are never printed back.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::emit;
use crate::connectors::channel;
use crate::engine::Desk;

#[derive(Args, Debug)]
pub struct SlackArgs {
    pub tenant: String,
    /// A file holding the app's Bot User OAuth Token (`xoxb-…`).
    #[arg(long)]
    pub bot_token_file: PathBuf,
    /// A file holding the app's Signing Secret (Basic Information → App Credentials).
    #[arg(long)]
    pub signing_secret_file: PathBuf,
    /// Slack's Web API base URL.
    #[arg(long, default_value = channel::DEFAULT_SLACK_API)]
    pub api_base: String,
}

#[derive(Args, Debug)]
pub struct TeamsArgs {
    pub tenant: String,
    /// The bot's Microsoft App ID (Azure Bot → Configuration).
    #[arg(long)]
    pub app_id: String,
    /// A file holding the app's client secret (the "app password").
    #[arg(long)]
    pub app_password_file: PathBuf,
    /// The OpenID metadata whose keys sign the Bot Framework's requests.
    #[arg(long, default_value = channel::DEFAULT_OPENID_URL)]
    pub openid_url: String,
    /// The token endpoint for the bot's outbound token (client credentials).
    #[arg(long, default_value = channel::DEFAULT_TOKEN_URL)]
    pub token_url: String,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    pub tenant: String,
    /// `builtin`, `slack` or `teams` (configured first); without it, show the tenant's chat.
    #[arg(value_parser = ["builtin", "slack", "teams"])]
    pub chat: Option<String>,
}

/// The trimmed contents of a secret file.
pub(crate) fn read_secret(what: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    Ok(text.trim().to_string())
}

pub async fn slack(desk: &Desk, json: bool, args: SlackArgs) -> anyhow::Result<()> {
    let token = read_secret("Slack bot token", &args.bot_token_file)?;
    let secret = read_secret("Slack signing secret", &args.signing_secret_file)?;
    let shown = channel::set_slack(
        &desk.store,
        &desk.vault,
        &args.tenant,
        Some(&args.api_base),
        &token,
        &secret,
    )
    .await?;
    let t = &args.tenant;
    emit(json, &shown, || {
        format!(
            "tenant {t} now uses Slack (API {}); its secrets are sealed in the data dir.\n\
             In the Slack app's settings:\n  \
             Event Subscriptions → Request URL: https://YOUR-CAPDESK/hooks/slack/{t}/events \
             (bot event: message.im)\n  \
             Interactivity → Request URL: https://YOUR-CAPDESK/hooks/slack/{t}/interactivity",
            args.api_base.trim_end_matches('/')
        )
    })
}

pub async fn teams(desk: &Desk, json: bool, args: TeamsArgs) -> anyhow::Result<()> {
    let password = read_secret("Teams app password", &args.app_password_file)?;
    let shown = channel::set_teams(
        &desk.store,
        &desk.vault,
        &args.tenant,
        &args.app_id,
        &password,
        Some(&args.openid_url),
        Some(&args.token_url),
    )
    .await?;
    let t = &args.tenant;
    emit(json, &shown, || {
        format!(
            "tenant {t} now uses Microsoft Teams (bot {}); its secret is sealed in the data dir.\n\
             In the Azure Bot's Configuration, set the messaging endpoint to \
             https://YOUR-CAPDESK/hooks/teams/{t}/messages and enable the Microsoft Teams channel.",
            args.app_id.trim()
        )
    })
}

pub async fn choose(desk: &Desk, json: bool, args: ChatArgs) -> anyhow::Result<()> {
    let t = &args.tenant;
    if let Some(chat) = &args.chat {
        let kind = (chat != "builtin").then_some(chat.as_str());
        desk.store.choose_chat(t, kind).await?;
    }
    let shown = channel::describe(&desk.store, t).await?;
    emit(json, &shown, || {
        let configured: Vec<&String> = shown["configured"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        format!(
            "tenant {t} uses the {} chat (configured: {})",
            shown["chat"].as_str().unwrap_or("builtin"),
            if configured.is_empty() {
                "none besides the built-in one".to_string()
            } else {
                configured
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    })
}
