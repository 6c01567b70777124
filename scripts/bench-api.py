"""The sync API end to end on this machine: the release `api` binary under `cargo lambda watch
--only-lambda-apis` (the Lambda Runtime API and function URLs, emulated), a real access token
from the provisioned user pool (moto's Cognito), LocalStack's SQS behind it. Clients push
batches of ten changes for a few seconds each; one function instance per client, as Lambda
scales. Prints changes/s and request latency for one client and for ten.

    .venv/scripts/bin/python scripts/bench-api.py [--seconds 10] [--clients 1,10]

Needs target/release/api (`cargo build --release --bin api`; `make bench` builds it) and the
emulators (started and stopped here unless already running).
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def change(i, client):
    return {"schema": 1, "op": "upsert", "client_id": f"bench-{client}",
            "note": {"id": f"bench-{client}-{i}", "version": 1, "title": "Groceries",
                     "body": "milk, eggs, bread, coffee and a birthday card" * 3, "updated_at": "2026-11-27T10:00:00Z"}}


def run_clients(url, token, clients, seconds):
    latencies, accepted = [], [0] * clients
    stop = time.monotonic() + seconds

    def client(c):
        i = 0
        while time.monotonic() < stop:
            body = json.dumps({"changes": [change(i + k, c) for k in range(10)]}).encode()
            request = urllib.request.Request(f"{url}/v1/changes", data=body, method="POST",
                                             headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=30) as response:
                results = json.load(response)["results"]
            latencies.append(time.monotonic() - started)
            accepted[c] += sum(r["status"] == "accepted" for r in results)
            i += 10

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(accepted) / (time.monotonic() - started), latencies


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--clients", default="1,10")
    args = p.parse_args()
    binary = ROOT / "target/release/api"
    if not binary.exists():
        sys.exit("bench-api: no target/release/api: run `cargo build --release --bin api`")
    STATE.mkdir(exist_ok=True)
    # The emulators take any credentials; real ones must never reach them.
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    env = dict(os.environ)
    started_emulators = subprocess.run([ROOT / "scripts/emulators.sh", "running"]).returncode != 0
    processes = []
    try:
        if started_emulators:
            subprocess.run([ROOT / "scripts/emulators.sh", "up"], check=True)
        out = subprocess.run([ROOT / "scripts/emulators.sh", "provision"], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)["standard"]
        token = subprocess.run([sys.executable, ROOT / "scripts/sample_token.py", "--endpoint", "http://127.0.0.1:5000",
                                "--pool-id", r["user_pool_id"], "--client-id", r["user_pool_client_id"]],
                               check=True, capture_output=True, text=True).stdout.strip()
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            port = free_port()
            watcher = subprocess.Popen([ROOT / ".venv/tools/bin/cargo-lambda", "lambda", "watch", "--only-lambda-apis",
                                        "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            processes.append(watcher)
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            function_env = {**env, "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt",
                            "AWS_LAMBDA_FUNCTION_NAME": "_", "AWS_LAMBDA_FUNCTION_VERSION": "1",
                            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "RUST_LOG": "warn",
                            "QUEUE_URL": r["queue_url"], "TABLE_NAME": r["table"], "USER_POOL_ID": r["user_pool_id"],
                            "USER_POOL_CLIENT_IDS": r["user_pool_client_id"], "JWKS_URL": r["jwks_url"],
                            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000"}
            for _ in range(clients):
                processes.append(subprocess.Popen([binary], env=function_env, stdout=subprocess.DEVNULL))
            url = f"http://127.0.0.1:{port}/lambda-url/_"
            run_clients(url, token, clients, 1)  # warm: the JWKS fetched, connections made
            rate, latencies = run_clients(url, token, clients, args.seconds)
            ms = sorted(l * 1000 for l in latencies)
            rows.append((clients, rate, statistics.median(ms), ms[int(len(ms) * 0.99) - 1], len(ms)))
            for proc in processes:
                proc.send_signal(signal.SIGTERM)
            for proc in processes:
                proc.wait(timeout=10)
            processes.clear()
        print()
        print("api end to end: POST /v1/changes of 10 changes, release api under cargo lambda watch, LocalStack SQS")
        print()
        print("| clients | changes/s accepted | request p50 ms | request p99 ms | requests |")
        print("|---:|---:|---:|---:|---:|")
        for clients, rate, p50, p99, n in rows:
            print(f"| {clients} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {n} |")
    finally:
        for proc in processes:
            proc.kill()
        if started_emulators:
            subprocess.run([ROOT / "scripts/emulators.sh", "down"], check=False)


if __name__ == "__main__":
    main()
