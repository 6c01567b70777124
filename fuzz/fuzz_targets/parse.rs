//! The SIMD parser tried for `sqs_partial_batch::json::parse`'s fast path (sonic-rs) against
//! serde_json, on the two documents the engine parses: an SQS event (`Batch`) and a note
//! message (`NoteMessage`). Both parsers must accept and refuse the same text, and read the same
//! value from what they accept: the fast path may not change what the engine takes in.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use notes_sync::notes::NoteMessage;
use serde::Deserialize;
use sqs_partial_batch::Batch;

/// Panics, naming the type and the side that differs, unless both parsers agree on `text`.
fn agree<'a, T: Deserialize<'a> + Debug>(what: &str, text: &'a str) {
    let plain = serde_json::from_str::<T>(text);
    let simd = sonic_rs::from_str::<T>(text);
    match (plain, simd) {
        // `Batch` has no `PartialEq`; `Debug` shows every field, and a `Cow` as its text.
        (Ok(plain), Ok(simd)) => {
            assert_eq!(format!("{plain:?}"), format!("{simd:?}"), "{what}: both accept, with different values")
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("{what}: serde_json accepts, sonic-rs refuses: {e}"),
        (Err(e), Ok(_)) => panic!("{what}: sonic-rs accepts, serde_json refuses: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Both documents reach the parser as `&str` (the invocation payload, an SQS body).
    let Ok(text) = std::str::from_utf8(data) else { return };
    agree::<Batch<'_>>("event", text);
    agree::<NoteMessage<'_>>("note message", text);
});
