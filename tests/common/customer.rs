//! Seeding moto: a customer account with distributions and a delivery
//! destination, queues and a topic. Used by the tests and by the local demo
//! (`examples/local_stack.rs` includes this file).

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;

/// The safe form of the org every test and the demo use.
pub const SAFE_ORG: &str = "8c6043f15f43b6390a49401a";

/// Clients acting inside one customer account, as the customer.
pub struct Customer {
    pub account_id: String,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

impl Customer {
    /// moto routes an assumed role's credentials to the role's account.
    pub async fn new(admin: &SdkConfig, account_id: String) -> Self {
        let sts = aws_sdk_sts::Client::new(admin);
        let credentials = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account_id}:role/TestAdmin"))
            .role_session_name("test-setup")
            .send()
            .await
            .expect("moto AssumeRole")
            .credentials
            .expect("credentials");
        let provider =
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                Some(credentials.session_token),
                None,
                "customer",
            ));
        let config = admin.to_builder().credentials_provider(provider).build();
        Self {
            account_id,
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            cloudfront: aws_sdk_cloudfront::Client::new(&config),
        }
    }

    /// Creates a distribution serving `aliases`; returns its id.
    pub async fn create_distribution(&self, aliases: &[&str]) -> String {
        use aws_sdk_cloudfront::types::*;
        let origin = Origin::builder()
            .id("origin")
            .domain_name("example-bucket.s3.amazonaws.com")
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .build()
            .unwrap();
        let behavior = DefaultCacheBehavior::builder()
            .target_origin_id("origin")
            .viewer_protocol_policy(ViewerProtocolPolicy::AllowAll)
            // Managed-CachingOptimized.
            .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
            .build()
            .unwrap();
        let config = DistributionConfig::builder()
            .caller_reference(format!("{:016x}", fastrand::u64(..)))
            .aliases(
                Aliases::builder()
                    .quantity(aliases.len() as i32)
                    .set_items(Some(aliases.iter().map(|a| (*a).to_owned()).collect()))
                    .build()
                    .unwrap(),
            )
            .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
            .default_cache_behavior(behavior)
            .comment("")
            .enabled(true)
            .build()
            .unwrap();
        let output = self
            .cloudfront
            .create_distribution()
            .distribution_config(config)
            .send()
            .await
            .expect("CreateDistribution");
        output.distribution.expect("distribution").id
    }

    /// Creates the org's delivery destination. moto only finds destinations
    /// in the caller's own account, so it lives in the customer account.
    pub async fn provision_destination(&self) -> String {
        use aws_sdk_cloudwatchlogs::types::DeliveryDestinationConfiguration;
        let output = self
            .logs
            .put_delivery_destination()
            .name(format!("cdn-logs-{SAFE_ORG}"))
            .delivery_destination_configuration(
                DeliveryDestinationConfiguration::builder()
                    .destination_resource_arn("arn:aws:s3:::cdn-logs-bucket")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("PutDeliveryDestination");
        output.delivery_destination.and_then(|d| d.arn).expect("destination arn")
    }

    pub async fn deliveries(&self) -> Vec<aws_sdk_cloudwatchlogs::types::Delivery> {
        self.logs
            .describe_deliveries()
            .send()
            .await
            .expect("DescribeDeliveries")
            .deliveries
            .unwrap_or_default()
    }

    pub async fn delivery_sources(&self) -> Vec<aws_sdk_cloudwatchlogs::types::DeliverySource> {
        self.logs
            .describe_delivery_sources()
            .send()
            .await
            .expect("DescribeDeliverySources")
            .delivery_sources
            .unwrap_or_default()
    }

    /// The delivery source name the worker uses for `distribution_id`.
    pub fn source_name(&self, distribution_id: &str) -> String {
        format!("llmo-cf-{SAFE_ORG}-{distribution_id}")
    }
}

pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    if name.ends_with(".fifo") {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    for (key, value) in attributes {
        request = request.attributes(key.clone(), *value);
    }
    request.send().await.expect("CreateQueue").queue_url.expect("queue url")
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    output.attributes.unwrap()[&QueueAttributeName::QueueArn].clone()
}

/// Subscribes `queue_url` to `topic_arn`, so outcomes can be read back.
pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_arn: &str,
    queue_url: &str,
) {
    let arn = queue_arn(sqs, queue_url).await;
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("Subscribe");
}
