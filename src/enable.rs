//! The idempotent enable sequence for one distribution.
//!
//! 1. Optionally check that the distribution serves the job's `siteHost`.
//! 2. Look for the delivery source and its delivery to our destination;
//!    both present: `alreadyExisted`, nothing written.
//! 3. PutDeliverySource. A conflict means the distribution already sends its
//!    access logs to another source: permanent `DeliverySourceConflict`.
//! 4. CreateDelivery. A conflict is a lost race with another writer: the
//!    delivery is looked up again and reported `alreadyExisted`. A missing
//!    destination is `DestinationNotProvisioned`.
//!
//! Every CloudWatch Logs call waits for the account's rate-limit slot first.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::S3DeliveryConfiguration;
use backon::{ExponentialBuilder, Retryable};

use crate::aws::connector::CustomerClients;
use crate::config::Config;
use crate::error::{Category, Failure};
use crate::inventory::{Inventory, find_delivery, observed};
use crate::job::EnableJob;
use crate::limiter::Pace;
use crate::names;

/// Fields of every log record, in the order the existing API asks for them.
pub const RECORD_FIELDS: [&str; 12] = [
    "date",
    "time",
    "x-edge-location",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "time-to-first-byte",
    "sc-content-type",
    "x-host-header",
];

/// Hourly S3 prefixes under the destination bucket.
pub const S3_SUFFIX_PATH: &str = "/{yyyy}/{MM}/{dd}/{HH}";

/// Looking a delivery up again after a lost CreateDelivery race: the other
/// writer's delivery can take a moment to show in DescribeDeliveries.
const RACE_LOOKUP_FIRST_DELAY: Duration = Duration::from_millis(200);
const RACE_LOOKUP_RETRIES: usize = 3;

/// What the worker already knows about the account before it starts.
#[derive(Clone, Copy, Debug)]
pub enum Known<'a> {
    /// Nothing: look the source and delivery up.
    Nothing,
    /// A recent rescan listed the account and found no delivery for this
    /// distribution, so the lookup is skipped. If that went stale, the
    /// idempotent writes still end in `alreadyExisted`.
    NotEnabled,
    /// A listing of the account made for this batch.
    Listed(&'a Inventory),
}

/// Delivery is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enabled {
    pub delivery_source_name: String,
    /// `None` only when a lost race's delivery never showed up in listings.
    pub delivery_id: Option<String>,
    /// True when nothing had to be created.
    pub already_existed: bool,
}

/// Switches on log delivery for the job's distribution.
///
/// # Errors
///
/// A classified [`Failure`]; its `retryable` flag says whether the record
/// should come back.
pub async fn enable(
    customer: &CustomerClients,
    config: &Config,
    pace: &Pace<'_>,
    job: &EnableJob,
    known: Known<'_>,
) -> Result<Enabled, Failure> {
    let source = names::delivery_source_name(
        &config.delivery_source_prefix,
        &job.ims_org_id,
        &job.distribution_id,
    );
    let destination = names::destination_arn(
        &config.delivery_region,
        &config.destination_account_id,
        &job.ims_org_id,
    );

    if let Some(host) = job.site_host.as_deref().filter(|_| !job.allow_domain_mismatch) {
        check_alias(customer, job, host).await?;
    }

    let source_exists = match known {
        Known::Listed(inventory) => {
            if let Some(id) = inventory.delivery(&source, &destination) {
                return Ok(already_existed(source, Some(id.to_owned())));
            }
            inventory.has_source(&source)
        }
        Known::NotEnabled => false,
        Known::Nothing => {
            if source_exists(customer, pace, job, &source).await? {
                if let Some(id) = find_delivery(customer, pace, &source, &destination).await? {
                    return Ok(already_existed(source, Some(id)));
                }
                true
            } else {
                false
            }
        }
    };

    if !source_exists {
        put_source(customer, pace, job, &source).await?;
    }
    create_delivery(customer, pace, source, &destination).await
}

fn already_existed(source: String, delivery_id: Option<String>) -> Enabled {
    Enabled { delivery_source_name: source, delivery_id, already_existed: true }
}

async fn check_alias(
    customer: &CustomerClients,
    job: &EnableJob,
    host: &str,
) -> Result<(), Failure> {
    let output = customer
        .cloudfront
        .get_distribution()
        .id(job.distribution_id.as_str())
        .send()
        .await
        .map_err(|e| {
            let not_found = e.as_service_error().is_some_and(|e| e.is_no_such_distribution());
            let failure = Failure::from_sdk("GetDistribution", e);
            if not_found {
                failure.recategorise(
                    Category::DistributionNotFound,
                    "no such distribution in the customer's account",
                )
            } else {
                failure
            }
        })?;
    let aliases = output
        .distribution()
        .and_then(|d| d.distribution_config())
        .and_then(|c| c.aliases())
        .map(|a| a.items())
        .unwrap_or_default();
    if aliases.iter().any(|alias| alias_matches(alias, host)) {
        Ok(())
    } else {
        Err(Failure::new(
            Category::DomainMismatch,
            "GetDistribution",
            "the distribution's aliases do not include the site host",
        ))
    }
}

/// Case-insensitive; a `*.example.com` alias serves exactly one more label.
fn alias_matches(alias: &str, host: &str) -> bool {
    let alias = alias.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    if alias.eq_ignore_ascii_case(host) {
        return true;
    }
    match (alias.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
        }
        _ => false,
    }
}

/// Whether our delivery source exists. One of our name that sends another
/// resource's logs means somebody else took the name: a conflict.
async fn source_exists(
    customer: &CustomerClients,
    pace: &Pace<'_>,
    job: &EnableJob,
    source: &str,
) -> Result<bool, Failure> {
    pace.ready("GetDeliverySource").await?;
    match customer.logs.get_delivery_source().name(source).send().await {
        Ok(output) => {
            let resource = names::distribution_arn(&job.account_id, &job.distribution_id);
            let resources = output.delivery_source().map(|s| s.resource_arns()).unwrap_or_default();
            if resources.is_empty() || resources.contains(&resource) {
                Ok(true)
            } else {
                Err(Failure::new(
                    Category::DeliverySourceConflict,
                    "GetDeliverySource",
                    "a delivery source of this name belongs to another resource",
                ))
            }
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            Ok(false)
        }
        Err(e) => Err(observed(pace, Failure::from_sdk("GetDeliverySource", e))),
    }
}

async fn put_source(
    customer: &CustomerClients,
    pace: &Pace<'_>,
    job: &EnableJob,
    source: &str,
) -> Result<(), Failure> {
    pace.ready("PutDeliverySource").await?;
    let resource = names::distribution_arn(&job.account_id, &job.distribution_id);
    let result = customer
        .logs
        .put_delivery_source()
        .name(source)
        .resource_arn(resource)
        .log_type("ACCESS_LOGS")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
            Err(Failure::from_sdk("PutDeliverySource", e).recategorise(
                Category::DeliverySourceConflict,
                "the distribution already sends its access logs to another delivery source",
            ))
        }
        Err(e) => Err(observed(pace, Failure::from_sdk("PutDeliverySource", e))),
    }
}

async fn create_delivery(
    customer: &CustomerClients,
    pace: &Pace<'_>,
    source: String,
    destination: &str,
) -> Result<Enabled, Failure> {
    pace.ready("CreateDelivery").await?;
    let s3 = S3DeliveryConfiguration::builder()
        .suffix_path(S3_SUFFIX_PATH)
        .enable_hive_compatible_path(false)
        .build();
    let result = customer
        .logs
        .create_delivery()
        .delivery_source_name(&source)
        .delivery_destination_arn(destination)
        .set_record_fields(Some(RECORD_FIELDS.iter().map(|f| (*f).to_owned()).collect()))
        .s3_delivery_configuration(s3)
        .send()
        .await;
    match result {
        Ok(output) => {
            let delivery_id = output.delivery().and_then(|d| d.id()).map(str::to_owned);
            Ok(Enabled { delivery_source_name: source, delivery_id, already_existed: false })
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
            lost_race(customer, pace, source, destination).await
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            Err(Failure::from_sdk("CreateDelivery", e).recategorise(
                Category::DestinationNotProvisioned,
                "the org's delivery destination is not provisioned",
            ))
        }
        Err(e) => Err(observed(pace, Failure::from_sdk("CreateDelivery", e))),
    }
}

/// CreateDelivery answered that the delivery exists: another writer won.
/// Its id is looked up again with a short backoff, since listings can lag.
/// A delivery that never shows up means the source delivers to a destination
/// other than ours.
async fn lost_race(
    customer: &CustomerClients,
    pace: &Pace<'_>,
    source: String,
    destination: &str,
) -> Result<Enabled, Failure> {
    enum Lookup {
        NotYet,
        Failed(Failure),
    }
    let lookup = || async {
        match find_delivery(customer, pace, &source, destination).await {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(Lookup::NotYet),
            Err(failure) => Err(Lookup::Failed(failure)),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(RACE_LOOKUP_FIRST_DELAY)
        .with_max_times(RACE_LOOKUP_RETRIES)
        .with_jitter();
    match lookup.retry(backoff).when(|e| matches!(e, Lookup::NotYet)).await {
        Ok(id) => Ok(already_existed(source, Some(id))),
        Err(Lookup::Failed(failure)) => Err(failure),
        Err(Lookup::NotYet) => Err(Failure::new(
            Category::DeliverySourceConflict,
            "CreateDelivery",
            "the delivery source already delivers to another destination",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use aws_sdk_cloudwatchlogs::Client as Logs;
    use aws_sdk_cloudwatchlogs::operation::create_delivery::{
        CreateDeliveryError, CreateDeliveryOutput,
    };
    use aws_sdk_cloudwatchlogs::operation::describe_deliveries::DescribeDeliveriesOutput;
    use aws_sdk_cloudwatchlogs::operation::describe_delivery_sources::DescribeDeliverySourcesOutput;
    use aws_sdk_cloudwatchlogs::operation::get_delivery_source::{
        GetDeliverySourceError, GetDeliverySourceOutput,
    };
    use aws_sdk_cloudwatchlogs::operation::put_delivery_source::{
        PutDeliverySourceError, PutDeliverySourceOutput,
    };
    use aws_sdk_cloudwatchlogs::types::error::{
        ConflictException, ResourceNotFoundException, ThrottlingException,
    };
    use aws_sdk_cloudwatchlogs::types::{Delivery, DeliverySource};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::retry::RetryConfig;
    use tokio::time::Instant;

    use super::*;
    use crate::ids::AccountId;
    use crate::limiter::{AccountLimiter, THROTTLE_COOL_DOWN};

    const ACCOUNT: &str = "123456789012";
    const DISTRIBUTION: &str = "EDFDVBD6EXAMPLE";
    const SOURCE: &str = "llmo-cf-8c6043f15f43b6390a49401a-EDFDVBD6EXAMPLE";
    const DESTINATION: &str = "arn:aws:logs:us-east-1:111122223333:delivery-destination:cdn-logs-8c6043f15f43b6390a49401a";

    fn job() -> EnableJob {
        let body = serde_json::json!({
            "type": "enable", "accountId": ACCOUNT, "externalId": "external",
            "imsOrgId": "8C6043F15F43B6390A49401A@AdobeOrg", "distributionId": DISTRIBUTION,
        });
        match crate::job::parse(&body.to_string()).unwrap() {
            crate::job::Job::Enable(job) => job,
            crate::job::Job::Rescan(_) => unreachable!(),
        }
    }

    fn customer(rules: &[&Rule]) -> CustomerClients {
        CustomerClients {
            account_id: AccountId::parse(ACCOUNT).unwrap(),
            logs: mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, rules, |c| c
                .retry_config(RetryConfig::disabled())),
            cloudfront: mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, &[]),
        }
    }

    fn meta(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("raw AWS text with arn:aws:iam::1:role/x")
            .build()
    }

    fn source_not_found() -> Rule {
        mock!(Logs::get_delivery_source).then_error(|| {
            GetDeliverySourceError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta("ResourceNotFoundException"))
                    .build(),
            )
        })
    }

    fn source_found() -> Rule {
        mock!(Logs::get_delivery_source).then_output(|| {
            GetDeliverySourceOutput::builder()
                .delivery_source(
                    DeliverySource::builder()
                        .name(SOURCE)
                        .resource_arns(format!(
                            "arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION}"
                        ))
                        .build(),
                )
                .build()
        })
    }

    fn put_ok() -> Rule {
        mock!(Logs::put_delivery_source)
            .match_requests(|r| {
                r.name() == Some(SOURCE)
                    && r.log_type() == Some("ACCESS_LOGS")
                    && r.resource_arn()
                        == Some(&format!(
                            "arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION}"
                        ))
            })
            .then_output(|| PutDeliverySourceOutput::builder().build())
    }

    fn delivery(source: &str, id: &str) -> Delivery {
        Delivery::builder()
            .id(id)
            .delivery_source_name(source)
            .delivery_destination_arn(DESTINATION)
            .build()
    }

    async fn run(rules: &[&Rule], known: Known<'_>) -> (Result<Enabled, Failure>, AccountLimiter) {
        let limiter = AccountLimiter::new(NonZeroU32::new(1000).unwrap());
        let account = AccountId::parse(ACCOUNT).unwrap();
        let result = {
            let pace = Pace::new(&limiter, &account, Instant::now() + Duration::from_secs(60));
            enable(&customer(rules), &Config::for_tests(), &pace, &job(), known).await
        };
        (result, limiter)
    }

    #[tokio::test]
    async fn a_new_distribution_gets_a_source_and_a_delivery() {
        let create = mock!(Logs::create_delivery)
            .match_requests(|r| {
                r.delivery_source_name() == Some(SOURCE)
                    && r.delivery_destination_arn() == Some(DESTINATION)
                    && r.record_fields().len() == 12
                    && r.s3_delivery_configuration().and_then(|c| c.suffix_path())
                        == Some(S3_SUFFIX_PATH)
            })
            .then_output(|| {
                CreateDeliveryOutput::builder().delivery(delivery(SOURCE, "dlv-new")).build()
            });
        let (get, put) = (source_not_found(), put_ok());
        let (result, _) = run(&[&get, &put, &create], Known::Nothing).await;
        let enabled = result.unwrap();
        assert!(!enabled.already_existed);
        assert_eq!(enabled.delivery_id.as_deref(), Some("dlv-new"));
        assert_eq!((get.num_calls(), put.num_calls(), create.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn conflict_on_put_is_a_delivery_source_conflict() {
        let put = mock!(Logs::put_delivery_source).then_error(|| {
            PutDeliverySourceError::ConflictException(
                ConflictException::builder().meta(meta("ConflictException")).build(),
            )
        });
        let get = source_not_found();
        let (result, _) = run(&[&get, &put], Known::Nothing).await;
        let failure = result.unwrap_err();
        assert_eq!(failure.category, Category::DeliverySourceConflict);
        assert!(!failure.retryable);
        assert!(!failure.detail.contains("arn:"));
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_on_create_is_already_existed_with_the_id_looked_up_again() {
        let create = mock!(Logs::create_delivery).then_error(|| {
            CreateDeliveryError::ConflictException(
                ConflictException::builder().meta(meta("ConflictException")).build(),
            )
        });
        // The winner's delivery shows up in the second listing only.
        let lagging = mock!(Logs::describe_deliveries)
            .sequence()
            .output(|| DescribeDeliveriesOutput::builder().build())
            .output(|| {
                DescribeDeliveriesOutput::builder()
                    .deliveries(delivery(SOURCE, "dlv-winner"))
                    .build()
            })
            .build();
        let (get, put) = (source_not_found(), put_ok());
        let (result, _) = run(&[&get, &put, &create, &lagging], Known::Nothing).await;
        let enabled = result.unwrap();
        assert!(enabled.already_existed);
        assert_eq!(enabled.delivery_id.as_deref(), Some("dlv-winner"));
        assert_eq!(lagging.num_calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_on_create_without_our_delivery_is_a_conflict() {
        let create = mock!(Logs::create_delivery).then_error(|| {
            CreateDeliveryError::ConflictException(
                ConflictException::builder().meta(meta("ConflictException")).build(),
            )
        });
        let elsewhere = mock!(Logs::describe_deliveries).then_output(|| {
            DescribeDeliveriesOutput::builder()
                .deliveries(delivery("someone-else", "dlv-x"))
                .build()
        });
        let (get, put) = (source_not_found(), put_ok());
        let (result, _) = run(&[&get, &put, &create, &elsewhere], Known::Nothing).await;
        assert_eq!(result.unwrap_err().category, Category::DeliverySourceConflict);
        assert_eq!(elsewhere.num_calls(), 1 + RACE_LOOKUP_RETRIES);
    }

    #[tokio::test]
    async fn a_missing_destination_is_not_provisioned() {
        let create = mock!(Logs::create_delivery).then_error(|| {
            CreateDeliveryError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta("ResourceNotFoundException"))
                    .build(),
            )
        });
        let (get, put) = (source_not_found(), put_ok());
        let (result, _) = run(&[&get, &put, &create], Known::Nothing).await;
        let failure = result.unwrap_err();
        assert_eq!(failure.category, Category::DestinationNotProvisioned);
        assert!(!failure.retryable);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_call_is_retryable_and_holds_the_account_back() {
        let create = mock!(Logs::create_delivery).then_error(|| {
            CreateDeliveryError::ThrottlingException(
                ThrottlingException::builder().meta(meta("ThrottlingException")).build(),
            )
        });
        let (get, put) = (source_not_found(), put_ok());
        let (result, limiter) = run(&[&get, &put, &create], Known::Nothing).await;
        let failure = result.unwrap_err();
        assert_eq!(failure.category, Category::Throttling);
        assert!(failure.retryable);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        limiter.until_ready(&AccountId::parse(ACCOUNT).unwrap(), far).await.unwrap();
        assert!(start.elapsed() >= THROTTLE_COOL_DOWN - Duration::from_millis(1));
    }

    #[tokio::test]
    async fn an_existing_delivery_is_found_on_a_later_page_without_writes() {
        let pages = mock!(Logs::describe_deliveries)
            .sequence()
            .output(|| {
                DescribeDeliveriesOutput::builder()
                    .deliveries(delivery("other-source", "dlv-1"))
                    .next_token("page-2")
                    .build()
            })
            .output(|| {
                DescribeDeliveriesOutput::builder().deliveries(delivery(SOURCE, "dlv-ours")).build()
            })
            .build();
        let (get, put) = (source_found(), put_ok());
        let (result, _) = run(&[&get, &pages, &put], Known::Nothing).await;
        let enabled = result.unwrap();
        assert!(enabled.already_existed);
        assert_eq!(enabled.delivery_id.as_deref(), Some("dlv-ours"));
        assert_eq!(pages.num_calls(), 2);
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_listed_inventory_answers_without_calls() {
        let sources = mock!(Logs::describe_delivery_sources).then_output(|| {
            DescribeDeliverySourcesOutput::builder()
                .delivery_sources(DeliverySource::builder().name(SOURCE).build())
                .build()
        });
        let deliveries = mock!(Logs::describe_deliveries).then_output(|| {
            DescribeDeliveriesOutput::builder().deliveries(delivery(SOURCE, "dlv-listed")).build()
        });
        let limiter = AccountLimiter::new(NonZeroU32::new(1000).unwrap());
        let account = AccountId::parse(ACCOUNT).unwrap();
        let pace = Pace::new(&limiter, &account, Instant::now() + Duration::from_secs(60));
        let customer = customer(&[&sources, &deliveries]);
        let inventory = Inventory::load(&customer, &pace).await.unwrap();
        let enabled =
            enable(&customer, &Config::for_tests(), &pace, &job(), Known::Listed(&inventory))
                .await
                .unwrap();
        assert!(enabled.already_existed);
        assert_eq!(enabled.delivery_id.as_deref(), Some("dlv-listed"));
        assert_eq!(
            (sources.num_calls(), deliveries.num_calls()),
            (1, 1),
            "only the listing was called"
        );
    }

    #[test]
    fn aliases_match_exactly_or_by_one_wildcard_label() {
        assert!(alias_matches("www.example.com", "www.example.com"));
        assert!(alias_matches("WWW.Example.com.", "www.example.com"));
        assert!(alias_matches("*.example.com", "www.example.com"));
        assert!(!alias_matches("*.example.com", "a.b.example.com"));
        assert!(!alias_matches("*.example.com", "example.com"));
        assert!(!alias_matches("example.com", "www.example.com"));
    }
}
