//! The one way the adapters retry a call: a bounded number of tries, a
//! pause growing exponentially (with random jitter) between them, and a
//! predicate saying which failures are worth another try.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause after the first failed try; doubled after each further one.
    pub first: Duration,
    /// The longest pause (before jitter).
    pub max: Duration,
    /// Up to this much is added to every pause at random, so that callers
    /// that failed together do not try again together.
    pub jitter: Duration,
}

impl Backoff {
    /// The pause after failed try `attempt` (1-based).
    pub fn pause(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let grown = self.first.saturating_mul(1 << doublings).min(self.max);
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        let jitter = if jitter_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::random_range(0..jitter_ms))
        };
        grown + jitter
    }

    /// Runs `call` (given the 1-based try number) until it succeeds, or it
    /// fails and either no try is left or `retryable(error, attempt)` says
    /// no; pauses between tries. Answers the last result. `retryable` is
    /// only asked when a try is left, so it may log the retry.
    pub async fn run<T, E, F>(
        &self,
        mut call: impl FnMut(u32) -> F,
        retryable: impl Fn(&E, u32) -> bool,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.run_carrying(
            (),
            |attempt, ()| {
                let once = call(attempt);
                async move { once.await.map_err(|e| ((), e)) }
            },
            retryable,
        )
        .await
    }

    /// [`Backoff::run`] for a call that makes progress: each try is given
    /// what the previous one left to do (`carry` at first), and a failed
    /// try hands back what is still left with its error.
    pub async fn run_carrying<C, T, E, F>(
        &self,
        mut carry: C,
        mut call: impl FnMut(u32, C) -> F,
        retryable: impl Fn(&E, u32) -> bool,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, (C, E)>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call(attempt, carry).await {
                Ok(done) => return Ok(done),
                Err((left, e)) if attempt < self.attempts && retryable(&e, attempt) => {
                    carry = left;
                    tokio::time::sleep(self.pause(attempt)).await;
                }
                Err((_, e)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Backoff = Backoff {
        attempts: 4,
        first: Duration::from_millis(1),
        max: Duration::from_millis(3),
        jitter: Duration::ZERO,
    };

    #[test]
    fn pauses_double_up_to_the_longest_and_add_at_most_the_jitter() {
        let b = Backoff {
            attempts: 8,
            first: Duration::from_millis(50),
            max: Duration::from_millis(1600),
            jitter: Duration::from_millis(25),
        };
        for (attempt, base) in [(1, 50), (2, 100), (6, 1600), (7, 1600), (40, 1600)] {
            let p = b.pause(attempt).as_millis();
            assert!((base..base + 25).contains(&p), "{attempt}: {p}");
        }
        assert_eq!(QUICK.pause(2), Duration::from_millis(2));
    }

    #[tokio::test]
    async fn stops_at_success_at_a_permanent_failure_or_after_the_last_try() {
        let calls = std::sync::Mutex::new(Vec::new());
        let r: Result<u32, &str> = QUICK
            .run(
                |n| {
                    calls.lock().unwrap().push(n);
                    async move {
                        if n < 3 {
                            Err("busy")
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_, _| true,
            )
            .await;
        assert_eq!((r, calls.into_inner().unwrap()), (Ok(3), vec![1, 2, 3]));

        let mut tries = 0;
        let r: Result<(), &str> = QUICK
            .run(
                |_| {
                    tries += 1;
                    async { Err("refused") }
                },
                |e, _| *e != "refused",
            )
            .await;
        assert_eq!((r, tries), (Err("refused"), 1));

        let mut tries = 0;
        let r: Result<(), &str> = QUICK
            .run(
                |_| {
                    tries += 1;
                    async { Err("busy") }
                },
                |_, _| true,
            )
            .await;
        assert_eq!((r, tries), (Err("busy"), 4));
    }

    #[tokio::test]
    async fn each_try_gets_what_the_previous_one_left() {
        let seen = std::sync::Mutex::new(Vec::new());
        let r: Result<usize, &str> = QUICK
            .run_carrying(
                vec![1, 2, 3],
                |_, mut left: Vec<u32>| {
                    seen.lock().unwrap().push(left.clone());
                    async move {
                        left.pop();
                        if left.is_empty() {
                            Ok(0)
                        } else {
                            Err((left, "unprocessed"))
                        }
                    }
                },
                |_, _| true,
            )
            .await;
        assert_eq!(r, Ok(0));
        assert_eq!(
            seen.into_inner().unwrap(),
            vec![vec![1, 2, 3], vec![1, 2], vec![1]]
        );
    }
}
