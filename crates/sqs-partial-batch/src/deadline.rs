//! The invocation deadline as the engine sees it: an instant of tokio's clock.

use std::time::Duration;

use tokio::time::Instant;

/// The deadline of a Lambda invocation (`Lambda-Runtime-Deadline-Ms`, milliseconds since the
/// Unix epoch) as an instant of tokio's clock.
///
/// `cargo lambda watch` sends the function timeout itself (600000) instead of an epoch time.
/// Any value before 2001 cannot be an epoch deadline, so it is read as a duration from now:
/// otherwise every record of a local run would time out at once.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    let now_ms = now_epoch_ms();
    let left_ms = if deadline_ms < EPOCH_2001_MS { deadline_ms } else { deadline_ms.saturating_sub(now_ms) };
    Instant::now() + Duration::from_millis(left_ms)
}

/// The wall clock in milliseconds since the Unix epoch, the unit of SQS's and Lambda's times.
pub(crate) fn now_epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn an_epoch_deadline_leaves_the_time_until_it() {
        let left = deadline_from_epoch_ms(epoch_ms() + 30_000) - Instant::now();
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30), "{left:?}");
        assert!(deadline_from_epoch_ms(epoch_ms() - 5_000) <= Instant::now(), "a past deadline leaves nothing");
    }

    #[test]
    fn a_relative_deadline_from_a_local_emulator_is_read_as_a_duration() {
        let left = deadline_from_epoch_ms(600_000) - Instant::now();
        assert!(left > Duration::from_secs(599) && left <= Duration::from_secs(600), "{left:?}");
    }
}
