//! Hostile input: every body of `tests/data/hostile-bodies.json` is
//! rejected with a reason naming what is wrong, reaches the dead-letter
//! queue unchanged, and never makes the worker panic or echo a secret.

mod common;

use common::{Stack, record};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    body: String,
}

/// The secret the corpus uses as external id, and other values no reason
/// may repeat.
const NEVER_ECHOED: [&str; 3] = ["corpus-external-secret", "$(reboot)", "DROP TABLE"];

fn corpus() -> Vec<Case> {
    let path = format!("{}/tests/data/hostile-bodies.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_hostile_body_is_rejected_with_a_reason() {
    let cases = corpus();
    assert!(cases.len() >= 50);
    for case in &cases {
        let rejection = match cdn_log_delivery::job::parse(&case.body) {
            Ok(job) => panic!("{}: accepted as {:?}", case.name, job.kind()),
            Err(rejection) => rejection,
        };
        assert!(!rejection.reason.is_empty(), "{}", case.name);
        assert!(
            rejection.reason.len() < 200,
            "{}: a bounded reason, got {}",
            case.name,
            rejection.reason
        );
        for secret in NEVER_ECHOED {
            assert!(!rejection.reason.contains(secret), "{}: {}", case.name, rejection.reason);
        }
    }
}

#[tokio::test]
async fn every_hostile_body_gets_a_rejected_outcome_and_lands_in_the_dead_letter_queue() {
    let stack = Stack::new(5, 30).await;
    let worker = stack.worker();
    let cases = corpus();
    for (batch, chunk) in cases.chunks(10).enumerate() {
        let records: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, case)| record(&format!("h-{batch}-{i}"), &case.body, 1, Some("hostile")))
            .collect();
        let report = stack.run(&worker, &records).await;
        assert!(report.handed_back.is_empty(), "batch {batch}: {:?}", report.handed_back);
    }

    let outcomes = stack.outcomes(cases.len()).await;
    for outcome in &outcomes {
        assert_eq!(outcome.status(), "rejected");
        assert_eq!(outcome.body["error"]["category"], "InvalidJob");
        assert!(!outcome.body["error"]["detail"].as_str().unwrap_or_default().is_empty());
        for secret in NEVER_ECHOED {
            assert!(!outcome.raw.contains(secret), "{}", outcome.raw);
        }
    }

    let mut in_dlq = Vec::new();
    loop {
        let output = stack
            .sqs
            .receive_message()
            .queue_url(&stack.dead_letter_queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            in_dlq.push(message.body().unwrap_or_default().to_owned());
            stack
                .sqs
                .delete_message()
                .queue_url(&stack.dead_letter_queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let mut sent: Vec<_> = cases.into_iter().map(|c| c.body).collect();
    sent.sort();
    in_dlq.sort();
    assert!(in_dlq == sent, "the dead-letter queue holds every body byte for byte");
}
