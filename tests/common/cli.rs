//! The `notes` binary as the client tests drive it: a database of its own per test, AWS
//! calls pointed at an emulator (or a proxy in front of one), nothing read from the user's
//! environment.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `notes` binary. It belongs to the client crate, another package of the workspace, so
/// Cargo gives these tests no `CARGO_BIN_EXE_notes`: it is built here, once per test binary,
/// by the same build `make test` runs (`cargo test --workspace --all-targets` compiles the same
/// units with the same features), so under `make test` this is a no-op and a test never runs a
/// stale binary.
pub fn notes_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args(["build", "--locked", "--workspace", "--all-targets", "--message-format=json-render-diagnostics"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(output.status.success(), "cargo build of the workspace failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|m| {
                m["target"]["name"] == "notes" && m["target"]["kind"][0] == "bin" && m["profile"]["test"] == false
            })
            .and_then(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo build names the notes executable")
    })
}

/// The owner the test clients write as, when they send straight to SQS.
pub const TEST_OWNER: &str = super::OWNER;

/// One client: its database, the endpoint it talks to and its queues.
pub struct NotesCli {
    pub db: PathBuf,
    pub endpoint: String,
    pub queue_url: String,
    pub dlq_url: Option<String>,
    /// Set after the defaults: `Some` sets a variable, `None` removes it.
    pub env: Vec<(String, Option<String>)>,
    dir: tempfile::TempDir,
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl NotesCli {
    pub fn new(endpoint: &str, queue_url: &str) -> Self {
        // Built (or found fresh) now, so that no test times a build as part of a command.
        notes_binary();
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: dir.path().join("notes.db"),
            endpoint: endpoint.to_owned(),
            queue_url: queue_url.to_owned(),
            dlq_url: None,
            env: Vec::new(),
            dir,
        }
    }

    /// An end user's device: no AWS credentials, no queue and no owner; the sync API at
    /// `api_url`, Cognito (moto) at `cognito` with the app client `client_id`.
    pub fn end_user(api_url: &str, cognito: &str, client_id: &str) -> Self {
        let mut cli = Self::new(cognito, "");
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "NOTES_OWNER"] {
            cli.env.push((name.to_owned(), None));
        }
        for (name, value) in [
            ("NOTES_API_URL", api_url),
            ("NOTES_USER_POOL_CLIENT_ID", client_id),
            ("NOTES_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", cognito),
        ] {
            cli.env.push((name.to_owned(), Some(value.to_owned())));
        }
        cli
    }

    /// `notes login` with the password on stdin.
    pub fn login(&self, username: &str, password: &str) -> Run {
        let mut child = self
            .command(&["login", "--username", username, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start notes login");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{password}\n").as_bytes()).unwrap();
        let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    /// A file in this client's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(notes_binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("NOTES_DB", &self.db)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            // A trusted service sending straight to SQS names the owner of its notes.
            .env("NOTES_OWNER", TEST_OWNER)
            .stdin(Stdio::null());
        // An empty queue URL: a client with no queue configured at all.
        if !self.queue_url.is_empty() {
            command.env("NOTES_QUEUE_URL", &self.queue_url);
        }
        if let Some(dlq) = &self.dlq_url {
            command.env("NOTES_DLQ_URL", dlq);
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        super::emulators::dies_with_test(&mut command);
        command
    }

    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let Output { status, stdout, stderr } = self.command(args).output().expect("run notes");
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    /// Runs and asserts the exit code.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], code: i32) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(code), "notes {:?}: {run:?}", args.iter().map(|a| a.as_ref()).collect::<Vec<_>>());
        run
    }

    /// `notes status --json`.
    pub fn status(&self) -> Value {
        self.ok(&["status", "--json"], 0).json()
    }

    /// Starts `notes <args>`, SIGKILLs it after `delay`; whether it was still running then.
    pub fn kill_after(&self, args: &[&str], delay: Duration) -> bool {
        let mut child = self.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap();
        child.wait().unwrap();
        running
    }

    /// Starts `notes <args>` with its stdout lines sent to a channel.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> (Child, Lines) {
        let mut child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start notes");
        let rx = super::emulators::output_lines(&mut child);
        (child, Lines { rx, seen: Vec::new() })
    }
}

/// Output lines of a spawned client.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    /// Waits for a line containing `text`; panics with everything seen after `within`.
    pub fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?} within {within:?}; seen:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// SIGTERM, then the exit code.
pub fn terminate(child: &mut Child) -> Option<i32> {
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().code()
}

/// What a kill test expects of each note: `(version, deleted)` as the test wrote it.
pub type Model = std::collections::BTreeMap<String, (u64, bool)>;

/// The database after a kill: sound, every note at the version the test wrote, in `pending`
/// with an outbox entry at exactly that version, or in one of `settled` with none.
pub fn assert_consistent(cli: &NotesCli, model: &Model, settled: &[notes_client::outbox::State]) {
    use notes_client::outbox::{OpenOptions, Outbox, State};
    let outbox = Outbox::open(&cli.db, &OpenOptions::default()).unwrap();
    assert_eq!(outbox.integrity_check().unwrap(), vec!["ok".to_owned()]);
    let pending: std::collections::BTreeMap<String, u64> =
        outbox.pending().unwrap().into_iter().map(|p| (p.note_id, p.version)).collect();
    for (id, &(version, deleted)) in model {
        let note = outbox.note(id).unwrap().unwrap_or_else(|| panic!("note {id} lost"));
        assert_eq!((note.version, note.deleted), (version, deleted), "note {id}");
        match note.state {
            State::Pending => assert_eq!(pending.get(id), Some(&version), "pending note {id} has no outbox entry"),
            s if settled.contains(&s) => assert!(!pending.contains_key(id), "{s:?} note {id} still queued"),
            other => panic!("note {id} is {other:?}"),
        }
    }
    assert!(pending.keys().all(|id| model.contains_key(id)), "an outbox entry without a note");
}

/// Edits, deletes and adds about a third of the notes, as a user working offline would.
pub fn change_some(outbox: &mut notes_client::outbox::Outbox, model: &mut Model, rng: &mut fastrand::Rng) {
    let live: Vec<String> = model.iter().filter(|(_, (_, deleted))| !deleted).map(|(id, _)| id.clone()).collect();
    for id in live {
        match rng.u32(0..30) {
            0..=8 => {
                let note = outbox.edit(&id, None, Some(&format!("edit {}", rng.u32(..)))).unwrap();
                model.insert(id, (note.version, false));
            }
            9 => {
                let note = outbox.delete(&id).unwrap();
                model.insert(id, (note.version, true));
            }
            _ => {}
        }
    }
    for _ in 0..rng.usize(0..4) {
        let note = outbox.add("new", "b").unwrap();
        model.insert(note.id, (note.version, false));
    }
}
