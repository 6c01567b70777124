//! Real emulators for the integration tests, started from the pinned venvs on 127.0.0.1 and
//! stopped afterwards: moto's server for DynamoDB (one per test, so a test may stop it) and
//! LocalStack for SQS (one per test binary, shared; every test makes its own queues). How
//! each is started (LocalStack's environment among it) is `scripts/run-emulator.sh`'s, which
//! `scripts/emulators.sh` runs too; here only the free port and the wait for readiness.
//!
//! The venvs come from `scripts/venvs.sh`, which `make test` runs first.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running emulator process.
pub struct Emulator {
    child: Option<Child>,
    port: u16,
    /// LocalStack's file-system root, removed when the emulator is dropped.
    _state: Option<tempfile::TempDir>,
}

/// Where the venvs are: `$VENV_DIR`, as in the scripts, or `.venv`.
fn venvs() -> PathBuf {
    std::env::var_os("VENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// The venvs every emulator-backed test needs.
const REQUIRED: [&str; 4] = ["localstack", "moto", "scripts", "tools"];

/// Set (as `make test` and CI do) to make missing venvs a failure instead of a skip.
pub const REQUIRE_VAR: &str = "NOTES_SYNC_REQUIRE_EMULATORS";

/// Whether the emulators can start here. A plain `cargo test` on a fresh clone has no venvs:
/// the emulator-backed tests then return at once, and the first of them says so in one line on
/// the terminal (not captured by the test harness); `make test` installs the venvs and sets
/// [`REQUIRE_VAR`], so there a missing venv fails the test instead of skipping it.
pub fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let missing: Vec<String> = REQUIRED
            .iter()
            .map(|name| venvs().join(name))
            .filter(|dir| !dir.join("bin/python").exists())
            .map(|dir| dir.display().to_string())
            .collect();
        if missing.is_empty() {
            return true;
        }
        assert!(
            std::env::var_os(REQUIRE_VAR).is_none_or(|v| v.is_empty()),
            "{REQUIRE_VAR} is set but the emulator venvs are missing: {}",
            missing.join(", ")
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "note: emulator-backed tests of {} skipped (no {}): `make test` installs the pinned emulators and runs them",
            test_binary_name(),
            missing.join(", "),
        );
        false
    })
}

/// `consumer` for `target/debug/deps/consumer-0123abcd`: the test file's name.
fn test_binary_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    name.rsplit_once('-').map_or(&*name, |(stem, _)| stem).to_owned()
}

/// Returns from the calling test when the emulators cannot start here ([`installed`]).
#[macro_export]
macro_rules! require_emulators {
    () => {
        if !$crate::common::emulators::installed() {
            return;
        }
    };
}

/// A pinned venv's directory; panics with what to run if it is missing.
pub fn venv(name: &str) -> PathBuf {
    let dir = venvs().join(name);
    assert!(
        dir.join("bin/python").exists(),
        "{} is missing: run `scripts/venvs.sh` (or `make test`) first",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().unwrap().port()
}

impl Emulator {
    /// moto's server (DynamoDB), for this test only.
    pub fn moto() -> Self {
        let port = free_port();
        let command = run_emulator("moto", &[&port.to_string()]);
        Self::start(command, port, None, "Running on", Duration::from_secs(60))
    }

    /// LocalStack (SQS, SNS, CloudWatch, SSM for the client flags) in host mode.
    pub fn localstack() -> Self {
        let port = free_port();
        let state = tempfile::tempdir().unwrap();
        let command = run_emulator("localstack", &[&port.to_string(), &state.path().display().to_string()]);
        Self::start(command, port, Some(state), "Ready.", Duration::from_secs(120))
    }

    /// The LocalStack shared by every test of this binary. It is started by a thread that
    /// lives as long as the process and dies with it (`PR_SET_PDEATHSIG` is tied to the
    /// thread that spawned the child, so a test's own thread would not do).
    pub fn shared_localstack() -> u16 {
        static PORT: OnceLock<u16> = OnceLock::new();
        *PORT.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let emulator = Emulator::localstack();
                tx.send(emulator.port).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("LocalStack started")
        })
    }

    fn start(mut command: Command, port: u16, state: Option<tempfile::TempDir>, ready: &str, within: Duration) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = dies_with_test(&mut command).spawn().expect("start emulator");
        let rx = output_lines(&mut child);
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = within.checked_sub(started.elapsed()).unwrap_or_default();
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(ready) => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("emulator on port {port} not ready in {within:?}; it said:\n{}", seen.join("\n"));
                }
            }
        }
        Self { child: Some(child), port, _state: state }
    }

    /// Its address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the emulator now (the store-down tests use this).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `scripts/run-emulator.sh <name> <args>` with the venvs this test found.
fn run_emulator(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/run-emulator.sh"));
    command.arg(name).args(args).env("VENV_DIR", venv(name).parent().unwrap());
    command
}

/// Makes the kernel kill the process `command` starts when the thread that started it ends,
/// so no child outlives its test, even a test process that dies without running destructors
/// (a panic in another thread, ^C). It holds across `exec`: also for what a script execs.
pub fn dies_with_test(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// The piped stdout and stderr lines of `child`, as they come, each read by its own thread.
pub fn output_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    for out in [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
