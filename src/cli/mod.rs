//! The command line, for running the worker outside Lambda and for operators.

pub mod enqueue;
pub mod poll;
pub mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Switches on CloudFront log delivery for customer accounts.
///
/// Inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set) the binary serves SQS
/// events instead. Configuration comes from the environment; see the README.
#[derive(Debug, Parser)]
#[command(name = "cdn-log-delivery", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive jobs from the jobs queue and run them, as the Lambda would.
    Poll(PollArgs),
    /// Send a job to the jobs queue as the API would; prints its message id.
    Enqueue(EnqueueArgs),
    /// Move dead-lettered jobs back to the jobs queue (send first, delete
    /// after); prints progress and a summary, exits 1 if any move failed.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The dead-letter queue to read.
    #[arg(long)]
    pub dlq_url: String,
    /// Where to send; defaults to JOBS_QUEUE_URL.
    #[arg(long)]
    pub to: Option<String>,
    /// Read and report what would move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Move at most this many messages.
    #[arg(long)]
    pub max: Option<u32>,
    /// Move only jobs of this type (enable or rescan).
    #[arg(long = "type", value_name = "TYPE")]
    pub r#type: Option<String>,
    /// Move only jobs of this account.
    #[arg(long)]
    pub account_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Queue to read; defaults to JOBS_QUEUE_URL.
    #[arg(long)]
    pub queue_url: Option<String>,
    /// Exit 0 once the queue holds nothing: no visible, in-flight or
    /// delayed message.
    #[arg(long)]
    pub drain: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EnqueueArgs {
    #[command(subcommand)]
    pub job: Option<EnqueueJob>,
    /// Send this file's body as it is (it is validated first).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Queue to send to; defaults to JOBS_QUEUE_URL.
    #[arg(long, global = true)]
    pub queue_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EnqueueJob {
    /// Switch on log delivery for one distribution.
    Enable(JobArgs),
    /// Switch it on for every distribution of the account.
    Rescan(JobArgs),
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[arg(long)]
    pub account_id: String,
    /// The connector role's external id. Prefer the EXTERNAL_ID variable:
    /// arguments show in the process list.
    #[arg(long, env = "EXTERNAL_ID", hide_env_values = true)]
    pub external_id: String,
    #[arg(long)]
    pub ims_org_id: String,
    /// Required for enable.
    #[arg(long)]
    pub distribution_id: Option<String>,
    #[arg(long)]
    pub site_id: Option<String>,
    #[arg(long)]
    pub job_id: Option<String>,
    /// Enable only: the distribution's aliases must contain this host.
    #[arg(long)]
    pub site_host: Option<String>,
    /// Rescan only: cap on distributions handled.
    #[arg(long)]
    pub max_distributions: Option<u32>,
}

/// Parses the command line and runs the command; maps errors to exit codes
/// (1: failure, 2: bad usage or input).
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init_cli();
    match cli.command {
        Command::Poll(args) => poll::main(args).await,
        Command::Enqueue(args) => enqueue::main(args).await,
        Command::Replay(args) => replay::main(args).await,
    }
}

/// The queue named on the command line, else JOBS_QUEUE_URL.
fn queue_url_or_env(flag: Option<String>) -> Result<String, String> {
    flag.or_else(|| std::env::var("JOBS_QUEUE_URL").ok().filter(|v| !v.trim().is_empty()))
        .ok_or_else(|| "no queue: pass --queue-url or set JOBS_QUEUE_URL".to_owned())
}
