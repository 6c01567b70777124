//! The outbox at scale (issue 18): how fast a full drain goes at 1,000, 10,000 and 100,000
//! pending entries, and how long a write (`notes add` in process: open the database, write,
//! send its change, count what is left) takes with 0 and with 100,000 pending. Prints one table.
//!
//! The remote is a fake behind the crate's own [`Transport`] trait that acknowledges every
//! entry at once, so what is measured is the outbox: claims, settlements, SQLite.
//!
//! `cargo bench -p notes-client --bench outbox`. Settings (environment):
//! - `OUTBOX_BENCH_SIZES=1000,10000,100000`: the outbox sizes drained (100 without `--bench`,
//!   as `cargo test --all-targets` runs it).
//! - `OUTBOX_BENCH_WRITES=20`: writes timed at each backlog.
//! - `OUTBOX_BENCH_BEFORE=1`: the code before issue 18, simulated: the version-3 indexes
//!   dropped (the lease query reads the whole outbox per claim) and a write drains everything
//!   (`sync_once`) instead of sending one batch.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use notes_client::outbox::{Lease, OpenOptions, Outbox};
use notes_client::sender::{EntryResult, Limits, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, Outgoing, PullResult, Transport};
use notes_client::sync::{Run, sync_after_write, sync_once};

/// SQS's limits; every entry acknowledged; no pull (a trusted service's queue).
struct AckAll;

impl Transport for AckAll {
    fn limits(&self) -> Limits {
        Limits { max_entries: MAX_BATCH_ENTRIES, max_bytes: MAX_BATCH_BYTES }
    }

    async fn send_batch(
        &self,
        batch: &[Outgoing<'_>],
    ) -> Result<Vec<EntryResult>, notes_client::sender::TransportError> {
        Ok(vec![EntryResult::Accepted; batch.len()])
    }

    fn pull_origin(&self) -> Option<String> {
        None
    }

    fn pull(&self, _since: Option<&str>) -> Option<impl std::future::Future<Output = PullResult> + Send> {
        None::<std::future::Ready<PullResult>>
    }
}

/// The indexes version 3 added (what `OUTBOX_BENCH_BEFORE` drops).
const V3_INDEXES: [&str; 4] = ["outbox_leased", "outbox_retried", "outbox_by_last_attempt", "notes_by_state"];

struct Settings {
    sizes: Vec<u64>,
    writes: usize,
    before: bool,
}

fn settings() -> Settings {
    // `cargo test --all-targets` runs benches without `--bench`, in debug: a quick smoke run.
    let default = if std::env::args().any(|a| a == "--bench") { "1000,10000,100000" } else { "100" };
    let sizes = std::env::var("OUTBOX_BENCH_SIZES").unwrap_or_else(|_| default.into());
    Settings {
        sizes: sizes.split(',').map(|s| s.trim().parse().expect("OUTBOX_BENCH_SIZES: numbers")).collect(),
        writes: std::env::var("OUTBOX_BENCH_WRITES").map_or(20, |s| s.parse().expect("OUTBOX_BENCH_WRITES: a number")),
        before: std::env::var("OUTBOX_BENCH_BEFORE").is_ok_and(|v| v == "1"),
    }
}

fn open(path: &std::path::Path) -> Outbox {
    Outbox::open(path, &OpenOptions::default()).expect("the database opens")
}

/// A database at `path` with `n` pending notes (a title and a short body each).
fn fill(path: &std::path::Path, n: u64, before: bool) -> Duration {
    let mut outbox = open(path);
    if before {
        let conn = rusqlite::Connection::open(path).expect("the database opens");
        for index in V3_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {index}")).expect("drop index");
        }
    }
    let started = Instant::now();
    for i in 0..n {
        outbox.add(&format!("note {i}"), "a body of a few words, like most notes").expect("add");
    }
    started.elapsed()
}

fn run<'a>(lease: &'a Lease, stop: &'a AtomicBool) -> Run<'a> {
    Run { lease, stop, confirm_within: Duration::ZERO }
}

/// `notes add` in process: open, write, send (one batch; before: everything), count what is left.
async fn one_write(path: &std::path::Path, before: bool) -> Duration {
    let (lease, stop) = (Lease::new(Duration::from_secs(60)), AtomicBool::new(false));
    let started = Instant::now();
    let mut outbox = open(path);
    let note = outbox.add("written now", "the note the user is waiting for").expect("add");
    let report = if before {
        sync_once(&mut outbox, &AckAll, &run(&lease, &stop), &mut |_| {}).await
    } else {
        sync_after_write(&mut outbox, &AckAll, &run(&lease, &stop), &note.id).await
    }
    .expect("sync");
    std::hint::black_box((report.pending, outbox.note(&note.id).expect("read")));
    started.elapsed()
}

/// Median and slowest of `writes` writes on the database at `path`.
async fn writes(path: &std::path::Path, writes: usize, before: bool) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(writes);
    for _ in 0..writes {
        times.push(one_write(path, before).await);
    }
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let s = settings();
    let label = if s.before { "before (v3 indexes dropped, a write drains all)" } else { "after" };
    println!("outbox bench, {label}; fake sender acknowledging every entry; database in a temporary directory\n");
    println!("| pending | fill (add) entries/s | drain entries/s | drain time | status + oldest 100 |");
    println!("|---:|---:|---:|---:|---:|");
    let mut largest = None;
    for &n in &s.sizes {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("notes.db");
        let filled = fill(&path, n, s.before);
        let mut outbox = open(&path);
        let started = Instant::now();
        let status = outbox.status().expect("status");
        let oldest = if s.before { outbox.pending() } else { outbox.oldest_pending(100) }.expect("pending");
        let status_time = started.elapsed();
        assert_eq!(status.pending, n);
        std::hint::black_box(oldest);
        let (lease, stop) = (Lease::new(Duration::from_secs(60)), AtomicBool::new(false));
        let started = Instant::now();
        let report = sync_once(&mut outbox, &AckAll, &run(&lease, &stop), &mut |_| {}).await.expect("drain");
        let drained = started.elapsed();
        assert_eq!((report.sent, report.pending), (n, 0), "everything drained");
        // The write latency on the largest backlog, filled again. Before, the first write
        // drains everything (the later ones would find nothing pending): it is timed alone.
        if Some(n) == s.sizes.iter().copied().max() {
            fill(&path, n, false);
            largest = Some((n, writes(&path, if s.before { 1 } else { s.writes }, s.before).await));
        }
        println!(
            "| {} | {} | {} | {} | {} |",
            thousands(n as f64),
            thousands(n as f64 / filled.as_secs_f64()),
            thousands(n as f64 / drained.as_secs_f64()),
            ms(drained),
            ms(status_time)
        );
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let empty = dir.path().join("notes.db");
    fill(&empty, 0, s.before);
    let idle = writes(&empty, s.writes, s.before).await;
    println!("\n| `notes add` in process ({} writes) | median | slowest |", s.writes);
    println!("|---|---:|---:|");
    println!("| 0 pending | {} | {} |", ms(idle.0), ms(idle.1));
    if let Some((n, (median, slowest))) = largest {
        let writes = if s.before { " (the first write, alone)" } else { "" };
        println!("| {} pending{writes} | {} | {} |", thousands(n as f64), ms(median), ms(slowest));
    }
}
