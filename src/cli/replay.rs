//! `replay`: move dead-lettered jobs back to the jobs queue.
//!
//! Each message is sent to the target first and deleted from the
//! dead-letter queue only once the send succeeded, so a failure at any
//! point leaves the job in one queue or both, never in neither. Bodies are
//! sent byte for byte; on FIFO queues the message group is kept. Messages
//! read but not moved (filtered out, failed, or every message in a dry run)
//! are made visible again when the run ends.
//!
//! On a FIFO dead-letter queue, a message that is skipped holds back the
//! later messages of its message group until the run ends: SQS hands out a
//! group's messages in order only. Filtering by account, which is the
//! message group, never hits this.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
};
use sha2::{Digest, Sha256};

use super::{CliError, JobType, ReplayArgs, queue_url_or_env};
use crate::aws::{load_sdk_config, sqs};
use crate::error::Failure;
use crate::job::{self, JobKind};

/// How long messages read in this run stay hidden from other readers. Long
/// enough for a run over a large queue; they are made visible again at the
/// end if not moved.
const HIDE_WHILE_RUNNING: Duration = Duration::from_secs(300);

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    pub moved: u32,
    pub skipped: u32,
    pub failed: u32,
}

/// Which messages to move.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: Option<JobKind>,
    pub account_id: Option<String>,
}

impl Filter {
    /// Whether `body` is to be moved. A body that does not parse matches
    /// only when no filter is set: it is never dropped, and never moved by
    /// a filter it cannot be checked against.
    pub fn matches(&self, body: &str) -> bool {
        if self.kind.is_none() && self.account_id.is_none() {
            return true;
        }
        let Ok(job) = job::parse(body) else { return false };
        self.kind.is_none_or(|kind| kind == job.kind())
            && self.account_id.as_deref().is_none_or(|account| account == job.account_id().as_str())
    }
}

/// Runs a replay from the command line and prints its summary.
///
/// # Errors
///
/// [`CliError::Usage`] without a queue to send to; [`CliError::Failed`] when
/// the dead-letter queue cannot be read or any move failed.
pub async fn main(args: ReplayArgs) -> Result<(), CliError> {
    let kind = args.r#type.map(|t| match t {
        JobType::Enable => JobKind::Enable,
        JobType::Rescan => JobKind::Rescan,
    });
    let target = queue_url_or_env(args.to)?;
    let replay = Replay {
        sqs: aws_sdk_sqs::Client::new(&load_sdk_config().await),
        dead_letter_queue: args.dlq_url,
        target,
        filter: Filter { kind, account_id: args.account_id },
        dry_run: args.dry_run,
        max: args.max,
    };

    let summary = replay.run().await.map_err(|failure| CliError::Failed(failure.detail))?;
    let verb = if replay.dry_run { "would move" } else { "moved" };
    println!(
        "replay: {} {verb}, {} skipped, {} failed",
        summary.moved, summary.skipped, summary.failed
    );
    if summary.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} messages could not be moved; they are still in the dead-letter queue",
            summary.failed
        )));
    }
    Ok(())
}

/// One replay run.
pub struct Replay {
    pub sqs: aws_sdk_sqs::Client,
    pub dead_letter_queue: String,
    pub target: String,
    pub filter: Filter,
    pub dry_run: bool,
    /// Stop after this many messages moved (or, in a dry run, matched).
    pub max: Option<u32>,
}

impl Replay {
    /// Reads the dead-letter queue until it returns nothing, moving what
    /// matches; prints a line per message.
    ///
    /// # Errors
    ///
    /// A receive that fails; what was moved until then stays moved.
    pub async fn run(&self) -> Result<ReplaySummary, Failure> {
        let mut summary = ReplaySummary::default();
        let mut seen = HashSet::new();
        let mut to_release = Vec::new();

        let result = async {
            while self.max.is_none_or(|max| summary.moved < max) {
                let output = self
                    .sqs
                    .receive_message()
                    .queue_url(&self.dead_letter_queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .visibility_timeout(HIDE_WHILE_RUNNING.as_secs() as i32)
                    .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                    .message_attribute_names("All")
                    .send()
                    .await
                    .map_err(|e| Failure::from_sdk("ReceiveMessage", e))?;
                let messages = output.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    let id = message.message_id().unwrap_or_default().to_owned();
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    let body = message.body().unwrap_or_default();
                    let full = self.max.is_some_and(|max| summary.moved >= max);
                    if full || !self.filter.matches(body) {
                        summary.skipped += 1;
                        to_release.push(message);
                        continue;
                    }
                    if self.dry_run {
                        println!("would move {id} ({})", describe(body));
                        summary.moved += 1;
                        to_release.push(message);
                        continue;
                    }
                    match self.move_one(&message).await {
                        Ok(()) => {
                            println!("moved {id} ({})", describe(body));
                            summary.moved += 1;
                        }
                        Err(failure) => {
                            println!("failed {id}: {}", failure.detail);
                            summary.failed += 1;
                            to_release.push(message);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;

        self.release(&to_release).await;
        result.map(|()| summary)
    }

    /// Sends to the target, then deletes from the dead-letter queue.
    async fn move_one(&self, message: &Message) -> Result<(), Failure> {
        let body = message.body().unwrap_or_default();
        let mut send = self.sqs.send_message().queue_url(&self.target).message_body(body);
        if sqs::is_fifo(&self.target) {
            let group = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .map_or_else(|| group_of(body), Clone::clone);
            // Unique per send: a replay of the same message within SQS's
            // five-minute window must not be swallowed by deduplication.
            let dedup = Sha256::digest(format!(
                "{}\n{:?}",
                message.message_id().unwrap_or_default(),
                std::time::SystemTime::now()
            ));
            send = send.message_group_id(group).message_deduplication_id(hex::encode(dedup));
        }
        send.send().await.map_err(|e| Failure::from_sdk("SendMessage", e))?;
        let handle = message.receipt_handle().unwrap_or_default();
        self.sqs
            .delete_message()
            .queue_url(&self.dead_letter_queue)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| Failure::from_sdk("DeleteMessage", e))?;
        Ok(())
    }

    /// Makes messages read but not moved visible again at once.
    async fn release(&self, messages: &[Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let result = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.dead_letter_queue)
                .set_entries(Some(entries))
                .send()
                .await;
            if result.is_err() {
                eprintln!("warning: some messages stay hidden until their visibility timeout ends");
            }
        }
    }
}

/// The message group for a body that came without one: its account, so a
/// customer's jobs stay in order.
fn group_of(body: &str) -> String {
    job::parse(body).map_or_else(|_| "unparsed".to_owned(), |job| job.account_id().to_string())
}

/// A short, secret-free description of a body for progress lines.
fn describe(body: &str) -> String {
    match job::parse(body) {
        Ok(job) => format!("{}, account {}", job.kind().as_str(), job.account_id()),
        Err(rejection) => format!("invalid body: {}", rejection.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(kind: &str, account: &str) -> String {
        let mut job =
            json!({"type": kind, "accountId": account, "externalId": "ab", "imsOrgId": "o"});
        if kind == "enable" {
            job["distributionId"] = json!("EDFDVBD6EXAMPLE");
        }
        job.to_string()
    }

    #[test]
    fn filters_match_on_type_and_account() {
        let filter =
            Filter { kind: Some(JobKind::Enable), account_id: Some("111122223333".into()) };
        assert!(filter.matches(&body("enable", "111122223333")));
        assert!(!filter.matches(&body("rescan", "111122223333")));
        assert!(!filter.matches(&body("enable", "999988887777")));
    }

    #[test]
    fn unparsable_bodies_match_only_without_a_filter() {
        assert!(Filter::default().matches("not json"));
        let filter = Filter { kind: Some(JobKind::Enable), account_id: None };
        assert!(!filter.matches("not json"));
    }
}
