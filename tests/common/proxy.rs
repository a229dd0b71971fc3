//! A reverse proxy in front of moto that behaves like AWS under load.
//!
//! moto answers every call at once and never throttles, so on its own it
//! cannot show whether the worker's pacing keeps a customer account under its
//! CloudWatch Logs quota, nor what a naive caller suffers. This proxy sits
//! between the SDK and moto, forwards every request unchanged and hands back
//! moto's answer, except where a [`Policy`] decides otherwise:
//!
//! - CloudWatch Logs operations (`X-Amz-Target: Logs_20140328.<Op>`) go
//!   through a token bucket per operation ([`LogsQuota`]); a call above the
//!   quota gets the throttling error AWS sends (HTTP 400,
//!   `ThrottlingException`), which the SDK classifies as a throttle and
//!   retries like the real thing.
//! - Policies added with [`Options::policy`] or [`Proxy::add_policy`] see
//!   every request first and can forward it, delay it, throttle it, fail it
//!   with any status and code, or drop the connection without an answer:
//!   the hooks fault-injection tests need.
//! - An optional fixed latency is added to every answer, since moto's
//!   loopback answers hide how much of a run real round trips would take.
//!
//! Every request is counted per operation ([`Stats`]), attempts included,
//! so SDK retries show up as the extra calls they are, and logged with its
//! timing ([`Proxy::calls`]), so a benchmark can tell the time moto itself
//! took from the time the caller spent.
//!
//! The proxy speaks plain HTTP/1.1 on both sides. moto closes its connection
//! after each answer, so every forwarded request opens its own upstream
//! connection; the client side keeps its connections alive.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The JSON protocol's operation header; its value is `<Service>.<Op>`.
const TARGET: &str = "x-amz-target";
/// CloudWatch Logs' `X-Amz-Target` prefix.
const LOGS_TARGET_PREFIX: &str = "Logs_20140328.";

/// Headers that describe one hop's connection, not the message: never
/// copied from one side to the other.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// A request rate: `per_second` calls on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

impl Quota {
    /// `per_second` calls per second with a burst of 1, the strictest shape
    /// a quota can take: any two calls closer than `1/per_second` collide.
    pub fn per_second(per_second: f64) -> Self {
        Self { per_second, burst: 1 }
    }

    pub fn with_burst(self, burst: u32) -> Self {
        Self { burst: burst.max(1), ..self }
    }
}

/// The classic token bucket: it holds at most `burst` tokens, gains
/// `per_second` of them per second, and a call is allowed when it can take
/// a whole token. Time comes from tokio's clock, so tests drive it with
/// paused time.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    quota: Quota,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// Tolerance for the float arithmetic of refills: a call exactly one
    /// interval after the previous must not be refused for a rounding error.
    const EPSILON: f64 = 1e-9;

    /// A full bucket: a first burst is always allowed.
    pub fn new(quota: Quota, now: Instant) -> Self {
        Self { quota, tokens: f64::from(quota.burst.max(1)), updated: now }
    }

    /// Takes a token if one is there. A refused call takes nothing, as with
    /// AWS, where throttled calls do not count against the quota.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens + Self::EPSILON >= 1.0 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// Tokens available at `now` (fractions included).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    fn refill(&mut self, now: Instant) {
        if now > self.updated {
            let gained = (now - self.updated).as_secs_f64() * self.quota.per_second;
            self.tokens = (self.tokens + gained).min(f64::from(self.quota.burst.max(1)));
            self.updated = now;
        }
    }
}

/// What the proxy knows about a request when deciding what to do with it.
#[derive(Debug)]
pub struct Call<'a> {
    /// The signing name of the service: `logs`, `sqs`, `sns`, `sts`,
    /// `cloudfront`, or `unknown`.
    pub service: &'a str,
    /// The key calls are counted under, e.g. `logs:CreateDelivery`,
    /// `sqs:ReceiveMessage`, `cloudfront:GET /2020-05-31/distribution/{id}`.
    pub operation: &'a str,
    pub method: &'a Method,
    /// Path and query, as sent.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send it to moto and return moto's answer.
    Forward,
    /// Answer with the service's throttling error without forwarding.
    Throttle,
    /// Answer with an AWS-shaped error of this status and code without
    /// forwarding.
    Fail { status: u16, code: String },
    /// Close the connection without answering, as a dying load balancer
    /// does; the SDK sees a dispatch failure.
    Drop,
    /// Wait, then forward.
    Delay(Duration),
}

/// Decides per request. The first policy that answers anything but
/// [`Action::Forward`] wins; the Logs quota is consulted last.
pub trait Policy: Send + Sync + 'static {
    fn decide(&self, call: &Call<'_>) -> Action;
}

impl<F> Policy for F
where
    F: Fn(&Call<'_>) -> Action + Send + Sync + 'static,
{
    fn decide(&self, call: &Call<'_>) -> Action {
        self(call)
    }
}

/// CloudWatch Logs' per-operation quota: one token bucket per operation,
/// as AWS meters each Logs API separately. AWS also keys its buckets by
/// account and region; these are not, since a benchmark or test drives one
/// customer account at a time.
#[derive(Debug)]
pub struct LogsQuota {
    quota: Quota,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl LogsQuota {
    pub fn new(quota: Quota) -> Self {
        Self { quota, buckets: Mutex::default() }
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }
}

impl Policy for LogsQuota {
    fn decide(&self, call: &Call<'_>) -> Action {
        if call.service != "logs" {
            return Action::Forward;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(call.operation.to_owned())
            .or_insert_with(|| TokenBucket::new(self.quota, now));
        if bucket.try_take(now) { Action::Forward } else { Action::Throttle }
    }
}

/// How a proxy is set up.
#[derive(Clone, Default)]
pub struct Options {
    /// Quota per CloudWatch Logs operation; `None` forwards every Logs call.
    pub logs_quota: Option<Quota>,
    /// Added before every answer, forwarded or not.
    pub latency: Duration,
    /// Consulted in order before the Logs quota.
    pub policies: Vec<Arc<dyn Policy>>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("logs_quota", &self.logs_quota)
            .field("latency", &self.latency)
            .field("policies", &self.policies.len())
            .finish()
    }
}

impl Options {
    pub fn logs_quota(mut self, quota: Quota) -> Self {
        self.logs_quota = Some(quota);
        self
    }

    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policies.push(Arc::new(policy));
        self
    }
}

/// Counts for one operation (or a sum over several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Requests that arrived, retries included.
    pub calls: u64,
    /// Sent to moto (delayed ones included).
    pub forwarded: u64,
    /// Answered with a throttling error.
    pub throttled: u64,
    /// Answered with an injected error.
    pub failed: u64,
    /// Connection closed without an answer.
    pub dropped: u64,
    /// Forwarded, but moto could not be reached or answered garbage; the
    /// caller got a 502.
    pub upstream_errors: u64,
    /// Time spent waiting on moto for the forwarded calls, summed: how much
    /// of a run the emulator itself took.
    pub upstream_time: Duration,
}

impl AddAssign for OperationStats {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.forwarded += other.forwarded;
        self.throttled += other.throttled;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.upstream_errors += other.upstream_errors;
        self.upstream_time += other.upstream_time;
    }
}

/// A snapshot of what the proxy saw since it started or was last reset.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub operations: BTreeMap<String, OperationStats>,
    /// When the first CloudWatch Logs request arrived.
    pub first_logs_call: Option<Instant>,
    /// When the last CloudWatch Logs answer went out.
    pub last_logs_answer: Option<Instant>,
}

impl Stats {
    /// Counts of one operation key; zero when never called.
    pub fn get(&self, operation: &str) -> OperationStats {
        self.operations.get(operation).copied().unwrap_or_default()
    }

    /// Counts summed over one service (`logs`, `sqs`, …).
    pub fn service(&self, service: &str) -> OperationStats {
        let prefix = format!("{service}:");
        let mut sum = OperationStats::default();
        for (_, stats) in self.operations.iter().filter(|(key, _)| key.starts_with(&prefix)) {
            sum += *stats;
        }
        sum
    }

    /// Counts summed over every CloudWatch Logs operation.
    pub fn logs(&self) -> OperationStats {
        self.service("logs")
    }

    /// Counts summed over everything.
    pub fn total(&self) -> OperationStats {
        let mut sum = OperationStats::default();
        for stats in self.operations.values() {
            sum += *stats;
        }
        sum
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<48} {:>6} {:>9} {:>9} {:>6} {:>9}",
            "operation", "calls", "forwarded", "throttled", "other", "moto ms"
        )?;
        for (operation, s) in &self.operations {
            writeln!(
                f,
                "{operation:<48} {:>6} {:>9} {:>9} {:>6} {:>9.0}",
                s.calls,
                s.forwarded,
                s.throttled,
                s.failed + s.dropped + s.upstream_errors,
                s.upstream_time.as_secs_f64() * 1000.0
            )?;
        }
        Ok(())
    }
}

/// How the proxy answered one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// moto answered with this status after `upstream_time`.
    Forwarded {
        status: u16,
        upstream_time: Duration,
    },
    Throttled,
    /// An injected error of this status.
    Failed {
        status: u16,
    },
    Dropped,
    UpstreamError,
}

/// One call as the proxy saw it, for tests and benchmarks that need the
/// order or timing of calls, not only their counts.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The operation key, as in [`Stats::operations`].
    pub operation: String,
    pub service: String,
    pub result: CallResult,
    pub arrived: Instant,
    /// When the answer went out (or the connection was dropped).
    pub answered: Instant,
}

struct Shared {
    /// `host:port` of moto.
    upstream: String,
    latency: Duration,
    policies: RwLock<Vec<Arc<dyn Policy>>>,
    logs_quota: RwLock<Option<Arc<LogsQuota>>>,
    stats: Mutex<Stats>,
    calls: Mutex<Vec<CallRecord>>,
}

impl Shared {
    fn decide(&self, call: &Call<'_>) -> Action {
        let policies = self.policies.read().unwrap_or_else(|p| p.into_inner()).clone();
        for policy in &policies {
            match policy.decide(call) {
                Action::Forward => continue,
                other => return other,
            }
        }
        let quota = self.logs_quota.read().unwrap_or_else(|p| p.into_inner()).clone();
        quota.map_or(Action::Forward, |quota| quota.decide(call))
    }

    fn count(&self, call: &Call<'_>, update: impl FnOnce(&mut OperationStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        if call.service == "logs" && stats.first_logs_call.is_none() {
            stats.first_logs_call = Some(Instant::now());
        }
        update(stats.operations.entry(call.operation.to_owned()).or_default());
    }

    /// Notes an answered (or dropped) call in the call log.
    fn record(&self, call: &Call<'_>, result: CallResult, arrived: Instant) {
        let answered = Instant::now();
        if call.service == "logs" {
            self.stats.lock().unwrap_or_else(|p| p.into_inner()).last_logs_answer = Some(answered);
        }
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(CallRecord {
            operation: call.operation.to_owned(),
            service: call.service.to_owned(),
            result,
            arrived,
            answered,
        });
    }
}

/// A running proxy. Dropping it stops accepting connections.
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://host:port`, as `MOTO_ENDPOINT` holds it).
    ///
    /// # Errors
    ///
    /// An upstream that is not a plain `http://host:port` URL, or a listener
    /// that cannot be bound.
    pub async fn start(upstream: &str, options: Options) -> std::io::Result<Self> {
        let authority = upstream
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the proxy forwards to http://host:port only, not {upstream:?}"),
                )
            })?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: authority.to_owned(),
            latency: options.latency,
            policies: RwLock::new(options.policies),
            logs_quota: RwLock::new(options.logs_quota.map(|q| Arc::new(LogsQuota::new(q)))),
            stats: Mutex::default(),
            calls: Mutex::default(),
        });
        let server = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { address, shared, server })
    }

    /// The endpoint to give the SDK (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What the proxy saw so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every call answered (or dropped) so far, in the order answered.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the counts and the call log, e.g. between the phases of a
    /// benchmark.
    pub fn reset_stats(&self) {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner()) = Stats::default();
        self.shared.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Replaces the Logs quota; its buckets start full. `None` lifts it.
    pub fn set_logs_quota(&self, quota: Option<Quota>) {
        *self.shared.logs_quota.write().unwrap_or_else(|p| p.into_inner()) =
            quota.map(|q| Arc::new(LogsQuota::new(q)));
    }

    /// Adds a policy, consulted before those already there.
    pub fn add_policy(&self, policy: impl Policy) {
        self.shared.policies.write().unwrap_or_else(|p| p.into_inner()).insert(0, Arc::new(policy));
    }

    /// Removes every policy (the Logs quota stays).
    pub fn clear_policies(&self) {
        self.shared.policies.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: back off, keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The error a service returns to make hyper close the connection without
/// an answer.
#[derive(Debug)]
struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by policy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let (service, operation) = classify(&parts.method, &path, &parts.headers, &body);
    let call = Call {
        service: &service,
        operation: &operation,
        method: &parts.method,
        path: &path,
        headers: &parts.headers,
        body: &body,
    };
    let action = shared.decide(&call);
    shared.count(&call, |s| s.calls += 1);

    let (response, result) = match action {
        Action::Forward | Action::Delay(_) => {
            if let Action::Delay(delay) = action {
                tokio::time::sleep(delay).await;
            }
            let sent = Instant::now();
            let forwarded = forward(&shared.upstream, &parts, &path, body.clone()).await;
            let upstream_time = sent.elapsed();
            match forwarded {
                Ok(response) => {
                    shared.count(&call, |s| {
                        s.forwarded += 1;
                        s.upstream_time += upstream_time;
                    });
                    let status = response.status().as_u16();
                    (response, CallResult::Forwarded { status, upstream_time })
                }
                Err(e) => {
                    shared.count(&call, |s| {
                        s.forwarded += 1;
                        s.upstream_errors += 1;
                    });
                    let text = format!("proxy: upstream failed: {e}");
                    (plain(StatusCode::BAD_GATEWAY, text), CallResult::UpstreamError)
                }
            }
        }
        Action::Throttle => {
            shared.count(&call, |s| s.throttled += 1);
            (throttling_error(&call), CallResult::Throttled)
        }
        Action::Fail { status, ref code } => {
            shared.count(&call, |s| s.failed += 1);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response = aws_error(&call, status, code, "injected by the test proxy");
            (response, CallResult::Failed { status: status.as_u16() })
        }
        Action::Drop => {
            shared.count(&call, |s| s.dropped += 1);
            shared.record(&call, CallResult::Dropped, arrived);
            return Err(Box::new(Dropped));
        }
    };
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    shared.record(&call, result, arrived);
    Ok(response)
}

/// Sends the request to moto on a connection of its own and reads the whole
/// answer.
async fn forward(
    upstream: &str,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);

    let mut request = Request::builder().method(parts.method.clone()).uri(path);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            request = request.header(name, value);
        }
    }
    let answer = sender.send_request(request.body(Full::new(body))?).await?;
    let (answer, answer_body) = answer.into_parts();
    let answer_body = answer_body.collect().await?.to_bytes();
    drop(sender);
    // moto closes the connection after its answer; the driver ends with it.
    driver.abort();

    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        if !is_hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Full::new(answer_body))?)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// The service and operation key of a request.
///
/// The service is the SigV4 signing name from the `Authorization` header's
/// credential scope, falling back to the `X-Amz-Target` prefix. The
/// operation comes from `X-Amz-Target` (JSON protocols: Logs, SQS), the
/// `Action` parameter (query protocols: SNS, STS) or, for REST services
/// (CloudFront), the method and the path with identifiers replaced by
/// `{id}`.
pub fn classify(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let target = headers.get(TARGET).and_then(|v| v.to_str().ok());
    let service = signing_name(headers)
        .or_else(|| match target {
            Some(t) if t.starts_with(LOGS_TARGET_PREFIX) => Some("logs".to_owned()),
            Some(t) if t.starts_with("AmazonSQS.") => Some("sqs".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "unknown".to_owned());

    let operation = if let Some(target) = target {
        target.rsplit('.').next().unwrap_or(target).to_owned()
    } else if let Some(action) = form_action(body)
        .or_else(|| path.split_once('?').and_then(|(_, query)| form_action(query.as_bytes())))
    {
        action
    } else {
        format!("{method} {}", path_shape(path))
    };
    let key = format!("{service}:{operation}");
    (service, key)
}

/// `s3` in `Credential=AKID/20240101/us-east-1/s3/aws4_request`.
fn signing_name(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let parts: Vec<_> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, _, service, "aws4_request"] if !service.is_empty() => Some((*service).to_owned()),
        _ => None,
    }
}

/// The `Action` of a form-encoded query-protocol request.
fn form_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .filter(|action| !action.is_empty() && action.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
}

/// The path without its query, with identifier-looking segments (mostly
/// digits or upper-case, such as distribution ids) replaced by `{id}`, so
/// calls on different resources count as one operation.
fn path_shape(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|segment| {
            let is_version = segment.len() == 10
                && segment
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
            let upper_or_digits =
                segment.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            let hex_or_dashes = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            let looks_like_id = segment.len() >= 8 && (upper_or_digits || hex_or_dashes);
            if looks_like_id && !is_version { "{id}" } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request id in AWS's shape.
fn request_id() -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u64(..1 << 48)
    )
}

/// Whether the call uses a JSON protocol (Logs, SQS) rather than the query
/// or REST-XML ones, which answer errors in XML.
fn is_json(call: &Call<'_>) -> bool {
    call.headers.contains_key(TARGET)
}

/// What the service sends when a call is over its quota.
fn throttling_error(call: &Call<'_>) -> Response<Full<Bytes>> {
    let code = if is_json(call) { "ThrottlingException" } else { "Throttling" };
    aws_error(call, StatusCode::BAD_REQUEST, code, "Rate exceeded")
}

/// An error in the shape of the call's protocol, so the SDK parses and
/// classifies it as it would AWS's own.
fn aws_error(
    call: &Call<'_>,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let request_id = request_id();
    let (content_type, body) = if is_json(call) {
        // Mirror the request's JSON flavour (Logs 1.1, SQS 1.0).
        let content_type = call
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.starts_with("application/x-amz-json"))
            .unwrap_or("application/x-amz-json-1.1")
            .to_owned();
        let body = serde_json::json!({ "__type": code, "message": message }).to_string();
        (content_type, body)
    } else {
        let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>{request_id}</RequestId>\
             </ErrorResponse>"
        );
        ("text/xml".to_owned(), body)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", value);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
