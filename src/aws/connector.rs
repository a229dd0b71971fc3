//! The customer's connector role: STS AssumeRole with the external id, and a
//! cache of the resulting per-account clients.
//!
//! Credentials are cached per account and external id until
//! [`REFRESH_BEFORE_EXPIRY`] before they expire, so a batch of jobs for one
//! account costs one AssumeRole. Concurrent jobs for one key share a single
//! AssumeRole call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::error::{Category, Failure};
use crate::ids::{AccountId, ExternalId};
use crate::names;

/// Requested lifetime of a connector session; the shortest STS allows, since
/// a job needs seconds.
pub const SESSION_DURATION: Duration = Duration::from_secs(900);

/// Cached credentials are replaced this long before they expire, so a job
/// never starts with credentials that lapse mid-way.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Shown in the customer's CloudTrail as the session name.
const SESSION_NAME: &str = "cdn-log-delivery";

/// Clients acting inside one customer account through its connector role.
#[derive(Clone, Debug)]
pub struct CustomerClients {
    pub account_id: AccountId,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

#[derive(Clone)]
struct Session {
    clients: CustomerClients,
    refresh_at: SystemTime,
}

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Assumes connector roles and caches the sessions.
pub struct ConnectorRoles {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    role_name: String,
    logs_region: Region,
    sessions: Mutex<HashMap<(AccountId, ExternalId), Slot>>,
}

impl ConnectorRoles {
    /// `base` supplies endpoints, retry and timeout settings for the
    /// per-account clients; `logs_region` is where CloudWatch Logs is called.
    pub fn new(
        sts: aws_sdk_sts::Client,
        base: SdkConfig,
        role_name: String,
        logs_region: String,
    ) -> Self {
        Self {
            sts,
            base,
            role_name,
            logs_region: Region::new(logs_region),
            sessions: Mutex::default(),
        }
    }

    /// Clients for `account`, from the cache or a new AssumeRole.
    ///
    /// # Errors
    ///
    /// The classified AssumeRole failure: `AccessDenied` when the role does
    /// not exist, does not trust us or wants another external id.
    pub async fn assume(
        &self,
        account: &AccountId,
        external_id: &ExternalId,
    ) -> Result<CustomerClients, Failure> {
        let slot = self.slot(account, external_id);
        let mut session = slot.lock().await;
        if let Some(cached) = session.as_ref().filter(|s| s.refresh_at > SystemTime::now()) {
            return Ok(cached.clients.clone());
        }

        let fresh = self.assume_role(account, external_id).await?;
        let clients = fresh.clients.clone();
        *session = Some(fresh);
        Ok(clients)
    }

    /// Drops the cached session, e.g. after a call answered `ExpiredToken`.
    pub fn forget(&self, account: &AccountId, external_id: &ExternalId) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&(account.clone(), external_id.clone()));
    }

    fn slot(&self, account: &AccountId, external_id: &ExternalId) -> Slot {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.entry((account.clone(), external_id.clone())).or_default().clone()
    }

    async fn assume_role(
        &self,
        account: &AccountId,
        external_id: &ExternalId,
    ) -> Result<Session, Failure> {
        let role_arn = names::connector_role_arn(account, &self.role_name);
        let output = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(SESSION_NAME)
            .external_id(external_id.expose())
            .duration_seconds(SESSION_DURATION.as_secs() as i32)
            .send()
            .await
            .map_err(|e| Failure::from_sdk("AssumeRole", e))?;
        let Some(sts_credentials) = output.credentials() else {
            return Err(Failure::new(
                Category::Internal,
                "AssumeRole",
                "AssumeRole returned no credentials",
            ));
        };

        let expires_at = SystemTime::try_from(*sts_credentials.expiration())
            .unwrap_or_else(|_| SystemTime::now() + SESSION_DURATION);
        let refresh_at =
            expires_at.checked_sub(REFRESH_BEFORE_EXPIRY).unwrap_or(SystemTime::UNIX_EPOCH);
        let credentials = Credentials::new(
            sts_credentials.access_key_id(),
            sts_credentials.secret_access_key(),
            Some(sts_credentials.session_token().to_owned()),
            Some(expires_at),
            "connector-role",
        );
        Ok(Session { clients: self.clients_for(account, credentials), refresh_at })
    }

    fn clients_for(&self, account: &AccountId, credentials: Credentials) -> CustomerClients {
        let provider = SharedCredentialsProvider::new(credentials);
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(&self.base)
            .credentials_provider(provider.clone())
            .region(self.logs_region.clone())
            .build();
        // CloudFront is a global service signed in us-east-1.
        let cloudfront = aws_sdk_cloudfront::config::Builder::from(&self.base)
            .credentials_provider(provider)
            .region(Region::from_static("us-east-1"))
            .build();
        CustomerClients {
            account_id: account.clone(),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
    use aws_sdk_sts::types::Credentials as StsCredentials;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;
    use aws_smithy_types::error::ErrorMetadata;

    fn roles(sts: aws_sdk_sts::Client) -> ConnectorRoles {
        let base =
            SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        ConnectorRoles::new(sts, base, "ConnectorRole".into(), "us-east-1".into())
    }

    fn output(expires_in: Duration) -> AssumeRoleOutput {
        let expiration = DateTime::from(SystemTime::now() + expires_in);
        AssumeRoleOutput::builder()
            .credentials(
                StsCredentials::builder()
                    .access_key_id("ASIAEXAMPLE")
                    .secret_access_key("secret")
                    .session_token("token")
                    .expiration(expiration)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn ids() -> (AccountId, ExternalId) {
        (AccountId::parse("123456789012").unwrap(), ExternalId::parse("external-secret").unwrap())
    }

    #[tokio::test]
    async fn sessions_are_cached_until_shortly_before_expiry() {
        let rule = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.role_arn() == Some("arn:aws:iam::123456789012:role/ConnectorRole")
                    && r.external_id() == Some("external-secret")
                    && r.duration_seconds() == Some(900)
            })
            .then_output(|| output(Duration::from_secs(900)));
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let roles = roles(sts);
        let (account, external_id) = ids();
        for _ in 0..3 {
            let clients = roles.assume(&account, &external_id).await.unwrap();
            assert_eq!(clients.account_id, account);
        }
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn nearly_expired_sessions_are_renewed() {
        let rule =
            mock!(aws_sdk_sts::Client::assume_role).then_output(|| output(Duration::from_secs(60)));
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let roles = roles(sts);
        let (account, external_id) = ids();
        roles.assume(&account, &external_id).await.unwrap();
        roles.assume(&account, &external_id).await.unwrap();
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn forgotten_sessions_are_assumed_again() {
        let rule = mock!(aws_sdk_sts::Client::assume_role)
            .then_output(|| output(Duration::from_secs(900)));
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let roles = roles(sts);
        let (account, external_id) = ids();
        roles.assume(&account, &external_id).await.unwrap();
        roles.forget(&account, &external_id);
        roles.assume(&account, &external_id).await.unwrap();
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn access_denied_is_permanent_and_hides_the_message() {
        let rule = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
            AssumeRoleError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("User arn:aws:sts::1:assumed-role/x is not authorized")
                    .build(),
            )
        });
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let (account, external_id) = ids();
        let failure = roles(sts).assume(&account, &external_id).await.unwrap_err();
        assert_eq!(failure.category, Category::AccessDenied);
        assert!(!failure.retryable);
        assert!(!failure.detail.contains("arn:"));
    }
}
