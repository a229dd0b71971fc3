//! `replay` against moto: filtered moves keep bodies and message groups,
//! dry runs change nothing, failures leave jobs where they were.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{EXTERNAL_ID, ORG, Stack, random_account};
use serde_json::json;

async fn replay(stack: &Stack, args: &[&str]) -> Output {
    let mut command = stack.command();
    command.args(["replay", "--dlq-url", &stack.dead_letter_queue]).args(args);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("finished")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Puts `body` straight into the dead-letter queue in `group`.
async fn dead_letter(stack: &Stack, body: &str, group: &str) {
    stack
        .sqs
        .send_message()
        .queue_url(&stack.dead_letter_queue)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(common::unique())
        .send()
        .await
        .unwrap();
}

/// Every body in `queue` with its message group, read without removing.
async fn contents(stack: &Stack, queue: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for _ in 0..5 {
        let output = stack
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
            )
            .send()
            .await
            .unwrap();
        for message in output.messages.unwrap_or_default() {
            let group = message.attributes().unwrap()
                [&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId]
                .clone();
            all.push((message.body().unwrap().to_owned(), group));
            stack
                .sqs
                .change_message_visibility()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
        if all.len() >= 10 {
            break;
        }
    }
    all.sort();
    all.dedup();
    all
}

#[tokio::test]
async fn a_filtered_replay_moves_exactly_the_matching_jobs_unchanged() {
    let stack = Stack::new(5, 30).await;
    let a = stack.customer.account_id.clone();
    let b = random_account();
    let enable_a1 = stack.enable_body("EAAAAAAAAAAAA1", json!({"jobId": "a1"}));
    // Odd spacing survives byte for byte.
    let enable_a2 = stack.enable_body("EAAAAAAAAAAAA2", json!({"jobId": "a2"})).replace(",", ", ");
    let rescan_a =
        json!({"type": "rescan", "accountId": a, "externalId": EXTERNAL_ID, "imsOrgId": ORG})
            .to_string();
    let enable_b =
        json!({"type": "enable", "accountId": b, "externalId": EXTERNAL_ID, "imsOrgId": ORG,
                          "distributionId": "EBBBBBBBBBBBB1"})
        .to_string();
    let garbage = "{\"type\": \"enable\", oops".to_owned();
    for (body, group) in
        [(&enable_a1, &a), (&enable_a2, &a), (&rescan_a, &a), (&enable_b, &b), (&garbage, &a)]
    {
        dead_letter(&stack, body, group).await;
    }

    let dry = replay(&stack, &["--dry-run", "--type", "enable", "--account-id", &a]).await;
    assert!(dry.status.success());
    assert!(stdout(&dry).contains("replay: 2 would move, 3 skipped, 0 failed"), "{}", stdout(&dry));
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0, "a dry run moves nothing");
    let visible = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.dead_letter_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let visible = visible.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
        .clone();
    assert_eq!(visible, "5", "a dry run leaves every message visible again");

    let moved = replay(&stack, &["--type", "enable", "--account-id", &a]).await;
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    assert!(stdout(&moved).contains("replay: 2 moved, 3 skipped, 0 failed"), "{}", stdout(&moved));
    let in_jobs = contents(&stack, &stack.jobs_queue).await;
    let mut expected = vec![(enable_a1.clone(), a.clone()), (enable_a2.clone(), a.clone())];
    expected.sort();
    assert_eq!(in_jobs, expected, "bodies and groups are kept");
    let left: Vec<_> =
        contents(&stack, &stack.dead_letter_queue).await.into_iter().map(|(b, _)| b).collect();
    let mut expected_left = vec![rescan_a.clone(), enable_b.clone(), garbage.clone()];
    expected_left.sort();
    assert_eq!(left, expected_left);

    // No filter: everything goes, the unparsable body too.
    let rest = replay(&stack, &["--max", "10"]).await;
    assert!(stdout(&rest).contains("replay: 3 moved, 0 skipped, 0 failed"), "{}", stdout(&rest));
    assert_eq!(stack.depth(&stack.dead_letter_queue).await, 0);
    assert_eq!(stack.depth(&stack.jobs_queue).await, 5);
}

#[tokio::test]
async fn max_limits_the_moves() {
    let stack = Stack::new(5, 30).await;
    for i in 0..3 {
        dead_letter(
            &stack,
            &stack.enable_body("EAAAAAAAAAAAA1", json!({"jobId": format!("j{i}")})),
            "g",
        )
        .await;
    }
    let output = replay(&stack, &["--max", "1"]).await;
    assert!(stdout(&output).contains("replay: 1 moved"), "{}", stdout(&output));
    assert_eq!(stack.depth(&stack.jobs_queue).await, 1);
    assert_eq!(stack.depth(&stack.dead_letter_queue).await, 2);
}

#[tokio::test]
async fn a_failed_send_keeps_the_job_in_the_dead_letter_queue_and_exits_non_zero() {
    let stack = Stack::new(5, 30).await;
    dead_letter(&stack, &stack.enable_body("EAAAAAAAAAAAA1", json!({})), "g").await;
    let missing = stack.jobs_queue.replace("jobs-", "missing-");
    let output = replay(&stack, &["--to", &missing]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("replay: 0 moved, 0 skipped, 1 failed"),
        "{}",
        stdout(&output)
    );
    assert_eq!(stack.depth(&stack.dead_letter_queue).await, 1);
}
