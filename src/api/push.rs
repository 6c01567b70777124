//! `POST /v1/changes`: up to [`MAX_CHANGES`] changes, each validated alone with the consumer's
//! own rules and, if valid, sent with the caller as its owner. One bad change never fails the
//! others; the answer gives each change's fate, in request order.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ChangeQueue, Response};
use crate::notes::{Identity, NoteMessage, Outgoing, Owner, Sent, batches};

/// The most changes one push may carry.
pub const MAX_CHANGES: usize = 100;
/// The largest push body: 5 MiB, under Lambda's 6 MB synchronous payload.
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
struct Push<'a> {
    #[serde(borrow)]
    changes: Vec<&'a RawValue>,
}

/// One change's fate.
#[derive(Debug, Serialize)]
struct Fate {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Answer {
    results: Vec<Fate>,
}

/// Answers a push.
pub(super) async fn push(queue: &impl ChangeQueue, owner: &Owner, body: &[u8]) -> Response {
    if body.len() > MAX_REQUEST_BYTES {
        return Response::error(
            413,
            "payload_too_large",
            format_args!("the request body is {} bytes, more than the limit of {MAX_REQUEST_BYTES}", body.len()),
        );
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Response::error(400, "bad_request", "the request body is not UTF-8");
    };
    let push: Push<'_> = match sqs_partial_batch::json::parse(text) {
        Ok(push) => push,
        Err(e) => {
            return Response::error(
                400,
                "bad_request",
                format_args!("the body must be {{\"changes\":[...]}}: {}", e.message),
            );
        }
    };
    if push.changes.len() > MAX_CHANGES {
        return Response::error(
            400,
            "bad_request",
            format_args!("at most {MAX_CHANGES} changes per request, got {}", push.changes.len()),
        );
    }

    // Validate each change alone. A valid one is sent as parsed and written again, so that only
    // the schema's own fields travel (an `owner` in the body, say, does not).
    let mut fates: Vec<Fate> = Vec::with_capacity(push.changes.len());
    let mut valid: Vec<(usize, NoteMessage<'_>, String)> = Vec::new();
    for (index, raw) in push.changes.iter().enumerate() {
        match NoteMessage::parse(raw.get()) {
            Ok(message) => {
                let body = serde_json::to_string(&message).expect("a parsed message serialises");
                let (id, version) = (Some(message.note.id.to_string()), Some(message.note.version));
                fates.push(Fate { index, id, version, status: "retry", kind: None, reason: None });
                valid.push((index, message, body));
            }
            Err(invalid) => {
                let identity = Identity::peek(raw.get());
                fates.push(Fate {
                    index,
                    id: identity.as_ref().map(|i| i.id.to_string()),
                    version: identity.as_ref().map(|i| i.version),
                    status: "rejected",
                    kind: Some(invalid.kind()),
                    reason: Some(invalid.detail()),
                });
            }
        }
    }

    let outgoing: Vec<Outgoing<'_>> =
        valid.iter().map(|(_, message, body)| Outgoing { owner, note_id: &message.note.id, body }).collect();
    let calls = batches(&outgoing);
    let mut answers = Vec::with_capacity(outgoing.len());
    for sent in futures::future::join_all(calls.iter().map(|batch| queue.send_batch(batch))).await {
        answers.extend(sent);
    }
    for ((index, _, _), sent) in valid.iter().zip(answers) {
        let fate = &mut fates[*index];
        match sent {
            Sent::Accepted => fate.status = "accepted",
            Sent::Refused { reason } => {
                tracing::warn!(event = "queue_refused", index, reason, "SQS refused a change as the sender's fault");
                (fate.status, fate.kind, fate.reason) = ("rejected", Some("refused_by_queue"), Some(reason));
            }
            Sent::Retry { reason } => {
                tracing::warn!(event = "queue_failed", index, reason, "SQS did not take a change");
                (fate.status, fate.reason) = ("retry", Some("the queue did not take it: resend".to_owned()));
            }
        }
    }
    Response::json(200, &Answer { results: fates })
}
