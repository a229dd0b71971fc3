//! Fault injection: enable and rescan jobs run by the real `poll` binary
//! through a proxy that fails a share of every AWS call (5xx, throttles,
//! dropped connections, delays), while the poller is SIGKILLed at random
//! points. After a clean drain (and a `replay` of anything dead-lettered),
//! every distribution has exactly one delivery source and one delivery,
//! every job sent has a final outcome, and both queues are empty.
//!
//! Small by default so CI runs it (40 jobs, 3 kills, under 30 s); larger by
//! command, about 3 minutes on two cores:
//! `CHAOS_JOBS=300 CHAOS_KILLS=6 ./scripts/test --test chaos -- --nocapture`.
//! `CHAOS_SEED` repeats a run; the seed is printed with the figures.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::proxy::{Action, Call, Options, Policy, Proxy};
use common::{EXTERNAL_ID, ORG, Stack};
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Fails `rate` of all calls, picking the kind of fault at random.
struct Faults {
    rate: f64,
    rng: Mutex<fastrand::Rng>,
    injected: &'static AtomicU64,
}

impl Policy for Faults {
    fn decide(&self, _call: &Call<'_>) -> Action {
        let mut rng = self.rng.lock().unwrap();
        if rng.f64() >= self.rate {
            return Action::Forward;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        match rng.u8(0..4) {
            0 => Action::Fail { status: 500, code: "InternalFailure".into() },
            1 => Action::Throttle,
            2 => Action::Drop,
            _ => Action::Delay(Duration::from_millis(rng.u64(200..1500))),
        }
    }
}

static INJECTED: AtomicU64 = AtomicU64::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_faults_and_kills_without_loss_or_duplicates() {
    let jobs = setting("CHAOS_JOBS", 40);
    let kills = setting("CHAOS_KILLS", 3);
    let seed = setting("CHAOS_SEED", fastrand::usize(..)) as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    // Printed first, so a failing run can be repeated with CHAOS_SEED.
    eprintln!("chaos: seed {seed}, {jobs} jobs, {kills} kills");

    // moto's FIFO queue scans itself on every call, so a batch takes longer
    // as the queue fills: a larger run needs a longer visibility timeout, or
    // its records run out of time and pile up in the dead-letter queue.
    let visibility = (jobs as u32 / 10).clamp(4, 15);
    let stack = Stack::new(10, visibility).await;
    stack.customer.provision_destination().await;
    // At most 30 distributions: each rescan fans out every one not enabled
    // yet, and more would grow the queue faster than moto drains it.
    let distributions: Vec<String> = {
        let mut all = Vec::new();
        for _ in 0..(jobs / 3).clamp(2, 30) {
            all.push(stack.customer.create_distribution(&[]).await);
        }
        all
    };

    // Enable jobs, some distributions twice, and a rescan now and then.
    let mut sent = Vec::new();
    for i in 0..jobs {
        let job_id = format!("chaos-{i}");
        let body = if i % 10 == 9 {
            json!({"type": "rescan", "accountId": stack.customer.account_id, "externalId": EXTERNAL_ID,
                   "imsOrgId": ORG, "jobId": job_id})
            .to_string()
        } else {
            let d = &distributions[rng.usize(..distributions.len())];
            stack.enable_body(d, json!({"jobId": job_id}))
        };
        stack.send_job(&body).await;
        sent.push(job_id);
    }

    let proxy = Proxy::start(
        &common::endpoint(),
        Options::default().policy(Faults {
            rate: 0.1,
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x5eed)),
            injected: &INJECTED,
        }),
    )
    .await
    .unwrap();
    let poll = |endpoint: &str| {
        let mut command = stack.command();
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("CLOUDWATCH_LOGS_TPS", "50")
            .args(["poll", "--drain"]);
        command
    };

    // Kill the poller at random points while faults fly.
    for _ in 0..kills {
        let mut child = poll(&proxy.url()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(300..2500))).await;
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }

    // Then a clean run to the end, with whatever was dead-lettered replayed.
    // Every rescan fans out the distributions not enabled yet, and moto's
    // FIFO queue slows down as it fills, so the time allowed grows with the
    // jobs sent.
    let drain_limit = Duration::from_secs(300.max(3 * jobs as u64));
    let drain = |endpoint: String| {
        let mut command = poll(&endpoint);
        async move { tokio::time::timeout(drain_limit, command.output()).await.unwrap().unwrap() }
    };
    let output = drain(proxy.url()).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // An operator replays until the dead-letter queue stays empty; three
    // rounds are plenty once the faults have stopped.
    let mut replayed = 0;
    for _ in 0..3 {
        if stack.depth(&stack.dead_letter_queue).await == 0 {
            break;
        }
        let mut replay = stack.command();
        replay.args(["replay", "--dlq-url", &stack.dead_letter_queue]);
        let output = replay.output().await.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        replayed += String::from_utf8_lossy(&output.stdout).matches("moved ").count();
        let output = drain(common::endpoint()).await;
        assert!(output.status.success());
    }
    assert_eq!(stack.depth(&stack.jobs_queue).await, 0, "the jobs queue is empty");
    assert_eq!(stack.depth(&stack.dead_letter_queue).await, 0, "the dead-letter queue is empty");

    // Exactly one source and one delivery per distribution.
    let sources = stack.customer.delivery_sources().await;
    let deliveries = stack.customer.deliveries().await;
    let mut per_source: HashMap<String, usize> = HashMap::new();
    for delivery in &deliveries {
        *per_source
            .entry(delivery.delivery_source_name().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let duplicates = per_source.values().filter(|n| **n > 1).count();
    for d in &distributions {
        let name = stack.customer.source_name(d);
        assert_eq!(per_source.get(&name), Some(&1), "{d} has exactly one delivery");
        assert_eq!(sources.iter().filter(|s| s.name() == Some(name.as_str())).count(), 1);
    }
    assert_eq!(deliveries.len(), distributions.len());
    assert_eq!(sources.len(), distributions.len());

    // Every job sent has a final outcome (duplicates are allowed).
    let outcomes = read_all_outcomes(&stack).await;
    let finished: BTreeSet<_> = outcomes
        .iter()
        .filter(|o| matches!(o.status(), "created" | "alreadyExisted" | "fannedOut"))
        .filter_map(|o| o.str("jobId").map(str::to_owned))
        .collect();
    let lost: Vec<_> = sent.iter().filter(|j| !finished.contains(*j)).collect();
    assert!(lost.is_empty(), "jobs without a final outcome: {lost:?}");

    let stats = proxy.stats().total();
    println!(
        "chaos: seed {seed}, {} jobs sent, {} distributions, {} AWS calls through the proxy, {} faults \
         injected, {kills} kills survived, {replayed} replayed from the DLQ, {} outcomes, {} jobs lost, \
         {duplicates} duplicate deliveries",
        sent.len(),
        distributions.len(),
        stats.calls,
        INJECTED.load(Ordering::Relaxed),
        outcomes.len(),
        lost.len(),
    );
    assert!(INJECTED.load(Ordering::Relaxed) > 0, "faults were injected");
}

async fn read_all_outcomes(stack: &Stack) -> Vec<common::Outcome> {
    let mut all = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let batch = stack.outcomes_available().await;
        if batch.is_empty() {
            empty += 1;
        } else {
            empty = 0;
            all.extend(batch);
        }
    }
    all
}
