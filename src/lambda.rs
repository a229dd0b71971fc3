//! The Lambda entry point: one SQS event in, one partial batch response out.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use tokio::time::Instant;
use tracing::{Instrument, error, info_span};

use crate::aws::load_sdk_config;
use crate::batch::Worker;
use crate::config::Config;
use crate::metrics;

/// Serves SQS events until the runtime shuts the process down.
///
/// Logs follow `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` (see
/// [`crate::logging`]).
pub async fn main() -> ExitCode {
    crate::logging::init_lambda();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            error!(error = %e, "configuration refused");
            return ExitCode::FAILURE;
        }
    };
    let worker = Arc::new(Worker::new(config, &load_sdk_config().await));
    let handler = service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move { handle(&worker, event).await }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// Handles one invocation. The deadline is the invocation's, so records that
/// cannot finish in time are handed back instead of timing out the batch.
///
/// # Errors
///
/// Only when the batch cannot be answered record by record; Lambda then
/// retries every record.
pub async fn handle(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let remaining = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
    let deadline = Instant::now() + remaining;
    let span = info_span!("invocation", request_id = %event.context.request_id, records = event.payload.records.len());
    let records = event.payload.records.len();
    let report = worker.handle_batch(&event.payload.records, deadline).instrument(span).await?;

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let line =
        metrics::batch_line(&report, records, &event.context.env_config.function_name, now_ms);
    // EMF documents go to stdout as lines of their own; CloudWatch extracts
    // the metrics from the function's log stream.
    println!("{line}");
    Ok(report.to_response())
}
