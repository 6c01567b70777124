//! Exponential backoff with jitter, expressed as an SQS visibility timeout.
//!
//! SQS counts deliveries (`ApproximateReceiveCount`), so the engine needs no state of its own:
//! the n-th failed delivery hides the message for about `base * 2^(n-1)` seconds, capped.

/// SQS refuses a visibility timeout above 12 hours.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>
pub const MAX_VISIBILITY_SECONDS: u32 = 43_200;

/// The backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base_seconds: u32,
    max_seconds: u32,
}

impl Backoff {
    /// A policy from its base and cap, both in seconds. The cap is clamped to what SQS
    /// accepts and the base to the cap.
    pub fn new(base_seconds: u32, max_seconds: u32) -> Self {
        let max_seconds = max_seconds.min(MAX_VISIBILITY_SECONDS);
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
        assert_eq!(backoff.ceiling(u32::MAX), MAX_VISIBILITY_SECONDS);
        assert!(backoff.delay(40) <= MAX_VISIBILITY_SECONDS);
    }
}
