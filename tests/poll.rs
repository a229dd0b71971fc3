//! The command line against moto: `enqueue` sends jobs as the API would,
//! `poll` runs them like the Lambda function, retries what it handed back
//! and stops cleanly on SIGTERM.

mod common;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use cdn_log_delivery::cli::poll::Poller;
use common::{EXTERNAL_ID, Fault, ORG, Stack};
use serde_json::json;
use tokio::process::Command;
use tokio::sync::watch;

fn binary(stack: &Stack) -> Command {
    stack.command()
}

async fn run(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("finished in time")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn enqueued_jobs_are_run_by_poll_until_the_queue_is_drained() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    let first = stack.customer.create_distribution(&["www.example.com"]).await;
    let second = stack.customer.create_distribution(&[]).await;

    let mut enqueue = binary(&stack);
    enqueue.args([
        "enqueue",
        "enable",
        "--account-id",
        &stack.customer.account_id,
        "--ims-org-id",
        ORG,
    ]);
    enqueue.args([
        "--distribution-id",
        &first,
        "--site-host",
        "www.example.com",
        "--job-id",
        "cli-1",
    ]);
    enqueue.env("EXTERNAL_ID", EXTERNAL_ID);
    let output = run(enqueue).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let message_id = text(&output.stdout).trim().to_owned();
    assert!(!message_id.is_empty());

    let file = std::env::temp_dir().join(format!("job-{}.json", common::unique()));
    let body = stack.enable_body(&second, json!({"jobId": "file-1"}));
    std::fs::write(&file, &body).unwrap();
    let mut enqueue = binary(&stack);
    enqueue.args(["enqueue", "--file", file.to_str().unwrap()]);
    assert!(run(enqueue).await.status.success());
    let queued = stack.peek(&stack.jobs_queue).await;
    assert!(
        queued.iter().any(|m| m.body() == Some(body.as_str())),
        "--file sends the body as it is"
    );

    let mut poll = binary(&stack);
    poll.args(["poll", "--drain"]);
    let output = run(poll).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 received, 2 deleted, 0 handed back"),
        "{}",
        text(&output.stdout)
    );

    let outcomes = stack.outcomes(2).await;
    assert!(outcomes.iter().all(|o| o.status() == "created"));
    let cli = outcomes.iter().find(|o| o.str("jobId") == Some("cli-1")).unwrap();
    assert_eq!(cli.str("messageId"), Some(message_id.as_str()));
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn enqueue_refuses_an_invalid_job_and_sends_nothing() {
    let stack = Stack::new(5, 30).await;
    let mut enqueue = binary(&stack);
    enqueue.args([
        "enqueue",
        "enable",
        "--account-id",
        "12345",
        "--ims-org-id",
        ORG,
        "--distribution-id",
    ]);
    enqueue.args(["EDFDVBD6EXAMPLE", "--external-id", EXTERNAL_ID]);
    let output = run(enqueue).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("accountId: must be a string of exactly 12 ASCII digits")
    );
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0);
}

#[tokio::test]
async fn a_handed_back_job_comes_back_and_drain_waits_for_it() {
    let stack = Stack::new(5, 3).await;
    stack.customer.provision_destination().await;
    let distribution = stack.customer.create_distribution(&[]).await;
    stack.wire.inject(Fault {
        operation: "CreateDelivery",
        body_contains: Some(distribution.clone()),
        status: 500,
        code: "InternalFailure",
    });
    stack.send_job(&stack.enable_body(&distribution, json!({"jobId": "flaky"}))).await;

    // CloudWatch Logs recovers once the worker has given up on the first try.
    let wire = stack.wire.clone();
    tokio::spawn(async move {
        while wire.count("CreateDelivery") < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        wire.clear_faults();
    });

    let worker = Arc::new(stack.worker());
    let poller =
        Poller::new(worker, stack.sqs.clone(), stack.jobs_queue.clone(), Some("us-east-1".into()));
    let (_stop, stop) = watch::channel(false);
    let summary = tokio::time::timeout(Duration::from_secs(60), poller.run(true, stop))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.received, summary.deleted, summary.handed_back), (2, 1, 1));

    let outcome = &stack.outcomes(1).await[0];
    assert_eq!(outcome.status(), "created");
    assert_eq!(outcome.body["attempt"], json!(2));
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0);
}

#[tokio::test]
async fn sigterm_stops_the_poller_cleanly() {
    let stack = Stack::new(5, 30).await;
    let mut poll = binary(&stack);
    poll.arg("poll");
    let child = poll.spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    // Let it start its first long poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("stopped within 10 s of SIGTERM")
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("poll: 0 batches"), "{}", text(&output.stdout));
}
