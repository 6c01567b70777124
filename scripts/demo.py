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
  6. the `notes` client: notes written while SQS is unreachable stay pending in its SQLite
     outbox (`notes status`), then `notes sync --watch` drains them under the feature flags
     once SQS is back.

Then it prints a summary. For speed (and said in the summary): backoff starts at 1 s and is
capped at 8 s (deployed: 5 s and 900 s), and the alarm's period is 10 s instead of 60 s; its
threshold and number of periods are the template's. Every process it starts is stopped on
exit, Ctrl-C included.
"""
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"
SQS_ENDPOINT = "http://127.0.0.1:4566"
MOTO = ("127.0.0.1", 5000)
STORE_PROXY = ("127.0.0.1", 5077)
SQS = ("127.0.0.1", 4566)
SQS_PROXY = ("127.0.0.1", 4577)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1"}
os.environ.update(CREDENTIALS)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)


def say(text):
    print(f"[{time.monotonic() - START:5.1f}s] {text}", flush=True)


class Switch:
    """A TCP proxy in front of an emulator that can refuse its clients (an outage) and come
    back on the same address with the data intact: moto for the consumer, SQS for the client."""

    def __init__(self, listen, upstream):
        self.listen, self.upstream = listen, upstream
        self.up = True
        self.writers = set()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.serve(), self.loop).result()

    async def serve(self):
        self.server = await asyncio.start_server(self.handle, *self.listen)

    async def handle(self, reader, writer):
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return

        self.writers.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def set(self, up):
        """Switches; going down also cuts the connections the consumer keeps open."""
        self.up = up
        if not up:
            def cut():
                for w in self.writers:
                    w.close()
                self.writers.clear()
            self.loop.call_soon_threadsafe(cut)


class Demo:
    def __init__(self):
        self.processes = []
        self.started_emulators = False
        self.sent_valid = 0
        self.sent_malformed = 0

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
        self.store = Switch(STORE_PROXY, MOTO)
        self.sqs_switch = Switch(SQS_PROXY, SQS)
        self.log_path = STATE / "demo-consumer.log"
        env = {**os.environ, "TABLE_NAME": self.r["table"], "DLQ_URL": self.r["dlq_url"],
               "MAX_RECEIVE_COUNT": str(self.r["max_receive_count"]), "BACKOFF_BASE_SECONDS": "1",
               "BACKOFF_MAX_SECONDS": "8", "AWS_ENDPOINT_URL": SQS_ENDPOINT,
               "AWS_ENDPOINT_URL_DYNAMODB": f"http://{STORE_PROXY[0]}:{STORE_PROXY[1]}"}
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
        if self.started_emulators:
            subprocess.run([ROOT / "scripts/emulators.sh", "down"], check=False)

    # ------------------------------------------------------------------ helpers
    def send(self, bodies):
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i:i + 10])]
            self.sqs.send_message_batch(QueueUrl=self.r["queue_url"], Entries=entries)

    def note(self, note_id, version=1):
        self.sent_valid += 1
        return json.dumps({"schema": 1, "op": "upsert", "client_id": "demo-laptop", "note": {
            "id": note_id, "version": version, "title": f"note {note_id}", "body": "…",
            "updated_at": "2026-11-27T10:00:00Z"}})

    def depth(self, url):
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in a.values())

    def stored(self):
        return self.dynamodb.scan(TableName=self.r["table"], Select="COUNT")["Count"]

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
        dlq = self.r["dlq_url"]

        say("1. sending 10 valid notes, 3 malformed messages and 100 from a client on schema 2")
        malformed = ["this is not JSON",
                     json.dumps({"schema": 1, "op": "upsert", "client_id": "c", "note": {"id": "x", "updated_at": "2026-11-27T10:00:00Z", "title": "", "body": ""}}),
                     json.dumps({"schema": 1, "op": "archive", "client_id": "c", "note": {"id": "y", "version": 1, "updated_at": "2026-11-27T10:00:00Z"}})]
        future = [json.dumps({"schema": 2, "op": "upsert", "client_id": "new-app", "note": {
            "id": f"s2-{i}", "version": 1, "title": "t", "body": "b", "updated_at": "2026-11-27T10:00:00Z"}})
            for i in range(100)]
        self.sent_malformed += len(malformed) + len(future)
        self.send([self.note(f"n{i}") for i in range(10)] + malformed + future)
        self.wait("10 stored and 103 dead-lettered", lambda: self.stored() == 10 and self.depth(dlq) == 103)
        say(f"   stored {self.stored()}, dead-lettered {self.depth(dlq)}")

        say("2. store outage (8 s): 10 notes sent meanwhile are retried with backoff")
        self.store.set(False)
        self.send([self.note(f"burst{i}") for i in range(10)])
        time.sleep(8)
        self.store.set(True)
        self.wait("the burst stored", lambda: self.stored() == 20)
        say(f"   store back: stored {self.stored()}, none dead-lettered (DLQ still {self.depth(dlq)})")

        say(f"3. long store outage: 5 notes fail {self.r['max_receive_count']} times and are redriven to the DLQ")
        self.store.set(False)
        self.send([self.note(f"late{i}") for i in range(5)])
        self.wait("the redrive policy to move them", lambda: self.depth(dlq) == 108, timeout=150)
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
        self.store.set(True)
        reasons = self.dlq_reasons(dlq)
        # The destination must be named: the consumer dead-letters bad messages itself
        # (SendMessage), so they carry no record of a source queue to return to.
        self.sqs.start_message_move_task(SourceArn=self.r["dlq_arn"], DestinationArn=self.r["queue_arn"])
        self.wait("the move task", self.move_done, timeout=60)
        self.wait("the redriven notes stored", lambda: self.stored() == 25, timeout=60)
        self.wait("the malformed ones dead-lettered again", lambda: self.depth(dlq) == 103 and self.depth(self.r["queue_url"]) == 0, timeout=60)
        self.redriven = self.stored() - 20
        client = self.client()
        self.summary(notification, reasons, client)

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
        self.client_env = {**os.environ, "NOTES_DB": str(db), "NOTES_QUEUE_URL": self.r["queue_url"],
                           "AWS_ENDPOINT_URL": f"http://{SQS_PROXY[0]}:{SQS_PROXY[1]}"}
        before = self.stored()

        say("6. client: SQS unreachable; 5 notes written with `notes add` (one edited twice) stay pending")
        self.sqs_switch.set(False)
        ids = [self.notes("add", "--title", f"offline {i}", "--body", "written on a train").stdout.strip()
               for i in range(5)]
        for body in ("second draft", "final draft"):
            last = self.notes("edit", ids[0], "--body", body)
        say(f"   notes edit {ids[0]}: {last.stderr.strip()}")
        status = json.loads(self.notes("status", "--json").stdout)["status"]
        say(f"   notes status: {status['pending']} pending, up to {status['max_attempts']} attempt(s), "
            f"last error: {(status['last_error'] or '')[:90]}")

        say(f"   notes sync --watch --flags {flags.relative_to(ROOT)} (retry_pending_notes true, every 2 s); "
            "SQS back after 5 s")
        watch = subprocess.Popen([ROOT / "target/debug/notes", "sync", "--watch", "--flags", str(flags)],
                                 env=self.client_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.processes.append(watch)
        lines = []
        threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True).start()
        time.sleep(5)
        self.sqs_switch.set(True)
        self.wait("the client's notes stored", lambda: self.stored() == before + 5, timeout=60)
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=30)
        for line in lines:
            if line.startswith("sent"):
                say(f"   watch: {line.strip()}")
        status = json.loads(self.notes("status", "--json").stdout)["status"]
        say(f"   notes status: {status['pending']} pending, {status['sent']} sent; "
            f"stored in DynamoDB: {self.stored() - before}")
        self.sent_valid += 5
        return {"written": 5, "edits": 2, "pending_offline": 5, "stored": self.stored() - before,
                "pending_after": status["pending"]}

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

    def summary(self, notification, reasons, client):
        logs = self.logs()
        outcomes = [l for l in logs if l.get("event") == "outcome"]
        retries = [l for l in outcomes if l.get("outcome") == "retry"]
        delays = collections.defaultdict(set)
        for l in retries:
            delays[l["receive_count"]].add(l["next_delay_s"])
        stored, in_dlq = self.stored(), self.depth(self.r["dlq_url"])
        sent = self.sent_valid + self.sent_malformed
        print()
        print("notes-sync demo summary")
        print(f"  sent            {sent} ({self.sent_valid} valid notes, {self.sent_malformed} malformed)")
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


START = time.monotonic()
demo = Demo()
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
