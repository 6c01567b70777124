//! The SIMD parsers tried for `sqs_partial_batch::json::parse`'s fast path (sonic-rs and
//! simd-json, issue 19) against serde_json, on the two documents the engine parses: an SQS
//! event (`Batch`) and a note message (`NoteMessage`). Each must accept and refuse the same
//! text as serde_json, and read the same value from what it accepts: a fast path may not
//! change what the engine takes in. Neither does today (the seeds named after them fail at
//! once), which is why neither is the fast path and this target is not in `make fuzz`.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use notes_sync::notes::NoteMessage;
use sqs_partial_batch::Batch;

/// Panics, naming the type and the parser that differs, unless `other` agrees with serde_json's
/// reading of `text`: both refuse it, or both read the same value.
fn agree<T: Debug, U: Debug, E: Debug>(what: &str, parser: &str, plain: &serde_json::Result<T>, other: Result<U, E>) {
    match (plain, other) {
        // `Batch` has no `PartialEq`; `Debug` shows every field, and a `Cow` as its text.
        (Ok(plain), Ok(other)) => {
            assert_eq!(format!("{plain:?}"), format!("{other:?}"), "{what}: {parser} reads another value")
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("{what}: serde_json accepts, {parser} refuses: {e:?}"),
        (Err(e), Ok(_)) => panic!("{what}: {parser} accepts, serde_json refuses: {e}"),
    }
}

/// Both SIMD parsers against serde_json's one reading of `text` as a `$type`.
macro_rules! both {
    ($type:ident, $what:literal, $text:expr) => {{
        let text: &str = $text;
        let plain = serde_json::from_str::<$type>(text);
        agree($what, "sonic-rs", &plain, sonic_rs::from_str::<$type>(text));
        // simd-json parses in place: it unescapes strings into the buffer it is given.
        let mut buffer = text.as_bytes().to_vec();
        agree($what, "simd-json", &plain, simd_json::serde::from_slice::<$type>(&mut buffer));
    }};
}

fuzz_target!(|data: &[u8]| {
    // Both documents reach the parser as `&str` (the invocation payload, an SQS body).
    let Ok(text) = std::str::from_utf8(data) else { return };
    both!(Batch, "event", text);
    both!(NoteMessage, "note message", text);
});
