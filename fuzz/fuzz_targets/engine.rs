//! The whole engine (event parser, notes handler, in-memory store, recording queues) on an
//! arbitrary event or generated scenario; the invariants are
//! `notes_testing::check_event`: no panic, every record exactly one outcome, no empty
//! itemIdentifier, response ids = the retried records' ids, each retried record backed off once
//! and no other, nothing dead-lettered twice, letters SQS accepts, no visibility past 12 hours.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = notes_testing::check_event(data) {
        panic!("{broken}");
    }
});
