//! In-memory ports for unit tests of the use cases (feature `testing`).
//! Adapters are tested against the emulator; these only stand in for them.
//!
//! The doubles live in `memory/`, one file per slice of [`crate::ports`];
//! every one is re-exported here. This file keeps the shared fixtures.

use chrono::{DateTime, Utc};

use crate::domain::message::{MessageType, Recipient, RecipientStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::practice::{Channels, Practice};
use crate::ports::Clock;

pub mod conformance;
mod memory;

pub use self::memory::{
    FixedResolver, MemoryCarrierMedia, MemoryEventQueue, MemoryMediaStorage, MemoryQueue,
    MemoryScheduler, MemoryStore, PostedEvent, ScheduledJobs, Schedules, ScriptedCarrier,
    ScriptedEventPoster,
};

/// A clock stopped at one instant.
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    pub fn at(rfc3339: &str) -> Self {
        Self(rfc3339.parse().expect("test time"))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

pub fn sample_practice(id: &str) -> Practice {
    Practice {
        practice_id: id.to_string(),
        name: "Bright Smiles Dental".into(),
        timezone: "America/New_York".parse().unwrap(),
        channels: Channels {
            sms_main: PhoneNumber::parse("+14155550100").expect("valid"),
            sms_alt: None,
        },
        hourly_cap: 250,
        cap_window_seconds: 3600,
        max_bulk_recipients: 1000,
        quiet_hours: None,
        help_text: None,
        auto_reply: Default::default(),
        automatic_window: crate::domain::practice::AutomaticWindow::default_setting(),
        links: crate::domain::practice::Links::default(),
        carrier: Default::default(),
    }
}

pub fn queued_recipient() -> Recipient {
    Recipient {
        practice_id: "demo".into(),
        message_id: "m-1".into(),
        recipient_id: "00001".into(),
        patient_id: None,
        to: PhoneNumber::parse("+14155550142").expect("valid"),
        from: PhoneNumber::parse("+14155550100").expect("valid"),
        text: "Hi".into(),
        status: RecipientStatus::Queued,
        not_before: None,
        carrier_message_id: None,
        sent_at: None,
        delivered_at: None,
        error: None,
        skip_reason: None,
        attempts: 0,
        claimed_at: None,
        message_type: MessageType::DirectMessage,
        origin: None,
        version: 0,
        appointment_ids: Vec::new(),
    }
}
