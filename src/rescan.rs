//! Rescan: list every distribution of an account, report the ones already
//! enabled and fan the rest out as enable jobs.
//!
//! The account's delivery sources and deliveries are listed once, so an
//! already-enabled distribution costs no call of its own: a steady-state
//! rescan of N distributions makes `ceil(N/50) * 2` CloudWatch Logs calls at
//! most (one DescribeDeliverySources and one DescribeDeliveries page per 50).

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use backon::{ExponentialBuilder, Retryable};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::aws::connector::CustomerClients;
use crate::aws::sqs::is_fifo;
use crate::config::Config;
use crate::error::{Category, Failure};
use crate::ids::DistributionId;
use crate::inventory::Inventory;
use crate::job::{EnableJob, Job, RescanJob};
use crate::limiter::Pace;
use crate::names;

/// Distributions per ListDistributions page.
const LIST_PAGE_SIZE: i32 = 100;

/// SendMessageBatch takes at most ten entries.
const SEND_BATCH_MAX: usize = 10;

/// Rounds of re-sending the entries SQS refused within one batch.
const SEND_RETRIES: usize = 3;
const SEND_RETRY_FIRST_DELAY: Duration = Duration::from_millis(100);

/// Where fanned-out enable jobs go.
pub struct FanOut<'a> {
    pub sqs: &'a aws_sdk_sqs::Client,
    /// `None` when `JOBS_QUEUE_URL` is not configured.
    pub jobs_queue_url: Option<&'a str>,
}

/// A distribution whose delivery is already on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlreadyEnabled {
    pub distribution_id: DistributionId,
    pub delivery_source_name: String,
    pub delivery_id: String,
}

/// What a rescan found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rescanned {
    /// Distributions considered (at most `maxDistributions`).
    pub scanned: u32,
    pub already_enabled: Vec<AlreadyEnabled>,
    /// Enable jobs sent to the jobs queue.
    pub enqueued: u32,
    /// The account has more distributions than were considered.
    pub truncated: bool,
}

/// Runs a rescan. `rescan_id` is the rescan's job id (its message id when
/// the job has none); fanned-out jobs carry it as `rescanId`.
///
/// # Errors
///
/// A classified [`Failure`]. When fan-out fails part-way the failure is
/// retryable: enable is idempotent and FIFO deduplication absorbs the
/// re-sent jobs, so running the rescan again is harmless.
pub async fn rescan(
    customer: &CustomerClients,
    config: &Config,
    pace: &Pace<'_>,
    fan_out: &FanOut<'_>,
    job: &RescanJob,
    rescan_id: &str,
) -> Result<Rescanned, Failure> {
    let Some(queue_url) = fan_out.jobs_queue_url else {
        return Err(Failure::new(
            Category::Internal,
            "SendMessageBatch",
            "the worker has no jobs queue configured for fan-out",
        ));
    };
    let cap = job.max_distributions.map_or(usize::MAX, |n| n as usize);
    let (distributions, truncated) = list_distributions(customer, cap).await?;
    let inventory = Inventory::load(customer, pace).await?;

    let destination = names::destination_arn(
        &config.delivery_region,
        &config.destination_account_id,
        &job.ims_org_id,
    );
    let mut already_enabled = Vec::new();
    let mut to_enable = Vec::new();
    for distribution_id in distributions.iter().cloned() {
        let source = names::delivery_source_name(
            &config.delivery_source_prefix,
            &job.ims_org_id,
            &distribution_id,
        );
        match inventory.delivery(&source, &destination) {
            Some(id) => already_enabled.push(AlreadyEnabled {
                distribution_id,
                delivery_source_name: source,
                delivery_id: id.to_owned(),
            }),
            None => to_enable.push(distribution_id),
        }
    }

    let jobs: Vec<(DistributionId, String)> = to_enable
        .into_iter()
        .map(|distribution_id| {
            let body = Job::Enable(EnableJob {
                account_id: job.account_id.clone(),
                external_id: job.external_id.clone(),
                ims_org_id: job.ims_org_id.clone(),
                distribution_id: distribution_id.clone(),
                job_id: None,
                site_id: job.site_id.clone(),
                site_host: None,
                allow_domain_mismatch: false,
                rescan_id: Some(rescan_id.to_owned()),
            })
            .to_body();
            (distribution_id, body)
        })
        .collect();
    for chunk in jobs.chunks(SEND_BATCH_MAX) {
        send_batch(fan_out.sqs, queue_url, job, rescan_id, chunk).await?;
    }
    debug!(scanned = distributions.len(), enqueued = jobs.len(), truncated, "rescan fanned out");

    Ok(Rescanned {
        scanned: distributions.len() as u32,
        already_enabled,
        enqueued: jobs.len() as u32,
        truncated,
    })
}

/// Lists up to `cap` distribution ids, following `NextMarker`; reports
/// whether more exist.
async fn list_distributions(
    customer: &CustomerClients,
    cap: usize,
) -> Result<(Vec<DistributionId>, bool), Failure> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let output = customer
            .cloudfront
            .list_distributions()
            .max_items(LIST_PAGE_SIZE)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| Failure::from_sdk("ListDistributions", e))?;
        let Some(list) = output.distribution_list() else { return Ok((ids, false)) };
        for summary in list.items() {
            if ids.len() == cap {
                return Ok((ids, true));
            }
            match DistributionId::parse(summary.id()) {
                Ok(id) => ids.push(id),
                Err(_) => warn!(
                    length = summary.id().len(),
                    "skipped a distribution id of unexpected shape"
                ),
            }
        }
        match list.next_marker().filter(|m| list.is_truncated() && !m.is_empty()) {
            Some(next) if ids.len() == cap => {
                debug!(next_marker_len = next.len(), "stopped at the distribution cap");
                return Ok((ids, true));
            }
            Some(next) => marker = Some(next.to_owned()),
            None => return Ok((ids, false)),
        }
    }
}

/// Sends up to ten enable jobs, re-sending the entries SQS refused.
async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    job: &RescanJob,
    rescan_id: &str,
    chunk: &[(DistributionId, String)],
) -> Result<(), Failure> {
    let fifo = is_fifo(queue_url);
    let entries: Vec<SendMessageBatchRequestEntry> = chunk
        .iter()
        .enumerate()
        .map(|(i, (distribution_id, body))| {
            let mut entry =
                SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
            if fifo {
                entry = entry
                    .message_group_id(job.account_id.as_str())
                    .message_deduplication_id(deduplication_id(rescan_id, distribution_id));
            }
            entry.build().map_err(|_| {
                Failure::new(Category::Internal, "SendMessageBatch", "could not build an entry")
            })
        })
        .collect::<Result<_, _>>()?;

    // Entries still to send; each round keeps only those SQS refused.
    let pending = Mutex::new(entries);
    let attempt = || async {
        let entries = pending.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let output = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| Failure::from_sdk("SendMessageBatch", e))?;
        let refused: Vec<_> = entries
            .into_iter()
            .filter(|entry| output.failed().iter().any(|f| f.id() == entry.id()))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let mut failure = Failure::new(
            Category::ServiceUnavailable,
            "SendMessageBatch",
            format!("{} of the fanned-out jobs were not accepted", refused.len()),
        );
        failure.code = output.failed().first().map(|f| f.code().to_owned());
        debug!(
            refused = refused.len(),
            code = failure.code.as_deref().unwrap_or("-"),
            "entries refused"
        );
        *pending.lock().unwrap_or_else(|p| p.into_inner()) = refused;
        Err(failure)
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(SEND_RETRY_FIRST_DELAY)
        .with_max_times(SEND_RETRIES)
        .with_jitter();
    attempt.retry(backoff).when(|failure| failure.retryable).await.map_err(|mut failure| {
        // A fan-out that could not finish is retried as a whole.
        failure.retryable = true;
        failure
    })
}

/// Deterministic per rescan and distribution, so a rescan that is retried
/// within SQS's five-minute deduplication window does not enqueue twice.
fn deduplication_id(rescan_id: &str, distribution_id: &DistributionId) -> String {
    let digest = Sha256::digest(format!("{rescan_id}\n{distribution_id}").as_bytes());
    hex::encode(digest)
}
