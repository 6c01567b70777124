//! The fault proxy in front of an emulator, with a switch: the tests use it to take the store
//! (or SQS) away and bring it back on the same address, which stopping moto cannot do (its
//! data lives in memory). The proxy is `scripts/fault_proxy.py`, the one copy `make demo`
//! runs too; this is the tests' handle on it, a child process switched over its stdin.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use super::emulators::{dies_with_test, venv};

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the emulator.
    Up,
    /// Accept and close at once: every request fails fast.
    Down,
    /// Accept and never answer: every request hangs until the client gives up.
    Stall,
}

impl Mode {
    /// Its word in the proxy's control protocol.
    fn word(self) -> &'static str {
        match self {
            Mode::Up => "up",
            Mode::Down => "down",
            Mode::Stall => "stall",
        }
    }
}

/// The proxy process; dropping it stops it.
pub struct Proxy {
    port: u16,
    child: Child,
    /// Its stdin (modes in) and stdout (answers out), one exchange at a time.
    control: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

impl Proxy {
    /// Proxies 127.0.0.1:<free port> to `upstream`, starting up; returns once it listens.
    pub fn start(upstream: SocketAddr) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fault_proxy.py");
        // Standard library only: any pinned venv's Python runs it.
        let mut command = Command::new(venv("scripts").join("bin/python"));
        command
            .arg(script)
            .args(["--upstream", &upstream.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = dies_with_test(&mut command).spawn().expect("start scripts/fault_proxy.py");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let port = answer(&mut stdout, "listening").parse().expect("the proxy's port");
        Self { port, child, control: Mutex::new((stdin, stdout)) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches mode and cuts every open connection, so pooled connections obey at once;
    /// returns when the proxy has done both.
    pub fn set(&self, mode: Mode) {
        let mut control = self.control.lock().unwrap();
        let (stdin, stdout) = &mut *control;
        writeln!(stdin, "{}", mode.word()).expect("switch the fault proxy");
        assert_eq!(answer(stdout, "ok"), mode.word(), "the fault proxy's answer");
    }
}

/// The rest of the proxy's next line, which must start with `word`.
fn answer(stdout: &mut BufReader<ChildStdout>, word: &str) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the fault proxy's answer");
    match line.trim_end().split_once(' ') {
        Some((first, rest)) if first == word => rest.to_owned(),
        _ => panic!("the fault proxy said {line:?}, expected `{word} ...` (empty: it exited)"),
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
