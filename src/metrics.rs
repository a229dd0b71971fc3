//! CloudWatch embedded-metric-format (EMF) lines: one per batch, written to
//! the function's log stream, from which CloudWatch extracts the metrics
//! without any log parsing on our side.
//!
//! The only dimension is the function name: account ids and job ids would
//! make a metric per customer. Outcome counts are separate metrics per type
//! and status (`EnableCreated`, `RescanFannedOut`, …), a bounded set.

use serde_json::{Map, Value, json};

use crate::batch::BatchReport;
use crate::outcome::{OutcomeType, Status};

/// The metric namespace alarms and dashboards refer to.
pub const NAMESPACE: &str = "CdnLogDelivery";

/// Every outcome metric name, so each batch reports all of them (zeros
/// included) and dashboards see continuous series.
const OUTCOMES: [(OutcomeType, Status); 8] = [
    (OutcomeType::Enable, Status::Created),
    (OutcomeType::Enable, Status::AlreadyExisted),
    (OutcomeType::Enable, Status::Failed),
    (OutcomeType::Enable, Status::Rejected),
    (OutcomeType::Rescan, Status::FannedOut),
    (OutcomeType::Rescan, Status::Failed),
    (OutcomeType::Rescan, Status::Rejected),
    (OutcomeType::Unknown, Status::Rejected),
];

/// The EMF document for one batch, as one line of JSON.
pub fn batch_line(
    report: &BatchReport,
    records: usize,
    function_name: &str,
    timestamp_ms: u64,
) -> String {
    let mut metrics = vec![
        json!({"Name": "Records", "Unit": "Count"}),
        json!({"Name": "BatchItemFailures", "Unit": "Count"}),
        json!({"Name": "RateLimitWaitMs", "Unit": "Milliseconds"}),
    ];
    let mut values = Map::new();
    values.insert("FunctionName".into(), function_name.into());
    values.insert("Records".into(), records.into());
    values.insert("BatchItemFailures".into(), report.handed_back.len().into());
    values.insert("RateLimitWaitMs".into(), (report.limiter_wait.as_millis() as u64).into());
    for (kind, status) in OUTCOMES {
        let name = metric_name(kind, status);
        let count = report.outcomes.get(&(kind, status)).copied().unwrap_or(0);
        metrics.push(json!({"Name": name, "Unit": "Count"}));
        values.insert(name, count.into());
    }
    values.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(values).to_string()
}

/// `EnableCreated`, `UnknownRejected`, ...
fn metric_name(kind: OutcomeType, status: Status) -> String {
    let mut name = String::new();
    for word in [kind.as_str(), status.as_str()] {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_becomes_one_emf_document() {
        let report = BatchReport {
            handed_back: vec!["m-2".into()],
            outcomes: [
                ((OutcomeType::Enable, Status::Created), 3),
                ((OutcomeType::Unknown, Status::Rejected), 1),
            ]
            .into(),
            limiter_wait: Duration::from_millis(1250),
        };
        let line = batch_line(&report, 5, "cdn-log-delivery", 1_764_756_000_000);
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["FunctionName"], "cdn-log-delivery");
        assert_eq!(doc["Records"], 5);
        assert_eq!(doc["BatchItemFailures"], 1);
        assert_eq!(doc["RateLimitWaitMs"], 1250);
        assert_eq!(doc["EnableCreated"], 3);
        assert_eq!(doc["UnknownRejected"], 1);
        assert_eq!(doc["RescanFannedOut"], 0);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        // Every declared metric has a value at the top level.
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(doc.get(metric["Name"].as_str().unwrap()).is_some(), "{metric}");
        }
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 3 + OUTCOMES.len());
    }
}
