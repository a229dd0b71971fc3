//! Configuration, read once from the environment at start-up.
//!
//! [`Config::from_lookup`] takes any lookup function, so tests build
//! configurations without touching the process environment.

use std::num::NonZeroU32;

use crate::ids::AccountId;

/// Default name of the role customers create for us (the onboarding template
/// creates it under this name).
pub const DEFAULT_CONNECTOR_ROLE_NAME: &str = "AdobeLLMOptimizerCloudFrontConnectorRole";
/// Prefix of every delivery source name; the existing API uses it too.
pub const DEFAULT_DELIVERY_SOURCE_PREFIX: &str = "llmo-cf";
/// CloudFront vends its logs through CloudWatch Logs in us-east-1 only.
pub const DEFAULT_DELIVERY_REGION: &str = "us-east-1";
/// Per-account CloudWatch Logs calls per second. The delivery APIs share a
/// low per-account quota with everything else the customer runs, so the
/// default stays well below it.
pub const DEFAULT_LOGS_TPS: u32 = 5;
/// Receives before the jobs queue's redrive policy moves a message to the
/// dead-letter queue; must equal the queue's `maxReceiveCount`.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// A variable that is missing or cannot be used. The message names it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed: {rule}")]
    Malformed { name: &'static str, rule: &'static str },
}

/// Everything the worker needs to know about its deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Account owning the `cdn-logs-{org}` delivery destinations.
    pub destination_account_id: AccountId,
    /// SNS topic every outcome is published to.
    pub results_topic_arn: String,
    /// Jobs queue; rescans fan out to it and `poll` reads from it.
    pub jobs_queue_url: Option<String>,
    /// Where rejected bodies go at once. Unset: they are left to the redrive
    /// policy and reach the dead-letter queue after `max_receive_count`
    /// receives.
    pub dead_letter_queue_url: Option<String>,
    /// Name of the role assumed in customer accounts.
    pub connector_role_name: String,
    /// Prefix of delivery source names.
    pub delivery_source_prefix: String,
    /// Region of every CloudWatch Logs call and of the destination ARN.
    pub delivery_region: String,
    /// CloudWatch Logs calls per second per customer account.
    pub logs_tps: NonZeroU32,
    /// Must match the jobs queue's redrive `maxReceiveCount`: on that
    /// receive a retryable failure is reported as a final `failed` outcome.
    pub max_receive_count: NonZeroU32,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// The first missing or malformed variable, by name.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`. Empty values count as unset.
    ///
    /// # Errors
    ///
    /// The first missing or malformed variable, by name.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let destination_account_id = {
            let name = "DELIVERY_DESTINATION_ACCOUNT_ID";
            AccountId::parse(&required(name)?)
                .map_err(|rule| ConfigError::Malformed { name, rule })?
        };
        let results_topic_arn = required("RESULTS_TOPIC_ARN")?;
        if !results_topic_arn.starts_with("arn:") {
            return Err(ConfigError::Malformed {
                name: "RESULTS_TOPIC_ARN",
                rule: "must be an SNS topic ARN",
            });
        }
        let jobs_queue_url = get("JOBS_QUEUE_URL");
        let dead_letter_queue_url = get("DEAD_LETTER_QUEUE_URL");
        for (name, url) in
            [("JOBS_QUEUE_URL", &jobs_queue_url), ("DEAD_LETTER_QUEUE_URL", &dead_letter_queue_url)]
        {
            if url.as_deref().is_some_and(|u| !u.starts_with("http")) {
                return Err(ConfigError::Malformed { name, rule: "must be an SQS queue URL" });
            }
        }

        let connector_role_name =
            get("CONNECTOR_ROLE_NAME").unwrap_or_else(|| DEFAULT_CONNECTOR_ROLE_NAME.to_owned());
        if !is_role_name(&connector_role_name) {
            return Err(ConfigError::Malformed {
                name: "CONNECTOR_ROLE_NAME",
                rule: "must be 1-64 characters of [A-Za-z0-9+=,.@_-]",
            });
        }
        let delivery_source_prefix = get("DELIVERY_SOURCE_PREFIX")
            .unwrap_or_else(|| DEFAULT_DELIVERY_SOURCE_PREFIX.to_owned());
        if !is_name_prefix(&delivery_source_prefix) {
            return Err(ConfigError::Malformed {
                name: "DELIVERY_SOURCE_PREFIX",
                rule: "must be 1-20 characters of [a-z0-9-]",
            });
        }
        let delivery_region =
            get("DELIVERY_REGION").unwrap_or_else(|| DEFAULT_DELIVERY_REGION.to_owned());
        if !is_region(&delivery_region) {
            return Err(ConfigError::Malformed {
                name: "DELIVERY_REGION",
                rule: "must be an AWS region name such as us-east-1",
            });
        }

        Ok(Self {
            destination_account_id,
            results_topic_arn,
            jobs_queue_url,
            dead_letter_queue_url,
            connector_role_name,
            delivery_source_prefix,
            delivery_region,
            logs_tps: positive(&get, "CLOUDWATCH_LOGS_TPS", DEFAULT_LOGS_TPS)?,
            max_receive_count: positive(&get, "MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT)?,
        })
    }
}

#[cfg(test)]
impl Config {
    /// Only the required variables set, destination account 111122223333:
    /// what unit tests of other modules need.
    pub(crate) fn for_tests() -> Self {
        Self::from_lookup(|name| match name {
            "DELIVERY_DESTINATION_ACCOUNT_ID" => Some("111122223333".into()),
            "RESULTS_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:111122223333:results".into()),
            _ => None,
        })
        .expect("a valid test configuration")
    }
}

fn positive(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
) -> Result<NonZeroU32, ConfigError> {
    let malformed = ConfigError::Malformed { name, rule: "must be a whole number from 1 to 1000" };
    match get(name) {
        None => Ok(NonZeroU32::new(default).expect("defaults are positive")),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .and_then(NonZeroU32::new)
            .ok_or(malformed),
    }
}

fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn is_name_prefix(prefix: &str) -> bool {
    (1..=20).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<_, _> = vars.iter().copied().collect();
        move |name| map.get(name).map(|v| (*v).to_owned())
    }

    const MINIMAL: [(&str, &str); 2] = [
        ("DELIVERY_DESTINATION_ACCOUNT_ID", "111122223333"),
        ("RESULTS_TOPIC_ARN", "arn:aws:sns:us-east-1:111122223333:results"),
    ];

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let config = Config::from_lookup(lookup(&MINIMAL)).unwrap();
        assert_eq!(config.destination_account_id.as_str(), "111122223333");
        assert_eq!(config.connector_role_name, DEFAULT_CONNECTOR_ROLE_NAME);
        assert_eq!(config.delivery_source_prefix, "llmo-cf");
        assert_eq!(config.delivery_region, "us-east-1");
        assert_eq!(config.logs_tps.get(), 5);
        assert_eq!(config.max_receive_count.get(), 5);
        assert_eq!(config.jobs_queue_url, None);
        assert_eq!(config.dead_letter_queue_url, None);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Config::from_lookup(lookup(&MINIMAL[1..])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DELIVERY_DESTINATION_ACCOUNT_ID"));
        assert!(err.to_string().contains("DELIVERY_DESTINATION_ACCOUNT_ID"));
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        let vars = [MINIMAL[0], ("RESULTS_TOPIC_ARN", "  ")];
        let err = Config::from_lookup(lookup(&vars)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("RESULTS_TOPIC_ARN"));
    }

    #[test]
    fn malformed_variables_are_named() {
        for (name, value) in [
            ("DELIVERY_DESTINATION_ACCOUNT_ID", "1234"),
            ("CLOUDWATCH_LOGS_TPS", "0"),
            ("CLOUDWATCH_LOGS_TPS", "fast"),
            ("MAX_RECEIVE_COUNT", "-1"),
            ("JOBS_QUEUE_URL", "jobs"),
            ("CONNECTOR_ROLE_NAME", "role/with/slashes"),
            ("DELIVERY_SOURCE_PREFIX", "Upper"),
            ("DELIVERY_REGION", "US EAST"),
        ] {
            let mut vars = MINIMAL.to_vec();
            vars.retain(|(n, _)| *n != name);
            vars.push((name, value));
            let err = Config::from_lookup(lookup(&vars)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Malformed { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn overrides_are_read() {
        let mut vars = MINIMAL.to_vec();
        vars.extend([
            ("CLOUDWATCH_LOGS_TPS", "8"),
            ("MAX_RECEIVE_COUNT", "3"),
            ("JOBS_QUEUE_URL", "http://127.0.0.1:5000/123456789012/jobs.fifo"),
            ("CONNECTOR_ROLE_NAME", "OtherRole"),
        ]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.logs_tps.get(), 8);
        assert_eq!(config.max_receive_count.get(), 3);
        assert_eq!(config.connector_role_name, "OtherRole");
        assert!(config.jobs_queue_url.is_some());
    }
}
