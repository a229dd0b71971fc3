//! Any org and distribution ids that validate give a delivery source name
//! of at most 60 characters of `[A-Za-z0-9_-]`, the same every time.
#![no_main]

use contract::ids::{DistributionId, ImsOrgId};
use contract::names::{MAX_DELIVERY_SOURCE_NAME, delivery_source_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (org, distribution) = text.split_once('\n').unwrap_or((text, "EDFDVBD6EXAMPLE"));
    let (Ok(org), Ok(distribution)) = (ImsOrgId::parse(org), DistributionId::parse(distribution)) else {
        return;
    };
    let name = delivery_source_name("llmo-cf", &org, &distribution);
    assert!(name.len() <= MAX_DELIVERY_SOURCE_NAME);
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    assert_eq!(name, delivery_source_name("llmo-cf", &org, &distribution));
});
