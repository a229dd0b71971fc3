//! `poll`: the worker outside Lambda. Receives batches from the jobs queue,
//! runs the same handler as the Lambda function and deletes what it
//! acknowledged.
//!
//! A message's deadline is its visibility timeout, counted from the receive.
//! SIGTERM or Ctrl-C stops receiving; the batch in hand is finished and
//! nothing unprocessed is deleted.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{CliError, PollArgs, queue_url_or_env};
use crate::aws::{load_sdk_config, sqs};
use crate::batch::Worker;
use crate::config::Config;
use crate::error::Failure;

/// Long polling wait of a receive.
const WAIT: Duration = Duration::from_secs(20);
/// Shorter wait when draining, so an empty queue is noticed quickly.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// Pause after a receive that failed even after the SDK's retries.
const RECEIVE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// SQS's own default, used when the queue's cannot be read.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// What one `poll` run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollSummary {
    pub batches: u32,
    pub received: u32,
    pub deleted: u32,
    pub handed_back: u32,
}

/// Polls the jobs queue until stopped or, with `--drain`, until it is empty.
///
/// # Errors
///
/// [`CliError::Usage`] for bad configuration or no queue;
/// [`CliError::Failed`] when receiving fails permanently.
pub async fn main(args: PollArgs) -> Result<(), CliError> {
    let config = Config::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    let queue_url = queue_url_or_env(args.queue_url)?;
    let sdk = load_sdk_config().await;
    let worker = Arc::new(Worker::new(config, &sdk));
    let poller = Poller::new(
        worker,
        aws_sdk_sqs::Client::new(&sdk),
        queue_url,
        sdk.region().map(|r| r.to_string()),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("stop requested; finishing the batch in hand");
        let _ = stop_tx.send(true);
    });

    let summary = poller.run(args.drain, stop_rx).await.map_err(|failure| {
        error!(operation = failure.operation, category = failure.category.as_str(), "poll stopped");
        CliError::Failed(failure.detail)
    })?;
    println!(
        "poll: {} batches, {} received, {} deleted, {} handed back",
        summary.batches, summary.received, summary.deleted, summary.handed_back
    );
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Receives from one queue and runs the worker on each batch.
pub struct Poller {
    worker: Arc<Worker>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    region: String,
}

impl Poller {
    pub fn new(
        worker: Arc<Worker>,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        region: Option<String>,
    ) -> Self {
        Self { worker, sqs, queue_url, region: region.unwrap_or_else(|| "us-east-1".to_owned()) }
    }

    /// Polls until `stop` turns true or, with `drain`, until the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// A receive that fails permanently (no such queue, access denied);
    /// retryable receive failures are waited out. Failed deletes are only
    /// logged: the message comes back and the job is idempotent.
    pub async fn run(
        &self,
        drain: bool,
        mut stop: watch::Receiver<bool>,
    ) -> Result<PollSummary, Failure> {
        let visibility = self.visibility_timeout().await;
        let queue_arn = sqs::queue_arn(&self.queue_url, &self.region);
        let mut summary = PollSummary::default();

        while !*stop.borrow() {
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(if drain { DRAIN_WAIT } else { WAIT }.as_secs() as i32)
                .set_message_system_attribute_names(Some(sqs::wanted_system_attributes()))
                .send();
            let output = tokio::select! {
                output = receive => output.map_err(|e| Failure::from_sdk("ReceiveMessage", e)),
                _ = stop.changed() => break,
            };
            let output = match output {
                Ok(output) => output,
                // SQS hiccups outlast the SDK's retries now and then; the
                // poller outlives them.
                Err(failure) if failure.retryable => {
                    warn!(
                        code = failure.code.as_deref().unwrap_or("-"),
                        "receive failed; trying again"
                    );
                    tokio::time::sleep(RECEIVE_RETRY_DELAY).await;
                    continue;
                }
                Err(failure) => return Err(failure),
            };
            let received_at = Instant::now();
            let messages = output.messages();
            if messages.is_empty() {
                if drain {
                    match self.is_empty().await {
                        Ok(true) => break,
                        Err(failure) if !failure.retryable => return Err(failure),
                        _ => {}
                    }
                }
                continue;
            }

            let records: Vec<_> = messages
                .iter()
                .map(|m| sqs::to_lambda_record(m, queue_arn.as_deref(), &self.region))
                .collect();
            let report = match self.worker.handle_batch(&records, received_at + visibility).await {
                Ok(report) => report,
                Err(e) => {
                    warn!(error = %e, "batch handed back whole");
                    summary.handed_back += records.len() as u32;
                    continue;
                }
            };
            let acknowledged: Vec<_> = records
                .iter()
                .filter(|r| {
                    r.message_id.as_ref().is_some_and(|id| !report.handed_back.contains(id))
                })
                .filter_map(|r| r.receipt_handle.clone())
                .collect();
            summary.batches += 1;
            summary.received += records.len() as u32;
            summary.handed_back += report.handed_back.len() as u32;
            summary.deleted += self.delete(&acknowledged).await;
        }
        Ok(summary)
    }

    async fn visibility_timeout(&self) -> Duration {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        output
            .ok()
            .and_then(|o| o.attributes()?.get(&QueueAttributeName::VisibilityTimeout)?.parse().ok())
            .map_or(DEFAULT_VISIBILITY, Duration::from_secs)
    }

    /// True when no message is visible, in flight or delayed.
    async fn is_empty(&self) -> Result<bool, Failure> {
        Ok(sqs::queue_depth(&self.sqs, &self.queue_url).await? == 0)
    }

    /// Deletes acknowledged messages, ten per call; returns how many went.
    async fn delete(&self, receipt_handles: &[String]) -> u32 {
        let mut deleted = 0;
        for chunk in receipt_handles.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    deleted += output.successful().len() as u32;
                    if !output.failed().is_empty() {
                        warn!(
                            failed = output.failed().len(),
                            "some deletes failed; those jobs will run again"
                        );
                    }
                }
                Err(e) => {
                    let failure = Failure::from_sdk("DeleteMessageBatch", e);
                    warn!(
                        code = failure.code.as_deref().unwrap_or("-"),
                        "deletes failed; those jobs will run again"
                    );
                }
            }
        }
        deleted
    }
}
