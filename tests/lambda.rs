//! The Lambda entry point driven through the real runtime loop: the built
//! binary runs with `AWS_LAMBDA_RUNTIME_API` pointing at a stand-in of the
//! Lambda Runtime API served here, which hands it a sample event and reads
//! back its partial batch response. The worker talks to moto.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{Customer, EXTERNAL_ID, Stack, random_account};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the function posted back for an invocation.
#[derive(Debug)]
enum Answer {
    Response(Value),
    Error(String),
}

#[derive(Default)]
struct RuntimeApi {
    events: Mutex<VecDeque<(String, String)>>,
}

/// Serves `/runtime/invocation/next` from `events`, holding the request open
/// once they run out, and forwards every response or error to `answers`.
async fn serve_runtime_api(
    api: Arc<RuntimeApi>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (api, answers) = (api.clone(), answers.clone());
            tokio::spawn(async move {
                let service =
                    service_fn(move |request| handle(request, api.clone(), answers.clone()));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    address
}

async fn handle(
    request: Request<Incoming>,
    api: Arc<RuntimeApi>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/runtime/invocation/next") {
        let next = api.events.lock().unwrap().pop_front();
        let Some((request_id, event)) = next else {
            std::future::pending::<()>().await;
            unreachable!();
        };
        let deadline =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(30);
        let response = Response::builder()
            .header("lambda-runtime-aws-request-id", &request_id)
            .header("lambda-runtime-deadline-ms", deadline.as_millis().to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:444455556666:function:cdn-log-delivery",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(Bytes::from(event)))
            .unwrap();
        return Ok(response);
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
    Ok(Response::builder().status(202).body(Full::new(Bytes::new())).unwrap())
}

#[tokio::test]
async fn the_function_answers_a_fifo_batch_through_the_runtime_api() {
    let stack = Stack::new(5, 30).await;
    stack.customer.provision_destination().await;
    // The sample's two accounts become fresh ones, so reruns on one moto
    // server start clean. The first has the destination; the second not.
    let other = Customer::new(&stack.sdk, random_account()).await;
    let template = std::fs::read_to_string(format!(
        "{}/events/sqs-fifo-batch.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let event = template
        .replace("111122223333", &stack.customer.account_id)
        .replace("999988887777", &other.account_id)
        .replace("demo-external-id", EXTERNAL_ID);

    let api = Arc::new(RuntimeApi::default());
    api.events.lock().unwrap().push_back(("request-1".into(), event));
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let address = serve_runtime_api(api, answers_tx).await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdn-log-delivery"))
        .env_clear()
        .envs(stack.env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "cdn-log-delivery")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
        .env("AWS_ENDPOINT_URL", common::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain the pipes while the function runs, or a full pipe would stall it.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let collect = tokio::spawn(async move {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
        out + &err
    });

    let (request_id, answer) = tokio::time::timeout(Duration::from_secs(60), answers.recv())
        .await
        .expect("the function answered within 60 s")
        .expect("an answer");
    assert_eq!(request_id, "request-1");
    let response = match answer {
        Answer::Response(response) => response,
        Answer::Error(error) => panic!("the invocation failed: {error}"),
    };
    assert_eq!(response, json!({"batchItemFailures": []}));

    let mut outcomes = stack.outcomes(4).await;
    outcomes.sort_by_key(|o| o.str("messageId").unwrap().to_owned());
    let statuses: Vec<_> = outcomes.iter().map(|o| o.status().to_owned()).collect();
    assert_eq!(statuses, ["created", "created", "rejected", "failed"]);
    assert_eq!(outcomes[3].body["error"]["category"], json!("DestinationNotProvisioned"));
    assert_eq!(stack.peek(&stack.dead_letter_queue).await.len(), 1, "the bad body is in the DLQ");

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let logs = collect.await.unwrap();
    let json_lines: Vec<Value> =
        logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        json_lines.iter().any(|l| l["fields"]["message"] == "batch handled"),
        "one JSON summary line per batch: {logs}"
    );
    let leaked: Vec<_> = logs.lines().filter(|l| l.contains(EXTERNAL_ID)).collect();
    assert!(leaked.is_empty(), "the external id never reaches the logs: {leaked:#?}");
    let leaked: Vec<_> = logs.lines().filter(|l| l.contains("testing")).collect();
    assert!(leaked.is_empty(), "credentials never reach the logs: {leaked:#?}");
}
