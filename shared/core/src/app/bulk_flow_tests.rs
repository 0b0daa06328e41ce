//! Bulk messages end to end in memory: accepted bulks run through the
//! queue, the pump and a real dispatcher, checked against the cap, the
//! number's pace, cancels and STOPs.

use chrono::{DateTime, Duration, Utc};

use crate::app::bulk::pump::run_pump;
use crate::app::bulk::test_support::*;
use crate::app::dispatch::{Dispatched, Dispatcher, RetryPolicy};
use crate::domain::message::{RecipientStatus, SendJob};
use crate::ports::{BulkStore, Clock, OptOutChange, OptOutStore};
use crate::testing::{sample_practice, MemoryQueue, MemoryStore, ScriptedCarrier};

/// Runs queue jobs in visibility order through a real dispatcher until
/// the queue is empty or `until`, recording how often each job was
/// received. Returns the receive count per recipient job.
struct Sim {
    store: MemoryStore,
    queue: MemoryQueue,
    clock: TestClock,
    pending: Vec<(DateTime<Utc>, u64, SendJob)>,
    seq: u64,
    receives: std::collections::HashMap<String, u32>,
    pump_runs: u32,
}

impl Sim {
    fn new(store: &MemoryStore, queue: &MemoryQueue, clock: &TestClock) -> Self {
        Self {
            store: store.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            pending: Vec::new(),
            seq: 0,
            receives: Default::default(),
            pump_runs: 0,
        }
    }

    async fn collect(&mut self) {
        let now = self.clock.now();
        for job in self.queue.jobs.lock().await.drain(..) {
            self.seq += 1;
            self.pending.push((now, self.seq, job));
        }
        for (job, delay) in self.queue.delayed.lock().await.drain(..) {
            self.seq += 1;
            self.pending
                .push((now + Duration::seconds(i64::from(delay)), self.seq, job));
        }
    }

    async fn run_until(&mut self, until: DateTime<Utc>) {
        let d = Dispatcher {
            store: self.store.clone(),
            queue: self.queue.clone(),
            carrier: ScriptedCarrier::accepting(),
            clock: self.clock.clone(),
            retry: RetryPolicy::default(),
            bulk_per_second: 1,
            inline_wait: Duration::zero(),
            practices: Default::default(),
        };
        loop {
            self.collect().await;
            self.pending.sort_by_key(|(t, s, _)| (*t, *s));
            if self.pending.is_empty() || self.pending[0].0 > until {
                return;
            }
            let (t, _, job) = self.pending.remove(0);
            self.clock.set(t.max(self.clock.now()));
            if is_pump(&job) {
                self.pump_runs += 1;
            } else {
                *self.receives.entry(job.to_tag()).or_default() += 1;
            }
            match d.dispatch(&job).await.unwrap() {
                Dispatched::Done => {}
                Dispatched::RetryAfter(s) => {
                    self.seq += 1;
                    self.pending.push((
                        self.clock.now() + Duration::seconds(i64::from(s)),
                        self.seq,
                        job,
                    ));
                }
            }
        }
    }
}

#[tokio::test]
async fn a_bulk_goes_out_in_waves_within_the_cap_and_finishes_on_time() {
    let mut practice = sample_practice("demo");
    practice.hourly_cap = 5;
    practice.cap_window_seconds = 30;
    let store = setup(&practice, 12).await;
    let queue = MemoryQueue::default();
    let clock = TestClock::new();
    let app = bulk_app(&store, &queue);
    let body = serde_json::json!({"patient_ids": ids(12), "text": "Hi {first_name}", "acknowledge_bulk_limit": true});
    let view = accept(&app, &practice, body, clock.now()).await.unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    // 12 at 5 per 30 s: the 11th and 12th go in the third window.
    assert_eq!(view["estimated_completion_at"], "2026-12-01T15:01:01.000Z");

    let mut sim = Sim::new(&store, &queue, &clock);
    sim.run_until(clock.now() + Duration::hours(1)).await;
    let times = sent_times(&store, "demo", &id).await;
    assert_eq!(times.len(), 12, "all sent");
    assert!(max_in_window(&times, Duration::seconds(30)) <= 5);
    // Within ceil(12/5) = 3 windows plus 5 minutes of the start.
    let start: DateTime<Utc> = T0.parse().unwrap();
    assert!(*times.last().unwrap() <= start + Duration::seconds(3 * 30 + 300));
    // Waves: 1/s inside a wave.
    assert!(times
        .windows(2)
        .all(|w| w[1] - w[0] >= Duration::seconds(1)));
    // Each recipient arrives when there is room for it: received once,
    // never deferred; the pump runs about twice per wave.
    let receives: u32 = sim.receives.values().sum();
    assert_eq!(receives, 12);
    assert!(sim.pump_runs <= 6, "{} pump runs", sim.pump_runs);
    let message = store.get_message_only("demo", &id).await.unwrap().unwrap();
    assert_eq!(message.counts.sent, 12);
    assert_eq!(message.bulk.unwrap().pump, None, "pump finished");
    assert!(message.sent_at.is_some());
}

#[tokio::test]
async fn a_direct_message_is_not_held_behind_a_bulk() {
    let mut practice = sample_practice("demo");
    practice.hourly_cap = 2;
    practice.cap_window_seconds = 600;
    let store = setup(&practice, 6).await;
    let queue = MemoryQueue::default();
    let clock = TestClock::new();
    let app = bulk_app(&store, &queue);
    let body =
        serde_json::json!({"patient_ids": ids(6), "text": "Hi", "acknowledge_bulk_limit": true});
    accept(&app, &practice, body, clock.now()).await.unwrap();
    let mut sim = Sim::new(&store, &queue, &clock);
    sim.run_until(clock.now() + Duration::seconds(30)).await;
    // The cap is used up for ten minutes; a direct message goes now.
    let mut direct = crate::testing::queued_recipient();
    direct.practice_id = "demo".into();
    let job = store.insert_recipient(direct).await;
    queue.jobs.lock().await.push(job.clone());
    sim.run_until(clock.now()).await;
    let r = store.recipient(&job).await.unwrap();
    assert_eq!(r.status, RecipientStatus::Sent);
}

#[tokio::test]
async fn cancel_mid_way_stops_the_rest_and_stop_mid_way_skips_that_number() {
    let mut practice = sample_practice("demo");
    practice.hourly_cap = 4;
    practice.cap_window_seconds = 60;
    let store = setup(&practice, 10).await;
    let queue = MemoryQueue::default();
    let clock = TestClock::new();
    let app = bulk_app(&store, &queue);
    let body =
        serde_json::json!({"patient_ids": ids(10), "text": "Hi", "acknowledge_bulk_limit": true});
    let view = accept(&app, &practice, body, clock.now()).await.unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    // Patient 2 texts STOP before its turn.
    store
        .record_opt_out(&OptOutChange {
            practice_id: "demo".into(),
            phone: phone(2).to_string(),
            opted_out: true,
            keyword: "STOP".into(),
            source: "sms".into(),
            at: clock.now(),
        })
        .await
        .unwrap();
    let mut sim = Sim::new(&store, &queue, &clock);
    sim.run_until(clock.now() + Duration::seconds(20)).await;
    let first_wave = sent_times(&store, "demo", &id).await.len();
    // Recipients 1, 2, 4 and 5: the STOP (3) did not use a slot.
    assert_eq!(first_wave, 4);
    let view = app.cancel(&practice, &id, clock.now()).await.unwrap();
    let view = serde_json::to_value(&view).unwrap();
    assert_eq!(view["counts"]["canceled"], 5);
    assert_eq!(view["counts"]["skipped"], 1);
    // Four reached the carrier and await their delivery reports.
    assert_eq!(view["status"], "sending");
    assert!(view["estimated_completion_at"].is_null());
    // Idempotent, and nothing more is sent.
    app.cancel(&practice, &id, clock.now()).await.unwrap();
    sim.run_until(clock.now() + Duration::hours(2)).await;
    assert_eq!(sent_times(&store, "demo", &id).await.len(), 4);
    let (skipped, _) = store
        .recipients_page("demo", &id, Some(RecipientStatus::Skipped), 50, None)
        .await
        .unwrap();
    assert_eq!(skipped[0].to, phone(2));
}

#[tokio::test]
async fn a_scheduled_bulk_waits_for_its_time_and_canceling_before_it_cancels_all() {
    let practice = sample_practice("demo");
    let store = setup(&practice, 3).await;
    let queue = MemoryQueue::default();
    let clock = TestClock::new();
    let app = bulk_app(&store, &queue);
    let body = serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true, "send_at": "2026-12-01T10:10:00-05:00"});
    let view = accept(&app, &practice, body, clock.now()).await.unwrap();
    assert_eq!(view["status"], "scheduled");
    assert_eq!(view["estimated_completion_at"], "2026-12-01T15:10:02.000Z");
    let id = view["id"].as_str().unwrap().to_string();
    let mut sim = Sim::new(&store, &queue, &clock);
    let start: DateTime<Utc> = T0.parse().unwrap();
    sim.run_until(start + Duration::minutes(9)).await;
    assert!(sent_times(&store, "demo", &id).await.is_empty());
    sim.run_until(start + Duration::minutes(14)).await;
    let times = sent_times(&store, "demo", &id).await;
    assert_eq!(times.len(), 3);
    assert!(times[0] >= "2026-12-01T15:10:00Z".parse::<DateTime<Utc>>().unwrap());

    let body = serde_json::json!({"patient_ids": ids(3), "text": "Later", "acknowledge_bulk_limit": true, "send_at": "2026-12-02T10:00:00-05:00"});
    let view = accept(&app, &practice, body, clock.now()).await.unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    let view =
        serde_json::to_value(app.cancel(&practice, &id, clock.now()).await.unwrap()).unwrap();
    assert_eq!(view["status"], "canceled");
    assert_eq!(view["counts"]["canceled"], 3);
}

#[tokio::test]
async fn a_short_wait_for_the_number_is_spent_in_the_function_not_the_queue() {
    let practice = sample_practice("demo");
    let store = setup(&practice, 3).await;
    let queue = MemoryQueue::default();
    let app = bulk_app(&store, &queue);
    let clock = crate::ports::SystemClock;
    let body =
        serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true});
    let view = accept(&app, &practice, body, clock.now()).await.unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    let pump = as_pump(queue.delayed.lock().await.remove(0).0);
    run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
    let wave: Vec<SendJob> = queue
        .delayed
        .lock()
        .await
        .drain(..)
        .map(|(j, _)| j)
        .collect();
    assert_eq!(wave.len(), 3);
    let dispatcher = |inline_wait| Dispatcher {
        store: store.clone(),
        queue: queue.clone(),
        carrier: ScriptedCarrier::accepting(),
        clock,
        retry: RetryPolicy::default(),
        bulk_per_second: 1,
        inline_wait,
        practices: Default::default(),
    };
    // Delivered all at once (as if SQS were early): the second waits
    // for the number's next second in the function...
    let patient = dispatcher(Duration::milliseconds(1500));
    assert_eq!(patient.dispatch(&wave[0]).await.unwrap(), Dispatched::Done);
    assert_eq!(patient.dispatch(&wave[1]).await.unwrap(), Dispatched::Done);
    assert!(
        queue.delayed.lock().await.is_empty(),
        "nothing went back to the queue"
    );
    let times = sent_times(&store, "demo", &id).await;
    assert_eq!(times.len(), 2);
    // `sent_at` is taken when the carrier has answered, a moment after the
    // submission the number's bucket spaces by a second; allow for that.
    assert!(
        times[1] - times[0] >= Duration::milliseconds(950),
        "{times:?}"
    );
    // ...while without an inline wait it goes back to the queue.
    let hasty = dispatcher(Duration::zero());
    assert_eq!(hasty.dispatch(&wave[2]).await.unwrap(), Dispatched::Done);
    assert_eq!(queue.delayed.lock().await.len(), 1);
    assert_eq!(sent_times(&store, "demo", &id).await.len(), 2);
}
