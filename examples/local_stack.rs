//! Seeds a local AWS emulator (moto) for the demo, and prints outcomes.
//!
//! `local_stack seed [--distributions N]` creates the queues, the results
//! topic with a queue subscribed, and a customer account with N CloudFront
//! distributions and the org's delivery destination; it prints `export`
//! lines for the worker's environment. `local_stack outcomes` prints what
//! arrived on the results queue. The endpoint comes from `AWS_ENDPOINT_URL`.

#[path = "../tests/common/customer.rs"]
#[allow(dead_code)]
mod customer;

use aws_sdk_sqs::types::QueueAttributeName;
use customer::{Customer, create_queue, queue_arn, subscribe_queue};
use serde_json::Value;

/// The demo's customer account; also the destination account, since moto
/// only finds delivery destinations in the caller's own account.
const CUSTOMER_ACCOUNT: &str = "111122223333";
const ORG: &str = "8C6043F15F43B6390A49401A@AdobeOrg";
const EXTERNAL_ID: &str = "demo-external-id";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match args.first().map(String::as_str) {
        Some("seed") => {
            let n = args
                .iter()
                .position(|a| a == "--distributions")
                .and_then(|i| args.get(i + 1)?.parse().ok())
                .unwrap_or(3);
            seed(&sdk, n).await;
        }
        Some("outcomes") => {
            let url =
                std::env::var("RESULTS_QUEUE_URL").expect("RESULTS_QUEUE_URL is set by `seed`");
            outcomes(&sdk, &url).await;
        }
        _ => {
            eprintln!("usage: local_stack seed [--distributions N] | local_stack outcomes");
            std::process::exit(2);
        }
    }
}

async fn seed(sdk: &aws_config::SdkConfig, distributions: usize) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);

    let dlq = create_queue(&sqs, "cdn-log-delivery-dlq.fifo", &[]).await;
    let redrive = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"5"}}"#,
        queue_arn(&sqs, &dlq).await
    );
    let jobs = create_queue(
        &sqs,
        "cdn-log-delivery-jobs.fifo",
        &[
            (QueueAttributeName::RedrivePolicy, &redrive),
            (QueueAttributeName::VisibilityTimeout, "30"),
        ],
    )
    .await;
    let topic =
        sns.create_topic().name("cdn-log-delivery-results").send().await.expect("CreateTopic");
    let topic_arn = topic.topic_arn.expect("topic arn");
    let results = create_queue(&sqs, "cdn-log-delivery-results", &[]).await;
    subscribe_queue(&sns, &sqs, &topic_arn, &results).await;

    let customer = Customer::new(sdk, CUSTOMER_ACCOUNT.to_owned()).await;
    customer.provision_destination().await;
    let mut ids = Vec::new();
    for i in 0..distributions {
        ids.push(customer.create_distribution(&[&format!("www{i}.example.com")]).await);
    }

    for (name, value) in [
        ("DELIVERY_DESTINATION_ACCOUNT_ID", CUSTOMER_ACCOUNT),
        ("RESULTS_TOPIC_ARN", &topic_arn),
        ("JOBS_QUEUE_URL", &jobs),
        ("DEAD_LETTER_QUEUE_URL", &dlq),
        ("RESULTS_QUEUE_URL", &results),
        ("CUSTOMER_ACCOUNT_ID", CUSTOMER_ACCOUNT),
        ("IMS_ORG_ID", ORG),
        ("EXTERNAL_ID", EXTERNAL_ID),
        ("DISTRIBUTION_IDS", &ids.join(" ")),
    ] {
        println!("export {name}='{value}'");
    }
}

/// Prints every outcome on the results queue, one line each.
async fn outcomes(sdk: &aws_config::SdkConfig, url: &str) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    loop {
        let output = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        for message in messages {
            let envelope: Value =
                serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
            let outcome: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
            println!("{}", summary(&outcome));
            if let Some(handle) = message.receipt_handle() {
                let _ = sqs.delete_message().queue_url(url).receipt_handle(handle).send().await;
            }
        }
    }
}

fn summary(outcome: &Value) -> String {
    let field = |name: &str| outcome[name].as_str().unwrap_or("-").to_owned();
    let mut line = format!("{:<7} {:<15}", field("type"), field("status"));
    for name in ["distributionId", "deliveryId", "jobId", "rescanId"] {
        if let Some(value) = outcome[name].as_str() {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    for name in ["scanned", "alreadyExisted", "enqueued", "truncated"] {
        if !outcome[name].is_null() && outcome["type"] == "rescan" {
            line.push_str(&format!(" {name}={}", outcome[name]));
        }
    }
    if let Some(error) = outcome.get("error") {
        line.push_str(&format!(" error={}", error));
    }
    line
}
