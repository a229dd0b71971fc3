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

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use aws_sdk_cloudfront::Client as CloudFront;
    use aws_sdk_cloudfront::operation::list_distributions::ListDistributionsOutput;
    use aws_sdk_cloudfront::types::{DistributionList, DistributionSummary};
    use aws_sdk_cloudwatchlogs::Client as Logs;
    use aws_sdk_cloudwatchlogs::operation::describe_deliveries::DescribeDeliveriesOutput;
    use aws_sdk_cloudwatchlogs::operation::describe_delivery_sources::DescribeDeliverySourcesOutput;
    use aws_sdk_cloudwatchlogs::types::{Delivery, DeliverySource};
    use aws_sdk_sqs::Client as Sqs;
    use aws_sdk_sqs::operation::send_message_batch::{
        SendMessageBatchInput, SendMessageBatchOutput,
    };
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::retry::RetryConfig;
    use tokio::time::Instant;

    use super::*;
    use crate::ids::AccountId;
    use crate::limiter::AccountLimiter;

    const ACCOUNT: &str = "123456789012";
    const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/jobs.fifo";
    const DESTINATION: &str = "arn:aws:logs:us-east-1:111122223333:delivery-destination:cdn-logs-8c6043f15f43b6390a49401a";

    fn job(max_distributions: Option<u32>) -> RescanJob {
        let mut body = serde_json::json!({
            "type": "rescan", "accountId": ACCOUNT, "externalId": "external",
            "imsOrgId": "8C6043F15F43B6390A49401A@AdobeOrg", "jobId": "rescan-1",
        });
        if let Some(n) = max_distributions {
            body["maxDistributions"] = n.into();
        }
        match crate::job::parse(&body.to_string()).unwrap() {
            Job::Rescan(job) => job,
            Job::Enable(_) => unreachable!(),
        }
    }

    fn dist(n: usize) -> String {
        format!("EDIST{n:09}")
    }

    fn source(n: usize) -> String {
        format!("llmo-cf-8c6043f15f43b6390a49401a-{}", dist(n))
    }

    /// Two pages of distributions: 0..3 then 3..5.
    fn two_pages() -> Rule {
        let page = |range: std::ops::Range<usize>, next: Option<&str>| {
            let items: Vec<_> = range.map(|n| summary(&dist(n))).collect();
            let mut list = DistributionList::builder()
                .marker("")
                .max_items(100)
                .quantity(items.len() as i32)
                .set_items(Some(items))
                .is_truncated(next.is_some());
            if let Some(next) = next {
                list = list.next_marker(next);
            }
            ListDistributionsOutput::builder().distribution_list(list.build().unwrap()).build()
        };
        mock!(CloudFront::list_distributions)
            .sequence()
            .output(move || page(0..3, Some("marker-2")))
            .output(move || page(3..5, None))
            .build()
    }

    fn summary(id: &str) -> DistributionSummary {
        // Only the id matters here; the builder insists on every field.
        let mut builder = DistributionSummary::builder()
            .id(id)
            .arn(format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{id}"))
            .status("Deployed")
            .last_modified_time(aws_smithy_types::DateTime::from_secs(0))
            .domain_name(format!("{}.cloudfront.net", id.to_lowercase()))
            .comment("")
            .price_class(aws_sdk_cloudfront::types::PriceClass::PriceClassAll)
            .enabled(true)
            .web_acl_id("")
            .http_version(aws_sdk_cloudfront::types::HttpVersion::Http2)
            .is_ipv6_enabled(true)
            .staging(false);
        builder = builder
            .aliases(aws_sdk_cloudfront::types::Aliases::builder().quantity(0).build().unwrap())
            .origins(
                aws_sdk_cloudfront::types::Origins::builder()
                    .quantity(0)
                    .set_items(Some(vec![]))
                    .build()
                    .unwrap(),
            )
            .default_cache_behavior(
                aws_sdk_cloudfront::types::DefaultCacheBehavior::builder()
                    .target_origin_id("o")
                    .viewer_protocol_policy(
                        aws_sdk_cloudfront::types::ViewerProtocolPolicy::AllowAll,
                    )
                    .build()
                    .unwrap(),
            )
            .cache_behaviors(
                aws_sdk_cloudfront::types::CacheBehaviors::builder().quantity(0).build().unwrap(),
            )
            .custom_error_responses(
                aws_sdk_cloudfront::types::CustomErrorResponses::builder()
                    .quantity(0)
                    .build()
                    .unwrap(),
            )
            .restrictions(
                aws_sdk_cloudfront::types::Restrictions::builder()
                    .geo_restriction(
                        aws_sdk_cloudfront::types::GeoRestriction::builder()
                            .restriction_type(aws_sdk_cloudfront::types::GeoRestrictionType::None)
                            .quantity(0)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .viewer_certificate(aws_sdk_cloudfront::types::ViewerCertificate::builder().build());
        builder.build().unwrap()
    }

    /// Sources for 0..3 over two pages; deliveries for 0 and 2 over two pages.
    fn listing() -> (Rule, Rule) {
        let sources = mock!(Logs::describe_delivery_sources)
            .sequence()
            .output(|| {
                DescribeDeliverySourcesOutput::builder()
                    .delivery_sources(DeliverySource::builder().name(source(0)).build())
                    .delivery_sources(DeliverySource::builder().name(source(1)).build())
                    .next_token("s2")
                    .build()
            })
            .output(|| {
                DescribeDeliverySourcesOutput::builder()
                    .delivery_sources(DeliverySource::builder().name(source(2)).build())
                    .build()
            })
            .build();
        let delivery = |n: usize| {
            Delivery::builder()
                .id(format!("dlv-{n}"))
                .delivery_source_name(source(n))
                .delivery_destination_arn(DESTINATION)
                .build()
        };
        let deliveries = mock!(Logs::describe_deliveries)
            .sequence()
            .output(move || {
                DescribeDeliveriesOutput::builder().deliveries(delivery(0)).next_token("d2").build()
            })
            .output(move || DescribeDeliveriesOutput::builder().deliveries(delivery(2)).build())
            .build();
        (sources, deliveries)
    }

    fn sent_all() -> Rule {
        mock!(Sqs::send_message_batch).then_compute_output(accept_all)
    }

    /// SQS accepts every entry of the batch.
    fn accept_all(request: &SendMessageBatchInput) -> SendMessageBatchOutput {
        let accepted = request
            .entries()
            .iter()
            .map(|e| {
                SendMessageBatchResultEntry::builder()
                    .id(e.id())
                    .message_id("m")
                    .md5_of_message_body("x")
                    .build()
                    .unwrap()
            })
            .collect();
        SendMessageBatchOutput::builder()
            .set_successful(Some(accepted))
            .set_failed(Some(vec![]))
            .build()
            .unwrap()
    }

    async fn run(
        cloudfront: &[&Rule],
        logs: &[&Rule],
        sqs: &[&Rule],
        job: &RescanJob,
    ) -> Result<Rescanned, Failure> {
        let customer = CustomerClients {
            account_id: AccountId::parse(ACCOUNT).unwrap(),
            logs: mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, logs, |c| c
                .retry_config(RetryConfig::disabled())),
            cloudfront: mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, cloudfront),
        };
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, sqs, |c| c
            .retry_config(RetryConfig::disabled()));
        let limiter = AccountLimiter::new(NonZeroU32::new(1000).unwrap());
        let account = AccountId::parse(ACCOUNT).unwrap();
        let pace = Pace::new(&limiter, &account, Instant::now() + Duration::from_secs(60));
        let fan_out = FanOut { sqs: &sqs, jobs_queue_url: Some(QUEUE) };
        rescan(&customer, &Config::for_tests(), &pace, &fan_out, job, "rescan-1").await
    }

    #[tokio::test]
    async fn every_page_is_listed_and_only_unenabled_distributions_fan_out() {
        let list = two_pages();
        let (sources, deliveries) = listing();
        let send = mock!(Sqs::send_message_batch)
            .match_requests(|r| {
                let bodies: Vec<serde_json::Value> = r
                    .entries()
                    .iter()
                    .map(|e| serde_json::from_str(e.message_body()).unwrap())
                    .collect();
                r.entries().len() == 3
                    && r.entries().iter().all(|e| e.message_group_id() == Some(ACCOUNT))
                    && r.entries()
                        .iter()
                        .all(|e| e.message_deduplication_id().is_some_and(|d| d.len() == 64))
                    && bodies.iter().all(|b| b["rescanId"] == "rescan-1" && b["type"] == "enable")
                    && bodies
                        .iter()
                        .map(|b| b["distributionId"].as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                        == [dist(1), dist(3), dist(4)]
            })
            .then_compute_output(accept_all);
        let result = run(&[&list], &[&sources, &deliveries], &[&send], &job(None)).await.unwrap();
        assert_eq!(result.scanned, 5);
        assert!(!result.truncated);
        assert_eq!(result.enqueued, 3);
        let enabled: Vec<_> =
            result.already_enabled.iter().map(|a| a.delivery_id.as_str()).collect();
        assert_eq!(enabled, ["dlv-0", "dlv-2"]);
        assert_eq!((list.num_calls(), sources.num_calls(), deliveries.num_calls()), (2, 2, 2));
        assert_eq!(send.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_cap_stops_listing_and_reports_truncation() {
        let list = two_pages();
        let (sources, deliveries) = listing();
        let send = sent_all();
        let result =
            run(&[&list], &[&sources, &deliveries], &[&send], &job(Some(3))).await.unwrap();
        assert_eq!(result.scanned, 3);
        assert!(result.truncated);
        assert_eq!(list.num_calls(), 1, "the second page is not fetched");

        let list = two_pages();
        let (sources, deliveries) = listing();
        let result =
            run(&[&list], &[&sources, &deliveries], &[&send], &job(Some(4))).await.unwrap();
        assert_eq!(result.scanned, 4);
        assert!(result.truncated);
    }

    #[tokio::test]
    async fn refused_entries_are_sent_again_alone() {
        let list = two_pages();
        let (sources, deliveries) = listing();
        let send = mock!(Sqs::send_message_batch)
            .sequence()
            .output(|| {
                SendMessageBatchOutput::builder()
                    .set_successful(Some(vec![
                        SendMessageBatchResultEntry::builder()
                            .id("0")
                            .message_id("m")
                            .md5_of_message_body("x")
                            .build()
                            .unwrap(),
                    ]))
                    .set_failed(Some(vec![
                        BatchResultErrorEntry::builder()
                            .id("1")
                            .code("InternalError")
                            .sender_fault(false)
                            .build()
                            .unwrap(),
                        BatchResultErrorEntry::builder()
                            .id("2")
                            .code("InternalError")
                            .sender_fault(false)
                            .build()
                            .unwrap(),
                    ]))
                    .build()
                    .unwrap()
            })
            .build();
        let resend = mock!(Sqs::send_message_batch)
            .match_requests(|r| {
                r.entries().iter().map(|e| e.id()).collect::<Vec<_>>() == ["1", "2"]
            })
            .then_compute_output(accept_all);
        let result =
            run(&[&list], &[&sources, &deliveries], &[&send, &resend], &job(None)).await.unwrap();
        assert_eq!(result.enqueued, 3);
        assert_eq!((send.num_calls(), resend.num_calls()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fan_out_that_keeps_failing_is_retryable() {
        let list = two_pages();
        let (sources, deliveries) = listing();
        let refuse = mock!(Sqs::send_message_batch).then_compute_output(|r| {
            let failed = r
                .entries()
                .iter()
                .map(|e| {
                    BatchResultErrorEntry::builder()
                        .id(e.id())
                        .code("InternalError")
                        .sender_fault(false)
                        .build()
                        .unwrap()
                })
                .collect();
            SendMessageBatchOutput::builder()
                .set_successful(Some(vec![]))
                .set_failed(Some(failed))
                .build()
                .unwrap()
        });
        let failure =
            run(&[&list], &[&sources, &deliveries], &[&refuse], &job(None)).await.unwrap_err();
        assert!(failure.retryable);
        assert_eq!(refuse.num_calls(), 1 + SEND_RETRIES);
    }

    #[tokio::test]
    async fn without_a_jobs_queue_the_rescan_fails_before_any_call() {
        let list = two_pages();
        let customer = CustomerClients {
            account_id: AccountId::parse(ACCOUNT).unwrap(),
            logs: mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, &[]),
            cloudfront: mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&list]),
        };
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[]);
        let limiter = AccountLimiter::new(NonZeroU32::new(1000).unwrap());
        let account = AccountId::parse(ACCOUNT).unwrap();
        let pace = Pace::new(&limiter, &account, Instant::now() + Duration::from_secs(60));
        let fan_out = FanOut { sqs: &sqs, jobs_queue_url: None };
        let failure = rescan(&customer, &Config::for_tests(), &pace, &fan_out, &job(None), "r")
            .await
            .unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(list.num_calls(), 0);
    }
}
