//! The pump: one job per bulk that releases its recipients in waves under
//! the practice's cap and hands itself on. The dispatcher runs it when it
//! receives a [`PumpJob`]; the pump knows nothing of the dispatcher.

use super::{recipient_id, PUMP_GRACE};
use crate::app::rate_cap::BULK_KEY;
use crate::domain::bulk::{plan_wave, Pace, PumpJob, PumpStep, PumpToken};
use crate::domain::clock::{queue_delay, to_api_time};
use crate::domain::error::StoreError;
use crate::domain::message::{BulkStatus, SendJob};
use crate::ports::{BulkStore, Clock, PracticeStore, RateStore, SendQueue};

/// One run of a bulk's pump: releases the next wave or waits, then hands
/// the pump on to a new job. Whatever happens, the received job is done
/// with (a new pump job carries the pump on).
///
/// Never lost, never twice: the wave and the next pump job are enqueued
/// before the progress is recorded with a write conditioned on this job's
/// token. If the write fails (a duplicate of this job got there first, or
/// the bulk was canceled) the enqueued copies are harmless duplicates — the
/// dispatcher's claim lets one send through, and the orphaned pump job finds
/// a token that is not its own and stops. If this run dies before the write,
/// the queue delivers it again and it releases the same wave again.
pub async fn run_pump<S, Q, K>(
    store: &S,
    queue: &Q,
    clock: &K,
    job: &PumpJob,
    per_second: u32,
) -> Result<(), StoreError>
where
    S: BulkStore + PracticeStore + RateStore,
    Q: SendQueue,
    K: Clock,
{
    let (pid, mid) = (&job.practice_id, &job.message_id);
    let Some(message) = store.get_message_only(pid, mid).await? else {
        let now = clock.now();
        if job
            .token
            .made_at()
            .is_some_and(|made| now - made < PUMP_GRACE)
        {
            // Queued just ahead of its bulk, which is still being stored.
            queue.enqueue_delayed(&job.to_send_job(), 2).await?;
            tracing::info!(%job, "pump ahead of its bulk; looking again");
        } else {
            tracing::warn!(%job, "pump for a bulk that was never stored; dropped");
        }
        return Ok(());
    };
    let Some(progress) = message.bulk.clone() else {
        return Ok(());
    };
    if progress.pump.as_deref() != Some(job.token.as_str()) || progress.canceled_at.is_some() {
        tracing::info!(%job, "stale pump job (canceled, finished or duplicated); dropped");
        return Ok(());
    }
    let Some(practice) = store.get_practice(pid).await? else {
        return Ok(());
    };
    let (bucket, _) = store.read_bucket(pid, BULK_KEY).await?;
    let now = clock.now();
    let step = plan_wave(
        &bucket,
        now,
        progress.due,
        progress.sendable.saturating_sub(progress.released),
        &Pace::for_practice(&practice, per_second),
        practice.timezone.tz(),
        practice.quiet_hours.as_ref(),
    );
    let pump_job = |token: &PumpToken| {
        PumpJob {
            practice_id: pid.clone(),
            message_id: mid.clone(),
            token: token.clone(),
        }
        .to_send_job()
    };
    let (released, next) = match step {
        PumpStep::Finished => (progress.released, None),
        PumpStep::Wait { until } => {
            let token = PumpToken::new(now);
            queue
                .enqueue_delayed(&pump_job(&token), queue_delay(until - now).max(1))
                .await?;
            tracing::info!(%job, until = %to_api_time(&until), "bulk waits");
            (progress.released, Some(token))
        }
        PumpStep::Release { delays, next_run } => {
            let count = u32::try_from(delays.len()).unwrap_or(u32::MAX);
            let wave: Vec<(SendJob, u32)> = delays
                .iter()
                .zip(progress.released + 1..)
                .map(|(delay, n)| {
                    let job = SendJob {
                        practice_id: pid.clone(),
                        message_id: mid.clone(),
                        recipient_id: recipient_id(n),
                    };
                    // Rounded up: never before the instant planned for it.
                    (job, queue_delay(*delay))
                })
                .collect();
            queue.enqueue_wave(&wave).await?;
            let released = progress.released + count;
            let next = if released < progress.sendable {
                let token = PumpToken::new(now);
                queue
                    .enqueue_delayed(&pump_job(&token), queue_delay(next_run - now).max(1))
                    .await?;
                Some(token)
            } else {
                None
            };
            tracing::info!(%job, count, released, sendable = progress.sendable, "bulk wave released");
            (released, next)
        }
    };
    if !store
        .advance_pump(
            pid,
            mid,
            job.token.as_str(),
            released,
            next.as_ref().map(PumpToken::as_str),
        )
        .await?
    {
        tracing::info!(%job, "pump moved on or bulk canceled meanwhile; this run's copies are duplicates");
        return Ok(());
    }
    if progress.released == 0 && released > 0 {
        // Sending begins: the tracking list shows it from now on as sending.
        for from in [BulkStatus::Scheduled, BulkStatus::Sending] {
            if store
                .set_bulk_status(pid, mid, from, BulkStatus::Sending, Some(now))
                .await?
            {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::test_support::*;
    use super::super::PUMP_GRACE;
    use super::*;
    use crate::testing::{sample_practice, MemoryQueue};

    #[tokio::test]
    async fn a_refused_pump_job_stores_nothing_and_a_pump_ahead_of_its_bulk_waits() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 2).await;
        let refusing = MemoryQueue {
            refuse: true,
            ..MemoryQueue::default()
        };
        let app = bulk_app(&store, &refusing);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let body = serde_json::json!({"patient_ids": ids(2), "text": "Hi", "acknowledge_bulk_limit": true});
        let e = accept(&app, &practice, body, now).await.unwrap_err();
        assert_eq!(e.kind, crate::domain::error::ErrorKind::Unavailable);
        assert!(
            store.sending_bulks("demo").await.unwrap().is_empty(),
            "nothing stored"
        );

        // A pump that arrives before its bulk is stored looks again; one
        // whose bulk never appeared within the grace period stops.
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let early = PumpJob {
            practice_id: "demo".into(),
            message_id: "not-yet".into(),
            token: PumpToken::new(clock.now()),
        };
        run_pump(&store, &queue, &clock, &early, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), 1);
        clock.set(clock.now() + PUMP_GRACE);
        run_pump(&store, &queue, &clock, &early, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), 1, "given up");
    }

    #[tokio::test]
    async fn a_stale_pump_job_does_nothing() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true});
        accept(&app, &practice, body, clock.now()).await.unwrap();
        let pump = as_pump(queue.delayed.lock().await.remove(0).0);
        // The pump runs once, then a duplicate of the same job arrives.
        run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
        let released = queue.delayed.lock().await.len();
        assert_eq!(released, 3, "three recipients; the pump is finished");
        run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), released);
    }
}
