//! The Lambda entry point driven through the real runtime loop: the built
//! binary runs with `AWS_LAMBDA_RUNTIME_API` pointing at a stand-in of the
//! Lambda Runtime API served here, which hands it a sample event and reads
//! back its partial batch response. The worker talks to moto.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::runtime_api::{Answer, RuntimeApi};
use common::{Customer, EXTERNAL_ID, Stack, random_account};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn the_function_answers_a_fifo_batch_through_the_runtime_api() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    // The sample's two accounts become fresh ones, so reruns on one moto
    // server start clean. The first has the destination; the second not.
    let other = Customer::new(&stack.sdk, random_account()).await;
    let template = std::fs::read_to_string(format!(
        "{}/events/sqs-fifo-batch.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let event = template
        .replace("111122223333", &stack.customer.account_id)
        .replace("999988887777", &other.account_id)
        .replace("demo-external-id", EXTERNAL_ID);

    let (api, mut answers) = RuntimeApi::start().await;
    api.push_event("request-1", event);
    let address = api.address().to_owned();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdn-log-delivery"))
        .env_clear()
        .envs(stack.env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "cdn-log-delivery")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
        .env("AWS_ENDPOINT_URL", common::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain the pipes while the function runs, or a full pipe would stall it.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let collect = tokio::spawn(async move {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
        out + &err
    });

    let (request_id, answer) = tokio::time::timeout(Duration::from_secs(60), answers.recv())
        .await
        .expect("the function answered within 60 s")
        .expect("an answer");
    assert_eq!(request_id, "request-1");
    let response = match answer {
        Answer::Response(response) => response,
        Answer::Error(error) => panic!("the invocation failed: {error}"),
    };
    assert_eq!(response, json!({"batchItemFailures": []}));

    let mut outcomes = stack.outcomes(4).await;
    outcomes.sort_by_key(|o| o.str("messageId").unwrap().to_owned());
    let statuses: Vec<_> = outcomes.iter().map(|o| o.status().to_owned()).collect();
    assert_eq!(statuses, ["created", "created", "rejected", "failed"]);
    assert_eq!(outcomes[3].body["error"]["category"], json!("DestinationNotProvisioned"));
    assert_eq!(stack.peek(&stack.dead_letter_queue).await.len(), 1, "the bad body is in the DLQ");

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let logs = collect.await.unwrap();
    let json_lines: Vec<Value> =
        logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        json_lines.iter().any(|l| l["fields"]["message"] == "batch handled"),
        "one JSON summary line per batch: {logs}"
    );
    let metrics: Vec<_> = json_lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(metrics.len(), 1, "one embedded-metric-format line per batch: {logs}");
    let emf = metrics[0];
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "CdnLogDelivery");
    assert_eq!(emf["FunctionName"], "cdn-log-delivery");
    assert_eq!(
        (&emf["Records"], &emf["BatchItemFailures"], &emf["EnableCreated"]),
        (&json!(4), &json!(0), &json!(2))
    );
    assert_eq!((&emf["UnknownRejected"], &emf["EnableFailed"]), (&json!(1), &json!(1)));
    let leaked: Vec<_> = logs.lines().filter(|l| l.contains(EXTERNAL_ID)).collect();
    assert!(leaked.is_empty(), "the external id never reaches the logs: {leaked:#?}");
    let leaked: Vec<_> = logs.lines().filter(|l| l.contains("testing")).collect();
    assert!(leaked.is_empty(), "credentials never reach the logs: {leaked:#?}");
}
