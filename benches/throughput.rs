//! Rate-limit fidelity, call counts and per-message cost of the worker,
//! measured against moto behind a throttling proxy.
//!
//! `cargo bench --bench throughput -- [--quick] [--n N] [--full]`, or
//! `./scripts/bench [--quick] …`, which installs moto and builds the release
//! binary first. The benchmark starts its own moto server and puts
//! `tests/common/proxy.rs` in front of it, enforcing a CloudWatch Logs quota
//! of 10 calls per second per operation (burst 1), then measures:
//!
//! 1. the first rescan of N new distributions by the real worker
//!    (`cdn-log-delivery poll --drain`, release build, paced at 8/s):
//!    wall time against the ideal, throttles, Logs calls per distribution,
//!    and that every distribution ends with exactly one delivery;
//! 2. the old synchronous API's strategy on another account of N
//!    distributions: groups of 5 concurrent enables, no limiter, SDK retries;
//! 3. a steady-state rescan of the N now-enabled distributions: Logs calls;
//! 4. the worker process's CPU per message and peak RSS (from `wait4`), and
//!    the Lambda init time (process start to the first Runtime API `/next`).
//!
//! moto's SQS scans the whole queue on every call, so N stays in the
//! hundreds by default (`--full`: 1000).

#[path = "../tests/common/customer.rs"]
#[allow(dead_code)]
mod customer;
#[path = "../tests/common/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "../tests/common/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;

use std::collections::HashMap;
use std::fs::File;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sqs::types::QueueAttributeName;
use cdn_log_delivery::aws::connector::ConnectorRoles;
use cdn_log_delivery::config::{Config, DEFAULT_CONNECTOR_ROLE_NAME};
use cdn_log_delivery::enable::{Known, enable};
use cdn_log_delivery::error::Failure;
use cdn_log_delivery::ids::{AccountId, DistributionId, ExternalId, ImsOrgId};
use cdn_log_delivery::job::EnableJob;
use cdn_log_delivery::limiter::{AccountLimiter, Pace};
use customer::{Customer, create_queue, queue_arn};
use futures::StreamExt;
use proxy::{CallResult, Options, Proxy, Quota, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The CloudWatch Logs quota the proxy enforces, per operation.
const QUOTA_PER_SECOND: f64 = 10.0;
/// The worker's pace (`CLOUDWATCH_LOGS_TPS`), below the quota.
const PACE_PER_SECOND: u32 = 8;
/// The old synchronous API enabled this many distributions at once.
const NAIVE_GROUP: usize = 5;
/// Must match the jobs queue's redrive policy.
const MAX_RECEIVE_COUNT: u32 = 5;
/// The jobs queue's visibility timeout, seconds, as `infra/template.yaml`
/// deploys it. It is `poll`'s deadline for a batch: with less, a rescan of
/// 1000 distributions cannot finish its fan-out into moto's FIFO queue,
/// whose cost grows with the square of the jobs sent.
const VISIBILITY_TIMEOUT: &str = "360";
/// Sequential calls timed to find what one SDK call costs in CPU.
const CALIBRATION_CALLS: u32 = 200;

const ORG: &str = "8C6043F15F43B6390A49401A@AdobeOrg";
const EXTERNAL_ID: &str = "bench-external-id";
const PACED_ACCOUNT: &str = "111100000001";
const NAIVE_ACCOUNT: &str = "111100000002";

/// Targets the figures are reported against.
const TARGET_EFFICIENCY: f64 = 0.9;
const TARGET_CALLS_PER_NEW: f64 = 2.05;
const TARGET_CPU_PER_MESSAGE: Duration = Duration::from_millis(1);
const TARGET_RSS_MIB: f64 = 40.0;
const TARGET_INIT: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Args {
    n: usize,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut quick = false;
    let mut full = false;
    let mut n = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--full" => full = true,
            "--n" => {
                let value = args.next().ok_or("--n needs a number")?;
                n = Some(value.parse().map_err(|_| format!("--n {value}: not a number"))?);
            }
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => match other.strip_prefix("--n=") {
                Some(value) => {
                    n = Some(value.parse().map_err(|_| format!("{other}: not a number"))?)
                }
                None => {
                    return Err(format!(
                        "unknown argument {other}; usage: throughput [--quick] [--n N] [--full]"
                    ));
                }
            },
        }
    }
    let n = n.unwrap_or(if full {
        1000
    } else if quick {
        50
    } else {
        200
    });
    if n == 0 {
        return Err("--n must be at least 1".into());
    }
    Ok(Args { n, quick })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let worker = match worker_binary(root) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let moto = match Moto::start(root).await {
        Ok(moto) => moto,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let report = run(&args, &worker, &moto).await;
    report.print(&args);
    if report.correct() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Everything measured, for the table.
#[derive(Debug, Default)]
struct Report {
    n: usize,
    paced: Option<PacedRun>,
    naive: Option<NaiveRun>,
    steady: Option<SteadyRun>,
    init: Vec<InitRun>,
    /// CPU one SDK call costs the calling process on this machine.
    sdk_call_cpu: Option<Duration>,
    /// Correctness problems (not missed targets), printed and failing the run.
    problems: Vec<String>,
}

#[derive(Debug)]
struct PacedRun {
    process: ProcessRun,
    /// Process start to the last CloudWatch Logs answer: the work, without
    /// `--drain`'s final wait for an empty queue.
    work_wall: Duration,
    /// Process start to the first CloudWatch Logs call.
    to_first_logs_call: Duration,
    /// Time moto's SQS took to answer the worker's calls before the last
    /// Logs answer. moto scans the whole queue on each call, so this grows
    /// with N where real SQS answers in milliseconds.
    moto_sqs_time: Duration,
    stats: Stats,
    enabled_once: usize,
}

#[derive(Debug)]
struct NaiveRun {
    wall: Duration,
    stats: Stats,
    failed: usize,
    failure_codes: HashMap<String, usize>,
    enabled_once: usize,
}

#[derive(Debug)]
struct SteadyRun {
    process: ProcessRun,
    stats: Stats,
}

async fn run(args: &Args, worker: &Path, moto: &Moto) -> Report {
    let mut report = Report { n: args.n, ..Report::default() };
    let options = Options::default().logs_quota(Quota::per_second(QUOTA_PER_SECOND));
    let proxy = Proxy::start(&moto.endpoint, options).await.expect("the proxy starts");
    let admin = sdk_config(&moto.endpoint, 3);
    let sqs = aws_sdk_sqs::Client::new(&admin);
    let stack = Stack::create(&admin).await;

    eprintln!("==> seeding {} distributions in each of two accounts", args.n);
    let paced = Account::seed(&admin, PACED_ACCOUNT, args.n).await;
    let naive = Account::seed(&admin, NAIVE_ACCOUNT, args.n).await;

    // 1. First rescan, paced below the quota, by the real worker process.
    eprintln!(
        "==> first rescan of {} new distributions: worker paced at {PACE_PER_SECOND}/s, \
         quota {QUOTA_PER_SECOND}/s per Logs operation",
        args.n
    );
    stack.send_rescan(&sqs, PACED_ACCOUNT, "bench-first-rescan").await;
    proxy.reset_stats();
    let patience = Duration::from_secs_f64(4.0 * args.n as f64 / f64::from(PACE_PER_SECOND))
        + Duration::from_secs(120);
    let env = stack.worker_env(&proxy, PACED_ACCOUNT);
    let process = run_worker(worker, env, patience, "first").await;
    let stats = proxy.stats();
    let since_start = |at: Option<tokio::time::Instant>| {
        at.map(|at| at.into_std().saturating_duration_since(process.started))
    };
    let work_wall = since_start(stats.last_logs_answer).unwrap_or(process.wall);
    let to_first_logs_call = since_start(stats.first_logs_call).unwrap_or_default();
    let moto_sqs_time = proxy
        .calls()
        .iter()
        .filter(|call| call.service == "sqs")
        .filter(|call| stats.last_logs_answer.is_some_and(|last| call.answered <= last))
        .filter_map(|call| match call.result {
            CallResult::Forwarded { upstream_time, .. } => Some(upstream_time),
            _ => None,
        })
        .sum();
    let enabled_once = paced.enabled_once(args.n).await;
    report.check_process("first rescan", &process);
    report.check_queues(&stack, &sqs, "first rescan").await;
    if enabled_once != args.n {
        report.problems.push(format!(
            "first rescan: {enabled_once} of {} distributions have exactly one delivery",
            args.n
        ));
    }
    report.paced = Some(PacedRun {
        process,
        work_wall,
        to_first_logs_call,
        moto_sqs_time,
        stats,
        enabled_once,
    });

    // 2. The old strategy on the other account.
    eprintln!("==> naive: groups of {NAIVE_GROUP} concurrent enables, no limiter, SDK retries");
    proxy.reset_stats();
    // A fresh quota, so the naive run does not inherit the first run's buckets.
    proxy.set_logs_quota(Some(Quota::per_second(QUOTA_PER_SECOND)));
    report.naive = Some(run_naive(&proxy, &naive).await);

    // 3. Steady state: everything is enabled; only listings should be paid.
    eprintln!("==> steady-state rescan of {} enabled distributions", args.n);
    stack.send_rescan(&sqs, PACED_ACCOUNT, "bench-steady-rescan").await;
    proxy.reset_stats();
    let env = stack.worker_env(&proxy, PACED_ACCOUNT);
    let process = run_worker(worker, env, Duration::from_secs(120), "steady").await;
    report.check_process("steady-state rescan", &process);
    report.check_queues(&stack, &sqs, "steady-state rescan").await;
    report.steady = Some(SteadyRun { process, stats: proxy.stats() });

    // 4. What one SDK call costs here, to read the per-message CPU against.
    eprintln!("==> CPU of one SDK call, {CALIBRATION_CALLS} sequential calls");
    report.sdk_call_cpu = Some(sdk_call_cpu(&admin, &stack.jobs).await);

    // 5. Lambda init time.
    let starts = if args.quick { 3 } else { 5 };
    eprintln!("==> Lambda init time, {starts} starts");
    for _ in 0..starts {
        match lambda_init(worker, &stack, &proxy).await {
            Ok(init) => report.init.push(init),
            Err(message) => report.problems.push(message),
        }
    }
    report
}

impl Report {
    fn check_process(&mut self, what: &str, process: &ProcessRun) {
        if !process.succeeded {
            self.problems.push(format!(
                "{what}: the worker {}; its log: {}",
                process.status,
                process.log.display()
            ));
        }
    }

    async fn check_queues(&mut self, stack: &Stack, sqs: &aws_sdk_sqs::Client, what: &str) {
        for (name, url) in [("jobs queue", &stack.jobs), ("dead-letter queue", &stack.dlq)] {
            let depth = depth(sqs, url).await;
            if depth != 0 {
                self.problems.push(format!("{what}: {depth} messages left in the {name}"));
            }
        }
    }

    fn correct(&self) -> bool {
        self.problems.is_empty()
    }

    /// Messages the first-rescan worker handled: the rescan and N enables.
    fn messages(&self) -> u32 {
        self.n as u32 + 1
    }

    fn ideal(&self) -> Option<Duration> {
        let paced = self.paced.as_ref()?;
        Some(Duration::from_secs_f64(paced.stats.logs().calls as f64 / f64::from(PACE_PER_SECOND)))
    }

    fn efficiency(&self) -> Option<f64> {
        Some(self.ideal()?.as_secs_f64() / self.paced.as_ref()?.work_wall.as_secs_f64())
    }

    /// Efficiency with the time moto's SQS took taken out of the wall: the
    /// limiter's own fidelity, as it would show against real SQS.
    fn efficiency_without_moto_sqs(&self) -> Option<f64> {
        let paced = self.paced.as_ref()?;
        let wall = paced.work_wall.saturating_sub(paced.moto_sqs_time);
        Some(self.ideal()?.as_secs_f64() / wall.as_secs_f64())
    }

    fn cpu_per_message(&self) -> Option<Duration> {
        Some(self.paced.as_ref()?.process.cpu / self.messages())
    }

    fn mean_init(&self) -> Option<InitRun> {
        let count = u32::try_from(self.init.len()).ok().filter(|n| *n > 0)?;
        Some(InitRun {
            time: self.init.iter().map(|i| i.time).sum::<Duration>() / count,
            cpu: self.init.iter().map(|i| i.cpu).sum::<Duration>() / count,
        })
    }

    fn print(&self, args: &Args) {
        let n = self.n;
        let mode = if args.quick { " (--quick)" } else { "" };
        println!();
        println!(
            "throughput: N = {n}{mode}; proxy quota {QUOTA_PER_SECOND}/s per CloudWatch Logs \
             operation, burst 1; worker paced at {PACE_PER_SECOND}/s"
        );
        println!();
        println!(
            "| scenario | wall | Logs calls | throttles | Logs calls / dist. | \
             exactly one delivery | notes |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|");
        if let (Some(paced), Some(ideal), Some(efficiency), Some(net)) =
            (&self.paced, self.ideal(), self.efficiency(), self.efficiency_without_moto_sqs())
        {
            let logs = paced.stats.logs();
            println!(
                "| first rescan, paced {PACE_PER_SECOND}/s (worker process) | {} | {} | {} | \
                 {:.3} | {}/{n} | ideal {} → efficiency {efficiency:.3}; {} of the wall waiting \
                 on moto's SQS (efficiency {net:.3} without it); first Logs call at {}; \
                 process exit at {} (`--drain` tail) |",
                secs(paced.work_wall),
                logs.calls,
                logs.throttled,
                logs.calls as f64 / n as f64,
                paced.enabled_once,
                secs(ideal),
                secs(paced.moto_sqs_time),
                secs(paced.to_first_logs_call),
                secs(paced.process.wall),
            )
        }
        if let (Some(naive), Some(paced)) = (&self.naive, &self.paced) {
            let logs = naive.stats.logs();
            let mut codes: Vec<_> = naive
                .failure_codes
                .iter()
                .map(|(code, count)| format!("{count}× {code}"))
                .collect();
            codes.sort();
            println!(
                "| naive: groups of {NAIVE_GROUP}, no limiter, SDK retries (in-process) | {} | \
                 {} | {} | {:.3} | {}/{n} | {:.2}× the paced wall; {} failed to enable{} |",
                secs(naive.wall),
                logs.calls,
                logs.throttled,
                logs.calls as f64 / n as f64,
                naive.enabled_once,
                naive.wall.as_secs_f64() / paced.work_wall.as_secs_f64(),
                naive.failed,
                if codes.is_empty() { String::new() } else { format!(" ({})", codes.join(", ")) },
            )
        }
        if let Some(steady) = &self.steady {
            let logs = steady.stats.logs();
            println!(
                "| steady-state rescan (worker process) | {} | {} | {} | {:.3} | – | \
                 {} enable jobs fanned out; CPU {:.1} ms; peak RSS {:.1} MiB |",
                secs(steady.process.wall),
                logs.calls,
                logs.throttled,
                logs.calls as f64 / n as f64,
                steady.stats.get("sqs:SendMessageBatch").calls,
                ms(steady.process.cpu),
                steady.process.max_rss_mib(),
            )
        }
        if let (Some(paced), Some(per_message)) = (&self.paced, self.cpu_per_message()) {
            let start_up = self.mean_init().map_or(Duration::ZERO, |i| i.cpu);
            let marginal = paced.process.cpu.saturating_sub(start_up) / self.messages();
            let requests = paced.stats.total().calls as f64 / f64::from(self.messages());
            let calibration = self.sdk_call_cpu.map_or(String::new(), |cpu| {
                format!("; one SDK call alone costs {:.3} ms CPU on this machine", ms(cpu))
            });
            println!(
                "| per message (first-rescan worker process) | – | – | – | – | – | CPU {:.1} ms \
                 over {} messages = {:.3} ms each ({:.3} ms without the {:.1} ms start-up); \
                 {requests:.2} AWS requests per message{calibration}; peak RSS {:.1} MiB |",
                ms(paced.process.cpu),
                self.messages(),
                ms(per_message),
                ms(marginal),
                ms(start_up),
                paced.process.max_rss_mib(),
            )
        }
        if let Some(mean) = self.mean_init() {
            let list: Vec<_> = self.init.iter().map(|i| format!("{:.1}", ms(i.time))).collect();
            println!(
                "| Lambda init (process start → first `/next`) | – | – | – | – | – | \
                 mean {:.1} ms over {} starts ({} ms); CPU {:.1} ms |",
                ms(mean.time),
                self.init.len(),
                list.join(", "),
                ms(mean.cpu),
            )
        }

        println!();
        println!("| target | measured | required | met |");
        println!("|---|---:|---:|---|");
        for (name, measured, required, met) in self.targets() {
            println!("| {name} | {measured} | {required} | {} |", if met { "yes" } else { "NO" });
        }

        for (title, stats) in [
            ("first rescan", self.paced.as_ref().map(|p| &p.stats)),
            ("naive run", self.naive.as_ref().map(|p| &p.stats)),
            ("steady-state rescan", self.steady.as_ref().map(|p| &p.stats)),
        ] {
            if let Some(stats) = stats {
                println!();
                println!("Calls at the proxy during the {title}:");
                print!("{stats}");
            }
        }
        if !self.problems.is_empty() {
            println!();
            for problem in &self.problems {
                println!("PROBLEM: {problem}");
            }
        }
    }

    /// (target, measured, required, met) for each target.
    fn targets(&self) -> Vec<(String, String, String, bool)> {
        let n = self.n;
        let mut rows = Vec::new();
        if let (Some(paced), Some(efficiency)) = (&self.paced, self.efficiency()) {
            rows.push((
                "efficiency of the paced first rescan (ideal ÷ wall)".into(),
                format!("{efficiency:.3}"),
                format!("≥ {TARGET_EFFICIENCY}"),
                efficiency >= TARGET_EFFICIENCY,
            ));
            let throttles = paced.stats.logs().throttled;
            rows.push((
                "throttles when paced below the quota".into(),
                throttles.to_string(),
                "0".into(),
                throttles == 0,
            ));
            let per_new = paced.stats.logs().calls as f64 / n as f64;
            rows.push((
                "Logs calls per new distribution (listing included)".into(),
                format!("{per_new:.3}"),
                format!("≤ {TARGET_CALLS_PER_NEW}"),
                per_new <= TARGET_CALLS_PER_NEW,
            ));
        }
        if let Some(steady) = &self.steady {
            let calls = steady.stats.logs().calls;
            let bound = n.div_ceil(50) as u64 * 2 + 2;
            rows.push((
                "Logs calls of a steady-state rescan".into(),
                calls.to_string(),
                format!("≤ {bound}"),
                calls <= bound,
            ));
        }
        if let (Some(paced), Some(cpu)) = (&self.paced, self.cpu_per_message()) {
            rows.push((
                "CPU per message, outside waiting (total ÷ messages)".into(),
                format!("{:.3} ms", ms(cpu)),
                format!("≤ {} ms", ms(TARGET_CPU_PER_MESSAGE)),
                cpu <= TARGET_CPU_PER_MESSAGE,
            ));
            let rss = paced.process.max_rss_mib();
            rows.push((
                "peak RSS of the worker".into(),
                format!("{rss:.1} MiB"),
                format!("≤ {TARGET_RSS_MIB} MiB"),
                rss <= TARGET_RSS_MIB,
            ));
        }
        if let Some(mean) = self.mean_init() {
            rows.push((
                "Lambda init time".into(),
                format!("{:.1} ms", ms(mean.time)),
                format!("≤ {} ms", ms(TARGET_INIT)),
                mean.time <= TARGET_INIT,
            ));
        }
        rows
    }
}

/// The CPU this process spends per SDK call (GetQueueAttributes straight to
/// moto, one after the other): the floor under the worker's per-message
/// cost, since every message costs a few such calls.
async fn sdk_call_cpu(admin: &SdkConfig, queue: &str) -> Duration {
    let sqs = aws_sdk_sqs::Client::new(admin);
    let call = || {
        sqs.get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
    };
    // Connections, credentials and endpoint caches are warm afterwards.
    for _ in 0..10 {
        call().await.expect("GetQueueAttributes");
    }
    let before = own_cpu();
    for _ in 0..CALIBRATION_CALLS {
        call().await.expect("GetQueueAttributes");
    }
    own_cpu().saturating_sub(before) / CALIBRATION_CALLS
}

/// User plus system CPU of this process so far.
fn own_cpu() -> Duration {
    // SAFETY: rusage is plain old data, for which zeroes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The release binary: the one cargo built for this benchmark, else the one
/// under `CARGO_TARGET_DIR` (or `target/`), as `scripts/bench` builds it.
fn worker_binary(root: &Path) -> Result<PathBuf, String> {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_cdn-log-delivery"));
    if built.is_file() {
        return Ok(built);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let release = target.join("release").join("cdn-log-delivery");
    if release.is_file() {
        Ok(release)
    } else {
        Err(format!(
            "the worker binary is missing ({} and {}): run ./scripts/bench, which builds it \
             with `cargo build --release --bin cdn-log-delivery`",
            built.display(),
            release.display()
        ))
    }
}

/// A moto server of our own on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    async fn start(root: &Path) -> Result<Self, String> {
        let server = root.join(".venv/bin/moto_server");
        if !server.is_file() {
            return Err(format!(
                "{} is missing: run ./scripts/bench, which installs moto into .venv \
                 (scripts/lib.sh ensure_venv) before running this benchmark",
                server.display()
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let log = std::env::temp_dir().join(format!("cdn-log-delivery-bench-moto-{port}.log"));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{}: {e}", server.display()))?;
        let mut moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let give_up = Instant::now() + Duration::from_secs(30);
        while Instant::now() < give_up {
            if answers(port).await {
                eprintln!("==> moto listening on {} (log: {})", moto.endpoint, log.display());
                return Ok(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("moto exited ({status}); its log:\n{output}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("moto did not answer within 30 s; its log: {}", log.display()))
    }
}

/// Whether `GET /moto-api/` answers 200.
async fn answers(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let read = stream.read(&mut head).await.unwrap_or(0);
    String::from_utf8_lossy(&head[..read]).contains(" 200")
}

fn sdk_config(endpoint: &str, attempts: u32) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::from_static("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "bench",
        )))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build()
}

/// Queues and topic the worker runs against.
struct Stack {
    jobs: String,
    dlq: String,
    topic_arn: String,
}

impl Stack {
    async fn create(admin: &SdkConfig) -> Self {
        let sqs = aws_sdk_sqs::Client::new(admin);
        let dlq = create_queue(&sqs, "bench-dlq.fifo", &[]).await;
        let redrive = format!(
            r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#,
            queue_arn(&sqs, &dlq).await
        );
        let jobs = create_queue(
            &sqs,
            "bench-jobs.fifo",
            &[
                (QueueAttributeName::RedrivePolicy, &redrive),
                (QueueAttributeName::VisibilityTimeout, VISIBILITY_TIMEOUT),
            ],
        )
        .await;
        // No subscriber: outcomes are published (and paid for) but not
        // delivered, which keeps moto's queues small.
        let topic = aws_sdk_sns::Client::new(admin)
            .create_topic()
            .name("bench-results")
            .send()
            .await
            .expect("CreateTopic");
        Self { jobs, dlq, topic_arn: topic.topic_arn.expect("topic arn") }
    }

    async fn send_rescan(&self, sqs: &aws_sdk_sqs::Client, account: &str, job_id: &str) {
        let body = serde_json::json!({
            "type": "rescan",
            "accountId": account,
            "externalId": EXTERNAL_ID,
            "imsOrgId": ORG,
            "jobId": job_id,
        });
        sqs.send_message()
            .queue_url(&self.jobs)
            .message_body(body.to_string())
            .message_group_id(account)
            .message_deduplication_id(job_id)
            .send()
            .await
            .expect("SendMessage");
    }

    /// The worker's environment: every AWS call through the proxy. moto only
    /// finds delivery destinations in the caller's account, so the customer
    /// account is the destination account too.
    fn worker_env(&self, proxy: &Proxy, account: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", proxy.url()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("DELIVERY_DESTINATION_ACCOUNT_ID", account.into()),
            ("RESULTS_TOPIC_ARN", self.topic_arn.clone()),
            ("JOBS_QUEUE_URL", self.jobs.clone()),
            ("DEAD_LETTER_QUEUE_URL", self.dlq.clone()),
            ("MAX_RECEIVE_COUNT", MAX_RECEIVE_COUNT.to_string()),
            ("CLOUDWATCH_LOGS_TPS", PACE_PER_SECOND.to_string()),
        ]
    }
}

/// Visible, in-flight and delayed messages.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    cdn_log_delivery::aws::sqs::queue_depth(sqs, url).await.expect("GetQueueAttributes")
}

/// A customer account with N distributions and the org's destination.
struct Account {
    customer: Customer,
    distributions: Vec<String>,
    destination_arn: String,
}

impl Account {
    async fn seed(admin: &SdkConfig, account: &str, n: usize) -> Self {
        let customer = Customer::new(admin, account.to_owned()).await;
        let destination_arn = customer.provision_destination().await;
        let customer_ref = &customer;
        let distributions: Vec<String> = futures::stream::iter(0..n)
            .map(|i| {
                let alias = format!("d{i}.a{account}.bench.example");
                async move { customer_ref.create_distribution(&[&alias]).await }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        Self { customer, distributions, destination_arn }
    }

    /// How many of the distributions have exactly one delivery to our
    /// destination.
    async fn enabled_once(&self, n: usize) -> usize {
        let mut per_source: HashMap<String, usize> = HashMap::new();
        for delivery in self.customer.deliveries().await {
            if delivery.delivery_destination_arn() == Some(self.destination_arn.as_str())
                && let Some(source) = delivery.delivery_source_name()
            {
                *per_source.entry(source.to_owned()).or_default() += 1;
            }
        }
        self.distributions
            .iter()
            .take(n)
            .filter(|id| per_source.get(&self.customer.source_name(id)) == Some(&1))
            .count()
    }
}

/// One run of the worker binary and what the kernel says it cost.
#[derive(Debug)]
struct ProcessRun {
    started: Instant,
    wall: Duration,
    /// User plus system CPU time.
    cpu: Duration,
    max_rss_kib: u64,
    succeeded: bool,
    status: String,
    log: PathBuf,
}

impl ProcessRun {
    fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// Runs `cdn-log-delivery poll --drain` to completion and reaps it with
/// `wait4`, which hands back its rusage: CPU is only consumed outside the
/// limiter's waits, so CPU ÷ messages is the per-message cost.
async fn run_worker(
    binary: &Path,
    env: Vec<(&'static str, String)>,
    patience: Duration,
    name: &str,
) -> ProcessRun {
    let (binary, name) = (binary.to_owned(), name.to_owned());
    // Off the runtime's threads: the proxy runs there and must keep serving.
    tokio::task::spawn_blocking(move || run_worker_blocking(&binary, &env, patience, &name))
        .await
        .expect("the worker runner does not panic")
}

fn run_worker_blocking(
    binary: &Path,
    env: &[(&'static str, String)],
    patience: Duration,
    name: &str,
) -> ProcessRun {
    let log = std::env::temp_dir().join(format!("cdn-log-delivery-bench-worker-{name}.log"));
    let file = File::create(&log).expect("worker log file");
    let started = Instant::now();
    let child = Command::new(binary)
        .args(["poll", "--drain"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("worker log file"))
        .stderr(file)
        .spawn()
        .expect("the worker starts");
    let reaped = reap(child, started + patience);
    let wall = started.elapsed();
    let status = if reaped.killed {
        format!("was killed after {patience:?}")
    } else if reaped.exited {
        format!("exited with {}", reaped.code)
    } else {
        "died of a signal".to_owned()
    };
    ProcessRun {
        started,
        wall,
        cpu: reaped.cpu,
        max_rss_kib: reaped.max_rss_kib,
        succeeded: reaped.exited && reaped.code == 0 && !reaped.killed,
        status,
        log,
    }
}

/// How a child ended and what it cost, from `wait4`.
struct Reaped {
    exited: bool,
    code: i32,
    killed: bool,
    /// User plus system CPU time.
    cpu: Duration,
    max_rss_kib: u64,
}

/// Waits for `child` with `wait4`, killing it at `give_up`. The std handle
/// is not used to wait, since only `wait4` returns the child's rusage.
fn reap(child: std::process::Child, give_up: Instant) -> Reaped {
    let pid = child.id() as libc::pid_t;
    drop(child);
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain old data, for which zeroes are valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not reaped yet; the pointers are
        // valid for the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            return Reaped {
                exited: libc::WIFEXITED(status),
                code: libc::WEXITSTATUS(status),
                killed,
                cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
                max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            };
        }
        if reaped < 0 {
            let error = std::io::Error::last_os_error();
            assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4: {error}");
        }
        if !killed && Instant::now() >= give_up {
            // SAFETY: the child is not reaped yet, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// The old API's strategy, with the library's own enable sequence: groups
/// of five enables at once, the next group when all five are done, no
/// pacing (a limiter of 1000/s never waits), only the SDK's standard retry.
async fn run_naive(proxy: &Proxy, account: &Account) -> NaiveRun {
    let sdk = sdk_config(&proxy.url(), cdn_log_delivery::aws::MAX_ATTEMPTS);
    let roles = ConnectorRoles::new(
        aws_sdk_sts::Client::new(&sdk),
        sdk.clone(),
        DEFAULT_CONNECTOR_ROLE_NAME.to_owned(),
        "us-east-1".to_owned(),
    );
    let account_id = AccountId::parse(&account.customer.account_id).expect("account id");
    let env = HashMap::from([
        ("DELIVERY_DESTINATION_ACCOUNT_ID", account_id.as_str().to_owned()),
        ("RESULTS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:unused".to_owned()),
    ]);
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("configuration");
    let limiter = AccountLimiter::new(NonZeroU32::new(1000).expect("non-zero"));
    let external_id = ExternalId::parse(EXTERNAL_ID).expect("external id");
    let org = ImsOrgId::parse(ORG).expect("org");

    let started = Instant::now();
    let mut failures: Vec<Failure> = Vec::new();
    for group in account.distributions.chunks(NAIVE_GROUP) {
        let enables = group.iter().map(|id| {
            let job = EnableJob {
                account_id: account_id.clone(),
                external_id: external_id.clone(),
                ims_org_id: org.clone(),
                distribution_id: DistributionId::parse(id).expect("distribution id"),
                job_id: None,
                site_id: None,
                site_host: None,
                allow_domain_mismatch: false,
                rescan_id: None,
            };
            let (roles, config, limiter, account_id) = (&roles, &config, &limiter, &account_id);
            async move {
                let customer = roles.assume(account_id, &job.external_id).await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
                let pace = Pace::new(limiter, account_id, deadline);
                enable(&customer, config, &pace, &job, Known::Nothing).await
            }
        });
        for result in futures::future::join_all(enables).await {
            if let Err(failure) = result {
                failures.push(failure);
            }
        }
    }
    let wall = started.elapsed();
    let mut failure_codes = HashMap::new();
    for failure in &failures {
        let code = failure.code.clone().unwrap_or_else(|| failure.category.to_string());
        *failure_codes.entry(code).or_default() += 1;
    }
    NaiveRun {
        wall,
        stats: proxy.stats(),
        failed: failures.len(),
        failure_codes,
        enabled_once: account.enabled_once(account.distributions.len()).await,
    }
}

/// One Lambda cold start: process start to the first `/next`, and the CPU
/// spent by then.
#[derive(Clone, Copy, Debug)]
struct InitRun {
    time: Duration,
    cpu: Duration,
}

/// Starts the binary as Lambda would and times it to its first `/next`.
async fn lambda_init(worker: &Path, stack: &Stack, proxy: &Proxy) -> Result<InitRun, String> {
    let (api, _answers) = runtime_api::RuntimeApi::start().await;
    let started = Instant::now();
    let child = Command::new(worker)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(stack.worker_env(proxy, PACED_ACCOUNT).iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cdn-log-delivery")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", worker.display()))?;
    let first_next = api.wait_first_next(Duration::from_secs(10)).await;
    // Killed at once: it is waiting on `/next` and spends nothing more.
    let reaped = tokio::task::spawn_blocking(move || reap(child, Instant::now()))
        .await
        .map_err(|e| format!("reaping the Lambda process: {e}"))?;
    let time = first_next
        .map(|at| at.saturating_duration_since(started))
        .ok_or_else(|| "Lambda init: no /next request within 10 s".to_owned())?;
    Ok(InitRun { time, cpu: reaped.cpu })
}
