//! A stand-in for the Lambda Runtime API, so the built binary can run its
//! real runtime loop on this machine: point `AWS_LAMBDA_RUNTIME_API` at
//! [`RuntimeApi::address`], queue events with [`RuntimeApi::push_event`] and
//! read the function's answers from the channel [`RuntimeApi::start`] hands
//! back.
//!
//! It also records when the first `/next` request arrived: the function asks
//! for its first event as soon as its init is done, so the time from process
//! start to that request is the cold-start init time Lambda would bill.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// How long each invocation may run, as the `Lambda-Runtime-Deadline-Ms`
/// header tells the function.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Sent as the invoked function's ARN.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:444455556666:function:cdn-log-delivery";

/// What the function posted back for an invocation.
#[derive(Debug)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response`, parsed as JSON when it is.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error` (or an init error, under the
    /// request id `init`), as text.
    Error(String),
}

#[derive(Default)]
struct State {
    events: Mutex<VecDeque<(String, String)>>,
    first_next: Mutex<Option<std::time::Instant>>,
    next_requests: Mutex<u32>,
    first_next_seen: Notify,
}

/// A running stand-in. Dropping it stops accepting connections.
pub struct RuntimeApi {
    address: String,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Listens on a free loopback port. Every answer the function posts
    /// arrives on the returned channel as (request id, answer).
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound; this is test support.
    pub async fn start() -> (Self, mpsc::UnboundedReceiver<(String, Answer)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("a local address").to_string();
        let state = Arc::new(State::default());
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let server = tokio::spawn(serve(listener, state.clone(), answers_tx));
        (Self { address, state, server }, answers)
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event; `/next` hands events out in order and holds the
    /// request open once they run out, as Lambda does between invocations.
    pub fn push_event(&self, request_id: impl Into<String>, event: impl Into<String>) {
        self.state
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((request_id.into(), event.into()));
    }

    /// When the first `/next` request arrived, if it has.
    pub fn first_next(&self) -> Option<std::time::Instant> {
        *self.state.first_next.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many `/next` requests arrived.
    pub fn next_requests(&self) -> u32 {
        *self.state.next_requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `patience` for the first `/next` request; its arrival
    /// time, or `None` when it did not come.
    pub async fn wait_first_next(&self, patience: Duration) -> Option<std::time::Instant> {
        let waited = tokio::time::timeout(patience, async {
            loop {
                // Registered before the check, so a request arriving in
                // between still wakes this waiter.
                let notified = self.state.first_next_seen.notified();
                if let Some(at) = self.first_next() {
                    return at;
                }
                notified.await;
            }
        });
        waited.await.ok()
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (state, answers) = (state.clone(), answers.clone());
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(request, state.clone(), answers.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/runtime/invocation/next") {
        let now = std::time::Instant::now();
        {
            let mut first = state.first_next.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(now);
            *state.next_requests.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        }
        state.first_next_seen.notify_waiters();

        let next = state.events.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some((request_id, event)) = next else {
            // Lambda holds `/next` open until there is work; so does this.
            std::future::pending::<()>().await;
            unreachable!("a pending future never completes");
        };
        return Ok(invocation(&request_id, event));
    }

    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let parts: Vec<_> = path.trim_matches('/').split('/').collect();
    let answer = match parts.as_slice() {
        [_, "runtime", "invocation", id, "response"] => (
            (*id).to_owned(),
            Answer::Response(serde_json::from_str(&text).unwrap_or(Value::String(text))),
        ),
        [_, "runtime", "invocation", id, "error"] => ((*id).to_owned(), Answer::Error(text)),
        _ => ("init".to_owned(), Answer::Error(format!("{path}: {text}"))),
    };
    let _ = answers.send(answer);
    let mut accepted = Response::new(Full::new(Bytes::new()));
    *accepted.status_mut() = hyper::StatusCode::ACCEPTED;
    Ok(accepted)
}

/// The answer to `/next`: the event and the headers the runtime client reads.
fn invocation(request_id: &str, event: String) -> Response<Full<Bytes>> {
    let deadline =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + INVOCATION_TIMEOUT;
    let mut response = Response::new(Full::new(Bytes::from(event)));
    let headers = response.headers_mut();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
        ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.to_owned()),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".to_owned()),
    ] {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
