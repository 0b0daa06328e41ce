//! The per-practice bulk cap and the per-number carrier throughput, shared by
//! every dispatcher instance through conditional writes on one bucket item
//! (never in memory).
//!
//! [`take_token`] is the read → decide → conditional write loop over a
//! [`RateStore`]: the decision is `crate::domain::rate_limit`'s exact ring,
//! the write is refused when another instance wrote the bucket since the
//! read, and the loser reads again and decides again. Every [`RateStore`] is
//! thereby a [`RateLimiter`].
//!
//! Bucket keys, per practice: [`BULK_KEY`] for the bulk cap (`hourly_cap` per
//! `cap_window_seconds`, all of the practice's bulks together) and
//! [`number_key`] for a sending number's throughput (messages per second).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::bulk::Pace;
use crate::domain::error::StoreError;
use crate::domain::rate_limit::Decision;
use crate::ports::{RateLimiter, RateStore};

/// Key of a practice's bulk-cap bucket.
pub const BULK_KEY: &str = "bulk";

/// Default carrier throughput of one sending number, messages per second.
pub const DEFAULT_NUMBER_PER_SECOND: u32 = 1;

/// How many times [`take_token`] reads again after losing a race before it
/// gives up with a [`StoreError`] (the queue then retries the send later).
/// Each lost race means another instance took a token, so running out needs
/// a hundred instances writing the same bucket within one read-write round.
pub const MAX_ATTEMPTS: u32 = 100;

/// Key of a sending number's throughput bucket (`number#+14155550142`).
pub fn number_key(e164: &str) -> String {
    format!("number#{e164}")
}

/// Takes one submission from bucket `key` of a practice at `now`, at most
/// `cap` per rolling `window`: `Ok(None)` when taken (the caller submits
/// now), `Ok(Some(at))` when nothing was taken and capacity returns exactly
/// at `at`.
///
/// Reads the bucket consistently, decides, and writes the new state only if
/// the bucket's `count` is still the one read; a lost race reads and decides
/// again, at once (the winner made progress, so this cannot spin idle).
pub async fn take_token<S: RateStore + ?Sized>(
    store: &S,
    practice_id: &str,
    key: &str,
    now: DateTime<Utc>,
    cap: u32,
    window: Duration,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    take_token_from(store, practice_id, key, now, cap, window, None).await
}

/// [`take_token`], starting from a state of the bucket just read (one read
/// fewer); the conditional write still catches any change since.
async fn take_token_from<S: RateStore + ?Sized>(
    store: &S,
    practice_id: &str,
    key: &str,
    now: DateTime<Utc>,
    cap: u32,
    window: Duration,
    mut just_read: Option<(crate::domain::rate_limit::RateBucket, Option<u64>)>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let (bucket, stored_count) = match just_read.take() {
            Some(read) => read,
            None => store.read_bucket(practice_id, key).await?,
        };
        match bucket.decide(now, cap, window) {
            Decision::WaitUntil(at) => return Ok(Some(at)),
            Decision::Take(next) => {
                if store
                    .write_bucket(practice_id, key, &next, stored_count)
                    .await?
                {
                    return Ok(None);
                }
            }
        }
    }
    Err(StoreError::new(
        "take rate token",
        format!("bucket {key} still contended after {MAX_ATTEMPTS} attempts"),
    ))
}

#[async_trait]
impl<S: RateStore + ?Sized> RateLimiter for S {
    async fn try_take(
        &self,
        practice_id: &str,
        key: &str,
        now: DateTime<Utc>,
        cap: u32,
        window: Duration,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        take_token(self, practice_id, key, now, cap, window).await
    }
}

/// Takes what one bulk recipient needs to reach the carrier through sending
/// number `from` at `now`: a token of the number's throughput, then one of
/// the practice's bulk cap. `Ok(None)`: submit now. `Ok(Some(at))`: defer the
/// recipient to `at`.
///
/// The order is deliberate:
///
/// 1. A read of the bulk bucket first: while the practice's cap is used up
///    the recipient is deferred to the instant it returns, without touching
///    the number (whose throughput direct messages share) and without a
///    write. Waiting recipients thus wake when bulk capacity returns, not
///    every second.
/// 2. The number's token before the bulk token: the bulk cap counts carrier
///    submissions, so its token must be the last thing taken before the
///    submission; had it been taken and the number then said "wait", the
///    recorded time would precede the real submission. The other way round,
///    a number token left unused (another instance filled the cap between
///    steps 1 and 3) only costs the number one slot of throughput.
/// 3. The bulk token, with [`take_token`]'s conditional write.
///
/// (A direct message takes only the number token.)
pub async fn take_bulk_submission<S: RateStore + ?Sized>(
    store: &S,
    practice_id: &str,
    from: &str,
    now: DateTime<Utc>,
    limits: &Pace,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let bulk = store.read_bucket(practice_id, BULK_KEY).await?;
    if let Decision::WaitUntil(at) = bulk.0.decide(now, limits.cap, limits.window) {
        return Ok(Some(at));
    }
    let number = take_token(
        store,
        practice_id,
        &number_key(from),
        now,
        limits.per_second,
        Duration::seconds(1),
    )
    .await?;
    if number.is_some() {
        return Ok(number);
    }
    // The bulk bucket as read in step 1: if another instance took from it
    // since, the conditional write fails and it is read again.
    take_token_from(
        store,
        practice_id,
        BULK_KEY,
        now,
        limits.cap,
        limits.window,
        Some(bulk),
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use tokio::task::JoinSet;

    use super::*;
    use crate::domain::rate_limit::RateBucket;

    const PRACTICE: &str = "p1";
    const FROM: &str = "+14155550100";
    /// 2023-11-14T22:13:20Z.
    const T0: i64 = 1_700_000_000_000;
    const MINUTE: i64 = 60_000;
    const DAY: i64 = 24 * 60 * MINUTE;

    fn instant(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap()
    }

    /// Buckets in memory with the DynamoDB adapter's conditional semantics.
    /// With an RNG it yields to other tasks between a read and the write that
    /// follows, at random, so concurrent dispatchers really lose races.
    #[derive(Default)]
    struct MemRates {
        buckets: Mutex<HashMap<(String, String), RateBucket>>,
        interleave: Mutex<Option<StdRng>>,
        writes: AtomicU64,
        lost: AtomicU64,
    }

    impl MemRates {
        fn racing(seed: u64) -> Self {
            Self {
                interleave: Mutex::new(Some(StdRng::seed_from_u64(seed))),
                ..Self::default()
            }
        }

        fn should_yield(&self) -> bool {
            self.interleave
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|rng| rng.random_bool(0.5))
        }
    }

    #[async_trait]
    impl RateStore for MemRates {
        async fn read_bucket(
            &self,
            practice_id: &str,
            key: &str,
        ) -> Result<(RateBucket, Option<u64>), StoreError> {
            let found = self
                .buckets
                .lock()
                .unwrap()
                .get(&(practice_id.to_string(), key.to_string()))
                .cloned();
            if self.should_yield() {
                tokio::task::yield_now().await;
            }
            let count = found.as_ref().map(|b| b.count);
            Ok((found.unwrap_or_default(), count))
        }

        async fn write_bucket(
            &self,
            practice_id: &str,
            key: &str,
            new: &RateBucket,
            expected_count: Option<u64>,
        ) -> Result<bool, StoreError> {
            let mut buckets = self.buckets.lock().unwrap();
            let k = (practice_id.to_string(), key.to_string());
            if buckets.get(&k).map(|b| b.count) != expected_count {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
            buckets.insert(k, new.clone());
            self.writes.fetch_add(1, Ordering::Relaxed);
            Ok(true)
        }
    }

    /// What each simulated recipient needs before its carrier submission.
    #[derive(Debug, Clone, Copy)]
    enum Needs {
        /// The bulk cap only.
        Bulk,
        /// A number token (this many per second), then the bulk cap.
        NumberThenBulk(u32),
    }

    struct Outcome {
        /// Grant time (epoch ms) of each recipient.
        grants: Vec<i64>,
        attempts: u64,
        ticks: u64,
        lost_races: u64,
    }

    /// Discrete-event simulation on a fake clock. Recipient `i` first tries at
    /// `first_attempts[i]`; a recipient told to wait tries again exactly at
    /// the instant it was given (the queue delay). All attempts due at one
    /// instant are shuffled and shared among `dispatchers` concurrent tasks
    /// that race on the same store through the real [`take_token`] /
    /// [`take_bulk_submission`].
    async fn simulate(
        seed: u64,
        dispatchers: usize,
        cap: u32,
        window: Duration,
        needs: Needs,
        first_attempts: &[i64],
    ) -> Outcome {
        let store = Arc::new(MemRates::racing(seed));
        let mut rng = StdRng::seed_from_u64(seed ^ 0x00c0_ffee);
        let mut due: BinaryHeap<Reverse<(i64, usize)>> = first_attempts
            .iter()
            .enumerate()
            .map(|(i, &t)| Reverse((t, i)))
            .collect();
        let mut grants = vec![i64::MIN; first_attempts.len()];
        let (mut attempts, mut ticks) = (0u64, 0u64);
        let limits = Pace {
            cap,
            window,
            per_second: match needs {
                Needs::Bulk => 0,
                Needs::NumberThenBulk(mps) => mps,
            },
        };
        while let Some(&Reverse((now, _))) = due.peek() {
            ticks += 1;
            let mut batch = Vec::new();
            while let Some(&Reverse((t, i))) = due.peek() {
                if t != now {
                    break;
                }
                due.pop();
                batch.push(i);
            }
            batch.shuffle(&mut rng);
            attempts += batch.len() as u64;
            let mut tasks = JoinSet::new();
            for d in 0..dispatchers.min(batch.len()) {
                let mine: Vec<usize> = batch.iter().skip(d).step_by(dispatchers).copied().collect();
                let store = Arc::clone(&store);
                tasks.spawn(async move {
                    let mut answers = Vec::with_capacity(mine.len());
                    for i in mine {
                        let answer = match needs {
                            Needs::Bulk => {
                                take_token(&*store, PRACTICE, BULK_KEY, instant(now), cap, window)
                                    .await
                            }
                            Needs::NumberThenBulk(_) => {
                                take_bulk_submission(&*store, PRACTICE, FROM, instant(now), &limits)
                                    .await
                            }
                        };
                        answers.push((i, answer.unwrap()));
                    }
                    answers
                });
            }
            while let Some(answers) = tasks.join_next().await {
                for (i, answer) in answers.unwrap() {
                    match answer {
                        None => grants[i] = now,
                        Some(at) => {
                            let at = at.timestamp_millis();
                            assert!(at > now, "told to wait until {at} at {now}");
                            due.push(Reverse((at, i)));
                        }
                    }
                }
            }
        }
        Outcome {
            grants,
            attempts,
            ticks,
            lost_races: store.lost.load(Ordering::Relaxed),
        }
    }

    /// The most grants in any window `[g, g + window)` starting at a grant
    /// (two pointers over the sorted times); such windows are the fullest.
    fn fullest_window(grants: &[i64], window_ms: i64) -> usize {
        let mut sorted = grants.to_vec();
        sorted.sort_unstable();
        let mut end = 0;
        let mut most = 0;
        for start in 0..sorted.len() {
            while end < sorted.len() && sorted[end] < sorted[start] + window_ms {
                end += 1;
            }
            most = most.max(end - start);
        }
        most
    }

    fn ceil_div(n: usize, cap: u32) -> i64 {
        n.div_ceil(cap as usize) as i64
    }

    /// One backlog: from a first attempt made while nothing was pending
    /// until the last grant, with everything that arrived in between.
    #[derive(Debug)]
    struct Backlog {
        first_attempt: i64,
        earliest_bulk_arrival: i64,
        last_grant: i64,
        recipients: usize,
        /// Recipients granted at the very first instant.
        granted_at_start: usize,
        bulks: Vec<usize>,
    }

    /// Splits the run into backlogs. A recipient joins the current backlog
    /// if it first tried while an earlier one was still waiting (at or before
    /// the latest grant so far), so during a backlog something is always
    /// pending; otherwise it starts a new one.
    fn backlogs(
        first_attempts: &[i64],
        grants: &[i64],
        bulk_of: &[usize],
        arrivals: &[i64],
    ) -> Vec<Backlog> {
        let mut order: Vec<usize> = (0..grants.len()).collect();
        order.sort_by_key(|&i| (first_attempts[i], grants[i]));
        let mut out: Vec<Backlog> = Vec::new();
        for i in order {
            let bulk = bulk_of[i];
            match out.last_mut() {
                Some(b) if first_attempts[i] <= b.last_grant => {
                    b.last_grant = b.last_grant.max(grants[i]);
                    b.recipients += 1;
                    if grants[i] == b.first_attempt {
                        b.granted_at_start += 1;
                    }
                    b.earliest_bulk_arrival = b.earliest_bulk_arrival.min(arrivals[bulk]);
                    if !b.bulks.contains(&bulk) {
                        b.bulks.push(bulk);
                    }
                }
                _ => out.push(Backlog {
                    first_attempt: first_attempts[i],
                    earliest_bulk_arrival: arrivals[bulk],
                    last_grant: grants[i],
                    recipients: 1,
                    granted_at_start: usize::from(grants[i] == first_attempts[i]),
                    bulks: vec![bulk],
                }),
            }
        }
        out
    }

    struct Workload {
        arrivals: Vec<i64>,
        sizes: Vec<usize>,
        bulk_of: Vec<usize>,
        first_attempts: Vec<i64>,
    }

    /// `bulks` bulks of 1..=1200 recipients arriving at random over `span`;
    /// each recipient is first tried within `pickup_ms` of its bulk's
    /// arrival (queue pick-up).
    fn workload(rng: &mut StdRng, bulks: usize, span: i64, pickup_ms: i64) -> Workload {
        let mut arrivals: Vec<i64> = (0..bulks).map(|_| T0 + rng.random_range(0..span)).collect();
        arrivals.sort_unstable();
        let sizes: Vec<usize> = (0..bulks).map(|_| rng.random_range(1..=1200)).collect();
        let mut bulk_of = Vec::new();
        let mut first_attempts = Vec::new();
        for (b, &n) in sizes.iter().enumerate() {
            for _ in 0..n {
                bulk_of.push(b);
                first_attempts.push(arrivals[b] + rng.random_range(0..=pickup_ms));
            }
        }
        Workload {
            arrivals,
            sizes,
            bulk_of,
            first_attempts,
        }
    }

    /// Checks (b): every backlog of M recipients is done within
    /// ceil(M / cap) windows + 5 minutes of its first bulk's arrival. A bulk
    /// arriving with nothing pending is its own backlog, so this is exactly
    /// "a bulk of N finishes within ceil(N/cap) windows + 5 min"; overlapping
    /// bulks are judged together.
    ///
    /// With `exact`, also the bound a cap that wastes nothing must meet: if
    /// G of the M were granted at the backlog's first instant S, the rest are
    /// done by S + ceil((M - G) / cap) windows. (While a backlog lasts some
    /// recipient is always pending, and a pending recipient is retried the
    /// moment capacity returns, so at every S + j·window the last window
    /// holds exactly `cap` grants, all of this backlog: j windows after S at
    /// least G + j·cap are done.) This catches a wait answer even 1 ms late.
    ///
    /// Returns (backlogs, backlogs of several bulks, multi-wave single bulks).
    fn assert_no_capacity_wasted(
        w: &Workload,
        grants: &[i64],
        cap: u32,
        window_ms: i64,
        exact: bool,
    ) -> (usize, usize, usize) {
        let all = backlogs(&w.first_attempts, grants, &w.bulk_of, &w.arrivals);
        let mut overlapping = 0;
        let mut multi_wave = 0;
        for b in &all {
            let windows = ceil_div(b.recipients, cap);
            if exact {
                let rest = ceil_div(b.recipients - b.granted_at_start, cap);
                assert!(
                    b.last_grant <= b.first_attempt + rest * window_ms,
                    "backlog not done in {rest} windows: {b:?}"
                );
            }
            assert!(
                b.last_grant <= b.earliest_bulk_arrival + windows * window_ms + 5 * MINUTE,
                "backlog not done in {windows} windows + 5 min: {b:?}"
            );
            if b.bulks.len() > 1 {
                overlapping += 1;
            } else if b.recipients == w.sizes[b.bulks[0]] && windows > 1 {
                multi_wave += 1;
            }
        }
        (all.len(), overlapping, multi_wave)
    }

    #[tokio::test]
    async fn simulated_days_never_exceed_the_cap_and_waste_no_capacity() {
        let (cap, window_ms) = (250u32, 3_600_000i64);
        let started = Instant::now();
        let (mut total_overlapping, mut total_multi_wave) = (0, 0);
        for seed in 1..=16u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let bulks = rng.random_range(12..=24);
            let w = workload(&mut rng, bulks, 3 * DAY, 0);
            let out = simulate(
                seed,
                4,
                cap,
                Duration::milliseconds(window_ms),
                Needs::Bulk,
                &w.first_attempts,
            )
            .await;
            assert!(out.grants.iter().all(|&g| g != i64::MIN));
            // (a) no rolling window ever holds more than the cap; and the
            // cap is reached, so the check is not vacuous.
            assert_eq!(fullest_window(&out.grants, window_ms), cap as usize);
            // (b) no capacity wasted: the bound, and the exact one.
            let (n, overlapping, multi_wave) =
                assert_no_capacity_wasted(&w, &out.grants, cap, window_ms, true);
            assert!(out.lost_races > 0, "dispatchers never raced");
            total_overlapping += overlapping;
            total_multi_wave += multi_wave;
            println!(
                "seed {seed}: {bulks} bulks, {} recipients, {n} backlogs \
                 ({overlapping} of several bulks, {multi_wave} multi-wave single bulks), \
                 {} attempts over {} instants, {} lost races",
                w.first_attempts.len(),
                out.attempts,
                out.ticks,
                out.lost_races
            );
        }
        println!("simulation took {:?}", started.elapsed());
        // Both shapes of (b) were exercised.
        assert!(total_overlapping > 0 && total_multi_wave > 0);
    }

    #[tokio::test]
    async fn simulated_day_with_number_throughput_stays_in_bounds() {
        let (cap, window_ms) = (250u32, 3_600_000i64);
        let mut rng = StdRng::seed_from_u64(42);
        let w = workload(&mut rng, 3, DAY / 2, 2_000);
        let started = Instant::now();
        let out = simulate(
            42,
            4,
            cap,
            Duration::milliseconds(window_ms),
            Needs::NumberThenBulk(1),
            &w.first_attempts,
        )
        .await;
        assert_eq!(fullest_window(&out.grants, window_ms), cap as usize);
        // One submission per second through the number.
        assert_eq!(fullest_window(&out.grants, 1000), 1);
        // A wave now takes cap seconds instead of an instant: the 5 minutes.
        let (n, _, _) = assert_no_capacity_wasted(&w, &out.grants, cap, window_ms, false);
        println!(
            "with 1/s per number: {} recipients, {n} backlogs, {} attempts, took {:?}",
            w.first_attempts.len(),
            out.attempts,
            started.elapsed()
        );
    }

    fn sorted_offsets(grants: &[i64]) -> Vec<i64> {
        let mut s: Vec<i64> = grants.iter().map(|g| (g - T0) / 1000).collect();
        s.sort_unstable();
        s
    }

    #[tokio::test]
    async fn twelve_at_once_go_in_waves_of_five_as_capacity_returns() {
        let out = simulate(7, 4, 5, Duration::seconds(30), Needs::Bulk, &[T0; 12]).await;
        assert_eq!(
            sorted_offsets(&out.grants),
            vec![0, 0, 0, 0, 0, 30, 30, 30, 30, 30, 60, 60]
        );
        assert!(out.grants.iter().all(|g| (g - T0) % 30_000 == 0));
    }

    #[tokio::test]
    async fn staggered_recipients_follow_each_returning_slot() {
        let firsts: Vec<i64> = (0..12).map(|i| T0 + i * 1000).collect();
        let out = simulate(8, 4, 5, Duration::seconds(30), Needs::Bulk, &firsts).await;
        assert_eq!(
            sorted_offsets(&out.grants),
            vec![0, 1, 2, 3, 4, 30, 31, 32, 33, 34, 60, 61]
        );
    }

    #[tokio::test]
    async fn number_throughput_spreads_a_wave() {
        let out = simulate(
            9,
            4,
            5,
            Duration::seconds(30),
            Needs::NumberThenBulk(1),
            &[T0; 12],
        )
        .await;
        assert_eq!(
            sorted_offsets(&out.grants),
            vec![0, 1, 2, 3, 4, 30, 31, 32, 33, 34, 60, 61]
        );
    }

    #[tokio::test]
    async fn a_new_bucket_is_created_once_and_then_advanced_by_count() {
        let store = MemRates::default();
        let w = Duration::seconds(10);
        assert_eq!(
            store
                .try_take(PRACTICE, BULK_KEY, instant(T0), 2, w)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .try_take(PRACTICE, BULK_KEY, instant(T0 + 1), 2, w)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .try_take(PRACTICE, BULK_KEY, instant(T0 + 2), 2, w)
                .await
                .unwrap(),
            Some(instant(T0 + 10_000))
        );
        // Another practice, another number: their own buckets.
        assert_eq!(
            store
                .try_take("p2", BULK_KEY, instant(T0 + 2), 2, w)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .try_take(
                    PRACTICE,
                    &number_key(FROM),
                    instant(T0 + 2),
                    1,
                    Duration::seconds(1)
                )
                .await
                .unwrap(),
            None
        );
        let (bucket, stored) = store.read_bucket(PRACTICE, BULK_KEY).await.unwrap();
        assert_eq!(stored, Some(2));
        assert_eq!(bucket.slots, vec![T0, T0 + 1]);
        // A write from a stale read is refused.
        assert!(!store
            .write_bucket(PRACTICE, BULK_KEY, &RateBucket::default(), Some(1))
            .await
            .unwrap());
        assert!(!store
            .write_bucket(PRACTICE, BULK_KEY, &RateBucket::default(), None)
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_dispatchers_take_exactly_the_cap() {
        let store = Arc::new(MemRates::default());
        let w = Duration::seconds(3600);
        let mut tasks = JoinSet::new();
        for _ in 0..8 {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                let mut taken = 0;
                for _ in 0..100 {
                    match take_token(&*store, PRACTICE, BULK_KEY, instant(T0), 250, w)
                        .await
                        .unwrap()
                    {
                        None => taken += 1,
                        Some(at) => assert_eq!(at, instant(T0) + w),
                    }
                    tokio::task::yield_now().await;
                }
                taken
            });
        }
        let mut taken = 0;
        while let Some(t) = tasks.join_next().await {
            taken += t.unwrap();
        }
        assert_eq!(taken, 250);
        assert_eq!(store.writes.load(Ordering::Relaxed), 250);
    }

    #[test]
    fn limits_come_from_the_practice_settings() {
        let mut practice = crate::testing::sample_practice("p1");
        practice.hourly_cap = 100;
        practice.cap_window_seconds = 1800;
        let limits = Pace::for_practice(&practice, DEFAULT_NUMBER_PER_SECOND);
        assert_eq!(limits.cap, 100);
        assert_eq!(limits.window, Duration::minutes(30));
        assert_eq!(limits.per_second, DEFAULT_NUMBER_PER_SECOND);
    }
}
