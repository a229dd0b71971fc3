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
    /// Move only jobs of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub r#type: Option<JobType>,
    /// Move only jobs of this account.
    #[arg(long)]
    pub account_id: Option<String>,
}

/// A job type, as `replay --type` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobType {
    Enable,
    Rescan,
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

/// Why a command did not succeed, which decides its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments, input or configuration: nothing was sent (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The command ran and did not succeed (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// Parses the command line, runs the command and maps its error to an exit
/// code (1: failure, 2: bad usage or input).
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init_cli();
    let result = match cli.command {
        Command::Poll(args) => poll::main(args).await,
        Command::Enqueue(args) => enqueue::main(args).await,
        Command::Replay(args) => replay::main(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// The queue named on the command line, else JOBS_QUEUE_URL.
fn queue_url_or_env(flag: Option<String>) -> Result<String, CliError> {
    flag.or_else(|| std::env::var("JOBS_QUEUE_URL").ok().filter(|v| !v.trim().is_empty()))
        .ok_or_else(|| CliError::Usage("no queue: pass --queue-url or set JOBS_QUEUE_URL".into()))
}
