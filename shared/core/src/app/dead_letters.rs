//! Jobs the send queue gave up on (its dead-letter queue), and their repair.
//!
//! A send job lands on the dead-letter queue after ten receives that did not
//! finish it (a poisoned record, a store outage outlasting the retries). Its
//! recipient must not stay `queued` forever with nothing to move it, and the
//! office must see why. [`set_aside`] runs for each dead-lettered job:
//!
//! - a recipient still `queued` or `scheduled` never reached the carrier:
//!   it is marked `failed` with `job_dead_lettered` (title and resolution in
//!   the catalog's words) and the job is parked for the repair command;
//! - a recipient left `sending` may have reached the carrier: it is marked
//!   `failed` with `send_interrupted` and never sent again;
//! - a bulk's pump job is parked as it is (its recipients stay `queued`);
//! - anything else is already settled.
//!
//! [`requeue_parked`] is the repair (`practice-admin requeue-dead-letters`):
//! it puts back on the queue what is safe to send, i.e. pump jobs (a pump
//! run is idempotent) and recipients still `failed` with `job_dead_lettered`
//! (moved back to `queued` by a version-conditioned write first, so two
//! repairs never queue one twice — and the dispatcher's claim would absorb
//! it anyway). Everything else is dropped from the parked list.

use chrono::{DateTime, Utc};

use crate::domain::bulk::QueuedJob;
use crate::domain::error::StoreError;
use crate::domain::message::{ParkedJob, RecipientError, RecipientStatus, SendJob, Transition};
use crate::ports::{Clock, DeadLetterStore, MessageStore, SendQueue};

/// What [`set_aside`] did with one dead-lettered job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAside {
    /// The recipient never reached the carrier: failed, job parked.
    Parked,
    /// A bulk's pump job: parked.
    PumpParked,
    /// The recipient was mid-send: failed as interrupted, not parked.
    Interrupted,
    /// Nothing left to do (final, canceled, or unknown).
    Settled,
}

/// Settles one job taken off the send dead-letter queue.
pub async fn set_aside<S, K>(store: &S, clock: &K, job: &SendJob) -> Result<SetAside, StoreError>
where
    S: MessageStore + DeadLetterStore,
    K: Clock,
{
    let park = |reason: &str| ParkedJob {
        job: job.clone(),
        reason: reason.to_string(),
        parked_at: clock.now(),
    };
    if matches!(QueuedJob::from(job.clone()), QueuedJob::Pump(_)) {
        store.park(&park("bulk pump job")).await?;
        tracing::error!(%job, "bulk pump job dead-lettered; parked for repair");
        return Ok(SetAside::PumpParked);
    }
    // A few rounds: the recipient may move between the read and the write.
    for _ in 0..5 {
        let Some(recipient) = store.get_recipient(job).await? else {
            return Ok(SetAside::Settled);
        };
        let (transition, outcome) = match recipient.status {
            RecipientStatus::Queued | RecipientStatus::Scheduled => (
                Transition::Failed {
                    carrier_message_id: None,
                    error: RecipientError::job_dead_lettered(),
                    at: clock.now(),
                },
                SetAside::Parked,
            ),
            RecipientStatus::Sending => (
                Transition::Failed {
                    carrier_message_id: None,
                    error: RecipientError::send_interrupted(),
                    at: clock.now(),
                },
                SetAside::Interrupted,
            ),
            _ => return Ok(SetAside::Settled),
        };
        if outcome == SetAside::Parked {
            // Parked first: a crash after it leaves a parked job whose
            // recipient is still queued, which the repair requeues.
            store
                .park(&park("recipient never reached the carrier"))
                .await?;
        }
        if store
            .transition(&recipient, &transition, clock.now())
            .await?
            .is_some()
        {
            tracing::error!(%job, ?outcome, "send job dead-lettered; recipient marked failed");
            return Ok(outcome);
        }
    }
    Err(StoreError::new(
        "set aside a dead-lettered job",
        "the recipient kept changing",
    ))
}

/// What [`requeue_parked`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Requeued {
    /// Jobs put back on the send queue.
    pub requeued: Vec<String>,
    /// Parked jobs dropped because sending them again was not safe or no
    /// longer needed (delivered, failed otherwise, canceled...).
    pub dropped: Vec<String>,
}

/// The repair: requeues every parked job that is safe to send again, at `now`.
pub async fn requeue_parked<S, Q>(
    store: &S,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<Requeued, StoreError>
where
    S: MessageStore + DeadLetterStore,
    Q: SendQueue,
{
    let mut report = Requeued::default();
    loop {
        let parked = store.parked(100).await?;
        if parked.is_empty() {
            return Ok(report);
        }
        for p in parked {
            let job = &p.job;
            let requeue = if matches!(QueuedJob::from(job.clone()), QueuedJob::Pump(_)) {
                true
            } else {
                match store.get_recipient(job).await? {
                    Some(r) if r.status == RecipientStatus::Queued => true,
                    Some(r) => store
                        .transition(&r, &Transition::Requeue, now)
                        .await?
                        .is_some(),
                    None => false,
                }
            };
            if requeue {
                queue.enqueue(std::slice::from_ref(job)).await?;
                report.requeued.push(job.to_string());
            } else {
                report.dropped.push(job.to_string());
            }
            store.unpark(job).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bulk::{PumpJob, PumpToken};
    use crate::testing::{queued_recipient, FixedClock, MemoryQueue, MemoryStore};

    fn clock() -> FixedClock {
        FixedClock::at("2026-11-26T15:00:00Z")
    }

    #[tokio::test]
    async fn a_queued_recipient_is_shown_failed_then_requeued_once() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        assert_eq!(
            set_aside(&store, &clock(), &job).await.unwrap(),
            SetAside::Parked
        );
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        let error = r.error.unwrap();
        assert_eq!(error.code, "job_dead_lettered");
        assert!(error.resolution.contains("requeue-dead-letters"));

        let queue = MemoryQueue::default();
        let report = requeue_parked(&store, &queue, clock().now()).await.unwrap();
        assert_eq!(report.requeued, vec![job.to_string()]);
        assert_eq!(queue.jobs.lock().await.clone(), vec![job.clone()]);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Queued);
        assert_eq!(r.error, None);
        // A second repair finds nothing left to do.
        assert_eq!(
            requeue_parked(&store, &queue, clock().now()).await.unwrap(),
            Requeued::default()
        );
        assert_eq!(queue.jobs.lock().await.len(), 1);
    }

    #[tokio::test]
    async fn a_recipient_mid_send_is_interrupted_and_never_requeued() {
        let store = MemoryStore::default();
        let mut r = queued_recipient();
        r.status = RecipientStatus::Sending;
        let job = store.insert_recipient(r).await;
        assert_eq!(
            set_aside(&store, &clock(), &job).await.unwrap(),
            SetAside::Interrupted
        );
        assert_eq!(
            store.recipient(&job).await.unwrap().error.unwrap().code,
            "send_interrupted"
        );
        let queue = MemoryQueue::default();
        assert_eq!(
            requeue_parked(&store, &queue, clock().now()).await.unwrap(),
            Requeued::default()
        );
        assert!(queue.jobs.lock().await.clone().is_empty());
    }

    #[tokio::test]
    async fn a_parked_recipient_that_moved_on_is_dropped_not_sent() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        set_aside(&store, &clock(), &job).await.unwrap();
        // Meanwhile the office sent it another way and it was canceled...
        // here: a delivered recipient can never be requeued.
        let mut r = store.recipient(&job).await.unwrap();
        r.status = RecipientStatus::Delivered;
        r.error = None;
        store.insert_recipient(r).await;
        let queue = MemoryQueue::default();
        let report = requeue_parked(&store, &queue, clock().now()).await.unwrap();
        assert_eq!(report.dropped, vec![job.to_string()]);
        assert!(queue.jobs.lock().await.clone().is_empty());
    }

    #[tokio::test]
    async fn a_delivered_recipient_is_left_alone() {
        let store = MemoryStore::default();
        let mut r = queued_recipient();
        r.status = RecipientStatus::Delivered;
        let job = store.insert_recipient(r).await;
        assert_eq!(
            set_aside(&store, &clock(), &job).await.unwrap(),
            SetAside::Settled
        );
        assert!(store.parked(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_pump_job_is_parked_and_requeued_as_it_was() {
        let store = MemoryStore::default();
        let job = PumpJob {
            practice_id: "p1".into(),
            message_id: "b1".into(),
            token: PumpToken::new(clock().now()),
        }
        .to_send_job();
        assert_eq!(
            set_aside(&store, &clock(), &job).await.unwrap(),
            SetAside::PumpParked
        );
        let queue = MemoryQueue::default();
        let report = requeue_parked(&store, &queue, clock().now()).await.unwrap();
        assert_eq!(report.requeued.len(), 1);
        assert_eq!(queue.jobs.lock().await.clone(), vec![job]);
    }
}
