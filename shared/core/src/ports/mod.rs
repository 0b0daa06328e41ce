//! The small traits the application layer needs from the outside world.
//! Adapters in `the adapters crate (`messaging_adapters`)` implement them for DynamoDB, SQS and the
//! carrier's HTTP API; unit tests implement them in memory.
//!
//! One file per slice; every item is re-exported here, so its path is
//! `crate::ports::Item` whichever file it lives in.

mod appointments;
mod bulk;
mod conversations;
mod dead_letters;
mod events;
mod media;
mod messages;
mod opt_outs;
mod practices;
mod rate;
mod sending;
mod staff;
mod templates;
mod time;

pub use crate::domain::message::Transition;

pub use self::appointments::{AppointmentStore, DueAppointment, StoredRules};
pub use self::bulk::BulkStore;
pub use self::conversations::{inbox_key, ConversationStore, SaveConversation};
pub use self::dead_letters::DeadLetterStore;
pub use self::events::{
    CreateEndpoint, EventFilter, EventPoster, EventQueue, EventStore, HostResolver,
};
pub use self::media::{
    CarrierMedia, MediaFetchError, MediaLinks, MediaQueue, MediaStorage, RetryLater,
};
pub use self::messages::{
    tracking_key, CreateOutcome, IdempotencyRecord, MessageStore, TrackingIndex,
};
pub use self::opt_outs::{OptOutChange, OptOutStore};
pub use self::practices::PracticeStore;
pub use self::rate::{RateLimiter, RateStore};
pub use self::sending::{
    Carrier, CarrierOptOuts, CarrierOutcome, OutboundText, SendQueue, SendScheduler,
};
pub use self::staff::{StaffCreated, StaffStore};
pub use self::templates::TemplateStore;
pub use self::time::{Clock, Pause, Sleep, SystemClock};
