//! `cargo bench --bench consumer`: event text in → response text out, in-process, for 10,
//! 1,000 and 10,000 records × three cases, measured side by side in one run:
//!
//! - (a) the naive floor ([`naive`]): owned `SqsEvent` + `join_all` + response;
//! - (b) the consumer as deployed: `Engine::invoke` (the entry point `src/bin/consumer.rs`
//!   calls) with `NotesHandler` over the in-memory store and the recording queue fake, its log
//!   lines and EMF written through the engine's `LogSink` on stdout, as the consumer sets it
//!   up, to a real file descriptor (fd 1 is `/dev/null`, opened as a file, while measuring);
//! - (c) the same engine without a log sink and without a tracing subscriber.
//!
//! It ends by printing one table (µs per record, medians, and the ratios b/a and c/a) and the
//! log bytes per record. Without `--bench` (as `cargo test --all-targets` runs it) it only
//! checks that the three consumers answer each case alike. With `--calls CONSUMER CASE N K` it
//! runs K invocations of one consumer on one N-record event and exits: what
//! `scripts/bench-instructions.sh` counts under callgrind, where instructions per invocation
//! are repeatable on a busy machine as time is not.

mod naive;
mod workload;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode};
use notes_sync::notes::NotesHandler;
use notes_testing::{MemoryStore, RecordingQueues};
use sqs_partial_batch::{Engine, LogSink, Settings};
use tokio::runtime::Runtime;
use workload::{Case, FLAKY_PREFIX};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

/// The three consumers, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consumer {
    Naive,
    Deployed,
    LogsOff,
}

impl Consumer {
    const ALL: [Consumer; 3] = [Consumer::Naive, Consumer::Deployed, Consumer::LogsOff];

    fn named(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }

    fn id(self) -> &'static str {
        match self {
            Consumer::Naive => "naive",
            Consumer::Deployed => "deployed",
            Consumer::LogsOff => "logs_off",
        }
    }
}

type Handler = NotesHandler<MemoryStore>;

fn fresh_handler() -> Handler {
    NotesHandler::new(MemoryStore::failing_ids_starting_with(FLAKY_PREFIX))
}

struct Bench {
    runtime: Runtime,
    deployed: Engine<RecordingQueues>,
    logs_off: Engine<RecordingQueues>,
}

impl Bench {
    fn new() -> Self {
        // As deployed: `#[tokio::main]`, a multi-thread runtime; the batch runs on the invoking
        // task, here the thread that blocks on it.
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        Self {
            runtime,
            deployed: Engine::new(Settings::default(), RecordingQueues::default())
                .with_log(LogSink::new(std::io::stdout())),
            logs_off: Engine::new(Settings::default(), RecordingQueues::default()),
        }
    }

    /// A fresh handler (a fresh store), the queue fakes' records forgotten: done outside the
    /// timing, so that no iteration pays for the ones before it.
    fn fresh(&self) -> Handler {
        self.deployed.queues().clear();
        self.logs_off.queues().clear();
        fresh_handler()
    }

    /// One invocation: event text in, response text out. `handler` holds a fresh store.
    fn run(&self, consumer: Consumer, payload: &str, handler: &Handler) -> String {
        match consumer {
            Consumer::Naive => self.runtime.block_on(naive::consume(payload)),
            Consumer::Deployed => self.consume(&self.deployed, payload, handler),
            // No sink, and no subscriber for the calling thread: nothing listens to any line.
            Consumer::LogsOff => tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
                self.consume(&self.logs_off, payload, handler)
            }),
        }
    }

    fn consume(&self, engine: &Engine<RecordingQueues>, payload: &str, handler: &Handler) -> String {
        self.runtime.block_on(async {
            // The relative form of a Lambda deadline: 15 minutes from now.
            let response = engine.invoke(payload, 900_000, handler).await.expect("a response");
            serde_json::to_string(&response).expect("a response serialises")
        })
    }
}

/// Points fd 1 at `path` (opened as a file) and returns a handle on the previous fd 1.
fn redirect_stdout(path: &Path) -> File {
    std::io::stdout().flush().expect("stdout flushes");
    let target = OpenOptions::new().write(true).create(true).truncate(true).open(path).expect("open target");
    // SAFETY: dup and dup2 on valid descriptors; the duplicate is owned by the returned File.
    unsafe {
        let saved = libc::dup(1);
        assert!(saved >= 0, "dup(1) failed");
        assert!(libc::dup2(target.as_raw_fd(), 1) >= 0, "dup2 failed");
        File::from_raw_fd(saved)
    }
}

fn restore_stdout(saved: File) {
    std::io::stdout().flush().expect("stdout flushes");
    // SAFETY: dup2 of a valid descriptor over fd 1.
    assert!(unsafe { libc::dup2(saved.as_raw_fd(), 1) } >= 0, "dup2 failed");
}

/// Without `--bench`: every consumer answers every case alike, and as the case says.
fn check(bench: &Bench) {
    notes_sync::logging::init_json_logs(tracing_subscriber::EnvFilter::new("info"));
    let saved = redirect_stdout(Path::new("/dev/null"));
    for case in Case::ALL {
        let payload = workload::event(case, 20);
        let answers: Vec<String> = Consumer::ALL.iter().map(|&c| bench.run(c, &payload, &fresh_handler())).collect();
        let response: serde_json::Value = serde_json::from_str(&answers[0]).expect("JSON");
        let failed = response["batchItemFailures"].as_array().expect("batchItemFailures").len();
        assert_eq!(failed, workload::expected_failures(case, 20), "{case:?}: {}", answers[0]);
        assert!(answers.iter().all(|a| *a == answers[0]), "{case:?}: the consumers disagree: {answers:?}");
    }
    restore_stdout(saved);
    println!("bench consumer: the three consumers agree on every case");
}

fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
}

/// Median nanoseconds per iteration, from criterion's estimates of this run.
fn median_ns(dir: &Path, group: &str, consumer: Consumer) -> Option<f64> {
    let path = dir.join(group).join(consumer.id()).join("new").join("estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Log bytes per record of the deployed consumer: one 1,000-record batch written to a file.
fn log_bytes_per_record(bench: &Bench, case: Case) -> f64 {
    const N: usize = 1_000;
    let payload = workload::event(case, N);
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    let saved = redirect_stdout(file.path());
    bench.run(Consumer::Deployed, &payload, &fresh_handler());
    restore_stdout(saved);
    std::fs::metadata(file.path()).expect("log file").len() as f64 / N as f64
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{} × {cores}", model.unwrap_or("unknown CPU"))
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--calls CONSUMER CASE N K`: K invocations, each with a fresh handler, stdout to /dev/null.
fn calls(bench: &Bench, args: &[String]) {
    let usage = |problem: &str| -> ! {
        eprintln!("bench consumer: {problem}");
        eprintln!("usage: --calls naive|deployed|logs_off standard_ok|standard_10pct_transient|fifo_10_groups N K");
        std::process::exit(2)
    };
    let [consumer, case, n, k] = args else { usage("--calls takes four arguments") };
    let consumer = Consumer::named(consumer).unwrap_or_else(|| usage(&format!("no consumer `{consumer}`")));
    let case = Case::named(case).unwrap_or_else(|| usage(&format!("no case `{case}`")));
    let count = |text: &str| text.parse::<usize>().unwrap_or_else(|_| usage(&format!("`{text}` is not a count")));
    let (n, k) = (count(n), count(k));
    notes_sync::logging::init_json_logs(tracing_subscriber::EnvFilter::new("info"));
    let payload = workload::event(case, n);
    let saved = redirect_stdout(Path::new("/dev/null"));
    for _ in 0..k {
        let handler = bench.fresh();
        std::hint::black_box(bench.run(consumer, &payload, &handler));
    }
    restore_stdout(saved);
}

fn main() {
    let bench = Bench::new();
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--calls") {
        // `cargo bench` adds `--bench` after the arguments given to the binary.
        let rest: Vec<String> = args[at + 1..].iter().filter(|a| *a != "--bench").cloned().collect();
        calls(&bench, &rest);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        check(&bench);
        return;
    }
    let dir = criterion_dir();
    let mut criterion = Criterion::default().output_directory(&dir).nresamples(20_000).configure_from_args();
    notes_sync::logging::init_json_logs(tracing_subscriber::EnvFilter::new("info"));
    let load_before = load();
    // Logs and EMF go to /dev/null while measuring; progress goes to stderr.
    let saved = redirect_stdout(Path::new("/dev/null"));
    let mut log_bytes = Vec::new();
    for n in SIZES {
        for case in Case::ALL {
            let payload = workload::event(case, n);
            let group_id = format!("{}_{n}", case.id());
            let mut group = criterion.benchmark_group(&group_id);
            group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
            if n >= 10_000 {
                // ~0.1 s per invocation: equal samples of a few iterations each.
                group.sampling_mode(SamplingMode::Flat).sample_size(10);
            } else {
                group.sample_size(if n >= 1_000 { 20 } else { 50 });
            }
            let batch_size = if n >= 1_000 { BatchSize::PerIteration } else { BatchSize::SmallInput };
            for consumer in Consumer::ALL {
                group.bench_function(consumer.id(), |b| {
                    // The handler (and its store) is built and dropped outside the timing.
                    b.iter_batched(
                        || bench.fresh(),
                        |handler| (bench.run(consumer, &payload, &handler), handler),
                        batch_size,
                    )
                });
            }
            group.finish();
            let medians: Vec<String> = Consumer::ALL
                .iter()
                .map(|&c| median_ns(&dir, &group_id, c).map_or("-".into(), |ns| format!("{:.2}", ns / n as f64 / 1e3)))
                .collect();
            eprintln!("bench consumer: {group_id}: {} µs/record", medians.join(" / "));
        }
    }
    for case in Case::ALL {
        log_bytes.push(log_bytes_per_record(&bench, case));
    }
    restore_stdout(saved);
    criterion.final_summary();
    print_table(&dir, &log_bytes, &load_before);
}

fn print_table(dir: &Path, log_bytes: &[f64], load_before: &str) {
    println!();
    println!("consumer bench: µs per record, median (ratio to the naive floor); event text in → response text out");
    println!();
    println!("| records | case | (a) naive floor | (b) as deployed | (c) logs off | log bytes/record |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in SIZES {
        for (case, bytes) in Case::ALL.iter().zip(log_bytes) {
            let group = format!("{}_{n}", case.id());
            let per_record = |c| median_ns(dir, &group, c).map(|ns| ns / n as f64 / 1e3);
            let (a, b, c) =
                (per_record(Consumer::Naive), per_record(Consumer::Deployed), per_record(Consumer::LogsOff));
            let cell = |x: Option<f64>| match (x, a) {
                (Some(x), Some(a)) => format!("{x:.2} ({:.2}×)", x / a),
                (Some(x), None) => format!("{x:.2}"),
                _ => "-".into(),
            };
            let a = a.map_or("-".into(), |a| format!("{a:.2}"));
            println!("| {n} | {} | {a} | {} | {} | {bytes:.0} |", case.label(), cell(b), cell(c));
        }
    }
    println!();
    println!("machine: {}; load average before {load_before}, after {}", machine(), load());
    println!("log bytes/record: the deployed consumer's stdout for one 1,000-record batch (logs + EMF) / 1,000");
}
