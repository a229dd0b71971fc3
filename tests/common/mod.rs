//! Test support: a per-test slice of moto (queues, topic, a customer account
//! with distributions and a delivery destination) and helpers to drive the
//! worker and read what it did.
//!
//! Every test gets its own customer account id and its own queue and topic
//! names, so tests share one moto server without seeing each other.

// Each test binary uses only some of the helpers.
#![allow(dead_code, unused_imports)]

pub mod customer;
pub mod http;
pub mod proxy;
pub mod runtime_api;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::QueueAttributeName;
use cdn_log_delivery::batch::{BatchReport, Worker};
use cdn_log_delivery::config::Config;
use serde_json::Value;
use tokio::time::Instant;

pub use customer::{Customer, SAFE_ORG, create_queue, queue_arn, subscribe_queue};
pub use http::{Fault, Wire};

/// The org every test uses, and its safe form.
pub const ORG: &str = "8C6043F15F43B6390A49401A@AdobeOrg";
pub const EXTERNAL_ID: &str = "test-external-id-7f3a";

/// The moto endpoint the test script started.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MOTO_ENDPOINT is not set: these tests need a moto server. Run them with \
             `./scripts/test`, which starts one."
        )
    })
}

/// An SDK configuration pointing at moto through `wire`, with the default
/// test credentials (moto's account 123456789012).
pub fn sdk_config(wire: &Wire) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::new("testing", "testing", None, None, "tests"),
        ))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .http_client(wire.client())
        .build()
}

pub fn unique() -> String {
    format!("{:08x}", fastrand::u32(..))
}

/// A random customer account id, so tests never share CloudFront or Logs
/// state.
pub fn random_account() -> String {
    format!("{}", fastrand::u64(200_000_000_000..999_999_999_999))
}

/// Queues, topic and a customer account for one test.
pub struct Stack {
    pub wire: Wire,
    pub sdk: SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub jobs_queue: String,
    pub dead_letter_queue: String,
    pub topic_arn: String,
    pub results_queue: String,
    pub customer: Customer,
    pub max_receive_count: u32,
}

impl Stack {
    /// FIFO jobs queue and dead-letter queue with a redrive policy of
    /// `max_receive_count`, a results topic with a queue subscribed, and a
    /// fresh customer account.
    pub async fn new(max_receive_count: u32, visibility_seconds: u32) -> Self {
        let wire = Wire::default();
        let sdk = sdk_config(&wire);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let id = unique();

        let dead_letter_queue = create_queue(&sqs, &format!("dlq-{id}.fifo"), &[]).await;
        let dlq_arn = queue_arn(&sqs, &dead_letter_queue).await;
        let redrive = format!(
            r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count}"}}"#
        );
        let visibility = visibility_seconds.to_string();
        let jobs_queue = create_queue(
            &sqs,
            &format!("jobs-{id}.fifo"),
            &[
                (QueueAttributeName::RedrivePolicy, redrive.as_str()),
                (QueueAttributeName::VisibilityTimeout, &visibility),
            ],
        )
        .await;

        let topic_arn = sns
            .create_topic()
            .name(format!("results-{id}"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let results_queue = create_queue(&sqs, &format!("results-{id}"), &[]).await;
        let results_arn = queue_arn(&sqs, &results_queue).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(results_arn)
            .send()
            .await
            .unwrap();

        let customer = Customer::new(&sdk, random_account()).await;
        Self {
            wire,
            sdk,
            sqs,
            jobs_queue,
            dead_letter_queue,
            topic_arn,
            results_queue,
            customer,
            max_receive_count,
        }
    }

    /// The environment the worker would get in this stack.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("DELIVERY_DESTINATION_ACCOUNT_ID".into(), self.customer.account_id.clone()),
            ("RESULTS_TOPIC_ARN".into(), self.topic_arn.clone()),
            ("JOBS_QUEUE_URL".into(), self.jobs_queue.clone()),
            ("DEAD_LETTER_QUEUE_URL".into(), self.dead_letter_queue.clone()),
            ("MAX_RECEIVE_COUNT".into(), self.max_receive_count.to_string()),
            ("CLOUDWATCH_LOGS_TPS".into(), "50".into()),
        ])
    }

    pub fn config_with(&self, changes: &[(&str, Option<&str>)]) -> Config {
        let mut env = self.env();
        for (name, value) in changes {
            match value {
                Some(v) => env.insert((*name).to_owned(), (*v).to_owned()),
                None => env.remove(*name),
            };
        }
        Config::from_lookup(|name| env.get(name).cloned()).expect("test configuration")
    }

    pub fn worker(&self) -> Worker {
        Worker::new(self.config_with(&[]), &self.sdk)
    }

    /// The worker's binary with this stack's environment, pointed at moto.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdn-log-delivery"));
        command
            .env_clear()
            .envs(self.env())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// An enable job body for `distribution_id` in this stack's account.
    pub fn enable_body(&self, distribution_id: &str, extra: Value) -> String {
        let mut body = serde_json::json!({
            "type": "enable",
            "accountId": self.customer.account_id,
            "externalId": EXTERNAL_ID,
            "imsOrgId": ORG,
            "distributionId": distribution_id,
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body.to_string()
    }

    /// Runs one batch with a generous deadline.
    pub async fn run(&self, worker: &Worker, records: &[SqsMessage]) -> BatchReport {
        worker.handle_batch(records, Instant::now() + Duration::from_secs(30)).await.expect("batch")
    }

    /// Reads `n` outcomes from the results queue (waiting up to 15 s), then
    /// checks that no more arrive for a moment.
    pub async fn outcomes(&self, n: usize) -> Vec<Outcome> {
        let mut outcomes = self.drain_results(n, Duration::from_secs(15)).await;
        outcomes.extend(self.drain_results(usize::MAX, Duration::from_millis(300)).await);
        assert_eq!(outcomes.len(), n, "expected {n} outcomes, got {outcomes:#?}");
        outcomes
    }

    /// Whatever outcomes arrive within a short wait, however many.
    pub async fn outcomes_available(&self) -> Vec<Outcome> {
        self.drain_results(usize::MAX, Duration::from_millis(500)).await
    }

    async fn drain_results(&self, n: usize, patience: Duration) -> Vec<Outcome> {
        let give_up = Instant::now() + patience;
        let mut outcomes = Vec::new();
        while outcomes.len() < n && Instant::now() < give_up {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.results_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for message in messages {
                let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                outcomes.push(Outcome::from_envelope(&envelope));
                self.sqs
                    .delete_message()
                    .queue_url(&self.results_queue)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        outcomes
    }

    /// Every body now in `queue`, made visible again at once.
    pub async fn peek(&self, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        output.messages.unwrap_or_default()
    }

    /// Sends a body to the jobs queue as the API does.
    pub async fn send_job(&self, body: &str) -> String {
        self.sqs
            .send_message()
            .queue_url(&self.jobs_queue)
            .message_body(body)
            .message_group_id(self.customer.account_id.clone())
            .message_deduplication_id(unique())
            .send()
            .await
            .unwrap()
            .message_id
            .unwrap()
    }

    /// Approximate visible + in-flight + delayed messages in `queue`.
    pub async fn depth(&self, queue: &str) -> u64 {
        cdn_log_delivery::aws::sqs::queue_depth(&self.sqs, queue).await.expect("GetQueueAttributes")
    }
}

/// An SQS record as Lambda delivers it.
pub fn record(message_id: &str, body: &str, receive_count: u32, group: Option<&str>) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.receipt_handle = Some(format!("rh-{message_id}"));
    record.body = Some(body.to_owned());
    record.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    if let Some(group) = group {
        record.attributes.insert("MessageGroupId".into(), group.to_owned());
    }
    record.event_source = Some("aws:sqs".into());
    record
}

/// An outcome read back from the results queue.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub body: Value,
    pub raw: String,
    pub type_attribute: String,
    pub status_attribute: String,
}

impl Outcome {
    fn from_envelope(envelope: &Value) -> Self {
        let raw = envelope["Message"].as_str().expect("SNS message").to_owned();
        let attribute = |name: &str| {
            envelope["MessageAttributes"][name]["Value"].as_str().unwrap_or("").to_owned()
        };
        Self {
            body: serde_json::from_str(&raw).expect("outcome JSON"),
            type_attribute: attribute("type"),
            status_attribute: attribute("status"),
            raw,
        }
    }

    pub fn status(&self) -> &str {
        self.body["status"].as_str().unwrap_or_default()
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.body[field].as_str()
    }
}
