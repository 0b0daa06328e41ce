//! The send job: the ids that travel through the send queue and, as the
//! carrier's `tag`, come back in its callbacks. It names a recipient of a
//! message; the records themselves stay in DynamoDB.

use serde::{Deserialize, Serialize};

/// What the dispatcher receives through the send queue: ids only, the
/// record itself stays in DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendJob {
    /// Owner.
    pub practice_id: String,
    /// Message.
    pub message_id: String,
    /// Recipient within the message.
    pub recipient_id: String,
}

impl std::fmt::Display for SendJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_tag())
    }
}

impl SendJob {
    /// The compact form carried in the carrier's `tag`, echoed in callbacks.
    pub fn to_tag(&self) -> String {
        format!(
            "{}/{}/{}",
            self.practice_id, self.message_id, self.recipient_id
        )
    }

    /// Parses a `tag` written by [`SendJob::to_tag`].
    pub fn from_tag(tag: &str) -> Option<SendJob> {
        let mut parts = tag.split('/');
        let (p, m, r) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || p.is_empty() || m.is_empty() || r.is_empty() {
            return None;
        }
        Some(SendJob {
            practice_id: p.to_string(),
            message_id: m.to_string(),
            recipient_id: r.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trips_and_rejects_garbage() {
        let job = SendJob {
            practice_id: "demo".into(),
            message_id: "m1".into(),
            recipient_id: "00001".into(),
        };
        assert_eq!(SendJob::from_tag(&job.to_tag()), Some(job));
        assert_eq!(SendJob::from_tag("a/b"), None);
        assert_eq!(SendJob::from_tag("a/b/c/d"), None);
        assert_eq!(SendJob::from_tag("//"), None);
    }
}
