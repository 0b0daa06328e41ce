//! Bulk messages: how a list goes out in waves under the practice's cap, the
//! per-number throughput and quiet hours, and when it should be done.
//!
//! A bulk's recipients are numbered `1..=target_count`; the ones that can be
//! sent come first (`1..=sendable`), the ones skipped at acceptance after.
//! One *pump* job per bulk walks `1..=sendable`: each run releases the next
//! wave (as many as the cap has room for now), each recipient with a queue
//! delay of its place in the wave ÷ the number's messages per second, and
//! comes back when capacity returns. The dispatcher still takes a cap token
//! and a number token before every carrier submission, so the cap holds
//! whatever the pump does; the pump only keeps deferrals rare.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::job::SendJob;
use super::limits::SQS_MAX_DELAY;
use super::practice::{Practice, QuietHours};
use super::quiet_hours::{next_allowed, window_closes};
use super::rate_limit::{Decision, RateBucket};

/// A bulk message's sending progress, stored on the message item. Unset
/// options are left out (not stored as NULL), so the adapter's
/// `attribute_not_exists` conditions read as "unset".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkProgress {
    /// Recipients `1..=sendable` are to be sent; the rest were skipped.
    pub sendable: u32,
    /// How many of them the pump has put on the send queue.
    pub released: u32,
    /// Token of the one live pump job (`None` once all are released, or
    /// after a cancel). A pump job with another token is a stale duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pump: Option<String>,
    /// The first instant the bulk may go: `send_at` moved past quiet hours,
    /// or acceptance.
    pub due: DateTime<Utc>,
    /// When the office canceled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<DateTime<Utc>>,
}

/// The token of a bulk's pump job. On the queue a pump job is a
/// [`SendJob`] whose recipient id is the token, `*{epoch ms}-{random}`
/// (recipient ids are digits, so the `*` tells them apart). The token holds
/// its creation time, so a pump that finds no bulk knows whether the bulk
/// may still be being stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PumpToken(String);

impl PumpToken {
    /// What marks a recipient id as a pump token.
    const PREFIX: char = '*';

    /// A new token made at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(format!(
            "{}{}-{}",
            Self::PREFIX,
            now.timestamp_millis(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
    }

    /// The token a recipient id carries, if it is one.
    pub fn parse(recipient_id: &str) -> Option<Self> {
        recipient_id
            .starts_with(Self::PREFIX)
            .then(|| Self(recipient_id.to_string()))
    }

    /// When the token was made, if it says.
    pub fn made_at(&self) -> Option<DateTime<Utc>> {
        let ms = self
            .0
            .strip_prefix(Self::PREFIX)?
            .split('-')
            .next()?
            .parse()
            .ok()?;
        DateTime::<Utc>::from_timestamp_millis(ms)
    }

    /// The token as stored and queued.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PumpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One run of a bulk's pump, as the dispatcher receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpJob {
    /// Owner.
    pub practice_id: String,
    /// The bulk.
    pub message_id: String,
    /// Which pump run this is; only the bulk's live token may run.
    pub token: PumpToken,
}

impl PumpJob {
    /// The job as it goes on the queue (the wire format of every job).
    pub fn to_send_job(&self) -> SendJob {
        SendJob {
            practice_id: self.practice_id.clone(),
            message_id: self.message_id.clone(),
            recipient_id: self.token.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for PumpJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_send_job().fmt(f)
    }
}

/// What a job on the send queue asks for: one recipient's send, one run
/// of a bulk's pump, an appointment's due reminder, or the minute's sweep
/// for due reminders. All travel as a [`SendJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedJob {
    /// Send to one recipient.
    Send(SendJob),
    /// Run a bulk's pump.
    Pump(PumpJob),
    /// Send an appointment's due reminder.
    Reminder(crate::domain::appointment::ReminderJob),
    /// Find the reminders due in the next minute and queue them.
    SweepReminders,
}

impl From<SendJob> for QueuedJob {
    fn from(job: SendJob) -> Self {
        use crate::domain::appointment::{ReminderJob, SWEEP_JOB};
        if job.recipient_id == SWEEP_JOB {
            return QueuedJob::SweepReminders;
        }
        if let Some(reminder) = ReminderJob::from_send_job(&job) {
            return QueuedJob::Reminder(reminder);
        }
        match PumpToken::parse(&job.recipient_id) {
            Some(token) => QueuedJob::Pump(PumpJob {
                practice_id: job.practice_id,
                message_id: job.message_id,
                token,
            }),
            None => QueuedJob::Send(job),
        }
    }
}

/// The limits a practice's bulk sends are held to: by the pump when it
/// plans a wave, by the dispatcher before every carrier submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Bulk submissions per rolling window, all bulks of the practice together.
    pub cap: u32,
    /// The window.
    pub window: Duration,
    /// Carrier submissions per second through one sending number.
    pub per_second: u32,
}

impl Pace {
    /// The practice's cap and window, and `per_second` (at least 1) through
    /// each sending number.
    pub fn for_practice(practice: &Practice, per_second: u32) -> Self {
        Self {
            cap: practice.hourly_cap,
            window: Duration::seconds(i64::from(practice.cap_window_seconds)),
            per_second: per_second.max(1),
        }
    }

    /// Time between two submissions through one number.
    pub fn spacing(&self) -> Duration {
        Duration::milliseconds(1000 / i64::from(self.per_second.max(1)))
    }
}

/// A wait for the cap longer than this ends a wave. Shorter ones are the
/// previous wave's submissions leaving the window one by one, a little
/// slower than planned; they are planned through.
pub const MAX_GAP: Duration = Duration::seconds(2);

/// What one pump run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PumpStep {
    /// Put the next `delays.len()` recipients on the queue, the `i`-th
    /// delayed by `delays[i]` (when the cap and the number's pace have room
    /// for it), and run again at `next_run`.
    Release {
        /// Queue delay of each recipient of the wave, in order.
        delays: Vec<Duration>,
        /// When the pump looks again (just after the wave's last send).
        next_run: DateTime<Utc>,
    },
    /// Nothing can go within the planning horizon (cap used up, quiet
    /// hours, not due): look again then.
    Wait {
        /// When.
        until: DateTime<Utc>,
    },
    /// Everything is released.
    Finished,
}

/// Plans one pump run at `now` for a bulk with `remaining` recipients not yet
/// released, given the practice's bulk bucket as read.
///
/// The wave is planned on a copy of the bucket: recipient after recipient,
/// at the number's pace, each at the first instant the cap has room for it,
/// until the cap would make it wait longer than [`MAX_GAP`] (the window is
/// full), and within the next 15 minutes (SQS's longest delay) and before
/// quiet hours begin. Each recipient is then
/// queued with the delay to its instant, so it arrives when capacity is
/// there and is rarely deferred; the dispatcher still takes the real tokens.
pub fn plan_wave(
    bucket: &RateBucket,
    now: DateTime<Utc>,
    due: DateTime<Utc>,
    remaining: u32,
    pace: &Pace,
    timezone: Tz,
    quiet: Option<&QuietHours>,
) -> PumpStep {
    if remaining == 0 {
        return PumpStep::Finished;
    }
    if now < due {
        return PumpStep::Wait { until: due };
    }
    let allowed = next_allowed(now, timezone, quiet);
    if allowed > now {
        return PumpStep::Wait { until: allowed };
    }
    let spacing = pace.spacing();
    let closes = window_closes(now, timezone, quiet);
    // A wave is never planned further ahead than the queue can delay.
    let horizon = now + SQS_MAX_DELAY;
    let end = closes.map_or(horizon, |c| c.min(horizon));
    let mut ring = bucket.clone();
    let mut delays = Vec::new();
    let mut t = now;
    while delays.len() < remaining as usize {
        let at = match ring.decide(t, pace.cap, pace.window) {
            Decision::Take(next) => {
                ring = next;
                t
            }
            Decision::WaitUntil(at) => {
                let at = at.max(t + Duration::milliseconds(1));
                // A wave ends where the cap makes it wait: the next one is
                // planned from the submissions as they really happened.
                if at >= end || (!delays.is_empty() && at - t > MAX_GAP) {
                    t = at;
                    break;
                }
                t = at;
                continue;
            }
        };
        if at >= end {
            break;
        }
        delays.push(at - now);
        t = at + spacing;
    }
    match delays.last() {
        Some(last) => PumpStep::Release {
            next_run: now + *last + Duration::seconds(1),
            delays,
        },
        None if closes.is_some_and(|c| t >= c) => PumpStep::Wait {
            until: next_allowed(end, timezone, quiet),
        },
        None => PumpStep::Wait { until: t },
    }
}

/// When the last of `own` more bulk submissions is expected, starting at
/// `start`, behind `ahead` submissions the practice already has in flight,
/// under the cap (from the bucket as read), the number's pace and quiet
/// hours. `None` when `own` is 0.
pub fn estimate_completion(
    bucket: &RateBucket,
    start: DateTime<Utc>,
    ahead: u32,
    own: u32,
    pace: &Pace,
    timezone: Tz,
    quiet: Option<&QuietHours>,
) -> Option<DateTime<Utc>> {
    if own == 0 {
        return None;
    }
    let spacing = pace.spacing();
    let mut ring = bucket.clone();
    let mut t = start;
    let mut last = None;
    for _ in 0..ahead.saturating_add(own) {
        if let Some(prev) = last {
            t = t.max(prev + spacing);
        }
        loop {
            t = next_allowed(t, timezone, quiet);
            match ring.decide(t, pace.cap, pace.window) {
                Decision::Take(next) => {
                    ring = next;
                    break;
                }
                Decision::WaitUntil(at) => t = at.max(t + Duration::milliseconds(1)),
            }
        }
        last = Some(t);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const NY: Tz = chrono_tz::America::New_York;

    fn pace(cap: u32, window_s: i64) -> Pace {
        Pace {
            cap,
            window: Duration::seconds(window_s),
            per_second: 1,
        }
    }

    fn bucket_with(times: &[DateTime<Utc>], cap: u32, window: Duration) -> RateBucket {
        let mut b = RateBucket::default();
        for t in times {
            match b.decide(*t, cap, window) {
                Decision::Take(n) => b = n,
                Decision::WaitUntil(_) => panic!("setup over the cap"),
            }
        }
        b
    }

    fn secs(step: &PumpStep) -> Vec<i64> {
        match step {
            PumpStep::Release { delays, .. } => delays.iter().map(|d| d.num_seconds()).collect(),
            other => panic!("not a release: {other:?}"),
        }
    }

    #[test]
    fn first_wave_is_the_whole_cap_spaced_by_the_number_pace() {
        let now = utc("2026-12-01T15:00:00Z");
        let step = plan_wave(
            &RateBucket::default(),
            now,
            now,
            1000,
            &pace(250, 3600),
            NY,
            None,
        );
        // The 251st would wait an hour, beyond the 15-minute horizon.
        assert_eq!(secs(&step), (0..250).collect::<Vec<_>>());
        assert!(
            matches!(step, PumpStep::Release { next_run, .. } if next_run == now + Duration::seconds(250))
        );
    }

    #[test]
    fn a_wave_ends_where_the_cap_makes_it_wait() {
        let t0 = utc("2026-12-01T15:00:00Z");
        let p = pace(5, 30);
        let times: Vec<_> = (0..5).map(|i| t0 + Duration::seconds(i)).collect();
        let b = bucket_with(&times, 5, p.window);
        // At +6 s the cap is used up: the next five go as the first five
        // leave the window (+30..+34 s); the sixth would wait until +60 s,
        // so it is left for the next run, planned from real submissions.
        let step = plan_wave(&b, t0 + Duration::seconds(6), t0, 7, &p, NY, None);
        assert_eq!(secs(&step), vec![24, 25, 26, 27, 28]);
        // Submissions that left the window slower than planned (1.5 s
        // apart) are followed, not cut into waves of one.
        let slow: Vec<_> = (0..5)
            .map(|i| t0 + Duration::milliseconds(1500 * i))
            .collect();
        let b = bucket_with(&slow, 5, p.window);
        let step = plan_wave(&b, t0 + Duration::seconds(30), t0, 5, &p, NY, None);
        assert_eq!(secs(&step), vec![0, 1, 3, 4, 6]);
    }

    #[test]
    fn a_used_up_hourly_cap_waits_beyond_the_horizon() {
        let t0 = utc("2026-12-01T15:00:00Z");
        let p = pace(3, 3600);
        let times: Vec<_> = (0..3).map(|i| t0 + Duration::seconds(i)).collect();
        let b = bucket_with(&times, 3, p.window);
        let step = plan_wave(&b, t0 + Duration::seconds(5), t0, 2, &p, NY, None);
        assert_eq!(
            step,
            PumpStep::Wait {
                until: t0 + Duration::seconds(3600)
            }
        );
        // Within 15 minutes of the oldest leaving the window, it is planned.
        let step = plan_wave(&b, t0 + Duration::seconds(3000), t0, 2, &p, NY, None);
        assert_eq!(secs(&step), vec![600, 601]);
    }

    #[test]
    fn waves_stop_before_quiet_hours_and_resume_when_the_window_opens() {
        let quiet = crate::domain::practice::QuietHours::parse_setting("08:00-21:00")
            .unwrap()
            .unwrap();
        // 20:58 EST: two minutes left → 120 recipients at 1/s.
        let now = utc("2026-12-02T01:58:00Z");
        let step = plan_wave(
            &RateBucket::default(),
            now,
            now,
            250,
            &pace(250, 3600),
            NY,
            Some(&quiet),
        );
        assert_eq!(secs(&step).len(), 120);
        // 22:00 EST: wait for 08:00 EST.
        let late = utc("2026-12-02T03:00:00Z");
        let step = plan_wave(
            &RateBucket::default(),
            late,
            late,
            250,
            &pace(250, 3600),
            NY,
            Some(&quiet),
        );
        assert_eq!(
            step,
            PumpStep::Wait {
                until: utc("2026-12-02T13:00:00Z")
            }
        );
    }

    #[test]
    fn not_due_yet_and_nothing_left() {
        let now = utc("2026-12-01T15:00:00Z");
        let due = now + Duration::minutes(5);
        let p = pace(250, 3600);
        assert_eq!(
            plan_wave(&RateBucket::default(), now, due, 3, &p, NY, None),
            PumpStep::Wait { until: due }
        );
        assert_eq!(
            plan_wave(&RateBucket::default(), now, now, 0, &p, NY, None),
            PumpStep::Finished
        );
    }

    #[test]
    fn estimate_counts_whole_windows_and_what_is_ahead() {
        let now = utc("2026-12-01T15:00:00Z");
        let p = pace(250, 3600);
        // 250 fit in the first window at 1/s: the last at +249 s.
        assert_eq!(
            estimate_completion(&RateBucket::default(), now, 0, 250, &p, NY, None),
            Some(now + Duration::seconds(249))
        );
        // The 251st waits one window after the first.
        assert_eq!(
            estimate_completion(&RateBucket::default(), now, 0, 251, &p, NY, None),
            Some(now + Duration::seconds(3600))
        );
        // 1000 = four windows: the last at 3 h + 249 s.
        assert_eq!(
            estimate_completion(&RateBucket::default(), now, 0, 1000, &p, NY, None),
            Some(now + Duration::seconds(3 * 3600 + 249))
        );
        // Behind another bulk's 250 still in flight, 10 more wait a window.
        assert_eq!(
            estimate_completion(&RateBucket::default(), now, 250, 10, &p, NY, None),
            Some(now + Duration::seconds(3609))
        );
        assert_eq!(
            estimate_completion(&RateBucket::default(), now, 0, 0, &p, NY, None),
            None
        );
    }

    #[test]
    fn estimate_skips_quiet_hours() {
        let quiet = crate::domain::practice::QuietHours::parse_setting("08:00-21:00")
            .unwrap()
            .unwrap();
        // 20:59:58 EST, three to send at 1/s: two now, the third at 08:00.
        let now = utc("2026-12-02T01:59:58Z");
        assert_eq!(
            estimate_completion(
                &RateBucket::default(),
                now,
                0,
                3,
                &pace(250, 3600),
                NY,
                Some(&quiet)
            ),
            Some(utc("2026-12-02T13:00:00Z"))
        );
    }

    #[test]
    fn a_pump_job_travels_as_a_send_job_with_its_token_as_recipient_id() {
        let now: DateTime<Utc> = "2026-12-01T15:00:00Z".parse().unwrap();
        let pump = PumpJob {
            practice_id: "demo".into(),
            message_id: "m1".into(),
            token: PumpToken::new(now),
        };
        let wire = serde_json::to_string(&pump.to_send_job()).unwrap();
        assert!(wire.contains(r#""recipient_id":"*"#), "{wire}");
        let back: SendJob = serde_json::from_str(&wire).unwrap();
        let QueuedJob::Pump(parsed) = QueuedJob::from(back) else {
            panic!("not a pump job")
        };
        assert_eq!(parsed, pump);
        assert_eq!(parsed.token.made_at(), Some(now));
        let send = SendJob {
            practice_id: "demo".into(),
            message_id: "m1".into(),
            recipient_id: "00001".into(),
        };
        assert_eq!(QueuedJob::from(send.clone()), QueuedJob::Send(send));
    }
}
