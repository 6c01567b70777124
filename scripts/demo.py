"""The whole system on this machine, with no AWS account: `make demo`.

Starts LocalStack and moto, provisions them from template.yaml (scripts/provision.py), runs
`consumer poll` against the source queue, and plays a workload through it:

  1. valid notes, plus malformed messages and a burst of 100 messages from a client that
     speaks a schema this consumer does not know;
  2. a short store outage: the notes sent meanwhile are retried with backoff and stored;
  3. a long store outage: notes exhaust maxReceiveCount and the queue's redrive policy moves
     them to the dead-letter queue;
  4. the DLQ-depth alarm goes to ALARM and its notification arrives through SNS;
  5. the store is back, so the DLQ is redriven with StartMessageMoveTask: the notes that
     failed for the outage are stored, the malformed ones come back with their reason;
  6. the `notes` client as a trusted service: notes written while SQS is unreachable stay
     pending in its SQLite outbox (`notes status`), then `notes sync --watch` drains them under
     the feature flags once SQS is back;
  7. the `notes` client as end users, through the sync API (`cargo lambda watch`, Cognito in
     moto, no AWS credentials on any device): alice on a laptop and a phone, bob on his own;
     offline edits on both of alice's devices, a conflict kept and resolved, a change the server
     rejects seen by its author, and bob seeing none of alice's notes.

Then it prints a summary. For speed (and said in the summary): backoff starts at 1 s and is
capped at 8 s (deployed: 5 s and 900 s), and the alarm's period is 10 s instead of 60 s; its
threshold and number of periods are the template's. Every process it starts is stopped on
exit, Ctrl-C included.

Its Python dependencies are pinned in scripts/venvs.sh (`scripts`), whose venv runs it.
"""
import collections
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3

from fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("VENV_DIR", ROOT / ".venv"))
STATE = ROOT / ".local"
SQS_ENDPOINT = "http://127.0.0.1:4566"
MOTO = ("127.0.0.1", 5000)
SQS = ("127.0.0.1", 4566)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1"}
START = time.monotonic()
# The demo users' password (moto's Cognito): given on stdin, never as an argument.
DEMO_PASSWORD = "Demo-password-0123456789"
# The owner the demo's workload writes as (a trusted sender sets it; the sync API takes it from the token).
OWNER_ATTRIBUTE = {"owner": {"DataType": "String", "StringValue": "demo-service"}}


def say(text):
    print(f"[{time.monotonic() - START:5.1f}s] {text}", flush=True)


def message(note_id, version=1, *, schema=1, op="upsert", client_id="demo-laptop", **note):
    """A note message as a client sends it, valid unless told otherwise: `note` overrides the
    note's fields, and a field given as None is left out."""
    fields = {"id": note_id, "version": version, "title": f"note {note_id}", "body": "…",
              "updated_at": "2026-11-27T10:00:00Z", **note}
    return json.dumps({"schema": schema, "op": op, "client_id": client_id,
                       "note": {k: v for k, v in fields.items() if v is not None}})


@dataclass(frozen=True)
class Workload:
    """What the demo sends, phase by phase. Every count it waits for is derived from this, so
    a change here cannot leave a stale expectation behind."""
    # 1. valid notes, messages the consumer dead-letters on their first receive, and notes
    #    from a client on a schema this consumer does not know (dead-lettered too)
    valid: int = 10
    malformed: tuple = ("this is not JSON",
                        message("x", version=None, client_id="c", title="", body=""),
                        message("y", op="archive", client_id="c", title=None, body=None))
    future_schema: int = 100
    # 2. notes sent during a store outage shorter than the retry budget: retried, then stored
    short_outage_notes: int = 10
    short_outage_s: int = 8
    # 3. notes sent during an outage longer than it: moved to the DLQ by the redrive policy
    long_outage_notes: int = 5
    # 6. notes the client writes while SQS is unreachable, the first edited again each time
    offline_notes: int = 5
    offline_edits: tuple = ("second draft", "final draft")
    sqs_down_s: int = 5

    @property
    def rejected(self):
        """Messages the consumer itself dead-letters, with their reason."""
        return len(self.malformed) + self.future_schema

    @property
    def stored_by_consumer(self):
        """Notes stored once the DLQ is redriven (phase 5), before the client's."""
        return self.valid + self.short_outage_notes + self.long_outage_notes


class Demo:
    def __init__(self, workload):
        self.w = workload
        self.processes = []
        self.proxies = []
        self.started_emulators = False
        # Messages SQS acknowledged, by kind: the ledger's left-hand side.
        self.sent = collections.Counter()

    # ------------------------------------------------------------------ setup and teardown
    def start(self):
        if subprocess.run([ROOT / "scripts/emulators.sh", "running"]).returncode != 0:
            say("starting LocalStack (SQS, SNS, CloudWatch, SSM) and moto (DynamoDB) on 127.0.0.1")
            subprocess.run([ROOT / "scripts/emulators.sh", "up"], check=True, stdout=subprocess.DEVNULL)
            self.started_emulators = True
        stack = f"demo-{int(time.time())}"
        out = subprocess.run(
            [sys.executable, ROOT / "scripts/provision.py", "--stack", stack, "--queue-type", "standard",
             "--alarm-period", "10"], check=True, capture_output=True, text=True)
        self.r = json.loads(out.stdout)["standard"]
        say(f"provisioned from template.yaml: queue {stack}-queue (maxReceiveCount "
            f"{self.r['max_receive_count']}), DLQ {stack}-dlq, table {self.r['table']}, alarm "
            f"{self.r['alarm_name']} (> {self.r['alarm_threshold']:.0f} for {self.r['alarm_evaluation_periods']} periods)")
        self.sqs = boto3.client("sqs", endpoint_url=SQS_ENDPOINT)
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=SQS_ENDPOINT)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=f"http://{MOTO[0]}:{MOTO[1]}")
        # The fault proxies: the store for the consumer, SQS for the client.
        self.store = FaultProxy(MOTO)
        self.sqs_switch = FaultProxy(SQS)
        self.proxies += [self.store, self.sqs_switch]
        self.log_path = STATE / "demo-consumer.log"
        env = {**os.environ, "TABLE_NAME": self.r["table"], "DLQ_URL": self.r["dlq_url"],
               "MAX_RECEIVE_COUNT": str(self.r["max_receive_count"]), "BACKOFF_BASE_SECONDS": "1",
               "BACKOFF_MAX_SECONDS": "8", "AWS_ENDPOINT_URL": SQS_ENDPOINT,
               "AWS_ENDPOINT_URL_DYNAMODB": self.store.endpoint}
        env.pop("AWS_LAMBDA_RUNTIME_API", None)
        self.consumer = subprocess.Popen(
            [ROOT / "target/debug/consumer", "poll", "--queue-url", self.r["queue_url"], "--wait-seconds", "1"],
            env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        self.processes.append(self.consumer)
        say(f"consumer polling (log: {self.log_path.relative_to(ROOT)})")

    def stop(self):
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        for proxy in self.proxies:
            proxy.close()
        if self.started_emulators:
            subprocess.run([ROOT / "scripts/emulators.sh", "down"], check=False)

    # ------------------------------------------------------------------ helpers
    def send(self, kind, bodies):
        """Sends `bodies` (`kind`: "valid" or "malformed") and counts what SQS acknowledged."""
        for i in range(0, len(bodies), 10):
            # A trusted sender: it names the owner of each change.
            entries = [{"Id": str(j), "MessageBody": b, "MessageAttributes": OWNER_ATTRIBUTE}
                       for j, b in enumerate(bodies[i:i + 10])]
            out = self.sqs.send_message_batch(QueueUrl=self.r["queue_url"], Entries=entries)
            if out.get("Failed"):
                raise SystemExit(f"demo: SQS refused {len(out['Failed'])} messages: {out['Failed'][0]}")
            self.sent[kind] += len(out["Successful"])

    def notes_named(self, prefix, count):
        return [message(f"{prefix}{i}") for i in range(count)]

    def depth(self, url):
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in a.values())

    def stored(self):
        return self.dynamodb.scan(TableName=self.r["table"], Select="COUNT", FilterExpression="#e = :note",
                                  ExpressionAttributeNames={"#e": "entry"},
                                  ExpressionAttributeValues={":note": {"S": "note"}})["Count"]

    def wait(self, what, check, timeout=120):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: gave up waiting for {what}")
            if self.consumer.poll() is not None:
                raise SystemExit(f"demo: the consumer exited ({self.consumer.returncode}); see {self.log_path}")
            time.sleep(0.5)

    def logs(self):
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines

    # ------------------------------------------------------------------ the story
    def run(self):
        self.start()
        w, dlq = self.w, self.r["dlq_url"]

        say(f"1. sending {w.valid} valid notes, {len(w.malformed)} malformed messages and "
            f"{w.future_schema} from a client on schema 2")
        future = [message(f"s2-{i}", schema=2, client_id="new-app", title="t", body="b")
                  for i in range(w.future_schema)]
        self.send("valid", self.notes_named("n", w.valid))
        self.send("malformed", list(w.malformed) + future)
        self.wait(f"{w.valid} stored and {w.rejected} dead-lettered",
                  lambda: self.stored() == w.valid and self.depth(dlq) == w.rejected)
        say(f"   stored {self.stored()}, dead-lettered {self.depth(dlq)}")

        say(f"2. store outage ({w.short_outage_s} s): {w.short_outage_notes} notes sent meanwhile are "
            "retried with backoff")
        self.store.set("down")
        self.send("valid", self.notes_named("burst", w.short_outage_notes))
        time.sleep(w.short_outage_s)  # the outage itself
        self.store.set("up")
        self.wait("the burst stored", lambda: self.stored() == w.valid + w.short_outage_notes)
        say(f"   store back: stored {self.stored()}, none dead-lettered (DLQ still {self.depth(dlq)})")

        say(f"3. long store outage: {w.long_outage_notes} notes fail {self.r['max_receive_count']} times "
            "and are redriven to the DLQ")
        self.store.set("down")
        self.send("valid", self.notes_named("late", w.long_outage_notes))
        self.wait("the redrive policy to move them",
                  lambda: self.depth(dlq) == w.rejected + w.long_outage_notes, timeout=150)
        say(f"   DLQ depth {self.depth(dlq)}")

        say("4. waiting for the DLQ-depth alarm and its SNS notification")
        notification = None
        deadline = time.monotonic() + 150
        while notification is None and time.monotonic() < deadline:
            for m in self.sqs.receive_message(QueueUrl=self.r["alarm_inbox_url"], WaitTimeSeconds=5,
                                               MaxNumberOfMessages=10).get("Messages", []):
                alarm = json.loads(json.loads(m["Body"])["Message"])
                if alarm.get("NewStateValue") == "ALARM":
                    notification = alarm
        if notification is None:
            raise SystemExit("demo: no ALARM notification within 150 s")
        say(f"   {notification['AlarmName']}: {notification['OldStateValue']} -> ALARM "
            f"({notification['NewStateReason']})")

        say("5. store restored; inspecting the DLQ and redriving it with StartMessageMoveTask")
        self.store.set("up")
        reasons = self.dlq_reasons(dlq)
        before = self.stored()
        # The destination must be named: the consumer dead-letters bad messages itself
        # (SendMessage), so they carry no record of a source queue to return to.
        self.sqs.start_message_move_task(SourceArn=self.r["dlq_arn"], DestinationArn=self.r["queue_arn"])
        self.wait("the move task", self.move_done, timeout=60)
        self.wait("the redriven notes stored", lambda: self.stored() == w.stored_by_consumer, timeout=60)
        self.wait("the malformed ones dead-lettered again",
                  lambda: self.depth(dlq) == w.rejected and self.depth(self.r["queue_url"]) == 0, timeout=60)
        self.redriven = self.stored() - before
        client = self.client()
        api = self.api_scene()
        self.summary(notification, reasons, client, api)

    # ------------------------------------------------------------------ the client
    def notes(self, *args, check=True):
        """Runs the `notes` CLI against the source queue, through the SQS switch."""
        out = subprocess.run([ROOT / "target/debug/notes", *args], env=self.client_env, capture_output=True,
                             text=True)
        if check and out.returncode not in (0, 3):
            raise SystemExit(f"demo: notes {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return out

    def client(self):
        db = STATE / "demo-notes.db"
        for f in STATE.glob("demo-notes.db*"):
            f.unlink()
        flags = STATE / "demo-flags.json"
        flags.write_text(json.dumps({"features": {"retry_pending_notes": True, "retry_interval_seconds": 2}}))
        # A trusted service sending straight to SQS: it names the owner of its notes.
        self.client_env = {**os.environ, "NOTES_DB": str(db), "NOTES_QUEUE_URL": self.r["queue_url"],
                           "NOTES_OWNER": "demo-service", "AWS_ENDPOINT_URL": self.sqs_switch.endpoint}
        before = self.stored()
        w = self.w

        say(f"6. client: SQS unreachable; {w.offline_notes} notes written with `notes add` (one edited "
            f"{len(w.offline_edits)} times) stay pending")
        self.sqs_switch.set("down")
        ids = [self.notes("add", "--title", f"offline {i}", "--body", "written on a train").stdout.strip()
               for i in range(w.offline_notes)]
        for body in w.offline_edits:
            last = self.notes("edit", ids[0], "--body", body)
        say(f"   notes edit {ids[0]}: {last.stderr.strip()}")
        status = json.loads(self.notes("status", "--json").stdout)["status"]
        pending_offline = status["pending"]
        say(f"   notes status: {status['pending']} pending, up to {status['max_attempts']} attempt(s), "
            f"last error: {(status['last_error'] or '')[:90]}")

        say(f"   notes sync --watch --flags {flags.relative_to(ROOT)} (retry_pending_notes true, every 2 s); "
            f"SQS back after {w.sqs_down_s} s")
        watch = subprocess.Popen([ROOT / "target/debug/notes", "sync", "--watch", "--flags", str(flags)],
                                 env=self.client_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.processes.append(watch)
        lines = []
        threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True).start()
        time.sleep(w.sqs_down_s)  # the outage itself
        self.sqs_switch.set("up")
        self.wait("the client's notes stored", lambda: self.stored() == before + w.offline_notes, timeout=60)
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=30)
        for line in lines:
            if line.startswith("sent"):
                say(f"   watch: {line.strip()}")
        status = json.loads(self.notes("status", "--json").stdout)["status"]
        say(f"   notes status: {status['pending']} pending, {status['sent']} sent; "
            f"stored in DynamoDB: {self.stored() - before}")
        # Acknowledged by SQS: `notes sync` removes a note from its outbox only then.
        self.sent["valid"] += w.offline_notes - status["pending"]
        return {"written": w.offline_notes, "edits": len(w.offline_edits), "pending_offline": pending_offline,
                "stored": self.stored() - before, "pending_after": status["pending"]}

    def dlq_reasons(self, dlq):
        """Counts the DLQ's messages by error kind: receives them all (hidden for a minute),
        then makes them visible again, so nothing is consumed."""
        counts = collections.Counter()
        held = []
        while batch := self.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                                 MessageAttributeNames=["All"]).get("Messages", []):
            held += batch
            for m in batch:
                kind = m.get("MessageAttributes", {}).get("error_kind", {}).get("StringValue")
                counts[kind or f"failed {self.r['max_receive_count']} receives (redrive policy)"] += 1
        for i in range(0, len(held), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=[
                {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for j, m in enumerate(held[i:i + 10])])
        return counts

    def move_done(self):
        """Whether the newest move task from the DLQ has finished (the list is newest first)."""
        tasks = self.sqs.list_message_move_tasks(SourceArn=self.r["dlq_arn"])["Results"]
        if tasks and tasks[0]["Status"] == "FAILED":
            raise SystemExit(f"demo: the move task failed: {tasks[0].get('FailureReason')}")
        return bool(tasks) and tasks[0]["Status"] == "COMPLETED"

    # ------------------------------------------------------------------ the sync API
    def start_api(self):
        """Cognito (moto) with alice and bob, and the api function under `cargo lambda watch`."""
        # The template's user pool and app client (provisioned in moto); users as an operator
        # makes them (the pool takes no self sign-up).
        idp = boto3.client("cognito-idp", endpoint_url=f"http://{MOTO[0]}:{MOTO[1]}")
        pool, app = self.r["user_pool_id"], self.r["user_pool_client_id"]
        subs = {}
        for user in ("alice", "bob"):
            idp.admin_create_user(UserPoolId=pool, Username=user)
            idp.admin_set_user_password(UserPoolId=pool, Username=user, Password=DEMO_PASSWORD, Permanent=True)
            attributes = idp.admin_get_user(UserPoolId=pool, Username=user)["UserAttributes"]
            subs[user] = next(a["Value"] for a in attributes if a["Name"] == "sub")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {"QUEUE_URL": self.r["queue_url"], "TABLE_NAME": self.r["table"], "USER_POOL_ID": pool,
               "USER_POOL_CLIENT_IDS": app, "USER_POOL_REGION": "us-east-1",
               "JWKS_URL": self.r["jwks_url"], "PULL_OVERLAP_SECONDS": "5",
               "AWS_ENDPOINT_URL": SQS_ENDPOINT, "AWS_ENDPOINT_URL_DYNAMODB": f"http://{MOTO[0]}:{MOTO[1]}"}
        self.api_log = STATE / "demo-api.log"
        watch = subprocess.Popen(
            [VENVS / "tools/bin/cargo-lambda", "lambda", "watch", "--quiet", "--ignore-changes",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--bin", "api",
             *[arg for k, v in env.items() for arg in ("--env-var", f"{k}={v}")]],
            cwd=ROOT, stdout=open(self.api_log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(watch)
        # The API behind a switch, as SQS is for the trusted client: devices go offline with it.
        self.api_switch = FaultProxy(("127.0.0.1", port))
        self.proxies.append(self.api_switch)
        # Ready once the function answers (the watcher builds it on the first request): an
        # unauthenticated pull gets its one undistinguished 401.
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/lambda-url/api/v1/changes", timeout=60)
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    break
            except OSError:
                pass
            if watch.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"demo: the api function did not answer under cargo lambda watch; see {self.api_log}")
            time.sleep(0.5)
        api_url = f"{self.api_switch.endpoint}/lambda-url/api"
        return {"pool": pool, "app": app, "subs": subs, "api_url": api_url}

    def device(self, name, api, *args, stdin=None, check=True):
        """`notes` on one end user's device: its own database, no AWS credentials at all."""
        env = {"PATH": os.environ["PATH"], "HOME": str(STATE), "NOTES_DB": str(STATE / f"demo-{name}.db"),
               "NOTES_API_URL": api["api_url"], "NOTES_USER_POOL_CLIENT_ID": api["app"],
               "NOTES_USER_POOL_ID": api["pool"],
               "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": f"http://{MOTO[0]}:{MOTO[1]}"}
        out = subprocess.run([ROOT / "target/debug/notes", *args], env=env, input=stdin, capture_output=True,
                             text=True)
        if check and out.returncode not in (0, 3):
            raise SystemExit(f"demo: notes ({name}) {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return out

    def api_scene(self):
        say("7. end users through the sync API (cargo lambda watch; Cognito in moto; no AWS credentials on devices)")
        api = self.start_api()
        for f in STATE.glob("demo-laptop.db*"):
            f.unlink()
        for f in list(STATE.glob("demo-phone.db*")) + list(STATE.glob("demo-bob.db*")):
            f.unlink()
        for name, user in (("laptop", "alice"), ("phone", "alice"), ("bob", "bob")):
            line = self.device(name, api, "login", "--username", user, "--password-stdin",
                               stdin=DEMO_PASSWORD + "\n").stdout.strip()
            say(f"   {name}: notes login -> {line}")
        before = self.stored()
        note = self.device("laptop", api, "add", "--title", "Groceries", "--body", "milk").stdout.strip()
        self.device("phone", api, "sync")
        shown = json.loads(self.device("phone", api, "show", note, "--json").stdout)
        say(f"   laptop: notes add {note}; phone: notes sync -> {shown['state']} v{shown['version']} ({shown['body']})")

        self.api_switch.set("down")
        self.device("laptop", api, "edit", note, "--body", "milk, eggs")
        time.sleep(0.01)
        self.device("phone", api, "edit", note, "--body", "milk, bread")
        secret = self.device("laptop", api, "add", "--title", "From a newer build", "--body", "b").stdout.strip()
        # A change the server refuses: as a newer build of the app would write it (schema 2).
        db = sqlite3.connect(STATE / "demo-laptop.db")
        with db:
            body = json.loads(db.execute("SELECT body FROM outbox WHERE note_id = ?", (secret,)).fetchone()[0])
            body["schema"] = 2
            db.execute("UPDATE outbox SET body = ? WHERE note_id = ?", (json.dumps(body), secret))
        db.close()
        pending = {n: json.loads(self.device(n, api, "status", "--json").stdout)["status"]["pending"]
                   for n in ("laptop", "phone")}
        say(f"   API unreachable: laptop and phone edit {note} offline; pending: laptop {pending['laptop']}, "
            f"phone {pending['phone']}")
        self.api_switch.set("up")
        reports = []
        for name in ("laptop", "phone", "laptop"):
            out = self.device(name, api, "sync")
            reports.append(f"{name}: {out.stdout.strip()}")
            say(f"   notes sync ({name}): {out.stdout.strip()}")
            if out.stderr.strip():
                say(f"      {out.stderr.strip()}")
        conflicts = json.loads(self.device("laptop", api, "conflicts", "--json").stdout)
        for c in conflicts:
            say(f"   laptop: notes conflicts -> {c['id']}: {c['side']} text v{c['version']} ({c['body']}): {c['reason']}")
        self.device("laptop", api, "resolve", conflicts[0]["id"], "--keep", "mine")
        self.device("laptop", api, "sync")
        self.device("phone", api, "sync")
        laptop = json.loads(self.device("laptop", api, "show", note, "--json").stdout)
        phone = json.loads(self.device("phone", api, "show", note, "--json").stdout)
        say(f"   laptop: notes resolve --keep mine; both devices now v{laptop['version']} "
            f"({laptop['body']} / {phone['body']}), {laptop['state']} / {phone['state']}")
        rejected = json.loads(self.device("laptop", api, "show", secret, "--json").stdout)
        say(f"   laptop: notes show {secret} -> {rejected['state']} {rejected.get('kind')}: {rejected.get('reason')}")
        self.device("bob", api, "sync")
        bobs = json.loads(self.device("bob", api, "list", "--json").stdout)
        say(f"   bob: notes sync; notes list -> {len(bobs)} notes (alice's are not his)")
        # Through the API one new note reached SQS and was stored (the edits replaced it; the
        # refused change never left the laptop).
        self.sent["valid"] += self.stored() - before
        if laptop["body"] != phone["body"] or rejected["state"] != "rejected" or bobs or len(conflicts) != 1:
            raise SystemExit("demo: the sync API scene did not end as expected")
        return {"conflicts": len(conflicts), "kept": conflicts[0]["side"], "version": laptop["version"],
                "rejected": f"{rejected.get('kind')}", "bob": len(bobs), "stored": self.stored() - before}

    def summary(self, notification, reasons, client, api):
        logs = self.logs()
        outcomes = [l for l in logs if l.get("event") == "outcome"]
        retries = [l for l in outcomes if l.get("outcome") == "transient"]
        delays = collections.defaultdict(set)
        for l in retries:
            delays[l["receive_count"]].add(l["next_delay_s"])
        stored, in_dlq = self.stored(), self.depth(self.r["dlq_url"])
        sent = sum(self.sent.values())
        print()
        print("notes-sync demo summary")
        print(f"  sent            {sent} ({self.sent['valid']} valid notes, {self.sent['malformed']} malformed)")
        print(f"  stored          {stored} notes in DynamoDB")
        print(f"  retried         {len(retries)} deliveries; backoff delay by receive count: "
              + ", ".join(f"#{n}: {min(d)}-{max(d)} s" for n, d in sorted(delays.items())))
        print(f"  final attempts  {sum(1 for l in outcomes if l.get('final_attempt'))} (moved to the DLQ by the redrive policy on the next receive)")
        print(f"  dead-lettered   {sum(reasons.values())}: " + ", ".join(f"{n} {k}" for k, n in reasons.most_common()))
        print(f"  alarm           {notification['AlarmName']}: ALARM, notification received through SNS "
              f"(period 10 s for the demo; template: {self.r['template_alarm_period']} s)")
        print(f"  redrive         StartMessageMoveTask: {self.redriven} outage notes stored; "
              f"{in_dlq} malformed back in the DLQ with their reason (fix the sender, then purge)")
        print(f"  client          {client['written']} notes written offline ({client['edits']} edits coalesced), "
              f"{client['pending_offline']} pending while SQS was down; sync --watch drained them: "
              f"{client['stored']} stored, {client['pending_after']} pending")
        print(f"  sync API        alice on 2 devices, no AWS credentials: {api['conflicts']} conflict "
              f"(the laptop's text kept, then resolved: both at v{api['version']}), 1 change rejected at push "
              f"({api['rejected']}) shown to its author; bob sees {api['bob']} of alice's notes")
        print(f"  DLQ depth       {in_dlq}")
        ages = [l for l in logs if "MessageAgeMax" in l]
        if ages:
            medians = sorted(l["MessageAgeP50"] for l in ages)
            print(f"  message age     at processing, over {len(ages)} batches: median of batch medians "
                  f"{medians[(len(medians) - 1) // 2] / 1000:.1f} s, oldest {max(l['MessageAgeMax'] for l in ages) / 1000:.1f} s "
                  "(the outages' retries)")
        widgets = json.loads(self.cloudwatch.get_dashboard(DashboardName=self.r["dashboard"])["DashboardBody"])["widgets"]
        print(f"  dashboard       {self.r['dashboard']}: {len(widgets)} widgets read back from CloudWatch "
              f"({sum(w['type'] == 'alarm' for w in widgets)} alarm status)")
        lost = sent - stored - in_dlq
        print(f"  lost            {lost}   (sent {sent} = stored {stored} + in DLQ {in_dlq})")
        if lost:
            raise SystemExit("demo: messages unaccounted for")


def main():
    os.environ.update(CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    demo = Demo(Workload())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    # Explicitly: a shell that starts this in the background would otherwise leave Ctrl-C ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        demo.run()
    except KeyboardInterrupt:
        print("\ndemo: interrupted, cleaning up", file=sys.stderr)
        sys.exit(130)
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
