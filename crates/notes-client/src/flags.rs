//! Client feature flags, in the seed's shape:
//! `{"features":{"retry_pending_notes":bool,"retry_interval_seconds":int}}`.
//!
//! They come from a local file or an SSM parameter and are re-read every `sync --watch`
//! cycle. The last good flags are kept in the database, so a missing, unreachable or broken
//! source changes nothing: the client goes on with what it last knew (or [`Flags::default`]
//! the first time) and warns, once per distinct reason.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::outbox::{Outbox, OutboxError};

/// Shortest retry interval a source may set.
pub const MIN_INTERVAL_SECONDS: u64 = 1;
/// Longest retry interval a source may set (one day).
pub const MAX_INTERVAL_SECONDS: u64 = 86_400;

/// The flags in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Flags {
    /// Whether `sync --watch` resends pending notes.
    pub retry_pending_notes: bool,
    /// Seconds between two resends.
    pub retry_interval_seconds: u64,
}

impl Default for Flags {
    /// Used until a source has been read once: retry every two minutes, the template's value.
    fn default() -> Self {
        Self { retry_pending_notes: true, retry_interval_seconds: 120 }
    }
}

#[derive(Deserialize)]
struct Document {
    features: Features,
}

#[derive(Deserialize)]
struct Features {
    retry_pending_notes: bool,
    retry_interval_seconds: i64,
}

/// Why a flags source could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The SSM parameter could not be read.
    #[error("cannot read the SSM parameter {name}: {reason}")]
    Ssm {
        /// The parameter name.
        name: String,
        /// The SDK's error chain.
        reason: String,
    },
    /// Not JSON of the expected shape; the text names the JSON path.
    #[error("malformed flags: {0}")]
    Malformed(String),
    /// A value out of its range; the text names the field.
    #[error("features.retry_interval_seconds is {0}, outside {MIN_INTERVAL_SECONDS}..={MAX_INTERVAL_SECONDS}")]
    OutOfRange(i64),
}

impl Flags {
    /// Parses and checks a flags document.
    pub fn parse(text: &str) -> Result<Self, FlagsError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let doc: Document = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            FlagsError::Malformed(if path == "." { inner.to_string() } else { format!("{path}: {inner}") })
        })?;
        de.end().map_err(|e| FlagsError::Malformed(e.to_string()))?;
        let interval = doc.features.retry_interval_seconds;
        if !(MIN_INTERVAL_SECONDS as i64..=MAX_INTERVAL_SECONDS as i64).contains(&interval) {
            return Err(FlagsError::OutOfRange(interval));
        }
        Ok(Self { retry_pending_notes: doc.features.retry_pending_notes, retry_interval_seconds: interval as u64 })
    }

    /// The seed's JSON shape.
    pub fn to_json(&self) -> String {
        serde_json::json!({"features": {"retry_pending_notes": self.retry_pending_notes,
            "retry_interval_seconds": self.retry_interval_seconds}})
        .to_string()
    }
}

/// Where the flags come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FlagsSource {
    /// No source: the last good flags, or the defaults.
    None,
    /// A local JSON file.
    File(PathBuf),
    /// An SSM parameter (String type) holding the JSON.
    Ssm {
        /// The client to read it with.
        client: aws_sdk_ssm::Client,
        /// The parameter name.
        name: String,
    },
}

impl FlagsSource {
    /// How the source is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::None => "defaults".to_owned(),
            Self::File(path) => format!("file {}", path.display()),
            Self::Ssm { name, .. } => format!("ssm {name}"),
        }
    }

    /// Reads and checks the flags; `Ok(None)` when there is no source.
    pub async fn fetch(&self) -> Result<Option<Flags>, FlagsError> {
        let text = match self {
            Self::None => return Ok(None),
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|source| FlagsError::Read { path: path.clone(), source })?
            }
            Self::Ssm { client, name } => {
                let out = client
                    .get_parameter()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| FlagsError::Ssm { name: name.clone(), reason: crate::error_chain(&e) })?;
                out.parameter.and_then(|p| p.value).unwrap_or_default()
            }
        };
        Flags::parse(&text).map(Some)
    }
}

/// The flags in force and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InForce {
    /// The flags.
    pub flags: Flags,
    /// `file …` / `ssm …` / `defaults`, plus `(last good)` when the source failed.
    pub origin: String,
    /// Why the source could not be used this time, if it could not.
    pub problem: Option<String>,
}

/// Resolves flags against the database's last good ones, and remembers which warning it gave
/// last so that a source broken for an hour warns once, not every cycle.
#[derive(Debug, Default)]
pub struct FlagsKeeper {
    last_warning: Option<String>,
}

impl FlagsKeeper {
    /// Fetches from `source`; stores good flags in `outbox`; on a failure falls back to the
    /// stored ones (or the defaults). Returns the flags in force and, if this reason was not
    /// yet reported, a warning to show.
    pub async fn resolve(
        &mut self,
        source: &FlagsSource,
        outbox: &Outbox,
    ) -> Result<(InForce, Option<String>), OutboxError> {
        let fetched = source.fetch().await;
        let (in_force, problem) = match fetched {
            Ok(Some(flags)) => {
                outbox.set_meta("flags", &flags.to_json())?;
                outbox.set_meta("flags_origin", &source.describe())?;
                (InForce { flags, origin: source.describe(), problem: None }, None)
            }
            Ok(None) => (stored(outbox)?, None),
            Err(e) => {
                let reason = crate::error_chain(&e);
                let mut kept = stored(outbox)?;
                kept.origin = format!("{} (last good; {} failed)", kept.origin, source.describe());
                kept.problem = Some(reason.clone());
                (kept, Some(reason))
            }
        };
        let warning = match problem {
            Some(reason) if self.last_warning.as_deref() != Some(&reason) => {
                self.last_warning = Some(reason.clone());
                let f = in_force.flags;
                Some(format!(
                    "flags from {} not used, keeping retry_pending_notes={} retry_interval_seconds={}: {reason}",
                    source.describe(),
                    f.retry_pending_notes,
                    f.retry_interval_seconds
                ))
            }
            Some(_) => None,
            None => {
                self.last_warning = None;
                None
            }
        };
        Ok((in_force, warning))
    }
}

/// The last good flags from the database, or the defaults.
pub fn stored(outbox: &Outbox) -> Result<InForce, OutboxError> {
    let flags = outbox.meta("flags")?.and_then(|json| Flags::parse(&json).ok());
    Ok(match flags {
        Some(flags) => InForce { flags, origin: outbox.meta("flags_origin")?.unwrap_or_default(), problem: None },
        None => InForce { flags: Flags::default(), origin: "defaults".to_owned(), problem: None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_shape_parses() {
        let flags = Flags::parse(r#"{"features":{"retry_pending_notes":false,"retry_interval_seconds":30}}"#).unwrap();
        assert_eq!(flags, Flags { retry_pending_notes: false, retry_interval_seconds: 30 });
        assert_eq!(Flags::parse(&flags.to_json()).unwrap(), flags);
    }

    #[test]
    fn bad_flags_are_refused_naming_the_field() {
        let cases = [
            (
                r#"{"features":{"retry_pending_notes":true,"retry_interval_seconds":0}}"#,
                "features.retry_interval_seconds is 0",
            ),
            (
                r#"{"features":{"retry_pending_notes":true,"retry_interval_seconds":-5}}"#,
                "features.retry_interval_seconds is -5",
            ),
            (r#"{"features":{"retry_pending_notes":true,"retry_interval_seconds":86401}}"#, "outside 1..=86400"),
            (
                r#"{"features":{"retry_pending_notes":"yes","retry_interval_seconds":5}}"#,
                "features.retry_pending_notes: invalid type",
            ),
            (r#"{"features":{"retry_pending_notes":true}}"#, "missing field `retry_interval_seconds`"),
            (
                r#"{"features":{"retry_pending_notes":true,"retry_interval_seconds":1.5}}"#,
                "features.retry_interval_seconds: invalid type",
            ),
            ("not json", "malformed flags: expected ident"),
        ];
        for (text, expected) in cases {
            let err = Flags::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
