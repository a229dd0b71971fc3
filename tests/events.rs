//! The sample events in `events/` are valid Lambda SQS events whose bodies
//! are what their names say.

use aws_lambda_events::sqs::SqsEvent;
use cdn_log_delivery::job::{self, JobKind};

fn load(name: &str) -> SqsEvent {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kinds(name: &str) -> Vec<Option<JobKind>> {
    load(name)
        .records
        .iter()
        .map(|r| job::parse(r.body.as_deref().unwrap_or_default()).ok().map(|j| j.kind()))
        .collect()
}

#[test]
fn every_sample_event_holds_the_jobs_its_name_says() {
    assert_eq!(kinds("sqs-enable.json"), [Some(JobKind::Enable)]);
    assert_eq!(kinds("sqs-rescan.json"), [Some(JobKind::Rescan)]);
    assert_eq!(kinds("sqs-scheduler-rescan.json"), [Some(JobKind::Rescan)]);
    assert_eq!(kinds("sqs-eventbridge-rescan.json"), [Some(JobKind::Rescan)]);
    assert_eq!(kinds("sqs-bad-body.json"), [None]);
    assert_eq!(
        kinds("sqs-fifo-batch.json"),
        [Some(JobKind::Enable), Some(JobKind::Enable), None, Some(JobKind::Enable)]
    );
}

#[test]
fn the_eventbridge_sample_is_an_envelope_and_the_scheduler_sample_is_not() {
    let wrapped = load("sqs-eventbridge-rescan.json");
    let body: serde_json::Value =
        serde_json::from_str(wrapped.records[0].body.as_deref().unwrap()).unwrap();
    assert!(body.get("detail-type").is_some() && body["detail"]["type"] == "rescan");
    let raw = load("sqs-scheduler-rescan.json");
    let body: serde_json::Value =
        serde_json::from_str(raw.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body["type"], "rescan");
}

#[test]
fn fifo_samples_carry_message_groups_and_receive_counts() {
    for record in load("sqs-fifo-batch.json").records {
        assert!(record.attributes.contains_key("MessageGroupId"));
        assert!(record.attributes["ApproximateReceiveCount"].parse::<u32>().is_ok());
    }
}
