//! SQS helpers shared by the batch handler, the poller, `enqueue` and
//! `replay`.

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::{
    Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};

use crate::error::Failure;

/// Whether a queue URL names a FIFO queue.
pub fn is_fifo(queue_url: &str) -> bool {
    queue_url.ends_with(".fifo")
}

/// The queue's ARN as Lambda would report it, from its URL
/// (`https://sqs.{region}.amazonaws.com/{account}/{name}`).
pub fn queue_arn(queue_url: &str, region: &str) -> Option<String> {
    let mut parts = queue_url.trim_end_matches('/').rsplit('/');
    let name = parts.next()?;
    let account = parts.next()?;
    Some(format!("arn:aws:sqs:{region}:{account}:{name}"))
}

/// A received message in the shape Lambda's SQS event gives it, so that the
/// poller and the Lambda function share one handler.
pub fn to_lambda_record(
    message: &Message,
    event_source_arn: Option<&str>,
    region: &str,
) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id().map(str::to_owned);
    record.receipt_handle = message.receipt_handle().map(str::to_owned);
    record.body = message.body().map(str::to_owned);
    record.md5_of_body = message.md5_of_body().map(str::to_owned);
    record.attributes = message
        .attributes()
        .map(|attrs| attrs.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
        .unwrap_or_default();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = event_source_arn.map(str::to_owned);
    record.aws_region = Some(region.to_owned());
    record
}

/// The system attributes the handler reads from every message.
pub fn wanted_system_attributes() -> Vec<MessageSystemAttributeName> {
    vec![
        MessageSystemAttributeName::ApproximateReceiveCount,
        MessageSystemAttributeName::MessageGroupId,
        MessageSystemAttributeName::SentTimestamp,
    ]
}

/// A string message attribute.
pub fn string_attribute(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().ok()
}

/// Messages in a queue: visible, in flight and delayed, as SQS approximates
/// them.
///
/// # Errors
///
/// The classified GetQueueAttributes failure.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, Failure> {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let output = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| Failure::from_sdk("GetQueueAttributes", e))?;
    let attributes = output.attributes();
    Ok(names
        .iter()
        .map(|name| {
            attributes.and_then(|a| a.get(name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum())
}

/// Receive count of a record; 1 when the attribute is missing or odd.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// The message group of a FIFO record.
pub fn message_group(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arns_are_derived_from_urls() {
        assert_eq!(
            queue_arn("https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo", "us-east-1")
                .as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:jobs.fifo")
        );
        assert!(is_fifo("http://127.0.0.1:5000/123456789012/jobs.fifo"));
        assert!(!is_fifo("http://127.0.0.1:5000/123456789012/jobs"));
    }

    #[test]
    fn received_messages_become_lambda_records() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::MessageGroupId, "123456789012")
            .build();
        let record = to_lambda_record(&message, Some("arn:aws:sqs:us-east-1:1:jobs"), "us-east-1");
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(receive_count(&record), 3);
        assert_eq!(message_group(&record), Some("123456789012"));
    }
}
