//! The capabilities a tenant admin grants to a plugin, and which host function needs
//! which one. This is the single table the guard consults: every side-effecting or
//! reading host function maps to exactly one capability.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One grantable capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Capability {
    IdpRead,
    IdpVerify,
    IdpUnlock,
    IdpPassword,
    IdpMfa,
    IdpSessions,
    IdpGroups,
    IdpLicenses,
    IdpMailbox,
    PsaRead,
    PsaWrite,
    ChatSend,
    ChatAsk,
}

impl Capability {
    /// Every capability, in the order the CLI lists them.
    pub const ALL: [Capability; 13] = [
        Capability::IdpRead,
        Capability::IdpVerify,
        Capability::IdpUnlock,
        Capability::IdpPassword,
        Capability::IdpMfa,
        Capability::IdpSessions,
        Capability::IdpGroups,
        Capability::IdpLicenses,
        Capability::IdpMailbox,
        Capability::PsaRead,
        Capability::PsaWrite,
        Capability::ChatSend,
        Capability::ChatAsk,
    ];

    /// The capability's name as admins and manifests write it (`idp.unlock`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::IdpRead => "idp.read",
            Capability::IdpVerify => "idp.verify",
            Capability::IdpUnlock => "idp.unlock",
            Capability::IdpPassword => "idp.password",
            Capability::IdpMfa => "idp.mfa",
            Capability::IdpSessions => "idp.sessions",
            Capability::IdpGroups => "idp.groups",
            Capability::IdpLicenses => "idp.licenses",
            Capability::IdpMailbox => "idp.mailbox",
            Capability::PsaRead => "psa.read",
            Capability::PsaWrite => "psa.write",
            Capability::ChatSend => "chat.send",
            Capability::ChatAsk => "chat.ask",
        }
    }

    /// What granting it allows, in words an admin reads before granting.
    pub fn description(self) -> &'static str {
        match self {
            Capability::IdpRead => "look users up in the directory",
            Capability::IdpVerify => {
                "challenge a requester with a one-time code sent to a contact method the directory holds"
            }
            Capability::IdpUnlock => "clear account lockouts",
            Capability::IdpPassword => "set a temporary password delivered to the account owner",
            Capability::IdpMfa => "require MFA re-registration",
            Capability::IdpSessions => "sign users out everywhere",
            Capability::IdpGroups => "add and remove group members",
            Capability::IdpLicenses => "assign and remove licenses",
            Capability::IdpMailbox => "grant and remove mailbox access",
            Capability::PsaRead => "read tickets",
            Capability::PsaWrite => "add notes, set status and link tickets",
            Capability::ChatSend => "send chat messages",
            Capability::ChatAsk => "ask a person a question and wait for the answer",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name that capdesk does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown capability `{0}`; known capabilities: {known}", known = known_names())]
pub struct UnknownCapability(pub String);

fn known_names() -> String {
    Capability::ALL.map(Capability::name).join(", ")
}

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCapability(s.to_string()))
    }
}

impl From<Capability> for String {
    fn from(c: Capability) -> String {
        c.name().to_string()
    }
}

impl TryFrom<String> for Capability {
    type Error = UnknownCapability;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The host functions a plugin can call, each with the one capability it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostFunction {
    FindUser,
    VerifyIdentity,
    UnlockAccount,
    ResetPassword,
    RequireMfaReregistration,
    RevokeSessions,
    AddGroupMember,
    RemoveGroupMember,
    AssignLicense,
    RemoveLicense,
    GrantMailboxAccess,
    RemoveMailboxAccess,
    GetTicket,
    AddNote,
    SetStatus,
    LinkToParent,
    ChatSend,
    ChatAsk,
}

impl HostFunction {
    /// Every host function, in the order of the WIT contract.
    pub const ALL: [HostFunction; 18] = [
        HostFunction::FindUser,
        HostFunction::VerifyIdentity,
        HostFunction::UnlockAccount,
        HostFunction::ResetPassword,
        HostFunction::RequireMfaReregistration,
        HostFunction::RevokeSessions,
        HostFunction::AddGroupMember,
        HostFunction::RemoveGroupMember,
        HostFunction::AssignLicense,
        HostFunction::RemoveLicense,
        HostFunction::GrantMailboxAccess,
        HostFunction::RemoveMailboxAccess,
        HostFunction::GetTicket,
        HostFunction::AddNote,
        HostFunction::SetStatus,
        HostFunction::LinkToParent,
        HostFunction::ChatSend,
        HostFunction::ChatAsk,
    ];

    /// The WIT name, qualified by interface (`idp.unlock-account`).
    pub fn name(self) -> &'static str {
        match self {
            HostFunction::FindUser => "idp.find-user",
            HostFunction::VerifyIdentity => "idp.verify-identity",
            HostFunction::UnlockAccount => "idp.unlock-account",
            HostFunction::ResetPassword => "idp.reset-password",
            HostFunction::RequireMfaReregistration => "idp.require-mfa-reregistration",
            HostFunction::RevokeSessions => "idp.revoke-sessions",
            HostFunction::AddGroupMember => "idp.add-group-member",
            HostFunction::RemoveGroupMember => "idp.remove-group-member",
            HostFunction::AssignLicense => "idp.assign-license",
            HostFunction::RemoveLicense => "idp.remove-license",
            HostFunction::GrantMailboxAccess => "idp.grant-mailbox-access",
            HostFunction::RemoveMailboxAccess => "idp.remove-mailbox-access",
            HostFunction::GetTicket => "psa.get-ticket",
            HostFunction::AddNote => "psa.add-note",
            HostFunction::SetStatus => "psa.set-status",
            HostFunction::LinkToParent => "psa.link-to-parent",
            HostFunction::ChatSend => "chat.send",
            HostFunction::ChatAsk => "chat.ask",
        }
    }

    /// The WIT interface the function belongs to (`idp`, `psa` or `chat`).
    pub fn interface(self) -> &'static str {
        self.name().split_once('.').map_or("", |(i, _)| i)
    }

    /// Whether the call changes something outside capdesk (everything but reads).
    /// Side-effecting calls are decided by the tenant's policy and mode.
    pub fn is_side_effecting(self) -> bool {
        !matches!(self, HostFunction::FindUser | HostFunction::GetTicket)
    }

    /// Whether the call changes the directory (what supervised mode asks a technician
    /// about): every `idp` function but reading and verifying.
    pub fn changes_directory(self) -> bool {
        self.interface() == "idp"
            && !matches!(self, HostFunction::FindUser | HostFunction::VerifyIdentity)
    }

    /// The capability a call to this function needs.
    pub fn capability(self) -> Capability {
        match self {
            HostFunction::FindUser => Capability::IdpRead,
            HostFunction::VerifyIdentity => Capability::IdpVerify,
            HostFunction::UnlockAccount => Capability::IdpUnlock,
            HostFunction::ResetPassword => Capability::IdpPassword,
            HostFunction::RequireMfaReregistration => Capability::IdpMfa,
            HostFunction::RevokeSessions => Capability::IdpSessions,
            HostFunction::AddGroupMember | HostFunction::RemoveGroupMember => Capability::IdpGroups,
            HostFunction::AssignLicense | HostFunction::RemoveLicense => Capability::IdpLicenses,
            HostFunction::GrantMailboxAccess | HostFunction::RemoveMailboxAccess => {
                Capability::IdpMailbox
            }
            HostFunction::GetTicket => Capability::PsaRead,
            HostFunction::AddNote | HostFunction::SetStatus | HostFunction::LinkToParent => {
                Capability::PsaWrite
            }
            HostFunction::ChatSend => Capability::ChatSend,
            HostFunction::ChatAsk => Capability::ChatAsk,
        }
    }
}

impl fmt::Display for HostFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>().unwrap(), c);
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "idp.delete".parse::<Capability>().unwrap_err().to_string();
        assert!(
            err.contains("idp.delete") && err.contains("idp.unlock"),
            "{err}"
        );
    }
}
