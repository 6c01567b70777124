//! How late records are processed: per batch, the age of its oldest and of its median record
//! when the batch starts, from SQS's `SentTimestamp` (milliseconds since the epoch): how long a
//! message waited between its send and its processing. Records without a readable
//! `SentTimestamp` are skipped, never guessed.

/// The ages of a batch's records at processing time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageAges {
    /// The oldest record's age.
    pub(crate) max_ms: u64,
    /// The median age, by the nearest-rank method (of an even count, the lower middle).
    pub(crate) p50_ms: u64,
}

impl MessageAges {
    /// The ages of records sent at `sent_ms` (epoch ms), seen at `now_ms`; `None` when no record
    /// says when it was sent. A send time after `now_ms` (clock skew) counts as age 0.
    pub(crate) fn of(sent_ms: impl IntoIterator<Item = u64>, now_ms: u64) -> Option<Self> {
        let mut ages: Vec<u64> = sent_ms.into_iter().map(|sent| now_ms.saturating_sub(sent)).collect();
        // Linear, not a sort: this runs on every batch, up to 10,000 records.
        let max_ms = ages.iter().copied().max()?;
        let middle = (ages.len() - 1) / 2;
        let (_, &mut p50_ms, _) = ages.select_nth_unstable(middle);
        Some(Self { max_ms, p50_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_547_200_000;

    #[test]
    fn max_and_median_age_from_fixed_send_times() {
        let sent = [NOW - 40, NOW - 9_000, NOW - 250, NOW - 1_000, NOW - 70];
        assert_eq!(MessageAges::of(sent, NOW), Some(MessageAges { max_ms: 9_000, p50_ms: 250 }));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_and_one_record_is_its_own_median() {
        assert_eq!(MessageAges::of([NOW - 10, NOW - 30, NOW - 20, NOW - 40], NOW).unwrap().p50_ms, 20);
        assert_eq!(MessageAges::of([NOW - 5], NOW), Some(MessageAges { max_ms: 5, p50_ms: 5 }));
    }

    #[test]
    fn no_send_time_means_no_figure_and_a_future_send_time_is_age_zero() {
        assert_eq!(MessageAges::of([], NOW), None);
        assert_eq!(MessageAges::of([NOW + 500], NOW), Some(MessageAges { max_ms: 0, p50_ms: 0 }));
    }
}
