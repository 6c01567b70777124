//! Real emulators for the integration tests, started from the pinned venvs on 127.0.0.1 and
//! stopped afterwards: moto's server for DynamoDB (one per test, so a test may stop it) and
//! LocalStack for SQS (one per test binary, shared; every test makes its own queues).
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

pub fn venv(name: &str) -> PathBuf {
    let root = std::env::var_os("VENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let dir = root.join(name);
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
        let mut command = Command::new(venv("moto").join("bin/moto_server"));
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::start(command, port, None, "Running on", Duration::from_secs(60))
    }

    /// LocalStack (SQS, SNS, CloudWatch, SSM for the client flags) in host mode.
    pub fn localstack() -> Self {
        let port = free_port();
        let state = tempfile::tempdir().unwrap();
        let mut command = Command::new(venv("localstack").join("bin/python"));
        command.args(["-m", "localstack.runtime.main"]).envs([
            ("OVERRIDE_IN_DOCKER", "0".to_owned()),
            ("FILESYSTEM_ROOT", state.path().display().to_string()),
            ("GATEWAY_LISTEN", format!("127.0.0.1:{port}")),
            ("LOCALSTACK_HOST", format!("127.0.0.1:{port}")),
            ("SQS_ENDPOINT_STRATEGY", "path".to_owned()),
            ("SERVICES", "sqs,sns,cloudwatch,ssm".to_owned()),
            ("SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL", "5".to_owned()),
            ("DNS_ADDRESS", "0".to_owned()),
            ("DISABLE_EVENTS", "1".to_owned()),
            ("SKIP_SSL_CERT_DOWNLOAD", "1".to_owned()),
        ]);
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
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill the emulator if the
        // test process dies without running destructors (a panic in another thread, ^C).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start emulator");
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
