//! What the requester says happened to the device their second factor lived on, and
//! whether the request is about their own account at all. Pure and deterministic: the
//! same ticket reads the same on every replay; when the words do not settle it, the
//! playbook asks.

use capdesk_sdk::triage::Signals;

/// What happened to the device the second factor lived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Stolen,
    Lost,
    Broken,
    New,
    /// Same phone, but the app or its registration stopped working.
    Same,
}

/// The choices of the "what happened" question, in order, with what they mean.
pub const DEVICE_CHOICES: [(&str, Option<Device>); 6] = [
    ("new phone", Some(Device::New)),
    ("lost phone", Some(Device::Lost)),
    ("stolen phone", Some(Device::Stolen)),
    ("broken or reset phone", Some(Device::Broken)),
    ("same phone, app stopped working", Some(Device::Same)),
    ("something else", None),
];

impl Device {
    /// What the ticket says happened, when it says it (a theft outranks everything).
    pub fn from_text(s: &Signals) -> Option<Device> {
        let any = |phrases: &[&str]| phrases.iter().any(|p| s.contains(p));
        if any(&["stolen", "theft", "robbed", "mugged", "pickpocketed"]) {
            Some(Device::Stolen)
        } else if any(&[
            "lost my phone",
            "lost phone",
            "lost the phone",
            "lost my mobile",
            "lost my authenticator",
            "lost authenticator",
            "lost my yubikey",
            "lost my security key",
            "can't find my phone",
            "misplaced",
        ]) {
            Some(Device::Lost)
        } else if any(&[
            "broken",
            "broke",
            "smashed",
            "snapped",
            "died",
            "dead",
            "dropped my phone",
            "factory reset",
            "phone reset",
            "reset my phone",
            "wiped",
            "deleted the app",
            "reinstalled",
            "repair",
            "authenticator is empty",
            "says no accounts",
        ]) {
            Some(Device::Broken)
        } else if any(&[
            "new phone",
            "new handset",
            "new iphone",
            "new android",
            "new mobile",
            "new telephone",
            "new device",
            "new sim",
            "new number",
            "new one",
            "replacement phone",
            "phone was replaced",
            "switched phones",
            "changed phones",
            "changed my phone",
            "switched from",
            "from android to iphone",
            "from iphone to android",
            "old phone",
            "old number",
            "my number anymore",
            "changed my mobile number",
            "changed my number",
            "traded",
            "recycled",
            "personal phone",
            "new yubikey",
            "new security key",
        ]) {
            Some(Device::New)
        } else {
            None
        }
    }

    /// The device case's name in closeout vars.
    pub fn name(self) -> &'static str {
        match self {
            Device::Stolen => "stolen",
            Device::Lost => "lost",
            Device::Broken => "broken",
            Device::New => "new",
            Device::Same => "same",
        }
    }

    /// The case in words, for notes.
    pub fn describe(self) -> &'static str {
        match self {
            Device::Stolen => "the phone was stolen",
            Device::Lost => "the phone was lost",
            Device::Broken => "the phone or app was broken, reset or wiped",
            Device::New => "the requester changed phone or number",
            Device::Same => "same phone, the authenticator stopped working",
        }
    }
}

/// The request is about a phone the requester does not have yet ("getting a new phone
/// tomorrow"): removing the old methods now would lock them out until it arrives.
pub fn phone_not_here_yet(s: &Signals) -> bool {
    [
        "getting a new phone",
        "get a new phone tomorrow",
        "new phone tomorrow",
        "new phone next week",
        "new phone on monday",
        "will get a new phone",
        "going to get a new phone",
        "new phone is coming",
        "new phone arrives",
        "before i lose",
        "so i don't lose",
    ]
    .iter()
    .any(|p| s.contains(p))
}

/// The words read as a request about someone else's phone ("he has a new phone, reset
/// his registration") and nothing in it speaks for the requester themself.
pub fn about_someone_else(s: &Signals) -> bool {
    let third = [
        "his", "her", "he", "she", "he's", "she's", "hes", "shes", "him",
    ]
    .iter()
    .chain(&[
        "staff member",
        "colleague",
        "employee",
        "on behalf",
        "new starter",
    ])
    .any(|p| s.contains(p));
    let first = [
        "i", "me", "my", "i'm", "im", "i've", "ive", "i'd", "mine", "myself",
    ]
    .iter()
    .any(|p| s.contains(p));
    third && !first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_case_is_read_from_the_text() {
        let case = |t: &str| Device::from_text(&Signals::from_text(t));
        assert_eq!(
            case("my phone was stolen, got a new one"),
            Some(Device::Stolen)
        );
        assert_eq!(case("lost my phone on the train"), Some(Device::Lost));
        assert_eq!(
            case("factory reset my phone, authenticator empty"),
            Some(Device::Broken)
        );
        assert_eq!(
            case("new phone, authenticator didn't carry over"),
            Some(Device::New)
        );
        assert_eq!(case("MFA notifications not arriving"), None);
    }

    #[test]
    fn requests_about_someone_else_are_noticed() {
        let other = |t: &str| about_someone_else(&Signals::from_text(t));
        assert!(other(
            "Tom has a new phone. Can you reset his registration? He's in today."
        ));
        assert!(!other("My phone died, I have a new one"));
        assert!(!other("new phone, authenticator gone"));
    }
}
