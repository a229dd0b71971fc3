//! Rescans against moto: listing, the amortised check, fan-out to the jobs
//! queue and the enable jobs it produces, run by the real poller.

mod common;

use std::sync::Arc;

use cdn_log_delivery::batch::Worker;
use cdn_log_delivery::cli::poll::Poller;
use common::{EXTERNAL_ID, ORG, Stack, record};
use serde_json::json;
use tokio::sync::watch;

const LOGS_WRITES: [&str; 2] = ["PutDeliverySource", "CreateDelivery"];

fn rescan_body(stack: &Stack, job_id: &str) -> String {
    json!({
        "type": "rescan", "accountId": stack.customer.account_id, "externalId": EXTERNAL_ID,
        "imsOrgId": ORG, "jobId": job_id, "siteId": "site-9",
    })
    .to_string()
}

async fn drain(stack: &Stack, worker: Arc<Worker>) {
    let poller =
        Poller::new(worker, stack.sqs.clone(), stack.jobs_queue.clone(), Some("us-east-1".into()));
    let (_stop, stop) = watch::channel(false);
    let summary = poller.run(true, stop).await.expect("poll");
    assert_eq!(summary.handed_back, 0, "{summary:?}");
}

#[tokio::test]
async fn a_rescan_enables_every_distribution_once_and_a_second_rescan_writes_nothing() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let mut distributions = Vec::new();
    for i in 0..25 {
        distributions
            .push(stack.customer.create_distribution(&[&format!("www{i}.example.com")]).await);
    }
    let worker = Arc::new(stack.worker());

    // Five are already enabled, by the API.
    let enables: Vec<_> = distributions[..5]
        .iter()
        .enumerate()
        .map(|(i, d)| record(&format!("e-{i}"), &stack.enable_body(d, json!({})), 1, None))
        .collect();
    assert!(stack.run(&worker, &enables).await.handed_back.is_empty());
    assert_eq!(stack.outcomes(5).await.iter().filter(|o| o.status() == "created").count(), 5);

    stack.wire.reset_calls();
    let report =
        stack.run(&worker, &[record("r-1", &rescan_body(&stack, "rescan-1"), 1, None)]).await;
    assert!(report.handed_back.is_empty());
    let outcomes = stack.outcomes(6).await;
    let summary = outcomes.iter().find(|o| o.str("type") == Some("rescan")).expect("a summary");
    assert_eq!(summary.status(), "fannedOut");
    assert_eq!(summary.type_attribute, "rescan");
    assert_eq!(summary.str("jobId"), Some("rescan-1"));
    assert_eq!(
        (
            &summary.body["scanned"],
            &summary.body["alreadyExisted"],
            &summary.body["enqueued"],
            &summary.body["truncated"]
        ),
        (&json!(25), &json!(5), &json!(20), &json!(false))
    );
    for outcome in outcomes.iter().filter(|o| o.str("type") == Some("enable")) {
        assert_eq!(outcome.status(), "alreadyExisted");
        assert_eq!(outcome.str("rescanId"), Some("rescan-1"));
        assert_eq!(outcome.str("siteId"), Some("site-9"));
        assert!(
            distributions[..5].iter().any(|d| Some(d.as_str()) == outcome.str("distributionId"))
        );
    }
    // Listing is amortised: two Logs calls, no write, no per-distribution call.
    assert_eq!(stack.wire.count("DescribeDeliverySources"), 1);
    assert_eq!(stack.wire.count("DescribeDeliveries"), 1);
    assert_eq!(stack.wire.count("GetDeliverySource"), 0);
    assert!(LOGS_WRITES.iter().all(|w| stack.wire.count(w) == 0));

    // The fanned-out jobs, run by the poller: two writes per distribution.
    stack.wire.reset_calls();
    drain(&stack, worker.clone()).await;
    let created = stack.outcomes(20).await;
    assert!(
        created.iter().all(|o| o.status() == "created" && o.str("rescanId") == Some("rescan-1"))
    );
    assert_eq!(stack.wire.count("PutDeliverySource"), 20);
    assert_eq!(stack.wire.count("CreateDelivery"), 20);
    assert_eq!(stack.wire.count("GetDeliverySource"), 0);

    let deliveries = stack.customer.deliveries().await;
    assert_eq!(deliveries.len(), 25);
    for d in &distributions {
        let source = stack.customer.source_name(d);
        assert_eq!(
            deliveries.iter().filter(|x| x.delivery_source_name() == Some(source.as_str())).count(),
            1
        );
    }
    assert_eq!(stack.customer.delivery_sources().await.len(), 25);

    // Steady state: the second rescan only lists.
    stack.wire.reset_calls();
    stack.run(&worker, &[record("r-2", &rescan_body(&stack, "rescan-2"), 1, None)]).await;
    let outcomes = stack.outcomes(26).await;
    let summary = outcomes.iter().find(|o| o.str("type") == Some("rescan")).unwrap();
    assert_eq!(
        (&summary.body["alreadyExisted"], &summary.body["enqueued"]),
        (&json!(25), &json!(0))
    );
    let logs_calls: Vec<_> = stack
        .wire
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("Describe") || c.contains("Deliver"))
        .collect();
    assert_eq!(logs_calls, ["DescribeDeliverySources", "DescribeDeliveries"]);
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0);
}

#[tokio::test]
async fn max_distributions_caps_a_rescan_and_reports_truncation() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    for _ in 0..4 {
        stack.customer.create_distribution(&[]).await;
    }
    let worker = stack.worker();
    let mut body: serde_json::Value = serde_json::from_str(&rescan_body(&stack, "capped")).unwrap();
    body["maxDistributions"] = json!(3);
    stack.run(&worker, &[record("r-1", &body.to_string(), 1, None)]).await;
    let summary = &stack.outcomes(1).await[0];
    assert_eq!((&summary.body["scanned"], &summary.body["truncated"]), (&json!(3), &json!(true)));
    assert_eq!(summary.body["enqueued"], json!(3));
    let queued = stack.peek(&stack.jobs_queue).await;
    assert_eq!(queued.len(), 3);
    for message in queued {
        let job: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
        assert_eq!(
            (job["type"].as_str(), job["rescanId"].as_str()),
            (Some("enable"), Some("capped"))
        );
        assert_eq!(
            job["externalId"].as_str(),
            Some(EXTERNAL_ID),
            "fan-out hands the external id on"
        );
    }
}

#[tokio::test]
async fn enable_jobs_of_one_account_in_a_batch_share_one_listing() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let mut records = Vec::new();
    for i in 0..4 {
        let d = stack.customer.create_distribution(&[]).await;
        records.push(record(&format!("e-{i}"), &stack.enable_body(&d, json!({})), 1, Some("g")));
    }
    let worker = stack.worker();
    stack.wire.reset_calls();
    assert!(stack.run(&worker, &records).await.handed_back.is_empty());
    assert!(stack.outcomes(4).await.iter().all(|o| o.status() == "created"));
    assert_eq!(stack.wire.count("DescribeDeliverySources"), 1);
    assert_eq!(stack.wire.count("DescribeDeliveries"), 1);
    assert_eq!(stack.wire.count("GetDeliverySource"), 0);
    assert_eq!(stack.wire.count("CreateDelivery"), 4);
}

#[tokio::test]
async fn a_rescan_from_an_eventbridge_envelope_runs_like_a_plain_one() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    stack.customer.create_distribution(&[]).await;
    let worker = stack.worker();
    let wrapped = json!({
        "version": "0", "id": "e-1", "detail-type": "cdn-log-delivery rescan", "source": "scheduler",
        "account": "444455556666", "time": "2026-12-03T06:00:00Z", "region": "us-east-1", "resources": [],
        "detail": serde_json::from_str::<serde_json::Value>(&rescan_body(&stack, "wrapped")).unwrap(),
    });
    stack.run(&worker, &[record("r-1", &wrapped.to_string(), 1, None)]).await;
    let summary = &stack.outcomes(1).await[0];
    assert_eq!((summary.status(), summary.str("jobId")), ("fannedOut", Some("wrapped")));
    assert_eq!(summary.body["enqueued"], json!(1));
}

#[tokio::test]
async fn both_scheduled_rescan_shapes_from_events_run() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    stack.customer.create_distribution(&[]).await;
    let worker = stack.worker();
    for (file, job_id) in [
        ("sqs-scheduler-rescan.json", format!("scheduled-rescan-{}", "111122223333")),
        ("sqs-eventbridge-rescan.json", "job-rescan-1".to_owned()),
    ] {
        let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("111122223333", &stack.customer.account_id);
        let event: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_str(&text.replace("demo-external-id", EXTERNAL_ID)).unwrap();
        let report = stack.run(&worker, &event.records).await;
        assert!(report.handed_back.is_empty(), "{file}");
        let summary = &stack.outcomes(1).await[0];
        assert_eq!(summary.status(), "fannedOut", "{file}");
        let job_id = job_id.replace("111122223333", &stack.customer.account_id);
        assert_eq!(summary.str("jobId"), Some(job_id.as_str()), "{file}");
    }
}
