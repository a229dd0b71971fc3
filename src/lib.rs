//! Switches on CloudFront standard-log delivery from customer AWS accounts
//! into our cross-account CloudWatch Logs delivery destination.
//!
//! The worker takes jobs from an SQS queue, as a Lambda function or as a
//! long-lived poller, and publishes one outcome per job to an SNS topic.
//!
//! - [`config`]: the environment, parsed once.
//! - [`job`]: the job contract: parse, validate, unwrap envelopes.
//! - [`ids`] and [`names`]: validated identifiers and the resource names
//!   built from them.
//! - [`batch`]: SQS records to outcomes and batch item failures.
//! - [`enable`]: the idempotent enable sequence for one distribution.
//! - [`rescan`]: list an account's distributions and fan out enable jobs.
//! - [`inventory`]: an account's delivery sources and deliveries, listed once.
//! - [`limiter`]: the per-account pace of CloudWatch Logs calls.
//! - [`outcome`]: the outcome contract and its publisher; [`schema`]: both
//!   contracts as JSON Schema.
//! - [`error`]: error categories and the retry decision.
//! - [`metrics`]: one embedded-metric-format line per batch.
//! - [`aws`]: SDK configuration, the connector role, SQS helpers.
//! - [`cli`] and [`lambda`]: the entry points; [`logging`]: their log set-up.

pub mod aws;
pub mod batch;
pub mod cli;
pub mod config;
pub mod enable;
pub mod error;
pub mod ids;
pub mod inventory;
pub mod job;
pub mod lambda;
pub mod limiter;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod outcome;
pub mod rescan;
pub mod schema;
