//! SQS records in, outcomes and batch item failures out.
//!
//! The rules, in the order they apply:
//!
//! - A body that breaks the job contract gets a `rejected` outcome and goes
//!   to the dead-letter queue at once (when one is configured), then is
//!   acknowledged; without a dead-letter queue it is handed back and the
//!   redrive policy moves it.
//! - A permanent failure gets a `failed` outcome and is acknowledged.
//! - A retryable failure is handed back (a batch item failure); on its last
//!   allowed receive it also gets a `failed` outcome with `retryable: true`,
//!   since the redrive policy is about to move it to the dead-letter queue.
//! - A record is acknowledged only after its outcomes are published. The
//!   outcomes of a whole batch go out together once its records have run,
//!   ten per PublishBatch call; a record whose outcomes did not all go out
//!   is handed back.
//! - Records of one FIFO message group run in order, one at a time; after the
//!   first record handed back, the rest of its group is handed back
//!   unprocessed. Groups, and records of a standard queue, run concurrently.
//! - A record that cannot finish before the deadline is handed back rather
//!   than left to time out the whole invocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::aws::connector::ConnectorRoles;
use crate::aws::sqs;
use crate::config::Config;
use crate::enable::{self, Known};
use crate::error::{Category, Failure};
use crate::ids::{AccountId, ExternalId};
use crate::inventory::Inventory;
use crate::job::{self, EnableJob, Job, Rejection, RescanJob};
use crate::limiter::{AccountLimiter, Pace};
use crate::names;
use crate::outcome::{Outcome, OutcomeError, OutcomePublisher, OutcomeType, Published, Status};
use crate::rescan;

/// Time kept back from the deadline for publishing the batch's outcomes and
/// answering: one or two PublishBatch round trips with room to spare.
pub const PUBLISH_RESERVE: Duration = Duration::from_secs(1);

/// A record is not started with less time than this left before the
/// publish reserve: one AWS round trip plus a rate-limit slot.
pub const MIN_RECORD_TIME: Duration = Duration::from_millis(500);

/// Message attribute on a rejected body sent to the dead-letter queue,
/// holding the rejection reason for the operator.
pub const REJECTION_ATTRIBUTE: &str = "rejectionReason";

/// The worker: configuration, clients and the rate limiter, built once per
/// process and shared by every batch.
pub struct Worker {
    config: Config,
    roles: ConnectorRoles,
    limiter: AccountLimiter,
    publisher: OutcomePublisher,
    sqs: aws_sdk_sqs::Client,
}

/// A batch that cannot be handled record by record.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Without a message id a record cannot be handed back on its own, so
    /// the whole batch fails and comes back.
    #[error("a record has no message id; the whole batch is handed back")]
    MissingMessageId,
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Message ids handed back to the queue, in record order.
    pub handed_back: Vec<String>,
    /// Outcomes published, by type and status.
    pub outcomes: HashMap<(OutcomeType, Status), u32>,
    /// Time spent waiting for rate-limit slots, summed over records.
    pub limiter_wait: Duration,
}

impl BatchReport {
    /// The answer Lambda's SQS event source expects.
    pub fn to_response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .handed_back
            .iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

/// What became of one record once it ran.
#[derive(Debug, Default)]
struct Disposition {
    /// Handed back whatever becomes of its outcomes.
    handed_back: bool,
    /// Outcomes to publish with the batch's; the record is acknowledged
    /// only if every one of them is published.
    to_publish: Vec<Outcome>,
    /// Outcomes already published while the record ran.
    published: Vec<(OutcomeType, Status)>,
    limiter_wait: Duration,
}

impl Disposition {
    /// Acknowledged once `outcomes` are published.
    fn ack_after(outcomes: Vec<Outcome>) -> Self {
        Self { to_publish: outcomes, ..Self::default() }
    }

    /// Handed back, after `outcomes` are published.
    fn hand_back_after(outcomes: Vec<Outcome>) -> Self {
        Self { handed_back: true, to_publish: outcomes, ..Self::default() }
    }

    /// Handed back with nothing to say.
    fn hand_back() -> Self {
        Self { handed_back: true, ..Self::default() }
    }

    /// The record published `outcomes` itself.
    fn published(handed_back: bool, outcomes: &[Outcome]) -> Self {
        Self { handed_back, published: summary(outcomes), ..Self::default() }
    }
}

fn summary(outcomes: &[Outcome]) -> Vec<(OutcomeType, Status)> {
    outcomes.iter().map(|o| (o.kind, o.status)).collect()
}

/// A record with what the handler reads from it.
struct Record<'a> {
    message_id: &'a str,
    body: &'a str,
    receive_count: u32,
    group: Option<&'a str>,
}

/// Listings of accounts shared by the enable jobs of one batch.
type SharedInventories = HashMap<(AccountId, ExternalId), Arc<OnceCell<Option<Inventory>>>>;

impl Worker {
    /// Builds the worker's clients from one SDK configuration.
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let roles = ConnectorRoles::new(
            aws_sdk_sts::Client::new(sdk),
            sdk.clone(),
            config.connector_role_name.clone(),
            config.delivery_region.clone(),
        );
        let publisher =
            OutcomePublisher::new(aws_sdk_sns::Client::new(sdk), config.results_topic_arn.clone());
        Self {
            limiter: AccountLimiter::new(config.logs_tps),
            roles,
            publisher,
            sqs: aws_sdk_sqs::Client::new(sdk),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one batch and reports which records to hand back.
    ///
    /// # Errors
    ///
    /// [`BatchError::MissingMessageId`] before anything is done, when a record
    /// cannot be identified.
    pub async fn handle_batch(
        &self,
        records: &[SqsMessage],
        deadline: Instant,
    ) -> Result<BatchReport, BatchError> {
        let started = Instant::now();
        let records = records
            .iter()
            .map(|r| {
                Some(Record {
                    message_id: r.message_id.as_deref()?,
                    body: r.body.as_deref().unwrap_or_default(),
                    receive_count: sqs::receive_count(r),
                    group: sqs::message_group(r),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(BatchError::MissingMessageId)?;
        let jobs: Vec<_> = records.iter().map(|r| job::parse(r.body)).collect();
        let inventories = shared_inventories(&jobs);

        // Group in arrival order; records without a group are their own.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            match record.group {
                Some(group) => {
                    let at = *group_index.entry(group).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[at].push(i);
                }
                None => groups.push(vec![i]),
            }
        }

        let (records, jobs, inventories) = (&records, &jobs, &inventories);
        let runs = groups.iter().map(|members| async move {
            let mut results = Vec::with_capacity(members.len());
            let mut blocked = false;
            for &i in members {
                let disposition = if blocked {
                    debug!(
                        message_id = records[i].message_id,
                        "handed back behind an earlier failure in its group"
                    );
                    Disposition::hand_back()
                } else {
                    self.run_record(&records[i], &jobs[i], inventories, deadline).await
                };
                blocked |= disposition.handed_back && records[i].group.is_some();
                results.push((i, disposition));
            }
            results
        });
        let mut results: Vec<_> =
            futures::future::join_all(runs).await.into_iter().flatten().collect();
        results.sort_by_key(|(i, _)| *i);
        let mut dispositions: Vec<_> = results.into_iter().map(|(_, d)| d).collect();

        self.publish_outcomes(&mut dispositions, deadline).await;
        // A record handed back for its outcomes' sake holds back the rest of
        // its message group, as a failure would have.
        for members in &groups {
            if records[members[0]].group.is_none() {
                continue;
            }
            let mut blocked = false;
            for &i in members {
                blocked |= dispositions[i].handed_back;
                dispositions[i].handed_back |= blocked;
            }
        }

        let mut report = BatchReport::default();
        for (record, disposition) in records.iter().zip(dispositions) {
            if disposition.handed_back {
                report.handed_back.push(record.message_id.to_owned());
            }
            for key in disposition.published {
                *report.outcomes.entry(key).or_default() += 1;
            }
            report.limiter_wait += disposition.limiter_wait;
        }
        info!(
            records = records.len(),
            handed_back = report.handed_back.len(),
            outcomes = report.outcomes.values().sum::<u32>(),
            limiter_wait_ms = report.limiter_wait.as_millis() as u64,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch handled"
        );
        Ok(report)
    }

    /// Publishes the outcomes every record left to publish, all in one go,
    /// before the deadline. A record with an outcome that did not go out is
    /// handed back; it publishes again when it runs again.
    async fn publish_outcomes(&self, dispositions: &mut [Disposition], deadline: Instant) {
        let owners: Vec<usize> = dispositions.iter().map(|d| d.to_publish.len()).collect();
        let outcomes: Vec<Outcome> =
            dispositions.iter_mut().flat_map(|d| std::mem::take(&mut d.to_publish)).collect();
        if outcomes.is_empty() {
            return;
        }
        let published = tokio::time::timeout_at(deadline, self.publisher.publish_each(&outcomes))
            .await
            .unwrap_or_else(|_| Published {
                delivered: vec![false; outcomes.len()],
                failure: Some(Failure::out_of_time("Publish")),
            });
        if let Some(failure) = &published.failure {
            warn!(
                outcomes = outcomes.len(),
                not_published = published.delivered.iter().filter(|d| !**d).count(),
                operation = failure.operation,
                category = failure.category.as_str(),
                code = failure.code.as_deref().unwrap_or("-"),
                request_id = failure.request_id.as_deref().unwrap_or("-"),
                "could not publish every outcome; their records are handed back"
            );
        }

        // The outcomes were taken out in record order: give each record the
        // flags of its own.
        let mut results = outcomes.iter().zip(published.delivered.iter().copied());
        for (disposition, count) in dispositions.iter_mut().zip(owners) {
            for (outcome, delivered) in results.by_ref().take(count) {
                if delivered {
                    disposition.published.push((outcome.kind, outcome.status));
                } else {
                    disposition.handed_back = true;
                }
            }
        }
    }

    async fn run_record(
        &self,
        record: &Record<'_>,
        job: &Result<Job, Rejection>,
        inventories: &SharedInventories,
        deadline: Instant,
    ) -> Disposition {
        let work_deadline = deadline.checked_sub(PUBLISH_RESERVE).unwrap_or(deadline);
        if Instant::now() + MIN_RECORD_TIME > work_deadline {
            debug!(message_id = record.message_id, "not started: too close to the deadline");
            return Disposition::hand_back();
        }
        let span =
            info_span!("record", message_id = record.message_id, attempt = record.receive_count);
        let work = async {
            match job {
                Err(rejection) => self.reject(record, rejection).await,
                Ok(Job::Enable(job)) => {
                    let shared =
                        inventories.get(&(job.account_id.clone(), job.external_id.clone()));
                    self.run_enable(record, job, shared, work_deadline).await
                }
                Ok(Job::Rescan(job)) => self.run_rescan(record, job, work_deadline).await,
            }
        };
        // The publish reserve stays free for the batch's outcomes.
        match tokio::time::timeout_at(work_deadline, work.instrument(span)).await {
            Ok(disposition) => disposition,
            Err(_) => {
                warn!(message_id = record.message_id, "record ran into the deadline; handed back");
                Disposition::hand_back()
            }
        }
    }

    async fn reject(&self, record: &Record<'_>, rejection: &Rejection) -> Disposition {
        let mut outcome = Outcome::new(rejection.kind.into(), Status::Rejected);
        outcome.job_id =
            Some(rejection.ids.job_id.clone().unwrap_or_else(|| record.message_id.to_owned()));
        outcome.message_id = Some(record.message_id.to_owned());
        outcome.account_id = rejection.ids.account_id.clone();
        outcome.distribution_id = rejection.ids.distribution_id.clone();
        outcome.site_id = rejection.ids.site_id.clone();
        outcome.rescan_id = rejection.ids.rescan_id.clone();
        outcome.attempt = Some(record.receive_count);
        outcome.error = Some(OutcomeError {
            category: Category::InvalidJob,
            retryable: false,
            detail: rejection.reason.clone(),
        });
        info!(message_id = record.message_id, reason = %rejection.reason, "job rejected");

        // The rejection is published before the body moves, not with the
        // batch: a body must not reach the dead-letter queue unannounced.
        let outcomes = [outcome];
        if let Err(failure) = self.publisher.publish(&outcomes).await {
            log_failure(record, &failure, "could not publish the rejection");
            return Disposition::hand_back();
        }
        let Some(dlq) = self.config.dead_letter_queue_url.as_deref() else {
            return Disposition::published(true, &outcomes);
        };
        match self.send_to_dead_letter_queue(dlq, record, &rejection.reason).await {
            Ok(()) => Disposition::published(false, &outcomes),
            Err(failure) => {
                log_failure(
                    record,
                    &failure,
                    "could not move the rejected body to the dead-letter queue",
                );
                Disposition::published(true, &outcomes)
            }
        }
    }

    async fn send_to_dead_letter_queue(
        &self,
        dlq: &str,
        record: &Record<'_>,
        reason: &str,
    ) -> Result<(), Failure> {
        let fifo = sqs::is_fifo(dlq);
        let mut request = self
            .sqs
            .send_message()
            .queue_url(dlq)
            .message_body(record.body)
            .set_message_attributes(
                sqs::string_attribute(reason)
                    .map(|v| HashMap::from([(REJECTION_ATTRIBUTE.to_owned(), v)])),
            );
        if fifo {
            request = request
                .message_group_id(record.group.unwrap_or("rejected"))
                .message_deduplication_id(record.message_id);
        }
        request.send().await.map_err(|e| Failure::from_sdk("SendMessage", e))?;
        Ok(())
    }

    async fn run_enable(
        &self,
        record: &Record<'_>,
        job: &EnableJob,
        shared: Option<&Arc<OnceCell<Option<Inventory>>>>,
        deadline: Instant,
    ) -> Disposition {
        let mut outcome = enable_outcome(record, job, &self.config);
        let customer = match self.roles.assume(&job.account_id, &job.external_id).await {
            Ok(customer) => customer,
            Err(failure) => return self.failed(record, outcome, failure, Duration::ZERO),
        };
        let pace = Pace::new(&self.limiter, &job.account_id, deadline);

        let listed = match shared {
            Some(cell) => cell
                .get_or_init(|| async { Inventory::load(&customer, &pace).await.ok() })
                .await
                .as_ref(),
            None => None,
        };
        let known = match (listed, &job.rescan_id) {
            (Some(inventory), _) => Known::Listed(inventory),
            (None, Some(_)) => Known::NotEnabled,
            (None, None) => Known::Nothing,
        };

        match enable::enable(&customer, &self.config, &pace, job, known).await {
            Ok(enabled) => {
                outcome.status =
                    if enabled.already_existed { Status::AlreadyExisted } else { Status::Created };
                outcome.delivery_id = enabled.delivery_id;
                debug!(status = outcome.status.as_str(), "enabled");
                let mut disposition = Disposition::ack_after(vec![outcome]);
                disposition.limiter_wait = pace.waited();
                disposition
            }
            Err(failure) => {
                if failure.category == Category::ExpiredToken {
                    self.roles.forget(&job.account_id, &job.external_id);
                }
                self.failed(record, outcome, failure, pace.waited())
            }
        }
    }

    async fn run_rescan(
        &self,
        record: &Record<'_>,
        job: &RescanJob,
        deadline: Instant,
    ) -> Disposition {
        let rescan_id = job.job_id.clone().unwrap_or_else(|| record.message_id.to_owned());
        let mut summary = Outcome::new(OutcomeType::Rescan, Status::FannedOut);
        summary.job_id = Some(rescan_id.clone());
        summary.message_id = Some(record.message_id.to_owned());
        summary.account_id = Some(job.account_id.clone());
        summary.site_id = job.site_id.clone();
        summary.attempt = Some(record.receive_count);

        let customer = match self.roles.assume(&job.account_id, &job.external_id).await {
            Ok(customer) => customer,
            Err(failure) => return self.failed(record, summary, failure, Duration::ZERO),
        };
        let pace = Pace::new(&self.limiter, &job.account_id, deadline);
        let fan_out = rescan::FanOut {
            sqs: &self.sqs,
            jobs_queue_url: self.config.jobs_queue_url.as_deref(),
        };

        match rescan::rescan(&customer, &self.config, &pace, &fan_out, job, &rescan_id).await {
            Ok(result) => {
                summary.scanned = Some(result.scanned);
                summary.already_existed_count = Some(result.already_enabled.len() as u32);
                summary.enqueued = Some(result.enqueued);
                summary.truncated = Some(result.truncated);
                let mut outcomes: Vec<Outcome> = result
                    .already_enabled
                    .into_iter()
                    .map(|enabled| {
                        let mut outcome = Outcome::new(OutcomeType::Enable, Status::AlreadyExisted);
                        outcome.message_id = Some(record.message_id.to_owned());
                        outcome.account_id = Some(job.account_id.clone());
                        outcome.distribution_id = Some(enabled.distribution_id);
                        outcome.site_id = job.site_id.clone();
                        outcome.rescan_id = Some(rescan_id.clone());
                        outcome.delivery_source_name = Some(enabled.delivery_source_name);
                        outcome.delivery_id = Some(enabled.delivery_id);
                        outcome.attempt = Some(record.receive_count);
                        outcome
                    })
                    .collect();
                outcomes.push(summary);
                let mut disposition = Disposition::ack_after(outcomes);
                disposition.limiter_wait = pace.waited();
                disposition
            }
            Err(failure) => {
                if failure.category == Category::ExpiredToken {
                    self.roles.forget(&job.account_id, &job.external_id);
                }
                self.failed(record, summary, failure, pace.waited())
            }
        }
    }

    /// Applies the failure rules to a job that did not succeed.
    fn failed(
        &self,
        record: &Record<'_>,
        mut outcome: Outcome,
        failure: Failure,
        waited: Duration,
    ) -> Disposition {
        let last_receive = record.receive_count >= self.config.max_receive_count.get();
        log_failure(record, &failure, "job failed");
        outcome.status = Status::Failed;
        outcome.error = Some(OutcomeError::from(&failure));

        let mut disposition = if !failure.retryable {
            Disposition::ack_after(vec![outcome])
        } else if last_receive {
            // The redrive policy moves the message to the dead-letter queue
            // now; the API learns of it from this outcome.
            Disposition::hand_back_after(vec![outcome])
        } else {
            Disposition::hand_back()
        };
        disposition.limiter_wait = waited;
        disposition
    }
}

/// The enable outcome skeleton: every identifier the job carries.
fn enable_outcome(record: &Record<'_>, job: &EnableJob, config: &Config) -> Outcome {
    let mut outcome = Outcome::new(OutcomeType::Enable, Status::Failed);
    outcome.job_id = Some(job.job_id.clone().unwrap_or_else(|| record.message_id.to_owned()));
    outcome.message_id = Some(record.message_id.to_owned());
    outcome.account_id = Some(job.account_id.clone());
    outcome.distribution_id = Some(job.distribution_id.clone());
    outcome.site_id = job.site_id.clone();
    outcome.rescan_id = job.rescan_id.clone();
    outcome.delivery_source_name = Some(names::delivery_source_name(
        &config.delivery_source_prefix,
        &job.ims_org_id,
        &job.distribution_id,
    ));
    outcome.attempt = Some(record.receive_count);
    outcome
}

/// Accounts with two or more enable jobs in the batch (not from a rescan,
/// which already listed the account) share one listing.
fn shared_inventories(jobs: &[Result<Job, Rejection>]) -> SharedInventories {
    let mut counts: HashMap<(AccountId, ExternalId), usize> = HashMap::new();
    for job in jobs {
        if let Ok(Job::Enable(job)) = job
            && job.rescan_id.is_none()
        {
            *counts.entry((job.account_id.clone(), job.external_id.clone())).or_default() += 1;
        }
    }
    counts.into_iter().filter(|(_, n)| *n >= 2).map(|(key, _)| (key, Arc::default())).collect()
}

fn log_failure(record: &Record<'_>, failure: &Failure, message: &'static str) {
    warn!(
        message_id = record.message_id,
        attempt = record.receive_count,
        operation = failure.operation,
        category = failure.category.as_str(),
        code = failure.code.as_deref().unwrap_or("-"),
        request_id = failure.request_id.as_deref().unwrap_or("-"),
        retryable = failure.retryable,
        "{message}"
    );
}
