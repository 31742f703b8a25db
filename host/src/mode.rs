//! How much autonomy a tenant gives a ticket category: `off` (a technician takes every
//! ticket), `shadow` (the plugin runs with every side effect simulated and proposed to
//! a technician), `supervised` (every change to the directory asks a technician) and
//! `auto` (the tenant's policy decides). New tenants start in `shadow`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Off,
    Shadow,
    Supervised,
    Auto,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Off, Mode::Shadow, Mode::Supervised, Mode::Auto];

    /// The mode a tenant starts in for every category.
    pub const NEW_TENANT: Mode = Mode::Shadow;

    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Shadow => "shadow",
            Mode::Supervised => "supervised",
            Mode::Auto => "auto",
        }
    }

    /// What the mode means, for `capdesk mode show`.
    pub fn description(self) -> &'static str {
        match self {
            Mode::Off => "tickets go straight to a technician",
            Mode::Shadow => {
                "the plugin runs, changes nothing, and proposes its actions to a technician"
            }
            Mode::Supervised => "every directory change asks a technician first",
            Mode::Auto => "the tenant's policy decides",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown mode `{0}`; use one of: off, shadow, supervised, auto")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}
