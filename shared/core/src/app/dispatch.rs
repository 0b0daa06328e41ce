//! The dispatcher's decision for one queued send: re-read, claim, call the
//! carrier, record the outcome. Safe under duplicate queue deliveries and
//! concurrent dispatchers: only the instance whose conditional claim wins
//! calls the carrier.

use chrono::Duration;

use crate::app::appointments::fire;
use crate::app::bulk::pump::run_pump;
use crate::app::cache::TtlCache;
use crate::app::conversations;
use crate::app::rate_cap::take_bulk_submission;
use crate::domain::aws_errors;
use crate::domain::bulk::{Pace, QueuedJob};
use crate::domain::carrier::CarrierKind;
use crate::domain::clock::queue_delay;
use crate::domain::conversation::{OutboundEntry, OutboundKind};
use crate::domain::error::{AppError, StoreError};
use crate::domain::limits::{SQS_MAX_DELAY_SECONDS, SQS_MAX_VISIBILITY_SECONDS};
use crate::domain::message::MessageType;
use crate::domain::message::{RecipientError, RecipientStatus, SendJob};
use crate::domain::practice::Practice;
use crate::domain::quiet_hours::next_allowed;
use crate::ports::{
    AppointmentStore, BulkStore, Carrier, CarrierOutcome, Clock, ConversationStore, MessageStore,
    OptOutChange, OptOutStore, OutboundText, PracticeStore, RateStore, SendQueue, TemplateStore,
    Transition,
};

/// How retryable carrier failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Carrier attempts before a recipient is marked failed.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further one.
    pub base_delay_seconds: u32,
    /// How long a claim may stay `sending` with no outcome recorded before
    /// it is given up as failed (`send_interrupted`): the instance died
    /// mid-send, or the carrier never answered and no delivery report came.
    /// Must exceed the function's timeout, so a live send is never taken
    /// for a dead one.
    pub confirm_wait_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay_seconds: 10,
            confirm_wait_seconds: 120,
        }
    }
}

impl RetryPolicy {
    /// Delay after the `attempt`-th failed attempt (1-based): base, 2×, 4×...
    pub fn delay_after(&self, attempt: u32) -> u32 {
        self.base_delay_seconds
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(SQS_MAX_DELAY_SECONDS)
    }

    fn confirm_wait(&self) -> Duration {
        Duration::seconds(i64::from(self.confirm_wait_seconds))
    }
}

/// What to do with the queue message after dispatching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// Finished with (sent, failed, or nothing to do): delete it.
    Done,
    /// Deliver it again after this many seconds.
    RetryAfter(u32),
}

/// How soon a duplicate that found its recipient mid-send looks again.
const RECHECK_SENDING_SECONDS: i64 = 10;

/// Dispatches queued sends.
pub struct Dispatcher<M, C, K, Q> {
    /// Recipients.
    pub store: M,
    /// The send queue (to hold a send until its time).
    pub queue: Q,
    /// The carrier.
    pub carrier: C,
    /// Time.
    pub clock: K,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Bulk submissions per second through one sending number.
    pub bulk_per_second: u32,
    /// A bulk recipient told to wait at most this long for a token waits
    /// in the function instead of going back to the queue (zero: never).
    pub inline_wait: Duration,
    /// Practices read for bulk pacing, kept by a warm instance.
    pub practices: PracticeCache,
}

/// How long a warm dispatcher trusts a practice it read. Only bulk pacing
/// reads it (cap, window, quiet hours, time zone): a change an
/// administrator makes reaches sends within a minute. The cap itself is
/// enforced by the bucket items' conditional writes, whatever is cached.
pub const PRACTICE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Practices a warm dispatcher read recently (one `GetItem` fewer per bulk
/// recipient). A practice that does not exist is not remembered.
#[derive(Debug)]
pub struct PracticeCache(TtlCache<Practice>);

impl Default for PracticeCache {
    fn default() -> Self {
        Self(TtlCache::new(
            PRACTICE_CACHE_TTL,
            crate::app::auth::CACHE_ENTRIES,
        ))
    }
}

impl PracticeCache {
    async fn get<S: PracticeStore>(
        &self,
        store: &S,
        practice_id: &str,
    ) -> Result<Option<Practice>, StoreError> {
        if let Some(practice) = self.0.get(practice_id).await {
            return Ok(Some(practice));
        }
        let practice = store.get_practice(practice_id).await?;
        if let Some(p) = &practice {
            self.0.insert(practice_id.to_string(), p.clone()).await;
        }
        Ok(practice)
    }
}

/// The dispatcher's default [`Dispatcher::inline_wait`]: a sub-second wait
/// for the number's pace is slept through — another trip through the
/// queue would cost a receive and usually collide with the next recipient
/// planned for the next second. Ten such waits fit a batch well inside the
/// function's timeout.
pub const INLINE_WAIT: Duration = Duration::milliseconds(1500);

/// The stores the dispatcher reads and writes.
pub trait DispatchStore:
    MessageStore
    + OptOutStore
    + BulkStore
    + RateStore
    + PracticeStore
    + ConversationStore
    + AppointmentStore
    + TemplateStore
{
}
impl<T> DispatchStore for T where
    T: MessageStore
        + OptOutStore
        + BulkStore
        + RateStore
        + PracticeStore
        + ConversationStore
        + AppointmentStore
        + TemplateStore
{
}

impl<M: DispatchStore, C: Carrier, K: Clock, Q: SendQueue> Dispatcher<M, C, K, Q> {
    /// Handles one queued send, one run of a bulk's pump, an appointment's
    /// due reminder, or the minute's sweep for due reminders.
    pub async fn dispatch(&self, job: &SendJob) -> Result<Dispatched, StoreError> {
        let as_store = |e: AppError| StoreError::new("reminder", e.message);
        match QueuedJob::from(job.clone()) {
            QueuedJob::Pump(pump) => {
                run_pump(
                    &self.store,
                    &self.queue,
                    &self.clock,
                    &pump,
                    self.bulk_per_second,
                )
                .await?;
                Ok(Dispatched::Done)
            }
            QueuedJob::SweepReminders => {
                let queued = fire::sweep(&self.store, &self.queue, self.clock.now())
                    .await
                    .map_err(as_store)?;
                tracing::info!(queued, "reminder sweep");
                Ok(Dispatched::Done)
            }
            QueuedJob::Reminder(reminder) => {
                let fired = fire::fire(&self.store, &reminder, self.clock.now())
                    .await
                    .map_err(as_store)?;
                for send in &fired.sends {
                    // Its own outcome is recorded on the recipient; a send
                    // to try again later is held by its own queue job.
                    if let Dispatched::RetryAfter(seconds) = self.dispatch_send(send).await? {
                        self.queue.enqueue_delayed(send, seconds).await?;
                    }
                }
                Ok(match fired.later {
                    Some(seconds) => Dispatched::RetryAfter(seconds.max(1)),
                    None => Dispatched::Done,
                })
            }
            QueuedJob::Send(send) => self.dispatch_send(&send).await,
        }
    }

    /// Handles one recipient's send.
    async fn dispatch_send(&self, job: &SendJob) -> Result<Dispatched, StoreError> {
        let Some(mut recipient) = self.store.get_recipient(job).await? else {
            tracing::warn!(%job, "send for an unknown recipient; dropped");
            return Ok(Dispatched::Done);
        };
        match recipient.status {
            RecipientStatus::Queued => {}
            RecipientStatus::Scheduled => {
                let now = self.clock.now();
                let due = recipient.not_before.unwrap_or(now);
                if now < due {
                    // Early (the schedule fires ahead of time, or was moved
                    // later): hold it with a queue delay until its second.
                    let seconds = queue_delay(due - now);
                    self.queue.enqueue_delayed(job, seconds).await?;
                    tracing::info!(%job, seconds, "not due yet; held");
                    return Ok(Dispatched::Done);
                }
                let Some(queued) = self
                    .store
                    .transition(&recipient, &Transition::Queue, now)
                    .await?
                else {
                    // Canceled or rescheduled meanwhile, or another firing won.
                    tracing::info!(%job, "schedule fired but the message moved on");
                    return Ok(Dispatched::Done);
                };
                recipient = queued;
            }
            RecipientStatus::Sending => {
                let claimed = recipient
                    .claimed_at
                    .unwrap_or(recipient.sent_at.unwrap_or_default());
                let age = self.clock.now() - claimed;
                if age < self.retry.confirm_wait() {
                    // Another instance is sending it right now (a duplicate
                    // delivery): look again shortly, by when it has usually
                    // recorded the outcome and this copy can be dropped.
                    let wait = (self.retry.confirm_wait() - age)
                        .num_seconds()
                        .clamp(1, RECHECK_SENDING_SECONDS);
                    return Ok(Dispatched::RetryAfter(u32::try_from(wait).unwrap_or(1)));
                }
                // Whether the carrier got it is unknown (the instance died, or
                // the carrier never answered and no delivery report came):
                // never risk a second text.
                let carrier = self.carrier_of(&job.practice_id).await?;
                let failed = Transition::Failed {
                    carrier_message_id: None,
                    error: RecipientError::send_interrupted().on_carrier(carrier),
                    at: self.clock.now(),
                };
                self.store
                    .transition(&recipient, &failed, self.clock.now())
                    .await?;
                tracing::warn!(%job, "interrupted send marked failed");
                return Ok(Dispatched::Done);
            }
            other => {
                tracing::info!(%job, status = other.as_str(), "nothing to send");
                return Ok(Dispatched::Done);
            }
        }

        // Re-checked here so a number that texted STOP after its message was
        // queued is not sent to (only the answer to the keyword itself goes).
        if recipient.origin != Some(OutboundKind::KeywordReply)
            && self
                .store
                .is_opted_out(&job.practice_id, recipient.to.as_str())
                .await?
        {
            let skip = Transition::Skip {
                reason: "opted_out: the number replied STOP".into(),
            };
            self.store
                .transition(&recipient, &skip, self.clock.now())
                .await?;
            tracing::info!(%job, "recipient opted out; skipped");
            return Ok(Dispatched::Done);
        }
        if recipient.message_type == MessageType::BulkMessage
            && self.defer_bulk(job, &recipient).await?
        {
            return Ok(Dispatched::Done);
        }
        // Read before the claim: a store failure here leaves nothing claimed.
        let carrier = self.carrier_of(&job.practice_id).await?;
        let now = self.clock.now();
        let claim = Transition::Claim { at: now };
        let Some(claimed) = self.store.transition(&recipient, &claim, now).await? else {
            tracing::info!(%job, "claimed by another dispatcher");
            return Ok(Dispatched::Done);
        };
        if claimed.attempts == 1 {
            self.record_in_conversation(&claimed).await;
        }
        let outbound = OutboundText {
            from: claimed.from.to_string(),
            to: claimed.to.to_string(),
            text: claimed.text.clone(),
            tag: job.to_tag(),
            carrier,
        };
        match self.carrier.send(&outbound).await {
            CarrierOutcome::Accepted { carrier_message_id } => {
                let now = self.clock.now();
                let sent = Transition::Sent {
                    carrier_message_id: carrier_message_id.clone(),
                    at: now,
                };
                if self.store.transition(&claimed, &sent, now).await?.is_none() {
                    // A delivery callback overtook us and already recorded it.
                    tracing::info!(%job, %carrier_message_id, "callback arrived before the sent record");
                }
                tracing::info!(%job, %carrier_message_id, "sent");
                Ok(Dispatched::Done)
            }
            CarrierOutcome::Rejected {
                status,
                detail,
                error,
            } => {
                let error = error
                    .unwrap_or_else(|| RecipientError::carrier_rejected(status, &detail))
                    .on_carrier(carrier);
                let carrier_opt_out = error.code == aws_errors::OPTED_OUT;
                let failed = Transition::Failed {
                    carrier_message_id: None,
                    error,
                    at: self.clock.now(),
                };
                self.record_outcome(&claimed, &failed).await?;
                tracing::warn!(%job, status, %detail, "carrier rejected the send");
                if carrier_opt_out {
                    self.record_carrier_opt_out(&claimed).await?;
                }
                Ok(Dispatched::Done)
            }
            CarrierOutcome::Retryable { reason } => {
                if claimed.attempts >= self.retry.max_attempts {
                    let failed = Transition::Failed {
                        carrier_message_id: None,
                        error: RecipientError::retries_exhausted(claimed.attempts, &reason)
                            .on_carrier(carrier),
                        at: self.clock.now(),
                    };
                    self.record_outcome(&claimed, &failed).await?;
                    tracing::error!(%job, attempts = claimed.attempts, %reason, "retries exhausted; marked failed");
                    return Ok(Dispatched::Done);
                }
                let release = Transition::Release {
                    reason: reason.clone(),
                };
                self.record_outcome(&claimed, &release).await?;
                let delay = self.retry.delay_after(claimed.attempts);
                tracing::warn!(%job, attempts = claimed.attempts, delay, %reason, "carrier failed; will retry");
                Ok(Dispatched::RetryAfter(delay))
            }
            CarrierOutcome::Unconfirmed { reason } => {
                // The carrier may have taken it: the claim stays, so nothing
                // sends it again. Its delivery report (matched by tag) moves
                // it on; if none has come when this job is seen again, it is
                // marked `send_interrupted` there.
                let wait = self.retry.confirm_wait_seconds.saturating_add(1);
                tracing::warn!(%job, %reason, wait, "carrier did not confirm the send; waiting for its report, not resending");
                Ok(Dispatched::RetryAfter(wait.min(SQS_MAX_VISIBILITY_SECONDS)))
            }
        }
    }
}

impl<M: DispatchStore, C: Carrier, K: Clock, Q: SendQueue> Dispatcher<M, C, K, Q> {
    /// Holds a bulk recipient to the practice's sending window, the
    /// number's pace and the practice's cap: takes the number's token, then
    /// the cap's (last, so the cap counts submissions). A wait of at most
    /// `inline_wait` is slept through; a longer one defers the recipient
    /// with a fresh queue message for then (the received one is deleted, so
    /// waiting never counts toward the DLQ) and answers `true`. Direct
    /// messages never come here.
    async fn defer_bulk(
        &self,
        job: &SendJob,
        recipient: &crate::domain::message::Recipient,
    ) -> Result<bool, StoreError> {
        let Some(practice) = self
            .practices
            .get(&self.store, &recipient.practice_id)
            .await?
        else {
            return Ok(false);
        };
        let limits = Pace::for_practice(&practice, self.bulk_per_second);
        loop {
            let now = self.clock.now();
            let allowed = next_allowed(now, practice.timezone.tz(), practice.quiet_hours.as_ref());
            let not_before = if allowed > now {
                Some(allowed)
            } else {
                take_bulk_submission(
                    &self.store,
                    &recipient.practice_id,
                    recipient.from.as_str(),
                    now,
                    &limits,
                )
                .await?
            };
            let Some(at) = not_before else {
                return Ok(false);
            };
            let wait = at - now;
            if wait > self.inline_wait {
                let seconds = queue_delay(wait).max(1);
                self.queue.enqueue_delayed(job, seconds).await?;
                tracing::info!(%job, seconds, "bulk send deferred by the cap, the number's pace or quiet hours");
                return Ok(true);
            }
            if let Ok(pause) = wait.to_std() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Adds a text to the thread of the conversation with its number, once,
    /// when sending first begins (its delivery status is read live from
    /// the recipient). A failure here is logged and does not hold up the
    /// send: the text stays tracked in Messages either way.
    async fn record_in_conversation(&self, claimed: &crate::domain::message::Recipient) {
        let kind = claimed.origin.unwrap_or(match claimed.message_type {
            MessageType::BulkMessage => OutboundKind::Bulk,
            MessageType::AppointmentReminder => OutboundKind::Reminder,
            _ if claimed.not_before.is_some() => OutboundKind::Scheduled,
            _ => OutboundKind::Direct,
        });
        let entry = OutboundEntry {
            job: claimed.job(),
            text: claimed.text.clone(),
            at: claimed.claimed_at.unwrap_or_else(|| self.clock.now()),
            kind,
        };
        if let Err(e) = conversations::record_outbound(&self.store, &claimed.to, &entry).await {
            tracing::error!(job = %entry.job, error = %e, "text not recorded in its conversation");
        }
    }

    /// The carrier of the practice (kept by a warm instance for a minute,
    /// like the practice itself); Bandwidth for a practice that is gone.
    async fn carrier_of(&self, practice_id: &str) -> Result<CarrierKind, StoreError> {
        Ok(self
            .practices
            .get(&self.store, practice_id)
            .await?
            .map(|p| p.carrier)
            .unwrap_or_default())
    }

    /// The carrier refused a send because the number is on its own opt-out
    /// list (AWS's): our record learns it too (source `carrier`), so the
    /// API refuses the number, the office sees it opted out, and queued
    /// texts to it are skipped, as after a STOP. A number already opted
    /// out here changes nothing.
    async fn record_carrier_opt_out(
        &self,
        claimed: &crate::domain::message::Recipient,
    ) -> Result<(), StoreError> {
        if self
            .store
            .is_opted_out(&claimed.practice_id, claimed.to.as_str())
            .await?
        {
            return Ok(());
        }
        let change = OptOutChange {
            practice_id: claimed.practice_id.clone(),
            phone: claimed.to.to_string(),
            opted_out: true,
            keyword: aws_errors::OPTED_OUT.to_string(),
            source: "carrier".to_string(),
            at: self.clock.now(),
        };
        self.store.record_opt_out(&change).await?;
        tracing::info!(practice_id = %claimed.practice_id, "number on the carrier's opt-out list; recorded as opted out");
        Ok(())
    }

    /// Records what happened to a send we claimed. Only a callback can have
    /// changed the recipient meanwhile; if it did, the callback's news wins.
    async fn record_outcome(
        &self,
        claimed: &crate::domain::message::Recipient,
        t: &Transition,
    ) -> Result<(), StoreError> {
        if self
            .store
            .transition(claimed, t, self.clock.now())
            .await?
            .is_none()
        {
            tracing::info!(message_id = %claimed.message_id, "recipient moved on before the outcome was recorded");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{queued_recipient, FixedClock, MemoryQueue, MemoryStore, ScriptedCarrier};

    fn dispatcher(
        store: MemoryStore,
        carrier: ScriptedCarrier,
    ) -> Dispatcher<MemoryStore, ScriptedCarrier, FixedClock, MemoryQueue> {
        Dispatcher {
            store,
            queue: MemoryQueue::default(),
            carrier,
            clock: FixedClock::at("2026-11-26T15:00:00Z"),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay_seconds: 5,
                confirm_wait_seconds: 120,
            },
            bulk_per_second: 1,
            inline_wait: Duration::zero(),
            practices: Default::default(),
        }
    }

    #[tokio::test]
    async fn queued_recipient_is_sent_once_even_if_delivered_twice() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = ScriptedCarrier::accepting();
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(carrier.calls().await, 1);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Sent);
        assert_eq!(r.carrier_message_id.as_deref(), Some("carrier-1"));
    }

    #[tokio::test]
    async fn carrier_5xx_releases_for_retry_with_backoff() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = ScriptedCarrier::with(vec![
            CarrierOutcome::Retryable {
                reason: "HTTP 500".into(),
            },
            CarrierOutcome::Retryable {
                reason: "HTTP 500".into(),
            },
        ]);
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::RetryAfter(5));
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Queued
        );
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::RetryAfter(10));
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Sent);
        assert_eq!(carrier.calls().await, 3);
    }

    #[tokio::test]
    async fn exhausted_retries_leave_a_visible_failure() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = ScriptedCarrier::with(vec![
            CarrierOutcome::Retryable {
                reason: "timeout".into()
            };
            3
        ]);
        let d = dispatcher(store.clone(), carrier.clone());
        assert!(matches!(
            d.dispatch(&job).await.unwrap(),
            Dispatched::RetryAfter(_)
        ));
        assert!(matches!(
            d.dispatch(&job).await.unwrap(),
            Dispatched::RetryAfter(_)
        ));
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        assert_eq!(r.error.unwrap().code, "retries_exhausted");
    }

    #[tokio::test]
    async fn carrier_4xx_fails_permanently_without_retry() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = ScriptedCarrier::with(vec![CarrierOutcome::Rejected {
            status: 400,
            detail: "bad from".into(),
            error: None,
        }]);
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        let e = r.error.unwrap();
        assert_eq!((e.code.as_str(), e.permanent), ("http_400", true));
    }

    /// The store with the demo practice on `carrier`, and one queued
    /// recipient of it.
    async fn practice_on(carrier: CarrierKind) -> (MemoryStore, SendJob) {
        let store = MemoryStore::default();
        let mut practice = crate::testing::sample_practice("demo");
        practice.carrier = carrier;
        store.add_practice(practice, "key").await;
        let job = store.insert_recipient(queued_recipient()).await;
        (store, job)
    }

    #[tokio::test]
    async fn each_text_goes_through_its_practices_carrier_and_our_errors_name_it() {
        for kind in [CarrierKind::Bandwidth, CarrierKind::Aws] {
            let (store, job) = practice_on(kind).await;
            let retryable = || CarrierOutcome::Retryable {
                reason: "HTTP 503".into(),
            };
            let carrier = ScriptedCarrier::with(vec![retryable(), retryable(), retryable()]);
            let d = dispatcher(store.clone(), carrier.clone());
            while d.dispatch(&job).await.unwrap() != Dispatched::Done {}
            let texts = carrier.texts().await;
            assert_eq!(texts.len(), 3);
            assert!(texts.iter().all(|t| t.carrier == kind), "{kind}");
            let e = store.recipient(&job).await.unwrap().error.unwrap();
            assert_eq!(
                (e.code.as_str(), e.carrier.as_str()),
                ("retries_exhausted", kind.as_str())
            );
        }
    }

    #[tokio::test]
    async fn a_number_on_the_carriers_opt_out_list_is_opted_out_here_too() {
        use crate::ports::OptOutStore;
        let (store, job) = practice_on(CarrierKind::Aws).await;
        let refusal = || CarrierOutcome::Rejected {
            status: 400,
            detail: "ConflictException".into(),
            error: Some(RecipientError::from_aws_code(aws_errors::OPTED_OUT)),
        };
        let carrier = ScriptedCarrier::with(vec![refusal()]);
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        let e = r.error.unwrap();
        assert_eq!(
            (e.code.as_str(), e.carrier.as_str()),
            (aws_errors::OPTED_OUT, "aws")
        );
        assert_eq!(e.title, "Recipient opted out (replied STOP)");
        assert!(store.is_opted_out("demo", r.to.as_str()).await.unwrap());
        let audit = store.opt_audit().await;
        assert_eq!((audit.len(), audit[0].source.as_str()), (1, "carrier"));
        // A later text to the number is skipped, never offered to the carrier.
        let mut next = queued_recipient();
        next.message_id = "m-2".into();
        let second = store.insert_recipient(next).await;
        assert_eq!(d.dispatch(&second).await.unwrap(), Dispatched::Done);
        assert_eq!(carrier.calls().await, 1);
        assert_eq!(
            store.recipient(&second).await.unwrap().status,
            RecipientStatus::Skipped
        );
    }

    #[tokio::test]
    async fn number_that_opted_out_after_queueing_is_skipped_not_sent() {
        use crate::ports::{OptOutChange, OptOutStore};
        let store = MemoryStore::default();
        let r = queued_recipient();
        store
            .record_opt_out(&OptOutChange {
                practice_id: r.practice_id.clone(),
                phone: r.to.to_string(),
                opted_out: true,
                keyword: "STOP".into(),
                source: "sms".into(),
                at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let job = store.insert_recipient(r).await;
        let carrier = ScriptedCarrier::accepting();
        assert_eq!(
            dispatcher(store.clone(), carrier.clone())
                .dispatch(&job)
                .await
                .unwrap(),
            Dispatched::Done
        );
        assert_eq!(carrier.calls().await, 0);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Skipped);
        assert!(r.skip_reason.unwrap().starts_with("opted_out"));
    }

    fn scheduled_for(not_before: &str) -> crate::domain::message::Recipient {
        let mut r = queued_recipient();
        r.status = RecipientStatus::Scheduled;
        r.not_before = Some(not_before.parse().unwrap());
        r
    }

    #[tokio::test]
    async fn early_firing_is_held_until_the_second_it_is_due() {
        let store = MemoryStore::default();
        // The clock says 15:00:00; due at 15:00:42.5 → held 43 s, nothing sent.
        let job = store
            .insert_recipient(scheduled_for("2026-11-26T15:00:42.500Z"))
            .await;
        let carrier = ScriptedCarrier::accepting();
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(carrier.calls().await, 0);
        assert_eq!(
            d.queue.delayed.lock().await.clone(),
            vec![(job.clone(), 43)]
        );
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Scheduled
        );
    }

    #[tokio::test]
    async fn far_early_firing_is_held_in_fifteen_minute_steps() {
        let store = MemoryStore::default();
        let job = store
            .insert_recipient(scheduled_for("2026-11-26T18:00:00Z"))
            .await;
        let d = dispatcher(store.clone(), ScriptedCarrier::accepting());
        d.dispatch(&job).await.unwrap();
        assert_eq!(d.queue.delayed.lock().await[0].1, 900);
    }

    #[tokio::test]
    async fn due_schedule_fired_twice_sends_once() {
        let store = MemoryStore::default();
        let job = store
            .insert_recipient(scheduled_for("2026-11-26T14:59:59Z"))
            .await;
        let carrier = ScriptedCarrier::accepting();
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(carrier.calls().await, 1);
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Sent
        );
    }

    #[tokio::test]
    async fn schedule_firing_after_cancel_sends_nothing() {
        let store = MemoryStore::default();
        let job = store
            .insert_recipient(scheduled_for("2026-11-26T14:59:59Z"))
            .await;
        let current = store.recipient(&job).await.unwrap();
        store
            .transition(
                &current,
                &Transition::Cancel {
                    at: chrono::Utc::now(),
                },
                "2026-11-26T15:00:05Z".parse().unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let carrier = ScriptedCarrier::accepting();
        assert_eq!(
            dispatcher(store.clone(), carrier.clone())
                .dispatch(&job)
                .await
                .unwrap(),
            Dispatched::Done
        );
        assert_eq!(carrier.calls().await, 0);
        assert_eq!(
            store.recipient(&job).await.unwrap().status,
            RecipientStatus::Canceled
        );
    }

    #[tokio::test]
    async fn canceled_recipient_is_not_sent() {
        let store = MemoryStore::default();
        let mut r = queued_recipient();
        r.status = RecipientStatus::Canceled;
        let job = store.insert_recipient(r).await;
        let carrier = ScriptedCarrier::accepting();
        assert_eq!(
            dispatcher(store, carrier.clone())
                .dispatch(&job)
                .await
                .unwrap(),
            Dispatched::Done
        );
        assert_eq!(carrier.calls().await, 0);
    }

    fn unconfirmed() -> ScriptedCarrier {
        ScriptedCarrier::with(vec![CarrierOutcome::Unconfirmed {
            reason: "carrier did not answer in time".into(),
        }])
    }

    #[tokio::test]
    async fn an_unanswered_send_is_never_resent_and_its_report_settles_it() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = unconfirmed();
        let d = dispatcher(store.clone(), carrier.clone());
        // The claim stays; the job comes back once the wait is over.
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::RetryAfter(121));
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Sending);
        // A copy of the job meanwhile does not send it again.
        assert!(matches!(
            d.dispatch(&job).await.unwrap(),
            Dispatched::RetryAfter(_)
        ));
        // The carrier had taken it: its delivery report arrives.
        let delivered = Transition::Delivered {
            carrier_message_id: "bw-1".into(),
            at: "2026-11-26T15:00:05Z".parse().unwrap(),
        };
        store
            .transition(&r, &delivered, "2026-11-26T15:00:05Z".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let later = Dispatcher {
            clock: FixedClock::at("2026-11-26T15:02:01Z"),
            ..d
        };
        assert_eq!(later.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Delivered);
        assert_eq!(carrier.calls().await, 1);
    }

    #[tokio::test]
    async fn an_unanswered_send_without_a_report_fails_with_advice_not_a_resend() {
        let store = MemoryStore::default();
        let job = store.insert_recipient(queued_recipient()).await;
        let carrier = unconfirmed();
        let d = dispatcher(store.clone(), carrier.clone());
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::RetryAfter(121));
        let later = Dispatcher {
            clock: FixedClock::at("2026-11-26T15:02:01Z"),
            ..d
        };
        assert_eq!(later.dispatch(&job).await.unwrap(), Dispatched::Done);
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Failed);
        let error = r.error.unwrap();
        assert_eq!(error.code, "send_interrupted");
        assert!(error.resolution.contains("Check with the patient"));
        assert_eq!(carrier.calls().await, 1);
    }

    #[tokio::test]
    async fn fresh_claim_by_another_instance_is_waited_on_and_stale_one_fails() {
        let store = MemoryStore::default();
        let mut r = queued_recipient();
        r.status = RecipientStatus::Sending;
        r.claimed_at = Some("2026-11-26T14:59:30Z".parse().unwrap());
        let job = store.insert_recipient(r.clone()).await;
        let carrier = ScriptedCarrier::accepting();
        let d = dispatcher(store.clone(), carrier.clone());
        assert!(matches!(
            d.dispatch(&job).await.unwrap(),
            Dispatched::RetryAfter(_)
        ));
        r.claimed_at = Some("2026-11-26T14:50:00Z".parse().unwrap());
        let job = store.insert_recipient(r).await;
        assert_eq!(d.dispatch(&job).await.unwrap(), Dispatched::Done);
        assert_eq!(
            store.recipient(&job).await.unwrap().error.unwrap().code,
            "send_interrupted"
        );
        assert_eq!(carrier.calls().await, 0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay_seconds: 10,
            ..RetryPolicy::default()
        };
        assert_eq!(
            (p.delay_after(1), p.delay_after(2), p.delay_after(3)),
            (10, 20, 40)
        );
        assert_eq!(p.delay_after(30), 900);
    }
}
