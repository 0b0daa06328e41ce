//! The exact rolling-window rate cap: at most `cap` submissions in any window
//! of length `window`, kept as a ring of the last `cap` submission times.
//!
//! Used for a practice's bulk cap (`hourly_cap` per `cap_window_seconds`) and
//! for the per-sending-number carrier throughput (messages per second). Pure:
//! the read-decide-conditional-write loop lives in `crate::app::rate_cap`.
//!
//! # Why it is exact
//!
//! Number the submissions `0, 1, 2, …` in the order they were taken (the
//! bucket's `count`). Submission `n` is allowed only if submission `n - cap`
//! (the one `cap` places back, held in the ring) happened at or before
//! `t - window`. So for every residue `r` modulo `cap`, the submissions
//! `r, r + cap, r + 2·cap, …` form a chain whose consecutive times are at least
//! `window` apart. A half-open interval `[a, a + window)` holds at most one
//! element of each chain, hence at most `cap` submissions in all. No sliding
//! approximation and no fixed buckets: the bound holds for every window
//! position, and a refused caller is told the exact instant (`slot + window`)
//! at which the oldest of the last `cap` submissions leaves the window and
//! capacity returns, so no capacity is wasted either. The argument does not
//! even need the times to be increasing, so a few milliseconds of clock skew
//! between dispatcher instances cannot break it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The stored state of one rate bucket.
///
/// The ring layout: with `len = slots.len() > 0`, the `k`-th oldest of the
/// remembered submissions (`k = 0` is the oldest) is `slots[(count + k) % len]`.
/// Once the ring is full (`len == cap`) the oldest is `slots[count % cap]`,
/// which is the slot the next submission overwrites. A fresh bucket
/// (`count == len`) is simply in chronological order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RateBucket {
    /// Submissions taken so far; also the optimistic-concurrency token (a
    /// write is conditioned on it being unchanged since the read).
    pub count: u64,
    /// Epoch milliseconds of the last `cap` submissions (fewer while the
    /// bucket is young), ring-indexed by `count % cap`.
    pub slots: Vec<i64>,
}

/// What [`RateBucket::decide`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: store this new state (conditioned on the old `count`).
    Take(RateBucket),
    /// Not allowed before this instant, when the oldest remembered submission
    /// leaves the window.
    WaitUntil(DateTime<Utc>),
}

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl RateBucket {
    /// Whether one more submission may be made at `now` under "at most `cap`
    /// per rolling `window`", and if so the bucket's new state.
    ///
    /// A submission is allowed when fewer than `cap` are remembered, or when
    /// the one `cap` places back happened at or before `now - window` (so two
    /// submissions exactly `window` apart are both allowed: a window is the
    /// half-open interval `[a, a + window)`).
    ///
    /// When `cap` differs from the ring's length (the practice's settings
    /// changed), the ring is first rebuilt from the most recent
    /// `min(len, cap)` submissions, oldest first. Lowering the cap therefore
    /// only remembers the newest `cap` submissions: every window containing a
    /// submission made under the new cap holds at most the new cap. Raising
    /// it keeps everything and opens the extra places at once.
    ///
    /// A `cap` of 0 allows nothing: the caller is told to ask again one window
    /// (at least 1 ms) later. A negative window counts as zero.
    pub fn decide(&self, now: DateTime<Utc>, cap: u32, window: Duration) -> Decision {
        let t = now.timestamp_millis();
        let w = window.num_milliseconds().max(0);
        if cap == 0 {
            return Decision::WaitUntil(instant(t.saturating_add(w.max(1))));
        }
        let cap_len = usize::try_from(cap).unwrap_or(usize::MAX);
        let next_count = self.count.saturating_add(1);
        let len = self.slots.len();

        if len == cap_len {
            // Full ring: the slot to overwrite holds the oldest submission.
            let i = ring_index(self.count, len);
            let oldest = self.slots[i];
            if oldest <= t.saturating_sub(w) {
                let mut slots = self.slots.clone();
                slots[i] = t;
                return Decision::Take(RateBucket {
                    count: next_count,
                    slots,
                });
            }
            return Decision::WaitUntil(instant(oldest.saturating_add(w)));
        }

        // Still filling, or the cap changed: work on the remembered
        // submissions in order, then lay them out again for the new count.
        let mut ordered = self.ordered();
        if ordered.len() > cap_len {
            ordered.drain(..ordered.len() - cap_len);
        }
        if ordered.len() == cap_len {
            let oldest = ordered[0];
            if oldest > t.saturating_sub(w) {
                return Decision::WaitUntil(instant(oldest.saturating_add(w)));
            }
            ordered.remove(0);
        }
        ordered.push(t);
        Decision::Take(RateBucket::from_ordered(next_count, ordered))
    }

    /// How many submissions [`RateBucket::decide`] would allow at `now`,
    /// one after another: `cap` minus the remembered submissions (the most
    /// recent `cap` of them) still inside the window that ends at `now`.
    pub fn room(&self, now: DateTime<Utc>, cap: u32, window: Duration) -> u32 {
        let since = now
            .timestamp_millis()
            .saturating_sub(window.num_milliseconds().max(0));
        let ordered = self.ordered();
        let cap_len = usize::try_from(cap).unwrap_or(usize::MAX);
        let recent = &ordered[ordered.len().saturating_sub(cap_len)..];
        let inside = recent.iter().filter(|t| **t > since).count();
        cap.saturating_sub(u32::try_from(inside).unwrap_or(u32::MAX))
    }

    /// The remembered submission times, oldest first.
    pub fn ordered(&self) -> Vec<i64> {
        let len = self.slots.len();
        (0..len)
            .map(|k| self.slots[ring_index(self.count.wrapping_add(k as u64), len)])
            .collect()
    }

    /// A bucket with `count` submissions whose remembered times, oldest
    /// first, are `ordered`, in the ring layout.
    fn from_ordered(count: u64, ordered: Vec<i64>) -> RateBucket {
        let len = ordered.len();
        let mut slots = ordered.clone();
        for (k, t) in ordered.into_iter().enumerate() {
            slots[ring_index(count.wrapping_add(k as u64), len)] = t;
        }
        RateBucket { count, slots }
    }
}

/// `position % len` as an index; `len` must be non-zero.
fn ring_index(position: u64, len: usize) -> usize {
    // `len` fits in u64 and the remainder is below `len`, so both casts are lossless.
    (position % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn at(ms_after: i64) -> DateTime<Utc> {
        instant(T0 + ms_after)
    }

    fn take(bucket: &RateBucket, ms_after: i64, cap: u32, window_ms: i64) -> RateBucket {
        match bucket.decide(at(ms_after), cap, Duration::milliseconds(window_ms)) {
            Decision::Take(next) => next,
            Decision::WaitUntil(w) => panic!("refused at +{ms_after} ms, wait until {w}"),
        }
    }

    fn wait(bucket: &RateBucket, ms_after: i64, cap: u32, window_ms: i64) -> DateTime<Utc> {
        match bucket.decide(at(ms_after), cap, Duration::milliseconds(window_ms)) {
            Decision::Take(_) => panic!("allowed at +{ms_after} ms"),
            Decision::WaitUntil(w) => w,
        }
    }

    #[test]
    fn room_counts_what_decide_would_allow_in_a_row() {
        let mut b = RateBucket::default();
        assert_eq!(b.room(at(0), 3, Duration::milliseconds(1000)), 3);
        b = take(&b, 0, 3, 1000);
        b = take(&b, 500, 3, 1000);
        assert_eq!(b.room(at(600), 3, Duration::milliseconds(1000)), 1);
        // The first leaves the window at +1000 ms.
        assert_eq!(b.room(at(1000), 3, Duration::milliseconds(1000)), 2);
        assert_eq!(b.room(at(1500), 3, Duration::milliseconds(1000)), 3);
        // A lowered cap only remembers the newest submissions.
        assert_eq!(b.room(at(600), 1, Duration::milliseconds(1000)), 0);
        // Checked against decide: exactly `room` takes succeed at one instant.
        let mut probe = b.clone();
        for _ in 0..b.room(at(600), 3, Duration::milliseconds(1000)) {
            probe = take(&probe, 600, 3, 1000);
        }
        wait(&probe, 600, 3, 1000);
    }

    #[test]
    fn fills_up_to_the_cap_then_says_when_capacity_returns() {
        let mut b = RateBucket::default();
        for i in 0..3 {
            b = take(&b, i * 10, 3, 1000);
        }
        assert_eq!(b.count, 3);
        assert_eq!(b.slots, vec![T0, T0 + 10, T0 + 20]);
        assert_eq!(wait(&b, 30, 3, 1000), at(1000));
        assert_eq!(wait(&b, 999, 3, 1000), at(1000));
    }

    #[test]
    fn exactly_one_window_apart_is_allowed() {
        let b = take(&RateBucket::default(), 0, 1, 1000);
        assert_eq!(wait(&b, 999, 1, 1000), at(1000));
        let b = take(&b, 1000, 1, 1000);
        assert_eq!(b.count, 2);
        assert_eq!(b.slots, vec![T0 + 1000]);
    }

    #[test]
    fn the_ring_overwrites_the_oldest_slot() {
        let mut b = RateBucket::default();
        for i in 0..3 {
            b = take(&b, i, 3, 100);
        }
        // The 4th goes where the 1st was, the 5th where the 2nd was.
        b = take(&b, 100, 3, 100);
        assert_eq!(b.slots, vec![T0 + 100, T0 + 1, T0 + 2]);
        b = take(&b, 101, 3, 100);
        assert_eq!(b.slots, vec![T0 + 100, T0 + 101, T0 + 2]);
        assert_eq!(b.count, 5);
        assert_eq!(b.ordered(), vec![T0 + 2, T0 + 100, T0 + 101]);
        assert_eq!(wait(&b, 101, 3, 100), at(102));
    }

    #[test]
    fn lowering_the_cap_keeps_the_most_recent_submissions() {
        let mut b = RateBucket::default();
        for i in 0..5 {
            b = take(&b, i, 5, 100);
        }
        b = take(&b, 100, 5, 100); // count 6, ring wrapped once
        assert_eq!(b.ordered(), vec![T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 100]);
        // Cap 2: only the newest two (T0+4, T0+100) are remembered.
        assert_eq!(wait(&b, 100, 2, 100), at(104));
        let b = take(&b, 104, 2, 100);
        assert_eq!(b.count, 7);
        assert_eq!(b.slots.len(), 2);
        assert_eq!(b.ordered(), vec![T0 + 100, T0 + 104]);
        // From now on it is an ordinary full ring of 2.
        assert_eq!(wait(&b, 150, 2, 100), at(200));
        let b = take(&b, 200, 2, 100);
        assert_eq!(b.ordered(), vec![T0 + 104, T0 + 200]);
    }

    #[test]
    fn raising_the_cap_opens_the_extra_places_at_once() {
        let mut b = RateBucket::default();
        for i in 0..3 {
            b = take(&b, i, 3, 1000);
        }
        b = take(&b, 1000, 3, 1000); // count 4, wrapped
        assert_eq!(wait(&b, 1000, 3, 1000), at(1001));
        // Cap 5: two more now, then full until the oldest leaves.
        let b = take(&b, 1000, 5, 1000);
        let b = take(&b, 1000, 5, 1000);
        assert_eq!(b.count, 6);
        assert_eq!(
            b.ordered(),
            vec![T0 + 1, T0 + 2, T0 + 1000, T0 + 1000, T0 + 1000]
        );
        assert_eq!(wait(&b, 1000, 5, 1000), at(1001));
        let b = take(&b, 1001, 5, 1000);
        assert_eq!(b.slots[(b.count % 5) as usize], T0 + 2);
    }

    #[test]
    fn cap_zero_allows_nothing() {
        assert_eq!(wait(&RateBucket::default(), 0, 0, 1000), at(1000));
        assert_eq!(wait(&RateBucket::default(), 0, 0, 0), at(1));
    }

    #[test]
    fn no_window_ever_holds_more_than_the_cap() {
        // Greedy takers at irregular times, with a cap change midway.
        let mut b = RateBucket::default();
        let mut granted = Vec::new();
        let mut t = 0;
        while t < 20_000 {
            let cap = if t < 10_000 { 7 } else { 4 };
            match b.decide(at(t), cap, Duration::milliseconds(1000)) {
                Decision::Take(next) => {
                    b = next;
                    granted.push((t, cap));
                }
                Decision::WaitUntil(w) => assert!(w > at(t)),
            }
            t += (t * 7919) % 97 + 1;
        }
        for (i, &(g, _)) in granted.iter().enumerate() {
            let in_window: Vec<_> = granted[i..].iter().take_while(|x| x.0 < g + 1000).collect();
            // A window reaching into the lowered cap's time holds at most the
            // lowered cap, even counting submissions made before the change.
            let cap = in_window.iter().map(|x| x.1).min().unwrap_or(0);
            assert!(
                in_window.len() <= cap as usize,
                "{} in window at {g}",
                in_window.len()
            );
        }
    }

    #[test]
    fn survives_a_serde_round_trip() {
        let b = take(&RateBucket::default(), 0, 2, 10);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, format!(r#"{{"count":1,"slots":[{T0}]}}"#));
        assert_eq!(serde_json::from_str::<RateBucket>(&json).unwrap(), b);
    }
}
