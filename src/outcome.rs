//! The outcome contract (version 1) and its publisher.
//!
//! Every job ends with at least one outcome on the results topic. Delivery is
//! at least once: a record handed back after its outcome was published may
//! publish it again, so consumers key on `messageId` and `jobId`.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Category, Failure, is_plain_code};
use crate::ids::{AccountId, DistributionId};

/// SNS PublishBatch takes at most ten entries.
const PUBLISH_BATCH_MAX: usize = 10;

/// PublishBatch calls in flight at once. A batch of ten records needs one or
/// two calls; a rescan of a large account may need dozens, and a few at a
/// time keeps them inside the publish reserve without a burst on SNS.
const PUBLISH_CONCURRENCY: usize = 4;

/// What an outcome is about: the job's type, or `unknown` for a body that
/// named none the worker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeType {
    Enable,
    Rescan,
    Unknown,
}

impl OutcomeType {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeType::Enable => "enable",
            OutcomeType::Rescan => "rescan",
            OutcomeType::Unknown => "unknown",
        }
    }
}

impl From<Option<crate::job::JobKind>> for OutcomeType {
    fn from(kind: Option<crate::job::JobKind>) -> Self {
        match kind {
            Some(crate::job::JobKind::Enable) => OutcomeType::Enable,
            Some(crate::job::JobKind::Rescan) => OutcomeType::Rescan,
            None => OutcomeType::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Enable: the worker created the delivery.
    Created,
    /// Enable: delivery was already on; nothing was written.
    AlreadyExisted,
    /// Rescan: every distribution is enabled or has an enable job queued.
    FannedOut,
    /// The job could not be done; see `error`.
    Failed,
    /// The body broke the job contract; see `error`.
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::AlreadyExisted => "alreadyExisted",
            Status::FannedOut => "fannedOut",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
        }
    }
}

/// Why a job failed or was rejected, in words safe to show the API's users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OutcomeError {
    pub category: Category,
    pub retryable: bool,
    pub detail: String,
}

impl From<&Failure> for OutcomeError {
    fn from(failure: &Failure) -> Self {
        Self {
            category: failure.category,
            retryable: failure.retryable,
            detail: failure.detail.clone(),
        }
    }
}

/// One message on the results topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u8,
    #[serde(rename = "type")]
    pub kind: OutcomeType,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<DistributionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescan_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_source_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// Rescan: distributions listed (after the cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned: Option<u32>,
    /// Rescan: distributions whose delivery was already on.
    #[serde(rename = "alreadyExisted", skip_serializing_if = "Option::is_none")]
    pub already_existed_count: Option<u32>,
    /// Rescan: enable jobs sent to the jobs queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enqueued: Option<u32>,
    /// Rescan: the account has more distributions than `maxDistributions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<OutcomeError>,
    /// The SQS receive count of the message this outcome is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When the outcome was decided, RFC 3339 in UTC.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
}

impl Outcome {
    /// An outcome with only its type and status set, stamped now.
    pub fn new(kind: OutcomeType, status: Status) -> Self {
        Self {
            version: 1,
            kind,
            status,
            job_id: None,
            message_id: None,
            account_id: None,
            distribution_id: None,
            site_id: None,
            rescan_id: None,
            delivery_source_name: None,
            delivery_id: None,
            scanned: None,
            already_existed_count: None,
            enqueued: None,
            truncated: None,
            error: None,
            attempt: None,
            at: now_rfc3339(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The JSON Schema of outcome messages (version 1), generated from
/// [`Outcome`].
pub fn json_schema() -> serde_json::Value {
    let mut schema = crate::schema::generate::<Outcome>();
    schema["title"] = "cdn-log-delivery outcome, version 1".into();
    schema
}

fn now_rfc3339() -> String {
    DateTime::from(std::time::SystemTime::now()).fmt(Format::DateTime).unwrap_or_default()
}

/// Which outcomes of one [`OutcomePublisher::publish_each`] call reached
/// the results topic.
#[derive(Debug)]
pub struct Published {
    /// One flag per outcome, in the order given.
    pub delivered: Vec<bool>,
    /// The first failure met, for the log; `None` when every outcome went out.
    pub failure: Option<Failure>,
}

/// Publishes outcomes to the results topic.
#[derive(Clone, Debug)]
pub struct OutcomePublisher {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    fifo: bool,
}

impl OutcomePublisher {
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: String) -> Self {
        let fifo = topic_arn.ends_with(".fifo");
        Self { sns, topic_arn, fifo }
    }

    /// Publishes every outcome, ten per PublishBatch call.
    ///
    /// # Errors
    ///
    /// The first failed call, or an entry SNS refused; the caller must not
    /// acknowledge the message the outcomes are about.
    pub async fn publish(&self, outcomes: &[Outcome]) -> Result<(), Failure> {
        match self.publish_each(outcomes).await.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Publishes every outcome, ten per PublishBatch call and a few calls at
    /// once, and tells which reached the topic, so that a batch acknowledges
    /// the records whose outcomes all went out and hands back the rest.
    pub async fn publish_each(&self, outcomes: &[Outcome]) -> Published {
        let calls = outcomes.chunks(PUBLISH_BATCH_MAX).map(|chunk| async move {
            match chunk {
                [single] => match self.publish_one(single).await {
                    Ok(()) => Published { delivered: vec![true], failure: None },
                    Err(failure) => Published { delivered: vec![false], failure: Some(failure) },
                },
                _ => self.publish_batch(chunk).await,
            }
        });
        // `buffered` yields in order, so the flags line up with the outcomes.
        let results: Vec<Published> =
            futures::stream::iter(calls).buffered(PUBLISH_CONCURRENCY).collect().await;

        let mut published =
            Published { delivered: Vec::with_capacity(outcomes.len()), failure: None };
        for result in results {
            published.delivered.extend(result.delivered);
            if published.failure.is_none() {
                published.failure = result.failure;
            }
        }
        published
    }

    async fn publish_one(&self, outcome: &Outcome) -> Result<(), Failure> {
        let body = outcome.to_json();
        let (group, dedup) = self.fifo_ids(outcome, &body);
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .set_message_attributes(Some(attributes(outcome)))
            .set_message_group_id(group)
            .set_message_deduplication_id(dedup)
            .send()
            .await
            .map_err(|e| Failure::from_sdk("Publish", e))?;
        Ok(())
    }

    /// One PublishBatch call of at most ten outcomes. SNS may take some
    /// entries of a call and refuse others: only the entries it lists as
    /// successful count as published.
    async fn publish_batch(&self, chunk: &[Outcome]) -> Published {
        let none =
            |failure| Published { delivered: vec![false; chunk.len()], failure: Some(failure) };
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, outcome)| {
                let body = outcome.to_json();
                let (group, dedup) = self.fifo_ids(outcome, &body);
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(body)
                    .set_message_attributes(Some(attributes(outcome)))
                    .set_message_group_id(group)
                    .set_message_deduplication_id(dedup)
                    .build()
                    .map_err(|_| {
                        Failure::new(
                            Category::Internal,
                            "PublishBatch",
                            "could not build a batch entry",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>();
        let entries = match entries {
            Ok(entries) => entries,
            Err(failure) => return none(failure),
        };
        let output = match self
            .sns
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => return none(Failure::from_sdk("PublishBatch", e)),
        };

        let mut delivered = vec![false; chunk.len()];
        let entry_index = |id: &str| id.parse::<usize>().ok().filter(|i| *i < chunk.len());
        for i in output.successful().iter().filter_map(|e| entry_index(e.id()?)) {
            delivered[i] = true;
        }
        // An entry listed as refused is refused, whatever else SNS said.
        for i in output.failed().iter().filter_map(|e| entry_index(e.id())) {
            delivered[i] = false;
        }
        let refused = delivered.iter().filter(|d| !**d).count();
        let failure = (refused > 0).then(|| {
            let code = output.failed().first().map(|e| e.code()).filter(|c| is_plain_code(c));
            let category = match code.map(crate::error::category_of_code) {
                Some(category) if category != Category::Internal => category,
                _ => Category::ServiceUnavailable,
            };
            let mut failure = Failure::new(
                category,
                "PublishBatch",
                format!("{refused} of {} outcomes were not published", chunk.len()),
            );
            // A refused entry is retried with its whole record.
            failure.retryable = true;
            failure.code = code.map(str::to_owned);
            failure
        });
        Published { delivered, failure }
    }

    /// FIFO topics need a group (the account keeps outcomes of one account in
    /// order) and a deduplication id (the body, which holds its timestamp).
    fn fifo_ids(&self, outcome: &Outcome, body: &str) -> (Option<String>, Option<String>) {
        if !self.fifo {
            return (None, None);
        }
        let group = outcome.account_id.as_ref().map_or("unknown", AccountId::as_str).to_owned();
        let dedup = hex::encode(Sha256::digest(body.as_bytes()));
        (Some(group), Some(dedup))
    }
}

fn attributes(outcome: &Outcome) -> std::collections::HashMap<String, MessageAttributeValue> {
    let string = |value: &str| {
        MessageAttributeValue::builder().data_type("String").string_value(value).build()
    };
    [("type", outcome.kind.as_str()), ("status", outcome.status.as_str())]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), string(value).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_sns::operation::publish_batch::{PublishBatchInput, PublishBatchOutput};
    use aws_sdk_sns::types::{BatchResultErrorEntry, PublishBatchResultEntry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use serde_json::{Value, json};

    fn enable_outcome() -> Outcome {
        let mut outcome = Outcome::new(OutcomeType::Enable, Status::Created);
        outcome.account_id = AccountId::parse("123456789012").ok();
        outcome.distribution_id = DistributionId::parse("EDFDVBD6EXAMPLE").ok();
        outcome.delivery_id = Some("dlv-1".into());
        outcome.attempt = Some(1);
        outcome
    }

    #[test]
    fn outcomes_serialise_as_the_contract_says() {
        let mut outcome = enable_outcome();
        outcome.at = "2026-12-03T10:00:00Z".into();
        let value: Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "version": 1, "type": "enable", "status": "created", "accountId": "123456789012",
                "distributionId": "EDFDVBD6EXAMPLE", "deliveryId": "dlv-1", "attempt": 1,
                "at": "2026-12-03T10:00:00Z",
            })
        );
    }

    #[test]
    fn rescan_summaries_and_errors_serialise() {
        let mut outcome = Outcome::new(OutcomeType::Rescan, Status::FannedOut);
        outcome.scanned = Some(3);
        outcome.already_existed_count = Some(1);
        outcome.enqueued = Some(2);
        outcome.truncated = Some(false);
        outcome.error = Some(OutcomeError {
            category: Category::Throttling,
            retryable: true,
            detail: "d".into(),
        });
        let value: Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert_eq!(value["alreadyExisted"], json!(1));
        assert_eq!(value["status"], json!("fannedOut"));
        assert_eq!(
            value["error"],
            json!({"category": "Throttling", "retryable": true, "detail": "d"})
        );
        assert!(value["at"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn one_outcome_is_published_with_type_and_status_attributes() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                let attrs = r.message_attributes().unwrap();
                attrs["type"].string_value() == Some("enable")
                    && attrs["status"].string_value() == Some("created")
                    && r.message_group_id().is_none()
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let publisher = OutcomePublisher::new(sns, "arn:aws:sns:us-east-1:1:results".into());
        publisher.publish(&[enable_outcome()]).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    /// What SNS answers when it takes every entry except those in `refuse`.
    fn answer(request: &PublishBatchInput, refuse: &[&str]) -> PublishBatchOutput {
        let mut output = PublishBatchOutput::builder();
        for entry in request.publish_batch_request_entries() {
            let id = entry.id();
            output = if refuse.contains(&id) {
                output.failed(
                    BatchResultErrorEntry::builder()
                        .id(id)
                        .code("InternalError")
                        .sender_fault(false)
                        .build()
                        .unwrap(),
                )
            } else {
                output.successful(PublishBatchResultEntry::builder().id(id).message_id("m").build())
            };
        }
        output.build()
    }

    #[tokio::test]
    async fn many_outcomes_go_out_ten_per_batch() {
        let rule = mock!(aws_sdk_sns::Client::publish_batch)
            .match_requests(|r| r.publish_batch_request_entries().len() <= 10)
            .then_compute_output(|r| answer(r, &[]));
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let publisher = OutcomePublisher::new(sns, "arn:aws:sns:us-east-1:1:results".into());
        let published = publisher.publish_each(&vec![enable_outcome(); 23]).await;
        assert_eq!(published.delivered, vec![true; 23]);
        assert!(published.failure.is_none());
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn only_the_entries_sns_refused_count_as_unpublished() {
        let rule = mock!(aws_sdk_sns::Client::publish_batch)
            .then_compute_output(|r| answer(r, &["1", "4"]));
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let publisher = OutcomePublisher::new(sns, "arn:aws:sns:us-east-1:1:results".into());
        let published = publisher.publish_each(&vec![enable_outcome(); 12]).await;
        let mut expected = vec![true; 12];
        expected[1] = false;
        expected[4] = false;
        expected[11] = false;
        assert_eq!(published.delivered, expected);
        let failure = published.failure.unwrap();
        assert!(failure.retryable);
        assert_eq!(failure.category, Category::ServiceUnavailable);
        assert_eq!(failure.code.as_deref(), Some("InternalError"));
    }

    #[tokio::test]
    async fn an_entry_sns_does_not_mention_is_not_published() {
        let rule = mock!(aws_sdk_sns::Client::publish_batch).then_output(|| {
            PublishBatchOutput::builder()
                .successful(PublishBatchResultEntry::builder().id("0").build())
                .build()
        });
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let publisher = OutcomePublisher::new(sns, "arn:aws:sns:us-east-1:1:results".into());
        let published = publisher.publish_each(&[enable_outcome(), enable_outcome()]).await;
        assert_eq!(published.delivered, [true, false]);
        assert!(published.failure.unwrap().retryable);
    }

    #[tokio::test]
    async fn fifo_topics_get_group_and_deduplication_ids() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.message_group_id() == Some("123456789012")
                    && r.message_deduplication_id().is_some()
            })
            .then_output(|| PublishOutput::builder().build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let publisher = OutcomePublisher::new(sns, "arn:aws:sns:us-east-1:1:results.fifo".into());
        publisher.publish(&[enable_outcome()]).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }
}
