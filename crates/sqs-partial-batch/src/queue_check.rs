//! What the poller checks about its queue before the first receive: a queue without a
//! redrive policy would retry a failing message until retention drops it, a `maxReceiveCount`
//! other than the engine's would mislabel the final attempt, and a deadline margin not
//! shorter than the visibility timeout would cut every record before it ran, and a dead-letter
//! queue other than the redrive policy's would split the letters over two queues.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::queue::QueueError;
use crate::settings::{MARGIN_CONFLICT, Settings};

/// The poller cannot start: the queue's attributes cannot be read, or they do not fit the
/// engine's settings. The variants carry the values, so that an application can name its own
/// configuration for them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// `GetQueueAttributes` failed, or its answer lacks the queue's ARN.
    #[error("{queue_url}: cannot read the queue's attributes")]
    Attributes {
        /// The source queue.
        queue_url: String,
        /// Why.
        #[source]
        source: QueueError,
    },
    /// Without a redrive policy a failing message is retried until retention drops it.
    #[error(
        "{queue_url}: the queue has no redrive policy: a message that keeps failing would be retried until its \
         retention period drops it. Give it a RedrivePolicy to a dead-letter queue"
    )]
    NoRedrivePolicy {
        /// The source queue.
        queue_url: String,
    },
    /// The redrive policy's `maxReceiveCount` cannot be read.
    #[error("{queue_url}: its RedrivePolicy has no readable maxReceiveCount: {policy}")]
    UnreadableRedrivePolicy {
        /// The source queue.
        queue_url: String,
        /// The policy, cleaned for a log line.
        policy: String,
    },
    /// The queue's `maxReceiveCount` is not [`crate::Settings::max_receive_count`].
    #[error(
        "{queue_url}: the queue's redrive policy has maxReceiveCount={queue} but the engine's max_receive_count={engine}: \
         set them equal, so the consumer knows which failure is the last"
    )]
    MaxReceiveCount {
        /// The source queue.
        queue_url: String,
        /// The queue's.
        queue: u32,
        /// The engine's.
        engine: u32,
    },
    /// The queue's redrive policy sends to one dead-letter queue, the engine's letters go to
    /// another: the letters would be split over two queues, and an operator watching one
    /// would miss the others.
    #[error(
        "{queue_url}: its redrive policy's deadLetterTargetArn is {target_arn} but the dead-letter queue {dlq_url} is \
         {dlq_arn}: give the consumer the queue the redrive policy names"
    )]
    DeadLetterQueueMismatch {
        /// The source queue.
        queue_url: String,
        /// The redrive policy's target.
        target_arn: String,
        /// The dead-letter queue the engine's letters go to.
        dlq_url: String,
        /// Its ARN.
        dlq_arn: String,
    },
    /// The deadline margin is not shorter than the queue's visibility timeout.
    #[error(
        "{queue_url}: the deadline margin ({} ms) must be less than the queue's VisibilityTimeout={} s ({} ms): {}",
        margin.as_millis(), visibility.as_secs(), visibility.as_millis(), MARGIN_CONFLICT
    )]
    MarginTooLong {
        /// The source queue.
        queue_url: String,
        /// [`crate::Settings::deadline_margin`].
        margin: Duration,
        /// The queue's `VisibilityTimeout`.
        visibility: Duration,
    },
}

/// What the poller needs to know about its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueFacts {
    pub(crate) arn: String,
    pub(crate) visibility: Duration,
    /// The redrive policy's `maxReceiveCount`, if the queue has one.
    pub(crate) max_receive_count: Option<u32>,
    /// The redrive policy's `deadLetterTargetArn`.
    pub(crate) dead_letter_target: Option<String>,
}

pub(crate) async fn queue_facts(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<QueueFacts, PollError> {
    let unreadable = |source: QueueError| PollError::Attributes { queue_url: queue_url.to_owned(), source };
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| unreadable(QueueError::new(e)))?;
    let attributes = out.attributes.unwrap_or_default();
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or_else(|| unreadable(QueueError::new("no QueueArn")))?;
    let visibility = attributes.get(&QueueAttributeName::VisibilityTimeout).and_then(|v| v.parse().ok()).unwrap_or(30);
    let redrive = match attributes.get(&QueueAttributeName::RedrivePolicy) {
        None => None,
        Some(policy) => Some(redrive_policy(policy).ok_or_else(|| PollError::UnreadableRedrivePolicy {
            queue_url: queue_url.to_owned(),
            policy: crate::reason::clean(policy),
        })?),
    };
    Ok(QueueFacts {
        arn,
        visibility: Duration::from_secs(visibility),
        max_receive_count: redrive.as_ref().map(|r| r.max_receive_count),
        dead_letter_target: redrive.and_then(|r| r.dead_letter_target),
    })
}

/// The queue's ARN, for comparing a dead-letter queue's URL with a redrive policy's target.
pub(crate) async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, PollError> {
    let unreadable = |source: QueueError| PollError::Attributes { queue_url: queue_url.to_owned(), source };
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| unreadable(QueueError::new(e)))?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| unreadable(QueueError::new("no QueueArn")))
}

/// The engine's dead-letter queue (`dlq_url`, `dlq_arn`) must be the one the redrive policy names.
pub(crate) fn check_dead_letter_queue(
    queue_url: &str,
    facts: &QueueFacts,
    dlq_url: &str,
    dlq_arn: &str,
) -> Result<(), PollError> {
    match &facts.dead_letter_target {
        Some(target) if target != dlq_arn => Err(PollError::DeadLetterQueueMismatch {
            queue_url: queue_url.to_owned(),
            target_arn: target.clone(),
            dlq_url: dlq_url.to_owned(),
            dlq_arn: dlq_arn.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// What the engine reads of a redrive policy.
#[derive(Debug, PartialEq, Eq)]
struct RedrivePolicy {
    max_receive_count: u32,
    dead_letter_target: Option<String>,
}

/// A redrive policy, `None` if it has no readable `maxReceiveCount` (SQS writes it as a number
/// or as a string).
fn redrive_policy(policy: &str) -> Option<RedrivePolicy> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    let max_receive_count = match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }?;
    Some(RedrivePolicy {
        max_receive_count,
        dead_letter_target: policy["deadLetterTargetArn"].as_str().map(Into::into),
    })
}

pub(crate) fn check_queue(settings: &Settings, queue_url: &str, facts: &QueueFacts) -> Result<(), PollError> {
    let queue_url = queue_url.to_owned();
    match facts.max_receive_count {
        None => return Err(PollError::NoRedrivePolicy { queue_url }),
        Some(queue) if queue != settings.max_receive_count() => {
            return Err(PollError::MaxReceiveCount { queue_url, queue, engine: settings.max_receive_count() });
        }
        Some(_) => {}
    }
    if settings.deadline_margin() >= facts.visibility {
        return Err(PollError::MarginTooLong {
            queue_url,
            margin: settings.deadline_margin(),
            visibility: facts.visibility,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(max_receive_count: Option<u32>, visibility_s: u64) -> QueueFacts {
        QueueFacts {
            arn: "arn".into(),
            visibility: Duration::from_secs(visibility_s),
            max_receive_count,
            dead_letter_target: Some("arn:aws:sqs:us-east-1:1:dlq".into()),
        }
    }

    #[test]
    fn redrive_policies_give_their_max_receive_count_as_number_or_string() {
        let count = |policy: &str| redrive_policy(policy).map(|p| p.max_receive_count);
        assert_eq!(count(r#"{"deadLetterTargetArn":"a","maxReceiveCount":5}"#), Some(5));
        assert_eq!(count(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"7"}"#), Some(7));
        assert_eq!(count(r#"{"deadLetterTargetArn":"a"}"#), None);
    }

    #[test]
    fn a_dead_letter_queue_other_than_the_redrive_policy_s_is_refused_naming_both() {
        assert_eq!(
            redrive_policy(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":5}"#)
                .and_then(|p| p.dead_letter_target)
                .as_deref(),
            Some("arn:aws:sqs:us-east-1:1:dlq")
        );
        let f = facts(Some(5), 30);
        assert!(check_dead_letter_queue("q", &f, "http://dlq", "arn:aws:sqs:us-east-1:1:dlq").is_ok());
        let err = check_dead_letter_queue("q", &f, "http://other", "arn:aws:sqs:us-east-1:1:other").unwrap_err();
        assert_eq!(
            err.to_string(),
            "q: its redrive policy's deadLetterTargetArn is arn:aws:sqs:us-east-1:1:dlq but the dead-letter queue \
             http://other is arn:aws:sqs:us-east-1:1:other: give the consumer the queue the redrive policy names"
        );
    }

    #[test]
    fn a_queue_without_redrive_a_max_receive_count_mismatch_or_a_margin_too_long_is_refused() {
        let settings = Settings::default();
        assert!(check_queue(&settings, "q", &facts(Some(5), 30)).is_ok());
        let err = check_queue(&settings, "q", &facts(None, 30)).unwrap_err().to_string();
        assert!(err.starts_with("q: the queue has no redrive policy"), "{err}");
        let err = check_queue(&settings, "q", &facts(Some(3), 30)).unwrap_err().to_string();
        assert!(err.contains("maxReceiveCount=3 but the engine's max_receive_count=5"), "{err}");
        let err = check_queue(&settings, "q", &facts(Some(5), 2)).unwrap_err().to_string();
        assert!(
            err.contains("the deadline margin (2000 ms) must be less than the queue's VisibilityTimeout=2 s"),
            "{err}"
        );
    }
}
