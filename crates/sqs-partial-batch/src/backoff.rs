//! The delay before a failed record's next delivery, in one place: exponential backoff with
//! jitter from SQS's own receive count, never past the 12 hours SQS allows from the receive.
//!
//! SQS counts deliveries (`ApproximateReceiveCount`), so the engine needs no state of its own:
//! the n-th failed delivery hides the message for about `base * 2^(n-1)` seconds, capped.

use std::time::Duration;

/// The backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base_seconds: u32,
    max_seconds: u32,
}

impl Backoff {
    /// The longest visibility timeout SQS accepts: 12 hours.
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>
    pub const MAX_SECONDS: u32 = 43_200;

    /// A policy from its base and cap, both in seconds. The cap is clamped to what SQS
    /// accepts ([`Backoff::MAX_SECONDS`]) and the base to the cap.
    pub fn new(base_seconds: u32, max_seconds: u32) -> Self {
        let max_seconds = max_seconds.min(Self::MAX_SECONDS);
        Self { base_seconds: base_seconds.min(max_seconds), max_seconds }
    }

    /// The first delay, in seconds.
    pub fn base_seconds(&self) -> u32 {
        self.base_seconds
    }

    /// The longest delay, in seconds.
    pub fn max_seconds(&self) -> u32 {
        self.max_seconds
    }

    /// The delay before the next delivery, without jitter: `min(max, base * 2^(n-1))`.
    pub fn ceiling(&self, receive_count: u32) -> u32 {
        let doublings = receive_count.saturating_sub(1).min(31);
        self.base_seconds.saturating_mul(1 << doublings).min(self.max_seconds)
    }

    /// The delay with "equal jitter": uniformly in `[ceiling/2, ceiling]`. Half the delay
    /// spreads the retries of a burst apart; the other half keeps the delays growing: below
    /// the cap, each retry waits at least as long as the one before it could have.
    pub fn delay(&self, receive_count: u32) -> u32 {
        let ceiling = self.ceiling(receive_count);
        let floor = ceiling / 2;
        fastrand::u32(floor..=ceiling)
    }
}

/// Seconds kept off the 12-hour limit besides the time the batch has taken: SQS counts the 12
/// hours from the receive, and Lambda's batching window (at most 300 s) and the deadline
/// margin (at most 60 s) may lie between that receive and the visibility call.
pub(crate) const VISIBILITY_SLACK_SECONDS: u32 = 360;

/// The longest visibility SQS still accepts `elapsed` after the batch started.
pub(crate) fn visibility_cap(elapsed: Duration) -> u32 {
    let elapsed = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX).saturating_add(1);
    Backoff::MAX_SECONDS.saturating_sub(VISIBILITY_SLACK_SECONDS).saturating_sub(elapsed)
}

/// The next delay of a record that failed at `receive_count`, `elapsed` after the batch
/// started: its own backoff, or the delay it must share with others (a FIFO group returns
/// whole), within what SQS still accepts.
pub(crate) fn next_delay(backoff: &Backoff, receive_count: u32, shared: Option<u32>, elapsed: Duration) -> u32 {
    shared.unwrap_or_else(|| backoff.delay(receive_count)).min(visibility_cap(elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_receive_and_stop_at_the_cap() {
        let backoff = Backoff::new(5, 900);
        let ceilings: Vec<_> = (1..=10).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(ceilings, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
    }

    #[test]
    fn jittered_delays_stay_within_half_and_full_ceiling_so_they_never_shrink_below_the_cap() {
        let backoff = Backoff::new(2, 600);
        for n in 2..=9 {
            for _ in 0..200 {
                let d = backoff.delay(n);
                assert!(d >= backoff.ceiling(n) / 2 && d <= backoff.ceiling(n), "n={n} d={d}");
                assert!(d >= backoff.ceiling(n - 1), "n={n} d={d} may undercut the previous delay");
            }
        }
    }

    #[test]
    fn the_cap_is_clamped_to_the_sqs_maximum_of_twelve_hours() {
        let backoff = Backoff::new(60, 1_000_000);
        assert_eq!(backoff.ceiling(u32::MAX), Backoff::MAX_SECONDS);
        assert!(backoff.delay(40) <= Backoff::MAX_SECONDS);
    }

    #[test]
    fn a_delay_leaves_the_slack_and_the_time_already_taken_off_twelve_hours() {
        let backoff = Backoff::new(43_200, 43_200);
        let limit = Backoff::MAX_SECONDS - VISIBILITY_SLACK_SECONDS;
        for _ in 0..100 {
            let delay = next_delay(&backoff, 1, None, Duration::ZERO);
            assert!((Backoff::MAX_SECONDS / 2..limit).contains(&delay), "{delay}");
        }
        assert!(next_delay(&backoff, 9, None, Duration::from_secs(20_000)) <= limit - 20_000);
        assert_eq!(next_delay(&backoff, 9, Some(7), Duration::ZERO), 7, "a shared delay is kept");
        assert_eq!(next_delay(&backoff, 9, Some(limit), Duration::from_secs(100)), limit - 101, "and capped");
        assert_eq!(visibility_cap(Duration::from_secs(u64::MAX)), 0);
    }
}
