//! Which carrier a practice's numbers are on.

use serde::{Deserialize, Serialize};

/// The carrier that sends a practice's texts and reports on them. A
/// practice's numbers are all on one carrier, chosen by the administrator
/// (`practice-admin --carrier`); Bandwidth unless set otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    /// Bandwidth Messaging API v2 (HTTP Basic credentials, callbacks to the
    /// carrier webhook).
    #[default]
    Bandwidth,
    /// AWS End User Messaging SMS (`pinpoint-sms-voice-v2`) in the
    /// deployment's own account (IAM, events and inbound texts through SNS).
    Aws,
}

impl CarrierKind {
    /// The name used in the API (`carrier` of an error detail) and by the
    /// admin command.
    pub fn as_str(&self) -> &'static str {
        match self {
            CarrierKind::Bandwidth => "bandwidth",
            CarrierKind::Aws => "aws",
        }
    }

    /// Parses [`CarrierKind::as_str`]'s names.
    pub fn parse(s: &str) -> Option<CarrierKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bandwidth" => Some(CarrierKind::Bandwidth),
            "aws" => Some(CarrierKind::Aws),
            _ => None,
        }
    }
}

impl std::fmt::Display for CarrierKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bandwidth_is_the_default() {
        for kind in [CarrierKind::Bandwidth, CarrierKind::Aws] {
            assert_eq!(CarrierKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(CarrierKind::parse(" AWS "), Some(CarrierKind::Aws));
        assert_eq!(CarrierKind::parse("twilio"), None);
        assert_eq!(CarrierKind::default(), CarrierKind::Bandwidth);
    }
}
