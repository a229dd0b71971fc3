//! Any text: the parser either accepts it as a job whose own body parses
//! back to the same job, or rejects it with a bounded reason. It never
//! panics.
#![no_main]

use contract::job;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    match job::parse(body) {
        Ok(parsed) => {
            let again = job::parse(&parsed.to_body()).expect("a job's own body parses");
            assert_eq!(again, parsed);
        }
        Err(rejection) => {
            assert!(!rejection.reason.is_empty());
            assert!(rejection.reason.len() < 400, "unbounded reason: {}", rejection.reason.len());
        }
    }
});
