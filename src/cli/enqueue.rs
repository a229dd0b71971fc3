//! `enqueue`: send a job to the jobs queue exactly as the API would.

use serde_json::{Map, Value};

use super::{CliError, EnqueueArgs, EnqueueJob, JobArgs, queue_url_or_env};
use crate::aws::{load_sdk_config, sqs};
use crate::error::Failure;
use crate::job;

/// Sends the job and prints its message id.
///
/// # Errors
///
/// [`CliError::Usage`] for a job that would be rejected or no queue to send
/// to; [`CliError::Failed`] when SQS refuses the message.
pub async fn main(args: EnqueueArgs) -> Result<(), CliError> {
    let body = body(&args).map_err(CliError::Usage)?;
    let job = job::parse(&body)
        .map_err(|rejection| CliError::Usage(format!("the job would be rejected: {rejection}")))?;
    let queue_url = queue_url_or_env(args.queue_url)?;

    let client = aws_sdk_sqs::Client::new(&load_sdk_config().await);
    let mut request = client.send_message().queue_url(&queue_url).message_body(&body);
    if sqs::is_fifo(&queue_url) {
        request = request
            .message_group_id(job.account_id().as_str())
            .message_deduplication_id(format!("{:032x}", fastrand::u128(..)));
    }
    let output = request
        .send()
        .await
        .map_err(|e| CliError::Failed(Failure::from_sdk("SendMessage", e).detail))?;
    println!("{}", output.message_id().unwrap_or_default());
    Ok(())
}

/// The body to send: the file as it is, or a job built from the arguments.
fn body(args: &EnqueueArgs) -> Result<String, String> {
    match (&args.file, &args.job) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        (None, Some(EnqueueJob::Enable(job))) => Ok(build("enable", job)),
        (None, Some(EnqueueJob::Rescan(job))) => Ok(build("rescan", job)),
        (None, None) => Err("name a job (enable or rescan) or pass --file".to_owned()),
    }
}

fn build(kind: &str, args: &JobArgs) -> String {
    let mut body = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(name.to_owned(), value);
        }
    };
    put("type", Some(kind.into()));
    put("accountId", Some(args.account_id.clone().into()));
    put("externalId", Some(args.external_id.clone().into()));
    put("imsOrgId", Some(args.ims_org_id.clone().into()));
    put("distributionId", args.distribution_id.clone().map(Value::from));
    put("siteId", args.site_id.clone().map(Value::from));
    put("jobId", args.job_id.clone().map(Value::from));
    put("siteHost", args.site_host.clone().map(Value::from));
    put("maxDistributions", args.max_distributions.map(Value::from));
    Value::Object(body).to_string()
}
