//! The throttling proxy the benchmark puts in front of moto: its token
//! bucket on paused time, how it names operations, and, through a real moto
//! server, that the SDK reads its throttling answers as AWS's own.

mod common;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use cdn_log_delivery::error::{Category, Failure};
use common::proxy::{
    Action, Call, LogsQuota, Options, Policy, Proxy, Quota, TokenBucket, classify,
};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method};
use tokio::time::Instant;

fn logs_headers(operation: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let target = format!("Logs_20140328.{operation}");
    headers.insert("x-amz-target", HeaderValue::from_str(&target).unwrap());
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc",
        ),
    );
    headers
}

#[tokio::test(start_paused = true)]
async fn a_full_bucket_allows_its_burst_then_one_call_per_interval() {
    let mut bucket = TokenBucket::new(Quota::per_second(10.0).with_burst(3), Instant::now());
    assert!(bucket.try_take(Instant::now()));
    assert!(bucket.try_take(Instant::now()));
    assert!(bucket.try_take(Instant::now()));
    assert!(!bucket.try_take(Instant::now()), "the burst is used up");

    tokio::time::advance(Duration::from_millis(99)).await;
    assert!(!bucket.try_take(Instant::now()), "not a whole token yet");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(bucket.try_take(Instant::now()), "one token per 100 ms");
    assert!(!bucket.try_take(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn refused_calls_take_nothing_and_idle_time_refills_up_to_the_burst_only() {
    let mut bucket = TokenBucket::new(Quota::per_second(4.0), Instant::now());
    assert!(bucket.try_take(Instant::now()));
    // Hammering a throttled bucket does not push the next slot back.
    for _ in 0..100 {
        assert!(!bucket.try_take(Instant::now()));
    }
    tokio::time::advance(Duration::from_millis(250)).await;
    assert!(bucket.try_take(Instant::now()));

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!((bucket.available(Instant::now()) - 1.0).abs() < 1e-9, "burst 1 caps the refill");
    assert!(bucket.try_take(Instant::now()));
    assert!(!bucket.try_take(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn a_rate_below_one_per_second_spaces_calls_by_seconds() {
    let mut bucket = TokenBucket::new(Quota::per_second(0.5), Instant::now());
    assert!(bucket.try_take(Instant::now()));
    tokio::time::advance(Duration::from_millis(1999)).await;
    assert!(!bucket.try_take(Instant::now()));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(bucket.try_take(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn over_a_long_run_the_bucket_admits_the_quota_and_no_more() {
    // A caller trying every 10 ms for 10 s at 10/s, burst 1: 1 + 100 calls.
    let mut bucket = TokenBucket::new(Quota::per_second(10.0), Instant::now());
    let mut allowed = 0;
    for _ in 0..=1000 {
        allowed += u32::from(bucket.try_take(Instant::now()));
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert_eq!(allowed, 101);
}

#[tokio::test(start_paused = true)]
async fn the_logs_quota_meters_each_operation_and_ignores_other_services() {
    let quota = LogsQuota::new(Quota::per_second(2.0));
    let post = Method::POST;
    let allowed = |headers: &HeaderMap| {
        let (service, key) = classify(&post, "/", headers, b"{}");
        let call = Call {
            service: &service,
            operation: &key,
            method: &post,
            path: "/",
            headers,
            body: b"{}",
        };
        quota.decide(&call) == Action::Forward
    };
    let put = logs_headers("PutDeliverySource");
    let create = logs_headers("CreateDelivery");
    assert!(allowed(&put));
    assert!(allowed(&create), "another operation has its own bucket");
    assert!(!allowed(&put));
    assert!(!allowed(&create));

    let mut sqs = HeaderMap::new();
    sqs.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.ReceiveMessage"));
    for _ in 0..10 {
        assert!(allowed(&sqs), "only CloudWatch Logs is metered");
    }
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(allowed(&put));
}

#[test]
fn operations_are_named_per_service() {
    let post = Method::POST;
    let get = Method::GET;
    let (service, key) = classify(&post, "/", &logs_headers("CreateDelivery"), b"{}");
    assert_eq!((service.as_str(), key.as_str()), ("logs", "logs:CreateDelivery"));

    let mut sqs = HeaderMap::new();
    sqs.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.SendMessageBatch"));
    assert_eq!(classify(&post, "/", &sqs, b"{}").1, "sqs:SendMessageBatch");

    let signed = |service: &str| {
        let mut headers = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=abc"
        );
        headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
        headers
    };
    let body = b"Action=PublishBatch&Version=2010-03-31&TopicArn=arn";
    assert_eq!(classify(&post, "/", &signed("sns"), body).1, "sns:PublishBatch");
    let body = b"Action=AssumeRole&Version=2011-06-15";
    assert_eq!(classify(&post, "/", &signed("sts"), body).1, "sts:AssumeRole");

    let cloudfront = signed("cloudfront");
    assert_eq!(
        classify(&get, "/2020-05-31/distribution?MaxItems=100", &cloudfront, b"").1,
        "cloudfront:GET /2020-05-31/distribution"
    );
    assert_eq!(
        classify(&get, "/2020-05-31/distribution/E2QWRUHAPOMQZL", &cloudfront, b"").1,
        "cloudfront:GET /2020-05-31/distribution/{id}"
    );
}

/// An SDK configuration through `proxy` with one attempt per call, so every
/// answer of the proxy reaches the caller as is.
fn through(proxy: &Proxy) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .region(Region::from_static("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        )))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build()
}

#[tokio::test]
async fn a_burst_of_logs_calls_from_the_sdk_is_throttled_like_aws() {
    let options = Options::default().logs_quota(Quota::per_second(1.0));
    let proxy = Proxy::start(&common::endpoint(), options).await.unwrap();
    let sdk = through(&proxy);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);

    let burst = (0..5).map(|_| logs.describe_delivery_sources().send());
    let results = futures::future::join_all(burst).await;
    let mut passed = 0;
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(_) => passed += 1,
            Err(e) => {
                assert!(
                    e.as_service_error().is_some_and(|e| e.is_throttling_exception()),
                    "the SDK reads the modeled ThrottlingException: {e:?}"
                );
                failures.push(Failure::from_sdk("DescribeDeliverySources", e));
            }
        }
    }
    assert!(passed >= 1, "the first call of a burst fits the bucket");
    assert!(failures.len() >= 3, "at 1/s, burst 1, most of 5 simultaneous calls are throttled");
    for failure in &failures {
        assert_eq!(failure.category, Category::Throttling);
        assert!(failure.retryable);
        assert_eq!(failure.code.as_deref(), Some("ThrottlingException"));
        assert!(failure.request_id.is_some(), "the request id is read from the header");
    }

    let stats = proxy.stats();
    let counted = stats.get("logs:DescribeDeliverySources");
    assert_eq!(counted.calls, 5);
    assert_eq!(counted.forwarded, passed);
    assert_eq!(counted.throttled, failures.len() as u64);
    assert_eq!(stats.logs().throttled, failures.len() as u64);

    // Other services pass untouched, however fast.
    let sts = aws_sdk_sts::Client::new(&sdk);
    let identities =
        futures::future::join_all((0..4).map(|_| sts.get_caller_identity().send())).await;
    assert!(identities.iter().all(Result::is_ok));
    assert_eq!(proxy.stats().get("sts:GetCallerIdentity").forwarded, 4);
}

#[tokio::test]
async fn policies_fail_drop_delay_or_forward_each_call() {
    let policy = |call: &Call<'_>| match call.operation {
        "sqs:ListQueues" => Action::Fail { status: 503, code: "ServiceUnavailable".into() },
        "sts:GetCallerIdentity" => Action::Drop,
        "cloudfront:GET /2020-05-31/distribution" => Action::Delay(Duration::from_millis(300)),
        _ => Action::Forward,
    };
    let proxy = Proxy::start(&common::endpoint(), Options::default().policy(policy)).await.unwrap();
    let sdk = through(&proxy);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let failure = Failure::from_sdk("ListQueues", sqs.list_queues().send().await.unwrap_err());
    assert_eq!(failure.category, Category::ServiceUnavailable);
    assert_eq!(failure.code.as_deref(), Some("ServiceUnavailable"));

    let dropped = aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await.unwrap_err();
    let failure = Failure::from_sdk("GetCallerIdentity", dropped);
    assert_eq!(failure.category, Category::ServiceUnavailable, "a dropped connection is transient");

    let started = std::time::Instant::now();
    aws_sdk_cloudfront::Client::new(&sdk).list_distributions().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Bodies and answers pass through unchanged.
    let name = format!("proxy-{}", common::unique());
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let body = r#"{"type":"enable","note":"ümlaut & spaces"}"#;
    sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    let received = sqs.receive_message().queue_url(&url).send().await.unwrap();
    assert_eq!(received.messages()[0].body(), Some(body));

    let stats = proxy.stats();
    assert_eq!(stats.get("sqs:ListQueues").failed, 1);
    assert_eq!(stats.get("sts:GetCallerIdentity").dropped, 1);
    assert_eq!(stats.get("cloudfront:GET /2020-05-31/distribution").forwarded, 1);
    assert_eq!(stats.get("sqs:SendMessage").forwarded, 1);
    assert_eq!(stats.total().upstream_errors, 0);

    // Policies can change while the proxy runs.
    proxy.clear_policies();
    assert!(sqs.list_queues().send().await.is_ok());
}
