//! The note message parser and validator on arbitrary bodies; the invariants are
//! `notes_testing::check_message` (shared with the regression tests in `make test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = notes_testing::check_message(data) {
        panic!("{broken}");
    }
});
