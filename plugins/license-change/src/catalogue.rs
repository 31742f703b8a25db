//! The licenses this playbook knows by the names users give them: the directory's SKU
//! name, a display name for messages, what the license gives in which apps (for the
//! closeout), and whether it is a base suite. A user holds at most one base suite, so
//! assigning one replaces the other (an E3 → E5 upgrade); add-ons sit beside a suite.
//!
//! A SKU the catalogue does not know can still come in the ticket's `license`/`sku`
//! field (the intake form is trusted to name it); it is then used as given.

use capdesk_sdk::triage::Signals;

/// One license of the catalogue.
#[derive(Debug, PartialEq, Eq)]
pub struct Sku {
    /// The SKU name the directory uses (`M365-E5`).
    pub id: &'static str,
    /// What people call it in messages.
    pub name: &'static str,
    /// Phrases (normalized, whole words) that name it in a ticket.
    pub aliases: &'static [&'static str],
    /// Phrases that look like an alias but name a different product.
    pub not_when: &'static [&'static str],
    /// A base suite (one per user) rather than an add-on.
    pub suite: bool,
    /// Among suites, how much it gives (a move to a lower one is a downgrade); 0 for
    /// add-ons.
    pub rank: u8,
    /// What it gives, in which apps, for the closeout.
    pub gives: &'static str,
    /// Add-ons this suite already includes.
    pub includes: &'static [&'static str],
}

pub const CATALOGUE: &[Sku] = &[
    Sku {
        id: "M365-E3",
        name: "Microsoft 365 E3",
        aliases: &[
            "e3",
            "m365 e3",
            "microsoft 365 e3",
            "office 365 e3",
            "o365 e3",
        ],
        not_when: &[],
        suite: true,
        rank: 3,
        gives: "the desktop Office apps (Word, Excel, PowerPoint, Outlook) on up to five devices, \
                Teams, a 100 GB mailbox, 1 TB of OneDrive storage and Intune device management",
        includes: &[],
    },
    Sku {
        id: "M365-E5",
        name: "Microsoft 365 E5",
        aliases: &[
            "e5",
            "m365 e5",
            "microsoft 365 e5",
            "office 365 e5",
            "o365 e5",
        ],
        not_when: &[],
        suite: true,
        rank: 4,
        gives: "everything in E3 plus Teams Phone (a phone number in Teams), Power BI Pro, audio \
                conferencing for Teams meetings and advanced security (Defender for Office 365 and \
                for Endpoint, eDiscovery Premium)",
        includes: &["POWERBI-PRO", "TEAMS-PHONE"],
    },
    Sku {
        id: "M365-BUSINESS-PREMIUM",
        name: "Microsoft 365 Business Premium",
        aliases: &["business premium", "m365 business premium", "m365 bp"],
        not_when: &[],
        suite: true,
        rank: 3,
        gives: "the desktop Office apps, Teams, an Exchange mailbox, 1 TB of OneDrive storage, \
                Intune device management and Defender for Business",
        includes: &[],
    },
    Sku {
        id: "M365-BUSINESS-STANDARD",
        name: "Microsoft 365 Business Standard",
        aliases: &["business standard", "m365 business standard"],
        not_when: &[],
        suite: true,
        rank: 2,
        gives: "the desktop Office apps (Word, Excel, PowerPoint, Outlook), Teams, an Exchange \
                mailbox and 1 TB of OneDrive storage",
        includes: &[],
    },
    Sku {
        id: "M365-BUSINESS-BASIC",
        name: "Microsoft 365 Business Basic",
        aliases: &["business basic", "m365 business basic"],
        not_when: &[],
        suite: true,
        rank: 1,
        gives: "Teams, an Exchange mailbox, 1 TB of OneDrive storage and the web and mobile Office \
                apps (no desktop apps)",
        includes: &[],
    },
    Sku {
        id: "M365-F3",
        name: "Microsoft 365 F3",
        aliases: &["f3", "m365 f3", "microsoft 365 f3"],
        not_when: &[],
        suite: true,
        rank: 1,
        gives: "Teams, a 2 GB mailbox and the web and mobile Office apps for frontline staff",
        includes: &[],
    },
    Sku {
        id: "VISIO-PLAN2",
        name: "Visio Plan 2",
        aliases: &["visio", "visio plan 2", "visio pro", "visio professional"],
        not_when: &["visio plan 1", "visio viewer"],
        suite: false,
        rank: 0,
        gives: "the Visio desktop app and Visio on the web: create and edit diagrams",
        includes: &[],
    },
    Sku {
        id: "PROJECT-PLAN3",
        name: "Project Plan 3",
        aliases: &[
            "ms project",
            "microsoft project",
            "project plan 3",
            "project plan",
            "project online",
            "project professional",
            "project pro",
            "project licence",
            "project license",
            "project licences",
            "project licenses",
        ],
        not_when: &["project plan 1", "project for the web"],
        suite: false,
        rank: 0,
        gives: "the Project desktop app and Project for the web: project plans, schedules and \
                resources",
        includes: &[],
    },
    Sku {
        id: "POWERBI-PRO",
        name: "Power BI Pro",
        aliases: &[
            "power bi pro",
            "powerbi pro",
            "pbi pro",
            "power bi",
            "powerbi",
        ],
        not_when: &["power bi premium"],
        suite: false,
        rank: 0,
        gives: "publishing and sharing Power BI reports and dashboards with colleagues in the \
                Power BI app and service",
        includes: &[],
    },
    Sku {
        id: "TEAMS-PHONE",
        name: "Teams Phone",
        aliases: &[
            "teams phone",
            "teams phone system",
            "teams calling",
            "phone system",
            "phone number in teams",
        ],
        not_when: &[],
        suite: false,
        rank: 0,
        gives: "calling in Teams: make and receive calls to and from ordinary phone numbers in the \
                Teams app (the phone number itself is set up by IT)",
        includes: &[],
    },
    Sku {
        id: "M365-COPILOT",
        name: "Microsoft 365 Copilot",
        aliases: &[
            "copilot",
            "microsoft 365 copilot",
            "m365 copilot",
            "co-pilot",
        ],
        not_when: &["copilot chat", "github copilot"],
        suite: false,
        rank: 0,
        gives: "Copilot in Word, Excel, PowerPoint, Outlook and Teams: drafting, summarizing and \
                answering questions over your work files and mail",
        includes: &[],
    },
];

/// The catalogue entry whose SKU name is `id` (any case).
pub fn by_id(id: &str) -> Option<&'static Sku> {
    CATALOGUE
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id.trim()))
}

/// The catalogue entry `text` names on its own (a field value or an answer): its SKU
/// name, its display name or one of its aliases.
pub fn by_name(text: &str) -> Option<&'static Sku> {
    by_id(text).or_else(|| {
        let t = text.trim();
        CATALOGUE
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(t))
            .or_else(|| mentioned(&Signals::from_text(t)).into_iter().next())
    })
}

/// Every catalogue entry the text names, each once, in catalogue order.
pub fn mentioned(text: &Signals) -> Vec<&'static Sku> {
    CATALOGUE
        .iter()
        .filter(|s| s.aliases.iter().any(|a| text.contains(a)))
        .filter(|s| !s.not_when.iter().any(|n| text.contains(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_skus() {
        assert_eq!(by_name("e5").map(|s| s.id), Some("M365-E5"));
        assert_eq!(by_name("M365-E3").map(|s| s.id), Some("M365-E3"));
        assert_eq!(by_name("Visio Plan 2").map(|s| s.id), Some("VISIO-PLAN2"));
        assert_eq!(
            by_name("Business Premium").map(|s| s.id),
            Some("M365-BUSINESS-PREMIUM")
        );
        assert_eq!(by_name("Power BI Pro").map(|s| s.id), Some("POWERBI-PRO"));
        assert_eq!(by_name("Teams Phone").map(|s| s.id), Some("TEAMS-PHONE"));
        assert!(by_name("Project Plan 1").is_none());
        assert!(by_name("a coffee").is_none());
    }

    #[test]
    fn every_sku_is_named_by_its_display_name() {
        for sku in CATALOGUE {
            assert_eq!(
                by_name(sku.name).map(|s| s.id),
                Some(sku.id),
                "{}",
                sku.name
            );
        }
    }
}
