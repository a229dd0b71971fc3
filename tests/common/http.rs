//! An HTTP client for the SDK that records which AWS operations were called
//! and can answer chosen ones with an AWS-shaped error instead of sending
//! them. Everything else goes to moto unchanged through the SDK's own
//! client.

use std::fmt;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Answer `operation` calls whose body contains `body_contains` with an error.
#[derive(Clone, Debug)]
pub struct Fault {
    pub operation: &'static str,
    pub body_contains: Option<String>,
    pub status: u16,
    pub code: &'static str,
}

#[derive(Default)]
struct State {
    calls: Vec<String>,
    faults: Vec<Fault>,
}

/// Shared by every client built from one SDK configuration.
#[derive(Clone, Default)]
pub struct Wire(Arc<Mutex<State>>);

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wire")
    }
}

impl Wire {
    /// The HTTP client to put in an `SdkConfig`.
    pub fn client(&self) -> SharedHttpClient {
        SharedHttpClient::new(WireClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            wire: self.clone(),
        })
    }

    pub fn inject(&self, fault: Fault) {
        self.0.lock().unwrap().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.0.lock().unwrap().faults.clear();
    }

    /// Operations called so far (attempts, so SDK retries count), in order.
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    pub fn reset_calls(&self) {
        self.0.lock().unwrap().calls.clear();
    }

    /// How many times `operation` was called.
    pub fn count(&self, operation: &str) -> usize {
        self.0.lock().unwrap().calls.iter().filter(|c| *c == operation).count()
    }

    fn on_request(&self, request: &HttpRequest) -> Option<HttpResponse> {
        let operation = operation_name(request);
        let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
        let mut state = self.0.lock().unwrap();
        state.calls.push(operation.clone());
        let fault = state.faults.iter().find(|f| {
            f.operation == operation
                && f.body_contains.as_deref().is_none_or(|needle| body.contains(needle))
        })?;
        Some(error_response(fault))
    }
}

#[derive(Debug)]
struct WireClient {
    inner: SharedHttpClient,
    wire: Wire,
}

impl HttpClient for WireClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(WireConnector {
            inner: self.inner.http_connector(settings, components),
            wire: self.wire.clone(),
        })
    }
}

#[derive(Debug)]
struct WireConnector {
    inner: SharedHttpConnector,
    wire: Wire,
}

impl HttpConnector for WireConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.wire.on_request(&request) {
            Some(response) => HttpConnectorFuture::ready(Ok(response)),
            None => self.inner.call(request),
        }
    }
}

/// The AWS operation of a request: from `X-Amz-Target` (JSON protocols),
/// `Action=` (query protocols) or the CloudFront REST path.
pub fn operation_name(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if let Some(body) = request.body().bytes().and_then(|b| std::str::from_utf8(b).ok())
        && let Some(action) = body.split('&').find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_owned();
    }
    let path = request.uri().split('?').next().unwrap_or_default();
    let path = path
        .split_once("://")
        .map_or(path, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let segments: Vec<_> = path.trim_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        ("GET", [_, "distribution"]) => "ListDistributions".into(),
        ("POST", [_, "distribution"]) => "CreateDistribution".into(),
        ("GET", [_, "distribution", _]) => "GetDistribution".into(),
        (method, _) => format!("{method} /{path}"),
    }
}

fn error_response(fault: &Fault) -> HttpResponse {
    let body = format!(r#"{{"__type":"{}","message":"injected by the test"}}"#, fault.code);
    let mut response =
        HttpResponse::new(StatusCode::try_from(fault.status).unwrap(), SdkBody::from(body));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
    response.headers_mut().insert("x-amzn-errortype", fault.code);
    response.headers_mut().insert("x-amzn-requestid", "injected-request-id");
    response
}
