//! No secret leaks: across success, every failure category and rejection,
//! neither the outcomes nor the worker's logs (captured at DEBUG with the
//! production filter) hold the external id, session credentials, role ARNs
//! or raw AWS error messages.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{EXTERNAL_ID, Fault, ORG, Stack, record};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

/// Strings that must appear in no outcome and no log line.
const FORBIDDEN: [(&str, &str); 7] = [
    (EXTERNAL_ID, "the external id"),
    ("arn:aws:iam::", "a role ARN"),
    (":role/", "a role ARN"),
    ("FQoGZXIvYXdzEBYaD", "a session token (moto's prefix)"),
    ("8NWMTLYQ", "a session access key id (moto's prefix)"),
    ("injected by the test", "a raw AWS error message"),
    ("does not exist in this account", "a raw AWS error message"),
];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn fault(operation: &'static str, needle: &str, status: u16, code: &'static str) -> Fault {
    Fault { operation, body_contains: Some(needle.to_owned()), status, code }
}

#[tokio::test]
async fn no_path_leaks_a_secret_into_outcomes_or_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(cdn_log_delivery::logging::worker_filter("debug"))
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Every receive is the last, so retryable failures publish outcomes too.
    let stack = Stack::new(1, 30).await;
    stack.customer.provision_destination().await;
    let mut d = Vec::new();
    for _ in 0..10 {
        d.push(stack.customer.create_distribution(&["www.example.com"]).await);
    }
    for f in [
        fault("CreateDelivery", &d[1], 400, "ThrottlingException"),
        fault("CreateDelivery", &d[2], 503, "ServiceUnavailableException"),
        fault("CreateDelivery", &d[3], 400, "ExpiredTokenException"),
        fault("PutDeliverySource", &d[4], 400, "ValidationException"),
        fault("PutDeliverySource", &d[5], 400, "ServiceQuotaExceededException"),
        fault("CreateDelivery", &d[6], 400, "AccessDeniedException"),
        fault("PutDeliverySource", &d[7], 400, "ConflictException"),
        fault("Publish", &d[9], 500, "InternalError"),
    ] {
        stack.wire.inject(f);
    }
    let denied_account = common::random_account();
    stack.wire.inject(fault("AssumeRole", &denied_account, 403, "AccessDenied"));

    let body = |i: usize, extra: serde_json::Value| stack.enable_body(&d[i], extra);
    let mut other_org: serde_json::Value = serde_json::from_str(&body(0, json!({}))).unwrap();
    other_org["imsOrgId"] = json!("OTHERORG@AdobeOrg");
    let mut denied: serde_json::Value = serde_json::from_str(&body(0, json!({}))).unwrap();
    denied["accountId"] = json!(denied_account);
    let bodies = [
        body(0, json!({})),
        body(1, json!({})),
        body(2, json!({})),
        body(3, json!({})),
        body(4, json!({})),
        body(5, json!({})),
        body(6, json!({})),
        body(7, json!({})),
        body(8, json!({"siteHost": "shop.example.org"})),
        stack.enable_body("ENOSUCHDIST0001", json!({"siteHost": "www.example.com"})),
        other_org.to_string(),
        denied.to_string(),
        // The external id in a body that is rejected for another field.
        json!({"type": "enable", "accountId": "1", "externalId": EXTERNAL_ID, "imsOrgId": ORG})
            .to_string(),
        json!({"type": "enable", "externalId": format!("{EXTERNAL_ID} with spaces")}).to_string(),
    ];
    let worker = stack.worker();
    for (batch, chunk) in bodies.chunks(8).enumerate() {
        let records: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| record(&format!("s-{batch}-{i}"), b, 1, None))
            .collect();
        stack.run(&worker, &records).await;
    }
    // d[9] alone, so its outcome is the only one its Publish call fails.
    let report = stack.run(&worker, &[record("unpublished", &body(9, json!({})), 1, None)]).await;
    assert_eq!(report.handed_back, ["unpublished"]);
    // Then a rescan, which fans out, and the success path once more.
    let rescan = json!({"type": "rescan", "accountId": stack.customer.account_id,
                        "externalId": EXTERNAL_ID, "imsOrgId": ORG});
    stack.run(&worker, &[record("rescan", &rescan.to_string(), 1, None)]).await;
    stack.run(&worker, &[record("again", &body(0, json!({})), 1, None)]).await;

    // One outcome per body; none for d[9], whose outcome could not be
    // published though its delivery was created; the rescan finds d[0] and
    // d[9] enabled and adds its summary; one for the repeat.
    let outcomes = stack.outcomes(bodies.len() + 3 + 1).await;
    let categories: BTreeSet<_> = outcomes
        .iter()
        .filter_map(|o| o.body["error"]["category"].as_str().map(str::to_owned))
        .collect();
    let expected = [
        "AccessDenied",
        "DeliverySourceConflict",
        "DestinationNotProvisioned",
        "DistributionNotFound",
        "DomainMismatch",
        "ExpiredToken",
        "InvalidJob",
        "ServiceQuotaExceeded",
        "ServiceUnavailable",
        "Throttling",
        "ValidationError",
    ];
    assert_eq!(
        categories,
        expected.iter().map(|c| (*c).to_owned()).collect(),
        "every path was exercised"
    );
    let statuses: BTreeSet<_> = outcomes.iter().map(|o| o.status().to_owned()).collect();
    for status in ["created", "alreadyExisted", "failed", "rejected", "fannedOut"] {
        assert!(statuses.contains(status), "{status} missing: {statuses:?}");
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("job failed")
            && logs.contains("job rejected")
            && logs.contains("batch handled")
    );
    assert!(logs.contains("could not publish every outcome"), "the publish failure was logged");
    for outcome in &outcomes {
        for (needle, what) in FORBIDDEN {
            assert!(!outcome.raw.contains(needle), "{what} in an outcome: {}", outcome.raw);
        }
    }
    for line in logs.lines() {
        for (needle, what) in FORBIDDEN {
            assert!(!line.contains(needle), "{what} in a log line: {line}");
        }
    }
}
