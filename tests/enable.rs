//! Enable jobs end to end against moto, through the real SDK clients: the
//! worker assumes the connector role, writes CloudWatch Logs resources in
//! the customer account and publishes outcomes to SNS, read back from an
//! SQS queue subscribed to the topic.

mod common;

use common::{EXTERNAL_ID, Fault, ORG, Stack, record};
use serde_json::json;

#[tokio::test]
async fn created_then_already_existed_with_no_writes() {
    let stack = Stack::new(5, 30).await;
    let destination = stack.customer.provision_destination().await;
    let distribution = stack.customer.create_distribution(&["www.example.com"]).await;
    let worker = stack.worker();

    let body = stack.enable_body(&distribution, json!({"jobId": "job-1", "siteId": "site-1"}));
    let report =
        stack.run(&worker, &[record("m-1", &body, 1, Some(&stack.customer.account_id))]).await;
    assert!(report.handed_back.is_empty());
    let outcomes = stack.outcomes(1).await;
    let created = &outcomes[0];
    assert_eq!(created.status(), "created");
    assert_eq!(
        (created.type_attribute.as_str(), created.status_attribute.as_str()),
        ("enable", "created")
    );
    assert_eq!(created.str("jobId"), Some("job-1"));
    assert_eq!(created.str("messageId"), Some("m-1"));
    assert_eq!(created.str("siteId"), Some("site-1"));
    assert_eq!(created.str("distributionId"), Some(distribution.as_str()));
    assert_eq!(
        created.str("deliverySourceName"),
        Some(stack.customer.source_name(&distribution).as_str())
    );
    assert_eq!(created.body["attempt"], json!(1));
    let delivery_id = created.str("deliveryId").expect("delivery id").to_owned();

    let sources = stack.customer.delivery_sources().await;
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].name(), Some(stack.customer.source_name(&distribution).as_str()));
    assert_eq!(
        sources[0].resource_arns(),
        [format!("arn:aws:cloudfront::{}:distribution/{distribution}", stack.customer.account_id)]
    );
    assert_eq!(sources[0].log_type(), Some("ACCESS_LOGS"));
    let deliveries = stack.customer.deliveries().await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].id(), Some(delivery_id.as_str()));
    assert_eq!(deliveries[0].delivery_destination_arn(), Some(destination.as_str()));
    assert_eq!(deliveries[0].record_fields(), cdn_log_delivery::enable::RECORD_FIELDS);
    assert_eq!(
        deliveries[0].s3_delivery_configuration().and_then(|c| c.suffix_path()),
        Some("/{yyyy}/{MM}/{dd}/{HH}")
    );

    stack.wire.reset_calls();
    let body = stack.enable_body(&distribution, json!({"jobId": "job-2"}));
    let report = stack.run(&worker, &[record("m-2", &body, 1, None)]).await;
    assert!(report.handed_back.is_empty());
    let again = &stack.outcomes(1).await[0];
    assert_eq!(again.status(), "alreadyExisted");
    assert_eq!(again.str("deliveryId"), Some(delivery_id.as_str()));
    let calls = stack.wire.calls();
    for write in ["PutDeliverySource", "CreateDelivery"] {
        assert!(!calls.iter().any(|c| c == write), "{write} called on the second run: {calls:?}");
    }
    assert_eq!(stack.wire.count("GetDeliverySource"), 1, "{calls:?}");
    assert_eq!(stack.wire.count("DescribeDeliveries"), 1, "{calls:?}");
    // The session from the first job is reused.
    assert_eq!(stack.wire.count("AssumeRole"), 0, "{calls:?}");
    assert_eq!(stack.customer.deliveries().await.len(), 1);
}

#[tokio::test]
async fn the_site_host_must_be_one_of_the_aliases() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let distribution =
        stack.customer.create_distribution(&["www.example.com", "*.cdn.example.com"]).await;
    let worker = stack.worker();

    let mismatch = stack.enable_body(&distribution, json!({"siteHost": "shop.example.org"}));
    let report = stack.run(&worker, &[record("m-1", &mismatch, 1, None)]).await;
    assert!(report.handed_back.is_empty(), "a domain mismatch is permanent");
    let failed = &stack.outcomes(1).await[0];
    assert_eq!(failed.status(), "failed");
    assert_eq!(failed.body["error"]["category"], json!("DomainMismatch"));
    assert_eq!(failed.body["error"]["retryable"], json!(false));
    assert!(stack.customer.delivery_sources().await.is_empty(), "nothing written on a mismatch");

    let wildcard = stack.enable_body(&distribution, json!({"siteHost": "img.cdn.example.com"}));
    stack.run(&worker, &[record("m-2", &wildcard, 1, None)]).await;
    assert_eq!(stack.outcomes(1).await[0].status(), "created");

    let allowed = stack.enable_body(
        &distribution,
        json!({"siteHost": "shop.example.org", "allowDomainMismatch": true}),
    );
    stack.run(&worker, &[record("m-3", &allowed, 1, None)]).await;
    assert_eq!(stack.outcomes(1).await[0].status(), "alreadyExisted");
}

#[tokio::test]
async fn an_unknown_distribution_with_a_site_host_is_not_found() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let worker = stack.worker();
    let body = stack.enable_body("ENOSUCHDIST123", json!({"siteHost": "www.example.com"}));
    let report = stack.run(&worker, &[record("m-1", &body, 1, None)]).await;
    assert!(report.handed_back.is_empty());
    let failed = &stack.outcomes(1).await[0];
    assert_eq!(failed.body["error"]["category"], json!("DistributionNotFound"));
}

#[tokio::test]
async fn a_missing_destination_is_not_provisioned() {
    let stack = Stack::new(5, 30).await;
    let distribution = stack.customer.create_distribution(&[]).await;
    let worker = stack.worker();
    let body = stack.enable_body(&distribution, json!({}));
    let report = stack.run(&worker, &[record("m-1", &body, 1, None)]).await;
    assert!(report.handed_back.is_empty(), "permanent failures are acknowledged");
    let failed = &stack.outcomes(1).await[0];
    assert_eq!(failed.status(), "failed");
    assert_eq!(failed.status_attribute, "failed");
    assert_eq!(failed.body["error"]["category"], json!("DestinationNotProvisioned"));
    assert_eq!(failed.body["error"]["retryable"], json!(false));
    assert!(!failed.raw.contains("does not exist"), "raw AWS messages stay out: {}", failed.raw);
}

#[tokio::test]
async fn a_source_of_our_name_for_another_distribution_is_a_conflict() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let ours = stack.customer.create_distribution(&[]).await;
    let theirs = stack.customer.create_distribution(&[]).await;
    stack
        .customer
        .logs
        .put_delivery_source()
        .name(stack.customer.source_name(&ours))
        .resource_arn(format!(
            "arn:aws:cloudfront::{}:distribution/{theirs}",
            stack.customer.account_id
        ))
        .log_type("ACCESS_LOGS")
        .send()
        .await
        .unwrap();
    let worker = stack.worker();
    let body = stack.enable_body(&ours, json!({}));
    let report = stack.run(&worker, &[record("m-1", &body, 1, None)]).await;
    assert!(report.handed_back.is_empty());
    let failed = &stack.outcomes(1).await[0];
    assert_eq!(failed.body["error"]["category"], json!("DeliverySourceConflict"));
    assert!(stack.customer.deliveries().await.is_empty());
}

#[tokio::test]
async fn a_fanned_out_job_for_an_enabled_distribution_is_already_existed() {
    // A job from a rescan skips the lookup; if the distribution was enabled
    // in the meantime, CreateDelivery's conflict is a lost race.
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let distribution = stack.customer.create_distribution(&[]).await;
    let worker = stack.worker();
    stack
        .run(&worker, &[record("m-1", &stack.enable_body(&distribution, json!({})), 1, None)])
        .await;
    let delivery_id = stack.outcomes(1).await[0].str("deliveryId").unwrap().to_owned();

    stack.wire.reset_calls();
    let body = stack.enable_body(&distribution, json!({"rescanId": "rescan-1"}));
    let report = stack.run(&worker, &[record("m-2", &body, 1, None)]).await;
    assert!(report.handed_back.is_empty());
    let outcome = &stack.outcomes(1).await[0];
    assert_eq!(outcome.status(), "alreadyExisted");
    assert_eq!(outcome.str("deliveryId"), Some(delivery_id.as_str()));
    assert_eq!(outcome.str("rescanId"), Some("rescan-1"));
    assert_eq!(stack.wire.count("GetDeliverySource"), 0);
    assert_eq!(stack.wire.count("CreateDelivery"), 1);
    assert_eq!(stack.customer.deliveries().await.len(), 1);
}

#[tokio::test]
async fn invalid_bodies_are_rejected_and_moved_to_the_dead_letter_queue() {
    let stack = Stack::new(5, 30).await;
    let worker = stack.worker();
    let account = stack.customer.account_id.clone();
    let bodies = [
        "not json at all".to_owned(),
        json!({"type": "disable", "accountId": account, "jobId": "j-unknown"}).to_string(),
        json!({"type": "enable", "accountId": "12345", "externalId": EXTERNAL_ID, "imsOrgId": ORG,
               "distributionId": "EDFDVBD6EXAMPLE"})
        .to_string(),
        json!({"type": "rescan", "accountId": account, "externalId": EXTERNAL_ID, "imsOrgId": ORG,
               "surprise": true})
        .to_string(),
    ];
    let records: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| record(&format!("bad-{i}"), b, 1, Some("g")))
        .collect();
    let report = stack.run(&worker, &records).await;
    assert!(report.handed_back.is_empty(), "rejected bodies are acknowledged once in the DLQ");

    let mut outcomes = stack.outcomes(4).await;
    outcomes.sort_by_key(|o| o.str("messageId").unwrap().to_owned());
    let expected = [
        ("unknown", "body is not valid JSON"),
        ("unknown", "type: must be \"enable\" or \"rescan\""),
        ("enable", "accountId: must be a string of exactly 12 ASCII digits"),
        ("rescan", "\"surprise\": unknown field for rescan jobs"),
    ];
    for (outcome, (kind, reason)) in outcomes.iter().zip(expected) {
        assert_eq!(outcome.status(), "rejected");
        assert_eq!(outcome.str("type"), Some(kind));
        assert_eq!(outcome.type_attribute, kind);
        assert_eq!(outcome.body["error"]["category"], json!("InvalidJob"));
        let detail = outcome.body["error"]["detail"].as_str().unwrap();
        assert!(detail.starts_with(reason), "{detail}");
        assert!(!outcome.raw.contains(EXTERNAL_ID));
    }
    assert_eq!(outcomes[1].str("jobId"), Some("j-unknown"));
    assert_eq!(outcomes[3].str("accountId"), Some(account.as_str()));
    assert_eq!(outcomes[2].str("accountId"), None, "invalid ids are not echoed");

    let mut in_dlq: Vec<String> = stack
        .peek(&stack.dead_letter_queue)
        .await
        .iter()
        .map(|m| m.body().unwrap().to_owned())
        .collect();
    in_dlq.sort();
    let mut sent = bodies.to_vec();
    sent.sort();
    assert_eq!(in_dlq, sent, "bodies reach the DLQ byte for byte");
}

#[tokio::test]
async fn without_a_dead_letter_queue_rejected_bodies_are_left_to_the_redrive_policy() {
    let stack = Stack::new(5, 30).await;
    let worker = cdn_log_delivery::batch::Worker::new(
        stack.config_with(&[("DEAD_LETTER_QUEUE_URL", None)]),
        &stack.sdk,
    );
    let report = stack.run(&worker, &[record("bad", "[]", 1, None)]).await;
    assert_eq!(report.handed_back, ["bad"]);
    assert_eq!(stack.outcomes(1).await[0].status(), "rejected");
}

#[tokio::test]
async fn a_mixed_batch_hands_back_exactly_the_retryable_records_and_their_followers() {
    let stack = Stack::new(3, 30).await;
    stack.customer.provision_destination().await;
    let mut distributions = Vec::new();
    for _ in 0..5 {
        distributions.push(stack.customer.create_distribution(&[]).await);
    }
    // CloudWatch Logs answers 503 for every CreateDelivery of d[1] and d[4].
    for d in [&distributions[1], &distributions[4]] {
        stack.wire.inject(Fault {
            operation: "CreateDelivery",
            body_contains: Some(d.clone()),
            status: 503,
            code: "ServiceUnavailableException",
        });
    }
    let worker = stack.worker();
    let enable =
        |i: usize| stack.enable_body(&distributions[i], json!({"jobId": format!("job-{i}")}));
    let no_destination = {
        let mut body: serde_json::Value = serde_json::from_str(&enable(3)).unwrap();
        body["imsOrgId"] = json!("OTHERORG@AdobeOrg");
        body.to_string()
    };
    let records = [
        // Group A: ok, retryable failure, then a follower that must not run.
        record("a-1", &enable(0), 1, Some("A")),
        record("a-2", &enable(1), 1, Some("A")),
        record("a-3", &enable(2), 1, Some("A")),
        // Group B: a rejected body, then a permanent failure: both acknowledged.
        record("b-1", "{\"type\":", 1, Some("B")),
        record("b-2", &no_destination, 1, Some("B")),
        // Standard record on its last receive with a retryable failure.
        record("c-1", &enable(4), 3, None),
    ];
    let report = stack.run(&worker, &records).await;
    assert_eq!(report.handed_back, ["a-2", "a-3", "c-1"]);

    let outcomes = stack.outcomes(4).await;
    let by_message = |id: &str| outcomes.iter().find(|o| o.str("messageId") == Some(id));
    assert_eq!(by_message("a-1").unwrap().status(), "created");
    assert!(by_message("a-2").is_none(), "no outcome before the last receive");
    assert!(by_message("a-3").is_none(), "followers of a failure are not run");
    assert_eq!(by_message("b-1").unwrap().status(), "rejected");
    let b2 = by_message("b-2").unwrap();
    assert_eq!(b2.body["error"]["category"], json!("DestinationNotProvisioned"));
    let c1 = by_message("c-1").unwrap();
    assert_eq!(c1.status(), "failed");
    assert_eq!(c1.body["error"]["category"], json!("ServiceUnavailable"));
    assert_eq!(c1.body["error"]["retryable"], json!(true));
    assert_eq!(c1.body["attempt"], json!(3));
    assert!(!c1.raw.contains("injected"), "raw AWS messages stay out: {}", c1.raw);

    let sources: Vec<_> = stack
        .customer
        .delivery_sources()
        .await
        .iter()
        .filter_map(|s| s.name().map(str::to_owned))
        .collect();
    assert!(!sources.contains(&stack.customer.source_name(&distributions[2])), "a-3 did not run");
    // a-1 once, b-2 once (no destination), a-2 and c-1 three times each:
    // the SDK retried the 503s before the worker gave up.
    assert_eq!(stack.wire.count("CreateDelivery"), 1 + 1 + 3 + 3);
}

#[tokio::test]
async fn a_batch_publishes_its_outcomes_together() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let mut records = Vec::new();
    for i in 0..4 {
        let d = stack.customer.create_distribution(&[]).await;
        let group = if i % 2 == 0 { "A" } else { "B" };
        records.push(record(&format!("m-{i}"), &stack.enable_body(&d, json!({})), 1, Some(group)));
    }
    records.push(record("bad", "[]", 1, Some("C")));
    let worker = stack.worker();
    stack.wire.reset_calls();

    let report = stack.run(&worker, &records).await;
    assert!(report.handed_back.is_empty(), "{:?}", report.handed_back);
    // The four enables share one PublishBatch; the rejection goes out on its
    // own, before its body moves to the dead-letter queue.
    assert_eq!(stack.wire.count("PublishBatch"), 1, "{:?}", stack.wire.calls());
    assert_eq!(stack.wire.count("Publish"), 1, "{:?}", stack.wire.calls());

    let outcomes = stack.outcomes(5).await;
    let created = outcomes.iter().filter(|o| o.status() == "created").count();
    assert_eq!(created, 4);
    assert!(outcomes.iter().all(|o| o.status_attribute == o.status()));
}

#[tokio::test]
async fn records_whose_outcomes_cannot_be_published_are_handed_back() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let mut records = Vec::new();
    for (i, group) in [Some("A"), Some("A"), None].into_iter().enumerate() {
        let d = stack.customer.create_distribution(&[]).await;
        records.push(record(&format!("m-{i}"), &stack.enable_body(&d, json!({})), 1, group));
    }
    stack.wire.inject(Fault {
        operation: "PublishBatch",
        body_contains: None,
        status: 500,
        code: "InternalError",
    });
    let worker = stack.worker();

    let report = stack.run(&worker, &records).await;
    assert_eq!(report.handed_back, ["m-0", "m-1", "m-2"], "nothing is acknowledged unannounced");
    assert!(report.outcomes.is_empty());
    assert_eq!(stack.customer.deliveries().await.len(), 3, "the work itself was done");
    assert!(stack.outcomes_available().await.is_empty());

    // Once SNS is back the records run again and announce what they found.
    stack.wire.clear_faults();
    let report = stack.run(&worker, &records).await;
    assert!(report.handed_back.is_empty());
    let outcomes = stack.outcomes(3).await;
    assert!(outcomes.iter().all(|o| o.status() == "alreadyExisted"), "{outcomes:?}");
    assert_eq!(stack.customer.deliveries().await.len(), 3);
}

#[tokio::test]
async fn a_record_that_cannot_start_before_the_deadline_is_handed_back() {
    let stack = Stack::new(5, 30).await;
    let worker = stack.worker();
    let body = stack.enable_body("EDFDVBD6EXAMPLE", json!({}));
    stack.wire.reset_calls();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(800);
    let report = worker.handle_batch(&[record("late", &body, 1, None)], deadline).await.unwrap();
    assert_eq!(report.handed_back, ["late"]);
    assert!(stack.wire.calls().iter().all(|c| c != "AssumeRole"), "nothing was started");
}

#[tokio::test]
async fn a_record_without_a_message_id_fails_the_whole_batch() {
    let stack = Stack::new(5, 30).await;
    let worker = stack.worker();
    stack.wire.reset_calls();
    let mut nameless = record("x", "{}", 1, None);
    nameless.message_id = None;
    let result = worker
        .handle_batch(
            &[record("ok", "{}", 1, None), nameless],
            tokio::time::Instant::now() + std::time::Duration::from_secs(5),
        )
        .await;
    assert!(result.is_err());
    assert!(stack.wire.calls().is_empty(), "nothing was done");
}
