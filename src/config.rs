//! The consumer's configuration, read from the environment once at start-up. A missing or
//! bad variable is an error that names it, so a misconfigured function fails its first
//! invocation loudly instead of failing every message.

use std::str::FromStr;
use std::time::Duration;

use crate::notes::DEFAULT_REJECTION_TTL;
use sqs_partial_batch::Settings;
use sqs_partial_batch::poll::DEFAULT_SHUTDOWN_GRACE;
use sqs_partial_batch::queue::SQS_MAX_MESSAGE_BYTES;
use sqs_partial_batch::settings::{Backoff, FifoMode, LogSuccesses};

/// A configuration error, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable's value is not acceptable.
    #[error("environment variable {name}={value:?} is invalid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: String,
    },
    /// Several variables are wrong: each one, so that one start names them all.
    #[error("{} environment variables are wrong: {}", .0.len(), join(.0))]
    Several(Vec<ConfigError>),
    /// Two values that are each valid but cannot work together.
    #[error("{name}={value} must be less than {other}={other_value}: {why}")]
    Conflict {
        /// The value that is too large.
        name: &'static str,
        /// Its value.
        value: String,
        /// The value it is measured against.
        other: &'static str,
        /// That value.
        other_value: String,
        /// What would happen otherwise.
        why: &'static str,
    },
}

/// The deadline margin must leave time for the records (the engine's reason, which its
/// poller gives too).
pub use sqs_partial_batch::settings::MARGIN_CONFLICT;

/// The CloudWatch namespace of the consumer's metrics unless `METRICS_NAMESPACE` says
/// otherwise; the template's `MetricsNamespace` parameter defaults to it too.
pub const DEFAULT_METRICS_NAMESPACE: &str = "NotesSync";

/// Everything the notes consumer needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table of notes (`TABLE_NAME`).
    pub table_name: String,
    /// Dead-letter queue URL for permanent failures (`DLQ_URL`).
    pub dlq_url: String,
    /// Engine settings.
    pub settings: Settings,
    /// The dead-letter queue's `MaximumMessageSize` (`DLQ_MAX_MESSAGE_BYTES`): letters are
    /// fitted into it.
    pub dlq_max_message_bytes: usize,
    /// Poll mode: how long a shutdown signal lets the batch in hand run before it is cut
    /// (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// The SQS endpoint of a local emulator, from the SDK's own variables
    /// (`AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`): the source queues' URLs are made
    /// from their ARNs with it.
    pub sqs_endpoint: Option<String>,
    /// How long a rejection is kept for its author's pull (`REJECTION_TTL_SECONDS`): the
    /// dead-letter queue's retention.
    pub rejection_ttl: Duration,
}

/// Environment variables, with their defaults where they have one.
pub mod vars {
    /// Required: the notes table.
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// Required: the dead-letter queue URL.
    pub const DLQ_URL: &str = "DLQ_URL";
    /// The source queue's redrive `maxReceiveCount`; default 5.
    pub const MAX_RECEIVE_COUNT: &str = "MAX_RECEIVE_COUNT";
    /// First backoff delay in seconds, at least 1; default 5.
    pub const BACKOFF_BASE_SECONDS: &str = "BACKOFF_BASE_SECONDS";
    /// Longest backoff delay in seconds; default 900, at most 43200.
    pub const BACKOFF_MAX_SECONDS: &str = "BACKOFF_MAX_SECONDS";
    /// Records (or FIFO groups) processed at once; default 16.
    pub const MAX_CONCURRENCY: &str = "MAX_CONCURRENCY";
    /// Milliseconds kept in reserve before the invocation deadline; default 2000.
    pub const DEADLINE_MARGIN_MS: &str = "DEADLINE_MARGIN_MS";
    /// `group` (default) or `batch`: what a FIFO failure stops.
    pub const FIFO_FAILURE_MODE: &str = "FIFO_FAILURE_MODE";
    /// CloudWatch namespace of the metrics; default `NotesSync`.
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    /// The store-outage brake: transient failures in a row before untried records are
    /// reported failed; default 5, 0 = off.
    pub const BRAKE_AFTER_FAILURES: &str = "BRAKE_AFTER_FAILURES";
    /// The Lambda function's timeout in seconds (the template sets it): the deadline margin
    /// must be shorter. Optional.
    pub const FUNCTION_TIMEOUT_SECONDS: &str = "FUNCTION_TIMEOUT_SECONDS";
    /// The dead-letter queue's `MaximumMessageSize` in bytes; default 1048576 (the SQS maximum).
    pub const DLQ_MAX_MESSAGE_BYTES: &str = "DLQ_MAX_MESSAGE_BYTES";
    /// Poll mode: seconds the batch in hand may run after SIGTERM before it is cut; default 10.
    pub const SHUTDOWN_GRACE_SECONDS: &str = "SHUTDOWN_GRACE_SECONDS";
    /// Seconds a rejection is kept for its author's pull; default 1209600 (14 days, the
    /// dead-letter queue's retention).
    pub const REJECTION_TTL_SECONDS: &str = "REJECTION_TTL_SECONDS";
    /// `each` (default) or `none`: whether a successful record gets a log line. Failures,
    /// retries, final attempts and dead letters always do.
    pub const LOG_SUCCESSES: &str = "LOG_SUCCESSES";
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let found = Found::default();
        let defaults = Settings::default();
        let max_receive_count = found.number(&env, vars::MAX_RECEIVE_COUNT, defaults.max_receive_count(), 1, 1000);
        let base =
            found.number(&env, vars::BACKOFF_BASE_SECONDS, defaults.backoff().base_seconds(), 1, Backoff::MAX_SECONDS);
        let max = found.take(
            env.number(vars::BACKOFF_MAX_SECONDS, defaults.backoff().max_seconds(), base, Backoff::MAX_SECONDS),
            defaults.backoff().max_seconds().max(base),
        );
        let fifo_mode = match env.optional(vars::FIFO_FAILURE_MODE).as_deref() {
            None => defaults.fifo_mode(),
            Some("group") => FifoMode::Group,
            Some("batch") => FifoMode::Batch,
            Some(other) => {
                found.push(invalid(vars::FIFO_FAILURE_MODE, other, "`group` or `batch`"));
                defaults.fifo_mode()
            }
        };
        let log_successes = match env.optional(vars::LOG_SUCCESSES).as_deref() {
            None => defaults.log_successes(),
            Some("each") => LogSuccesses::Each,
            Some("none") => LogSuccesses::None,
            Some(other) => {
                found.push(invalid(vars::LOG_SUCCESSES, other, "`each` or `none`"));
                defaults.log_successes()
            }
        };
        let default_margin_ms = defaults.deadline_margin().as_millis() as u64;
        let margin_ms = found.number(&env, vars::DEADLINE_MARGIN_MS, default_margin_ms, 100, 60_000);
        if let Some(timeout_s) = found.take(env.optional_number::<u64>(vars::FUNCTION_TIMEOUT_SECONDS, 1, 900), None)
            && margin_ms >= timeout_s * 1000
        {
            found.push(ConfigError::Conflict {
                name: vars::DEADLINE_MARGIN_MS,
                value: margin_ms.to_string(),
                other: vars::FUNCTION_TIMEOUT_SECONDS,
                other_value: format!("{timeout_s} ({} ms)", timeout_s * 1000),
                why: MARGIN_CONFLICT,
            });
        }
        let namespace = env.optional(vars::METRICS_NAMESPACE).unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned());
        let namespace = found.take(metrics_namespace(namespace), DEFAULT_METRICS_NAMESPACE.to_owned());
        let config = Self {
            table_name: found.take(env.required(vars::TABLE_NAME), String::new()),
            dlq_url: found.take(env.required(vars::DLQ_URL), String::new()),
            dlq_max_message_bytes: found.number(
                &env,
                vars::DLQ_MAX_MESSAGE_BYTES,
                SQS_MAX_MESSAGE_BYTES,
                1024,
                SQS_MAX_MESSAGE_BYTES,
            ),
            shutdown_grace: Duration::from_secs(found.number(
                &env,
                vars::SHUTDOWN_GRACE_SECONDS,
                DEFAULT_SHUTDOWN_GRACE.as_secs(),
                0,
                3600,
            )),
            // The SDK's own endpoint variables: a source queue's ARN is turned into a URL the
            // emulator accepts with them.
            sqs_endpoint: env.optional("AWS_ENDPOINT_URL_SQS").or_else(|| env.optional("AWS_ENDPOINT_URL")),
            rejection_ttl: Duration::from_secs(found.number(
                &env,
                vars::REJECTION_TTL_SECONDS,
                DEFAULT_REJECTION_TTL.as_secs(),
                60,
                DEFAULT_REJECTION_TTL.as_secs(),
            )),
            settings: Settings::default()
                .with_max_receive_count(max_receive_count)
                .with_backoff(Backoff::new(base, max))
                .with_max_concurrency(found.number(&env, vars::MAX_CONCURRENCY, defaults.max_concurrency(), 1, 1000))
                .with_deadline_margin(Duration::from_millis(margin_ms))
                .with_fifo_mode(fifo_mode)
                .with_brake_after(found.number(&env, vars::BRAKE_AFTER_FAILURES, defaults.brake_after(), 0, 10_000))
                .with_metrics(
                    namespace,
                    // Set by Lambda: the metrics' dimension.
                    env.optional("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| defaults.function_name().to_owned()),
                )
                .with_log_successes(log_successes)
                // A redrive by resending must keep the owner: it is carried first on a dead
                // letter, whatever else the sender set.
                .with_carried_first([crate::notes::OWNER_ATTRIBUTE]),
        };
        found.finish(config)
    }
}

fn join(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The errors found while reading: reading goes on after one, with a stand-in value, so that
/// every bad variable is reported at once.
#[derive(Default)]
struct Found(std::cell::RefCell<Vec<ConfigError>>);

impl Found {
    /// The value, or `instead` with the error kept.
    fn take<T>(&self, read: Result<T, ConfigError>, instead: T) -> T {
        read.unwrap_or_else(|e| {
            self.0.borrow_mut().push(e);
            instead
        })
    }

    /// A number in `min..=max`, or `default` with the error kept.
    fn number<T>(&self, env: &Env<'_>, name: &'static str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        self.take(env.number(name, default, min, max), default)
    }

    fn push(&self, e: ConfigError) {
        self.0.borrow_mut().push(e);
    }

    /// `value` if nothing was wrong; else the one error, or all of them.
    fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        let mut errors = self.0.into_inner();
        match errors.len() {
            0 => Ok(value),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Several(errors)),
        }
    }
}

/// CloudWatch's rules for a namespace: 1 to 255 characters of `0-9A-Za-z . - _ / # :` and
/// space, not starting with `:`, and not in the `AWS/` namespaces AWS reserves for itself.
fn metrics_namespace(raw: String) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    let expected = if raw.len() > 255 {
        Some("at most 255 characters")
    } else if !raw.chars().all(allowed) {
        Some("only 0-9A-Za-z, period, hyphen, underscore, slash, hash, colon and space")
    } else if raw.starts_with(':') {
        Some("not starting with a colon")
    } else if raw.starts_with("AWS/") {
        Some("not under AWS/ (reserved for AWS's own metrics)")
    } else {
        None
    };
    match expected {
        None => Ok(raw),
        Some(why) => Err(invalid(vars::METRICS_NAMESPACE, &raw, format!("a CloudWatch namespace: {why}"))),
    }
}

fn invalid(name: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), expected: expected.into() }
}

/// Variables read through a lookup: trimmed, empty as unset, numbers checked against a range.
pub(crate) struct Env<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub(crate) fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub(crate) fn number<T>(&self, name: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        Ok(self.optional_number(name, min, max)?.unwrap_or(default))
    }

    fn optional_number<T>(&self, name: &'static str, min: T, max: T) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return Ok(None);
        };
        match raw.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(invalid(name, &raw, format!("an integer from {min} to {max}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 2] = [("TABLE_NAME", "notes"), ("DLQ_URL", "http://q/dlq")];

    #[test]
    fn defaults_apply_when_only_the_required_variables_are_set() {
        let c = config(&REQUIRED).unwrap();
        assert_eq!(c.table_name, "notes");
        assert_eq!(c.settings.max_receive_count(), 5);
        assert_eq!(*c.settings.backoff(), Backoff::new(5, 900));
        assert_eq!(c.settings.max_concurrency(), 16);
        assert_eq!(c.settings.deadline_margin(), Duration::from_secs(2));
        assert_eq!(c.settings.fifo_mode(), FifoMode::Group);
        assert_eq!(c.settings.brake_after(), 5);
        assert_eq!(c.dlq_max_message_bytes, 1024 * 1024);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.settings.carried_first(), ["owner"], "a dead letter keeps its owner first");
        assert_eq!(c.rejection_ttl, Duration::from_secs(14 * 24 * 3600));
    }

    #[test]
    fn the_brake_is_set_or_turned_off_with_zero() {
        let c = config(&[REQUIRED[0], REQUIRED[1], ("BRAKE_AFTER_FAILURES", "0")]).unwrap();
        assert_eq!(c.settings.brake_after(), 0);
        let err = config(&[REQUIRED[0], REQUIRED[1], ("BRAKE_AFTER_FAILURES", "-1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"environment variable BRAKE_AFTER_FAILURES="-1" is invalid: an integer from 0 to 10000"#
        );
    }

    #[test]
    fn a_deadline_margin_not_shorter_than_the_function_timeout_is_refused_naming_both() {
        let err =
            config(&[REQUIRED[0], REQUIRED[1], ("DEADLINE_MARGIN_MS", "10000"), ("FUNCTION_TIMEOUT_SECONDS", "10")])
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "DEADLINE_MARGIN_MS=10000 must be less than FUNCTION_TIMEOUT_SECONDS=10 (10000 ms): \
             every record would be cut before it could run, and retried forever"
        );
        assert!(
            config(&[REQUIRED[0], REQUIRED[1], ("DEADLINE_MARGIN_MS", "9999"), ("FUNCTION_TIMEOUT_SECONDS", "10")])
                .is_ok()
        );
        assert!(config(&[REQUIRED[0], REQUIRED[1], ("FUNCTION_TIMEOUT_SECONDS", "0")]).is_err());
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        assert_eq!(config(&[("DLQ_URL", "x")]).unwrap_err(), ConfigError::Missing("TABLE_NAME"));
        let err = config(&[("TABLE_NAME", "t"), ("DLQ_URL", "  ")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable DLQ_URL is required but not set");
    }

    #[test]
    fn a_bad_number_is_named_with_its_range() {
        let err = config(&[REQUIRED[0], REQUIRED[1], ("MAX_RECEIVE_COUNT", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"environment variable MAX_RECEIVE_COUNT="0" is invalid: an integer from 1 to 1000"#
        );
        let err = config(&[REQUIRED[0], REQUIRED[1], ("BACKOFF_MAX_SECONDS", "50000")]).unwrap_err();
        assert!(err.to_string().contains("BACKOFF_MAX_SECONDS"), "{err}");
        let err = config(&[REQUIRED[0], REQUIRED[1], ("BACKOFF_BASE_SECONDS", "10"), ("BACKOFF_MAX_SECONDS", "5")])
            .unwrap_err();
        assert!(err.to_string().contains("from 10 to 43200"), "{err}");
        let err = config(&[REQUIRED[0], REQUIRED[1], ("FIFO_FAILURE_MODE", "all")]).unwrap_err();
        assert!(err.to_string().contains("`group` or `batch`"), "{err}");
    }

    #[test]
    fn a_zero_backoff_base_is_refused_as_the_template_s_minimum_is_one() {
        let err = config(&[REQUIRED[0], REQUIRED[1], ("BACKOFF_BASE_SECONDS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"environment variable BACKOFF_BASE_SECONDS="0" is invalid: an integer from 1 to 43200"#
        );
        assert_eq!(
            *config(&[REQUIRED[0], REQUIRED[1], ("BACKOFF_BASE_SECONDS", "1")]).unwrap().settings.backoff(),
            Backoff::new(1, 900)
        );
    }

    #[test]
    fn log_successes_is_each_by_default_none_on_request_and_named_when_wrong() {
        assert_eq!(config(&REQUIRED).unwrap().settings.log_successes(), LogSuccesses::Each);
        let none = config(&[REQUIRED[0], REQUIRED[1], ("LOG_SUCCESSES", "none")]).unwrap();
        assert_eq!(none.settings.log_successes(), LogSuccesses::None);
        let err = config(&[REQUIRED[0], REQUIRED[1], ("LOG_SUCCESSES", "failures")]).unwrap_err();
        assert_eq!(err.to_string(), r#"environment variable LOG_SUCCESSES="failures" is invalid: `each` or `none`"#);
    }

    #[test]
    fn every_bad_variable_is_named_in_one_error() {
        let err = config(&[
            ("DLQ_URL", "x"),
            ("MAX_RECEIVE_COUNT", "0"),
            ("LOG_SUCCESSES", "some"),
            ("METRICS_NAMESPACE", "AWS/Lambda"),
        ])
        .unwrap_err();
        let ConfigError::Several(errors) = &err else { panic!("one error for four: {err}") };
        assert_eq!(errors.len(), 4, "{err}");
        let text = err.to_string();
        assert!(text.starts_with("4 environment variables are wrong: "), "{text}");
        for name in ["MAX_RECEIVE_COUNT", "LOG_SUCCESSES", "METRICS_NAMESPACE", "TABLE_NAME"] {
            assert!(text.contains(name), "{name} named in: {text}");
        }
    }

    #[test]
    fn a_metrics_namespace_is_checked_against_cloudwatch_s_rules() {
        for good in ["NotesSync", "Team/Notes Sync", "a.b-c_d#e:f"] {
            let c = config(&[REQUIRED[0], REQUIRED[1], ("METRICS_NAMESPACE", good)]).unwrap();
            assert_eq!(c.settings.metrics_namespace(), good);
        }
        let long = "n".repeat(256);
        for (bad, why) in [
            ("AWS/Lambda", "reserved"),
            (":notes", "colon"),
            ("notes\u{7}", "only 0-9A-Za-z"),
            ("notes{x}", "only 0-9A-Za-z"),
            (long.as_str(), "at most 255"),
        ] {
            let err = config(&[REQUIRED[0], REQUIRED[1], ("METRICS_NAMESPACE", bad)]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("METRICS_NAMESPACE") && text.contains(why), "{bad:?}: {text}");
        }
    }

    #[test]
    fn the_sqs_endpoint_override_prefers_the_service_specific_variable() {
        let c =
            config(&[REQUIRED[0], REQUIRED[1], ("AWS_ENDPOINT_URL", "http://a"), ("AWS_ENDPOINT_URL_SQS", "http://b")])
                .unwrap();
        assert_eq!(c.sqs_endpoint.as_deref(), Some("http://b"));
    }
}
