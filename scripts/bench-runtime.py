#!/usr/bin/env python3
"""The release `consumer` under a minimal local Lambda Runtime API: cold init, peak RSS, sizes.

    python3 scripts/bench-runtime.py [--binary target/release/consumer] [--runs 20] [--records 10000]

A tiny Runtime API (GET /2018-06-01/runtime/invocation/next with the Lambda-Runtime-* headers,
POST .../response and .../error) on a free 127.0.0.1 port; the same server answers every other
request (the consumer's DynamoDB and SQS calls, through AWS_ENDPOINT_URL) with `{}`, which the
SDK reads as a successful PutItem. No emulator, no Docker, python3 stdlib only.

- cold init: exec of the binary -> its first GET .../next, median and min of --runs starts;
- peak RSS: VmHWM of the process once it has answered one --records-record event, and the
  RSS of a process waiting for its first event (the floor under that peak: mostly the
  binary's own pages, which count as RSS once touched);
- sizes: the binary, and the zip `sam deploy` would upload (`bootstrap`, deflated); the
  arm64 zip too when .aws-sam holds an arm64 build (`scripts/sam-build.sh arm64`).
"""

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEXT = "/2018-06-01/runtime/invocation/next"


class Runtime:
    """What the server hands out and what it saw, shared with the request threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.event = None  # the payload for the next GET .../next, or None to hold it
        self.first_next = None  # monotonic time of the first GET .../next
        self.nexts = 0  # GET .../next requests seen
        self.got_next = threading.Event()
        self.response = None
        self.answered = threading.Event()
        self.released = threading.Event()
        self.aws_calls = 0

    def reset(self, event):
        with self.lock:
            self.event = event
            self.first_next = None
            self.nexts = 0
            self.response = None
            self.got_next.clear()
            self.answered.clear()
            self.released.clear()
            self.aws_calls = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK and the runtime client expect

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"{}", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        rt = self.server.runtime
        if self.path != NEXT:
            return self.reply(404, b'{"errorMessage":"not found"}')
        now = time.monotonic()
        with rt.lock:
            if rt.first_next is None:
                rt.first_next = now
            rt.nexts += 1
            event, rt.event = rt.event, None
        rt.got_next.set()
        if event is None:
            # Nothing to hand out: hold the request until the measurement is over.
            rt.released.wait(30)
            return
        deadline_ms = int(time.time() * 1000) + 900_000
        self.reply(
            200,
            event,
            [
                ("Lambda-Runtime-Aws-Request-Id", "bench-request-1"),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ],
        )

    def do_POST(self):
        rt = self.server.runtime
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/2018-06-01/runtime/"):
            self.reply(202, b'{"status":"OK"}')
            if "/invocation/" in self.path:
                rt.response = (self.path.rsplit("/", 1)[-1], body)
                rt.answered.set()
            return
        # An AWS API call (PutItem, SendMessage, ChangeMessageVisibilityBatch): success.
        with rt.lock:
            rt.aws_calls += 1
        self.reply(200)


def consumer_env(port):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUST_LOG"))}
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "TABLE_NAME": "notes",
            "DLQ_URL": f"http://127.0.0.1:{port}/000000000000/notes-dlq",
        }
    )
    return env


def start(binary, port, log):
    return subprocess.Popen([binary], env=consumer_env(port), stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def stop(proc, rt):
    # SIGTERM, as Lambda's shutdown sends it (and so that a wrapper such as valgrind can
    # write its report), then SIGKILL.
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    rt.released.set()


def rss_kib(pid):
    """The process's resident set now, in KiB: {"VmHWM", "RssAnon", "RssFile"}."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if line.startswith(("VmHWM:", "RssAnon:", "RssFile:")))
    return {name: int(value.split()[0]) for name, value in fields.items()}


def cold_init(binary, port, rt, runs):
    """Seconds from exec to the first GET .../next, per run, and the RSS of the last run's
    process waiting for its first event (the floor under every event's peak)."""
    times, idle = [], None
    for _ in range(runs):
        rt.reset(None)
        started = time.monotonic()
        with open(os.devnull, "wb") as null:
            proc = start(binary, port, null)
            if not rt.got_next.wait(10):
                stop(proc, rt)
                sys.exit(f"bench-runtime: {binary} never asked for an invocation")
            times.append(rt.first_next - started)
            idle = rss_kib(proc.pid)
            stop(proc, rt)
    return times, idle


def event(records):
    """A standard-queue event of valid ~300-byte note messages, as Lambda sends it."""
    out = []
    for i in range(records):
        body = json.dumps(
            {
                "schema": 1,
                "op": "upsert",
                "note": {
                    "id": f"note-{i:08}",
                    "version": 1 + i % 7,
                    "updated_at": "2026-11-27T09:30:00.123Z",
                    "title": f"Weekly sync {i}",
                    "body": f"Meeting notes {i}: agreed to ship the offline outbox first.\nFollow-ups: retry "
                    f"policy, alarm thresholds, DLQ runbook; owners assigned, review on Friday. Item {i:06}.",
                },
                "client_id": "laptop-7f3a9c2e",
            },
            separators=(",", ":"),
        )
        out.append(
            {
                "messageId": f"0b6e8f1c-{i % 0xFFFF:04x}-4000-8000-{i:012x}",
                "receiptHandle": "AQEB" + "Zm9vYmFyYmF6cXV4" * 23 + f"{i:08}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(1_795_772_400_000 + i),
                    "SenderId": "AROAEXAMPLEROLEID123:notes-client",
                    "ApproximateFirstReceiveTimestamp": str(1_795_772_400_100 + i),
                },
                "messageAttributes": {},
                "md5OfBody": "e4d909c290d0fb1ca068ffaddf22cbd0",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:notes-sync-queue",
                "awsRegion": "us-east-1",
            }
        )
    return json.dumps({"Records": out}, separators=(",", ":")).encode()


def peak_rss(binary, port, rt, records, log_path):
    """VmHWM (KiB) after answering one event, the response, the log bytes and the AWS calls."""
    payload = event(records)
    rt.reset(payload)
    with open(log_path, "wb") as log:
        proc = start(binary, port, log)
        if not rt.answered.wait(300):
            stop(proc, rt)
            sys.exit(f"bench-runtime: no response to the {records}-record event (see {log_path})")
        # The runtime asks for the next invocation once the response is out: the peak is in.
        waited = time.monotonic()
        while rt.nexts < 2 and time.monotonic() - waited < 10:
            time.sleep(0.01)
        hwm = rss_kib(proc.pid)["VmHWM"]
        stop(proc, rt)
    return hwm, len(payload), rt.response, os.path.getsize(log_path), rt.aws_calls


def zip_size(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())


def elf_machine(path):
    with open(path, "rb") as f:
        header = f.read(20)
    return {0x3E: "x86_64", 0xB7: "arm64"}.get(int.from_bytes(header[18:20], "little"), "unknown")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "consumer"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"bench-runtime: {args.binary} not found: cargo build --release --bin consumer")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.runtime = rt = Runtime()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        cold_init(args.binary, port, rt, 3)  # warm the page cache: Lambda's disk is warm too
        cold, idle = cold_init(args.binary, port, rt, args.runs)
        cold = [t * 1000 for t in cold]
        log_path = os.path.join(ROOT, "target", "bench-runtime-consumer.log")
        hwm, event_bytes, response, log_bytes, aws_calls = peak_rss(args.binary, port, rt, args.records, log_path)
    finally:
        server.shutdown()

    request_id, body = response
    failures = json.loads(body).get("batchItemFailures")
    if failures != []:
        sys.exit(f"bench-runtime: unexpected response {body[:200]!r} (see {log_path})")

    print()
    print(f"consumer under a local Runtime API: {args.binary} ({elf_machine(args.binary)})")
    print()
    print("| what | figure |")
    print("|---|---|")
    print(
        f"| cold init, exec → first `next` ({args.runs} runs) | median {statistics.median(cold):.1f} ms, "
        f"min {min(cold):.1f} ms |"
    )
    print(
        f"| peak RSS (VmHWM), one {args.records:,}-record event ({event_bytes / 1e6:.1f} MB) | "
        f"{hwm / 1024:.1f} MiB |"
    )
    print(
        f"| RSS waiting for the first event (file-backed: the binary's and libraries' pages / anonymous) | "
        f"{(idle['RssFile'] + idle['RssAnon']) / 1024:.1f} MiB ({idle['RssFile'] / 1024:.1f} / "
        f"{idle['RssAnon'] / 1024:.1f}) |"
    )
    print(f"| logs for that event (stdout + stderr) | {log_bytes:,} bytes, {log_bytes / args.records:.0f} per record |")
    print(f"| AWS calls answered | {aws_calls:,} |")
    print(
        f"| release binary / zip (deflated `bootstrap`) | {os.path.getsize(args.binary) / 2**20:.1f} MiB / "
        f"{zip_size(args.binary) / 1e6:.2f} MB |"
    )
    arm = os.path.join(ROOT, ".aws-sam", "build", "ConsumerFunction", "bootstrap")
    if os.path.exists(arm) and elf_machine(arm) == "arm64":
        built = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(arm)))
        print(
            f"| arm64 `bootstrap` / zip (`scripts/sam-build.sh arm64`, built {built} UTC) | "
            f"{os.path.getsize(arm) / 2**20:.1f} MiB / {zip_size(arm) / 1e6:.2f} MB |"
        )
    else:
        print("| arm64 zip | not built: `make bench ARM64=1` or `scripts/sam-build.sh arm64` |")
    with open("/proc/loadavg") as f:
        print(f"\nload average: {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    main()
