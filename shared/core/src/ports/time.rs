//! Time as a dependency, so decisions that hinge on "now" (and waits) are
//! testable.

use chrono::{DateTime, Utc};

/// Where "now" comes from. Production uses [`SystemClock`]; tests pass their own.
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Waits before a slowed sign-in answer. Production sleeps; tests record.
#[async_trait::async_trait]
pub trait Pause: Send + Sync {
    /// Waits `duration`.
    async fn pause(&self, duration: std::time::Duration);
}

/// Sleeps on the runtime's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

#[async_trait::async_trait]
impl Pause for Sleep {
    async fn pause(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}
