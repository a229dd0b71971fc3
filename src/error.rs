//! Error categories and the one place that decides whether a failure is
//! worth retrying.
//!
//! Every AWS error is classified from its modeled error code (and the HTTP
//! status for unmodeled server errors), never from its message, which is
//! free text that may hold ARNs and account ids and never leaves this
//! process.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::Serialize;

/// The bounded set of error categories outcomes may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub enum Category {
    /// The job body broke the contract.
    InvalidJob,
    /// The connector role is missing, does not trust us, or lacks a permission.
    AccessDenied,
    /// AWS throttled a call even after the SDK's retries.
    Throttling,
    /// AWS answered 5xx, timed out or could not be reached; or the worker ran
    /// out of time before it could finish the job.
    ServiceUnavailable,
    /// Session credentials expired mid-job.
    ExpiredToken,
    /// The org's delivery destination does not exist in our account yet.
    DestinationNotProvisioned,
    /// The distribution already sends its access logs to another delivery
    /// source.
    DeliverySourceConflict,
    /// The distribution does not serve the job's `siteHost`.
    DomainMismatch,
    /// No such distribution in the customer's account.
    DistributionNotFound,
    /// AWS refused a request as invalid.
    ValidationError,
    /// A CloudWatch Logs resource quota is used up in the customer's account.
    ServiceQuotaExceeded,
    /// Anything else; a bug or an AWS answer nobody expected.
    Internal,
}

impl Category {
    /// Whether a later attempt may succeed without anybody changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, Category::Throttling | Category::ServiceUnavailable | Category::ExpiredToken)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidJob => "InvalidJob",
            Category::AccessDenied => "AccessDenied",
            Category::Throttling => "Throttling",
            Category::ServiceUnavailable => "ServiceUnavailable",
            Category::ExpiredToken => "ExpiredToken",
            Category::DestinationNotProvisioned => "DestinationNotProvisioned",
            Category::DeliverySourceConflict => "DeliverySourceConflict",
            Category::DomainMismatch => "DomainMismatch",
            Category::DistributionNotFound => "DistributionNotFound",
            Category::ValidationError => "ValidationError",
            Category::ServiceQuotaExceeded => "ServiceQuotaExceeded",
            Category::Internal => "Internal",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The category of an AWS error code, across the services the worker calls.
///
/// Codes that mean different things per operation (`ConflictException`,
/// `ResourceNotFoundException`) are `Internal` here: the caller that expects
/// them matches the modeled variant before falling back to this.
pub fn category_of_code(code: &str) -> Category {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "AuthorizationErrorException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationToken"
        | "IncompleteSignature"
        | "KMSAccessDenied"
        | "KMS.AccessDeniedException"
        | "RegionDisabledException" => Category::AccessDenied,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "Throttled"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "BandwidthLimitExceeded"
        | "EC2ThrottledException"
        | "KMSThrottling"
        | "KMS.ThrottlingException" => Category::Throttling,
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => Category::ExpiredToken,
        "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "InternalServerException"
        | "InternalServiceError"
        | "InternalServiceErrorException"
        | "InternalErrorException"
        | "OperationAbortedException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "IDPCommunicationError" => Category::ServiceUnavailable,
        "ValidationException"
        | "ValidationError"
        | "InvalidParameterException"
        | "InvalidParameterValue"
        | "InvalidParameterValueException"
        | "InvalidParameterCombination"
        | "InvalidArgument"
        | "InvalidInput"
        | "MissingParameter"
        | "MalformedQueryString"
        | "InvalidRequestException"
        | "InvalidOperationException"
        | "MalformedPolicyDocument"
        | "PackedPolicyTooLarge" => Category::ValidationError,
        "ServiceQuotaExceededException" | "LimitExceededException" | "LimitExceeded" => {
            Category::ServiceQuotaExceeded
        }
        "NoSuchDistribution" => Category::DistributionNotFound,
        _ => Category::Internal,
    }
}

/// A job step that did not succeed, with what the outcome may say about it
/// and what the logs need to act on it.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {category}")]
pub struct Failure {
    pub category: Category,
    pub retryable: bool,
    /// The AWS operation or worker step that failed, e.g. `CreateDelivery`.
    pub operation: &'static str,
    /// Safe text for the outcome: never a raw AWS message, an ARN of a role,
    /// credentials or the external id.
    pub detail: String,
    /// The AWS error code, for logs and metrics.
    pub code: Option<String>,
    /// The AWS request id, for support cases.
    pub request_id: Option<String>,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Failure {
    /// A failure the worker itself decided on.
    pub fn new(category: Category, operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            category,
            retryable: category.is_retryable(),
            operation,
            detail: detail.into(),
            code: None,
            request_id: None,
            source: None,
        }
    }

    /// The job could not finish before the invocation's deadline. Always
    /// retryable: nothing is wrong with the job.
    pub fn out_of_time(operation: &'static str) -> Self {
        Self::new(
            Category::ServiceUnavailable,
            operation,
            "the worker ran out of time before this job could finish",
        )
    }

    /// Classifies an SDK error from one AWS call.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = err.code().filter(|c| is_plain_code(c)).map(str::to_owned);
        let request_id = err.request_id().map(str::to_owned);
        let category = match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                match code.as_deref().map(category_of_code) {
                    Some(category) if category != Category::Internal => category,
                    _ if status >= 500 => Category::ServiceUnavailable,
                    _ if status == 429 => Category::Throttling,
                    _ if status == 403 => Category::AccessDenied,
                    _ => Category::Internal,
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Category::ServiceUnavailable,
            _ => Category::Internal,
        };
        let detail = match &code {
            Some(code) => format!("{operation} failed with {code}"),
            None => format!("{operation} failed ({category})"),
        };
        Self {
            category,
            retryable: category.is_retryable(),
            operation,
            detail,
            code,
            request_id,
            source: Some(Box::new(err)),
        }
    }

    /// Replaces the category, keeping the AWS context, for callers that
    /// know what an error means for their operation.
    pub fn recategorise(mut self, category: Category, detail: impl Into<String>) -> Self {
        self.category = category;
        self.retryable = category.is_retryable();
        self.detail = detail.into();
        self
    }
}

/// AWS error codes are short identifiers; anything else (an arbitrary
/// endpoint's answer) is not echoed.
pub(crate) fn is_plain_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::create_delivery::CreateDeliveryError;
    use aws_sdk_cloudwatchlogs::types::error::{
        AccessDeniedException, ConflictException, ResourceNotFoundException,
        ServiceUnavailableException, ThrottlingException, ValidationException,
    };
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from("{}"))
    }

    fn service_error(err: CreateDeliveryError, status: u16) -> Failure {
        Failure::from_sdk("CreateDelivery", SdkError::service_error(err, response(status)))
    }

    fn meta(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("arn:aws:iam::123456789012:role/Secret denied")
            .build()
    }

    #[test]
    fn modeled_logs_errors_map_to_categories() {
        let cases = [
            (
                CreateDeliveryError::AccessDeniedException(
                    AccessDeniedException::builder().meta(meta("AccessDeniedException")).build(),
                ),
                400,
                Category::AccessDenied,
                false,
            ),
            (
                CreateDeliveryError::ThrottlingException(
                    ThrottlingException::builder().meta(meta("ThrottlingException")).build(),
                ),
                400,
                Category::Throttling,
                true,
            ),
            (
                CreateDeliveryError::ServiceUnavailableException(
                    ServiceUnavailableException::builder()
                        .meta(meta("ServiceUnavailableException"))
                        .build(),
                ),
                503,
                Category::ServiceUnavailable,
                true,
            ),
            (
                CreateDeliveryError::ValidationException(
                    ValidationException::builder().meta(meta("ValidationException")).build(),
                ),
                400,
                Category::ValidationError,
                false,
            ),
            (
                CreateDeliveryError::ConflictException(
                    ConflictException::builder().meta(meta("ConflictException")).build(),
                ),
                400,
                Category::Internal,
                false,
            ),
            (
                CreateDeliveryError::ResourceNotFoundException(
                    ResourceNotFoundException::builder()
                        .meta(meta("ResourceNotFoundException"))
                        .build(),
                ),
                400,
                Category::Internal,
                false,
            ),
        ];
        for (err, status, category, retryable) in cases {
            let failure = service_error(err, status);
            assert_eq!(failure.category, category, "{:?}", failure.code);
            assert_eq!(failure.retryable, retryable, "{:?}", failure.code);
        }
    }

    #[test]
    fn an_unmodeled_5xx_is_service_unavailable() {
        let err = CreateDeliveryError::generic(ErrorMetadata::builder().code("Weird").build());
        assert_eq!(service_error(err, 502).category, Category::ServiceUnavailable);
        let err = CreateDeliveryError::generic(ErrorMetadata::builder().build());
        assert_eq!(service_error(err, 500).category, Category::ServiceUnavailable);
    }

    #[test]
    fn an_unmodeled_4xx_is_internal_and_permanent() {
        let err = CreateDeliveryError::generic(ErrorMetadata::builder().code("Weird").build());
        let failure = service_error(err, 400);
        assert_eq!(failure.category, Category::Internal);
        assert!(!failure.retryable);
    }

    #[test]
    fn expired_tokens_are_retryable() {
        let err = CreateDeliveryError::generic(
            ErrorMetadata::builder().code("ExpiredTokenException").build(),
        );
        let failure = service_error(err, 400);
        assert_eq!(failure.category, Category::ExpiredToken);
        assert!(failure.retryable);
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_retryable() {
        let timeout: SdkError<CreateDeliveryError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(
            Failure::from_sdk("CreateDelivery", timeout).category,
            Category::ServiceUnavailable
        );
        let failure: SdkError<CreateDeliveryError, HttpResponse> =
            SdkError::construction_failure("bug");
        assert_eq!(Failure::from_sdk("CreateDelivery", failure).category, Category::Internal);
    }

    #[test]
    fn the_detail_never_holds_the_aws_message() {
        let err = CreateDeliveryError::AccessDeniedException(
            AccessDeniedException::builder().meta(meta("AccessDeniedException")).build(),
        );
        let failure = service_error(err, 400);
        assert_eq!(failure.detail, "CreateDelivery failed with AccessDeniedException");
        assert!(!failure.detail.contains("arn:"));
    }

    #[test]
    fn odd_codes_are_not_echoed() {
        let err = CreateDeliveryError::generic(ErrorMetadata::builder().code("<script>").build());
        let failure = service_error(err, 400);
        assert_eq!(failure.code, None);
        assert_eq!(failure.detail, "CreateDelivery failed (Internal)");
    }

    #[test]
    fn codes_of_every_service_are_classified() {
        for (code, category) in [
            ("AccessDenied", Category::AccessDenied),
            ("AuthorizationError", Category::AccessDenied),
            ("Throttling", Category::Throttling),
            ("ThrottledException", Category::Throttling),
            ("RequestThrottled", Category::Throttling),
            ("ExpiredToken", Category::ExpiredToken),
            ("InternalError", Category::ServiceUnavailable),
            ("InvalidParameterValue", Category::ValidationError),
            ("ServiceQuotaExceededException", Category::ServiceQuotaExceeded),
            ("NoSuchDistribution", Category::DistributionNotFound),
            ("ConflictException", Category::Internal),
        ] {
            assert_eq!(category_of_code(code), category, "{code}");
        }
    }
}
