//! What a record handler says ([`Ack`] or [`RecordError`]) and what the engine made of it
//! ([`Outcome`]). Each variant's name is the `outcome` of its log line, and the metric that
//! counts it is named the same: `Succeeded`, `Unchanged`, `DeadLettered`, `Retried`.

/// A record handler's success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ack {
    /// The message took effect.
    Succeeded,
    /// Succeeded without effect (a duplicate, or a change already superseded): nothing to
    /// do, and nothing to retry. Counted apart from [`Ack::Succeeded`].
    Unchanged,
}

/// Why a record handler failed. Retryable or not is decided here, once, by the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Something outside the message failed (a store, a network): retry later.
    #[error("transient: {reason}")]
    Transient {
        /// What failed; logged, so it must not carry message content.
        reason: String,
    },
    /// The message itself is bad: retrying cannot help, so it goes to the dead-letter queue.
    #[error("{kind}: {reason}")]
    Permanent {
        /// A short machine-readable class, such as `invalid_json`.
        kind: &'static str,
        /// What is wrong, for a person reading the dead-letter queue. The kind is beside it
        /// on the letter and the log line, so the reason need not repeat it.
        reason: String,
    },
}

impl RecordError {
    /// A transient error: text, or an error whose sources are kept in the reason, joined by
    /// `: ` (an AWS SDK error's own message, "dispatch failure", says little; its sources say
    /// what failed).
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Transient { reason: crate::errors::error_chain(error.into().as_ref()) }
    }

    /// A permanent error of the given kind.
    pub fn permanent(kind: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Permanent { kind, reason: reason.to_string() }
    }
}

/// The result of one record in one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler said [`Ack::Succeeded`]: the record is deleted from the source queue.
    Succeeded,
    /// The handler said [`Ack::Unchanged`]: deleted as well.
    Unchanged,
    /// A permanent failure, now in the dead-letter queue with its reason: reported as
    /// success so that the source queue deletes it.
    DeadLettered {
        /// The error class.
        kind: &'static str,
        /// The reason, as recorded on the dead letter.
        reason: String,
    },
    /// Reported failed: the record stays on the source queue, hidden for its backoff, and
    /// is retried.
    Retried(Retry),
}

/// Why a record is reported failed, and so retried by SQS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// The handler returned [`RecordError::Transient`].
    Transient(String),
    /// The handler panicked; treated as transient.
    Panicked(String),
    /// A permanent failure whose dead-letter send failed: kept on the source queue rather
    /// than dropped. Its redrive policy still moves it to the DLQ in the end.
    DeadLetterFailed {
        /// The error class of the permanent failure.
        kind: &'static str,
        /// Why the send failed.
        error: String,
    },
    /// Still running when the batch was cut: the invocation's deadline less the safety
    /// margin, or a stop (poll mode's shutdown).
    TimedOut,
    /// FIFO: an earlier record of the same message group failed, so this one was not run.
    Skipped,
    /// Not tried: the brake engaged after too many transient failures in a row.
    Braked,
}

impl From<Ack> for Outcome {
    fn from(ack: Ack) -> Self {
        match ack {
            Ack::Succeeded => Self::Succeeded,
            Ack::Unchanged => Self::Unchanged,
        }
    }
}

impl Outcome {
    /// Whether the record is reported failed (in `batchItemFailures`) and retried.
    pub fn is_retried(&self) -> bool {
        matches!(self, Self::Retried(_))
    }

    /// The name of its log lines' `outcome`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Unchanged => "unchanged",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::Retried(retry) => retry.name(),
        }
    }
}

impl Retry {
    /// The name of its log lines' `outcome`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Transient(_) => "transient",
            Self::Panicked(_) => "panicked",
            Self::DeadLetterFailed { .. } => "dead_letter_failed",
            Self::TimedOut => "timed_out",
            Self::Skipped => "skipped",
            Self::Braked => "braked",
        }
    }

    /// Why, in words: the handler's or the queue's error, or the engine's own account.
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(reason) | Self::Panicked(reason) => reason,
            Self::DeadLetterFailed { error, .. } => error,
            Self::TimedOut => "unfinished when the batch was cut (deadline less margin, or shutdown)",
            Self::Skipped => "an earlier record of its message group failed",
            Self::Braked => "not tried: the brake engaged after consecutive transient failures",
        }
    }
}
