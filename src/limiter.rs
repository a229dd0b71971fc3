//! The per-account pace of CloudWatch Logs calls.
//!
//! One GCRA rate limiter (governor) keyed by customer account: every
//! CloudWatch Logs call first waits for its account's next slot. The limiter
//! reads time from tokio's clock, so tests drive it with paused time, and it
//! never waits past a caller's deadline: a caller that cannot get a slot in
//! time is told so at once and hands its record back to the queue.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::error::{Category, Failure};
use crate::ids::AccountId;

/// How long an account is held back after AWS throttled one of its calls
/// despite the pacing: somebody else is using the same quota, and the SDK's
/// retry budget is better not spent on them.
pub const THROTTLE_COOL_DOWN: Duration = Duration::from_secs(1);

/// Slots are spread by up to this share of the interval, so many workers
/// started together do not call in lock-step.
const JITTER_SHARE: f64 = 0.1;

/// Waiting would run past the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the next CloudWatch Logs slot for this account is after the deadline")]
pub struct PastDeadline;

/// Paces CloudWatch Logs calls per customer account.
pub struct AccountLimiter {
    limiter: RateLimiter<
        AccountId,
        DashMapStateStore<AccountId>,
        TokioClock,
        NoOpMiddleware<TokioInstant>,
    >,
    interval: Duration,
    cool_downs: Mutex<HashMap<AccountId, Instant>>,
}

impl AccountLimiter {
    /// `per_second` calls per account per second, burst 1.
    pub fn new(per_second: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, TokioClock),
            interval: Duration::from_secs(1) / per_second.get(),
            cool_downs: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for `account`'s next slot and takes it; returns the time spent
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`PastDeadline`] at once, without waiting, when the slot would come
    /// after `deadline`.
    pub async fn until_ready(
        &self,
        account: &AccountId,
        deadline: Instant,
    ) -> Result<Duration, PastDeadline> {
        let started = Instant::now();
        loop {
            if let Some(until) = self.cool_down_until(account) {
                if until > deadline {
                    return Err(PastDeadline);
                }
                tokio::time::sleep_until(until).await;
            }
            match self.limiter.check_key(account) {
                Ok(()) => return Ok(started.elapsed()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now())
                        + self.interval.mul_f64(JITTER_SHARE * fastrand::f64());
                    if Instant::now() + wait > deadline {
                        return Err(PastDeadline);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Holds `account` back for [`THROTTLE_COOL_DOWN`] after AWS throttled
    /// one of its calls.
    pub fn cool_down(&self, account: &AccountId) {
        let until = Instant::now() + THROTTLE_COOL_DOWN;
        let mut cool_downs = self.cool_downs.lock().unwrap_or_else(|p| p.into_inner());
        cool_downs.retain(|_, t| *t > Instant::now());
        cool_downs.insert(account.clone(), until);
    }

    fn cool_down_until(&self, account: &AccountId) -> Option<Instant> {
        let cool_downs = self.cool_downs.lock().unwrap_or_else(|p| p.into_inner());
        cool_downs.get(account).copied().filter(|t| *t > Instant::now())
    }
}

/// One job's view of the limiter: its account and its deadline.
pub struct Pace<'a> {
    limiter: &'a AccountLimiter,
    account: &'a AccountId,
    deadline: Instant,
    waited_nanos: AtomicU64,
}

impl<'a> Pace<'a> {
    pub fn new(limiter: &'a AccountLimiter, account: &'a AccountId, deadline: Instant) -> Self {
        Self { limiter, account, deadline, waited_nanos: AtomicU64::new(0) }
    }

    /// Waits for the slot of the next CloudWatch Logs call `operation`.
    ///
    /// # Errors
    ///
    /// A retryable out-of-time [`Failure`] when the slot is past the deadline.
    pub async fn ready(&self, operation: &'static str) -> Result<(), Failure> {
        let waited = self
            .limiter
            .until_ready(self.account, self.deadline)
            .await
            .map_err(|PastDeadline| Failure::out_of_time(operation))?;
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// Tells the limiter how a paced call ended: a throttle despite pacing
    /// holds the account back.
    pub fn observe(&self, failure: &Failure) {
        if failure.category == Category::Throttling {
            self.limiter.cool_down(self.account);
        }
    }

    /// The deadline the job must finish by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Total time spent waiting for slots so far.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }
}

/// governor's view of tokio's clock, so paused test time pauses the limiter.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

/// An instant on [`TokioClock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_duration_since(earlier.0))
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0.checked_sub(Duration::from(duration)).map_or(*self, Self)
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId::parse(&format!("{n:012}")).unwrap()
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn calls_on_one_account_are_spaced_by_the_rate() {
        let limiter = AccountLimiter::new(NonZeroU32::new(5).unwrap());
        let start = Instant::now();
        let n = 11;
        for _ in 0..n {
            limiter.until_ready(&account(1), far()).await.unwrap();
        }
        // (N - 1) / TPS, plus at most 10% jitter per wait.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2200), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn two_accounts_do_not_wait_for_each_other() {
        let limiter = AccountLimiter::new(NonZeroU32::new(1).unwrap());
        let start = Instant::now();
        limiter.until_ready(&account(1), far()).await.unwrap();
        limiter.until_ready(&account(2), far()).await.unwrap();
        limiter.until_ready(&account(3), far()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.until_ready(&account(1), far()).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_on_one_account_never_exceed_the_rate() {
        let limiter = std::sync::Arc::new(AccountLimiter::new(NonZeroU32::new(4).unwrap()));
        let start = Instant::now();
        let tasks: Vec<_> = (0..9)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.until_ready(&account(7), far()).await.unwrap();
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort();
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(249), "{:?}", pair[1] - pair[0]);
        }
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_fails_at_once() {
        let limiter = AccountLimiter::new(NonZeroU32::new(1).unwrap());
        limiter.until_ready(&account(1), far()).await.unwrap();
        let start = Instant::now();
        let deadline = Instant::now() + Duration::from_millis(500);
        assert_eq!(limiter.until_ready(&account(1), deadline).await, Err(PastDeadline));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_holds_the_account_back() {
        let limiter = AccountLimiter::new(NonZeroU32::new(100).unwrap());
        limiter.cool_down(&account(1));
        let start = Instant::now();
        limiter.until_ready(&account(1), far()).await.unwrap();
        assert!(start.elapsed() >= THROTTLE_COOL_DOWN);
        let soon = Instant::now() + Duration::from_millis(10);
        limiter.cool_down(&account(2));
        assert_eq!(limiter.until_ready(&account(2), soon).await, Err(PastDeadline));
    }
}
