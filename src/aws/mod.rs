//! AWS plumbing: the shared SDK configuration, the connector role and small
//! helpers per service.

pub mod connector;
pub mod sqs;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// Attempts per AWS call, the first included. The SDK's standard mode backs
/// off exponentially with jitter and retries throttling, 5xx and transient
/// network errors; the rate limiter keeps throttling rare in the first place.
pub const MAX_ATTEMPTS: u32 = 3;

/// Upper bound of one attempt. Control-plane calls answer in well under a
/// second; a stuck connection must not eat the invocation's deadline.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the SDK configuration once: region, credentials and, through
/// `AWS_ENDPOINT_URL`, an emulator endpoint, all from the usual sources.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}
