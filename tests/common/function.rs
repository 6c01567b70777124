//! A function binary as the tests run it: serving invocations from `cargo lambda watch
//! --only-lambda-apis` (the Lambda Runtime API, direct invokes and function URLs, emulated).
//! The binary is Cargo's own build of this package (`CARGO_BIN_EXE_<name>`): nothing is
//! compiled here.

use std::io::BufRead;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::emulators::{dies_with_test, venv};

/// A function, running under the watcher.
pub struct LocalFunction {
    watcher: Child,
    function: Child,
    /// Where the watcher listens: `http://127.0.0.1:<port>`.
    pub base: String,
    /// The function's JSON log lines (stdout).
    pub logs: Arc<Mutex<Vec<Value>>>,
}

impl LocalFunction {
    /// Starts `binary` with `env` on top of what the watcher says a function under it must be
    /// given; `_` is the watcher's default function name.
    pub fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut watcher = Command::new(venv("tools").join("bin/cargo-lambda"));
        watcher
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let watcher = dies_with_test(&mut watcher).spawn().expect("start cargo lambda watch");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "cargo lambda watch not listening on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut function = Command::new(binary);
        function
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt")),
                ("AWS_LAMBDA_FUNCTION_NAME", "_".to_owned()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("RUST_LOG", "info".to_owned()),
            ])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut function = dies_with_test(&mut function).spawn().expect("start the function");
        let logs: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (stdout, sink) = (function.stdout.take().unwrap(), logs.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        Self { watcher, function, base: format!("http://127.0.0.1:{port}"), logs }
    }

    /// A direct invoke with `payload` as the event, bytes as given: `(status, JSON answer)`.
    /// The watcher answers 200 with the function's response, 500 with its posted error
    /// (`errorType`, `errorMessage`).
    pub async fn invoke(&self, payload: impl Into<reqwest::Body>) -> (u16, Value) {
        let url = format!("{}/2015-03-31/functions/_/invocations", self.base);
        let response = reqwest::Client::new().post(url).body(payload).send().await.expect("the watcher answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        for child in [&mut self.function, &mut self.watcher] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
