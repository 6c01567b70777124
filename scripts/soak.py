"""The soak test: competing consumers under faults, then a ledger that must show nothing lost.

    scripts/soak.py [--notes N] [--consumers C] [--seconds S] [--kill-every K] [--outage-every O]
                    [--outage-seconds D] [--malformed M] [--seed X]

What it does, on LocalStack (SQS) and moto (DynamoDB), started by scripts/emulators.sh if they are
not already serving:
- C `consumer poll` processes compete for one standard queue (the template's redrive policy to
  its DLQ), their store behind scripts/fault_proxy.py;
- N notes, each sent as versions 1..V out of order, some versions twice, over S seconds, with M
  malformed messages among them (not JSON, a missing field, an unknown op, a future schema);
- every K seconds one consumer is SIGKILLed mid-work and a new one started; every O seconds the
  store goes down for D seconds.
When the queue has drained, the ledger: every note stored at its highest version, or that version
in the DLQ (the redrive policy's, after an outage outlasting its retries), every malformed message
in the DLQ with the consumer's reason; `lost` must be 0 (exit 1 otherwise).

`make soak` runs the defaults (a few minutes); `.ci/run` runs a short form.
"""
import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

from fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"
SQS_ENDPOINT = "http://127.0.0.1:4566"
MOTO = ("127.0.0.1", 5000)
OWNER = "soak-service"
START = time.monotonic()


def say(text):
    print(f"[{time.monotonic() - START:6.1f}s] {text}", flush=True)


def note_message(note_id, version):
    return json.dumps({"schema": 1, "op": "upsert", "client_id": "soak", "note": {
        "id": note_id, "version": version, "title": f"t{version}", "body": "b",
        "updated_at": f"2026-12-02T10:00:{version:02d}Z"}})


MALFORMED = [
    ("invalid_json", lambda i: f"not json {i}"),
    ("invalid_message", lambda i: json.dumps({"schema": 1, "op": "upsert", "client_id": "c",
                                               "note": {"id": f"m{i}", "title": "", "body": ""}})),
    ("invalid_message", lambda i: json.dumps({"schema": 1, "op": "archive", "client_id": "c",
                                               "note": {"id": f"m{i}", "version": 1}})),
    ("unsupported_schema", lambda i: note_message(f"m{i}", 1).replace('"schema": 1', '"schema": 2', 1)),
]


class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.consumers = []
        self.kills = self.outages = 0
        self.started_emulators = False
        self.stop_faults = threading.Event()

    def start(self):
        if subprocess.run([ROOT / "scripts/emulators.sh", "running"]).returncode != 0:
            say("starting LocalStack and moto on 127.0.0.1")
            subprocess.run([ROOT / "scripts/emulators.sh", "up"], check=True, stdout=subprocess.DEVNULL)
            self.started_emulators = True
        stack = f"soak-{int(time.time())}"
        out = subprocess.run([sys.executable, ROOT / "scripts/provision.py", "--stack", stack, "--queue-type",
                              "standard"], check=True, capture_output=True, text=True)
        self.r = json.loads(out.stdout)["standard"]
        self.sqs = boto3.client("sqs", endpoint_url=SQS_ENDPOINT)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=f"http://{MOTO[0]}:{MOTO[1]}")
        # A killed consumer's messages come back when their visibility runs out: the template's
        # minutes would make the soak wait, so its queue uses seconds.
        self.sqs.set_queue_attributes(QueueUrl=self.r["queue_url"], Attributes={"VisibilityTimeout": "10"})
        self.store = FaultProxy(MOTO)
        self.log = open(STATE / "soak-consumers.log", "w")
        for _ in range(self.a.consumers):
            self.start_consumer()
        say(f"queue {stack}-queue (maxReceiveCount {self.r['max_receive_count']}), "
            f"{self.a.consumers} consumers polling, the store behind a fault proxy")

    def start_consumer(self):
        env = {**os.environ, "TABLE_NAME": self.r["table"], "DLQ_URL": self.r["dlq_url"],
               "MAX_RECEIVE_COUNT": str(self.r["max_receive_count"]), "BACKOFF_BASE_SECONDS": "1",
               "BACKOFF_MAX_SECONDS": "4", "AWS_ENDPOINT_URL": SQS_ENDPOINT,
               "AWS_ENDPOINT_URL_DYNAMODB": self.store.endpoint, "LOG_SUCCESSES": "each"}
        env.pop("AWS_LAMBDA_RUNTIME_API", None)
        self.consumers.append(subprocess.Popen(
            [ROOT / "target/debug/consumer", "poll", "--queue-url", self.r["queue_url"], "--wait-seconds", "1"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT))

    def stop(self):
        self.stop_faults.set()
        for p in self.consumers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.consumers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.store.close()
        if self.started_emulators:
            subprocess.run([ROOT / "scripts/emulators.sh", "down"], check=False)

    # ------------------------------------------------------------------ the workload
    def workload(self):
        """Every message to send, shuffled: versions out of order, some twice, malformed ones mixed in."""
        self.highest = {}
        messages = []
        for n in range(self.a.notes):
            note_id = f"soak-{n}"
            versions = list(range(1, self.rng.randint(1, 4) + 1))
            self.highest[note_id] = versions[-1]
            for v in versions:
                messages.append(("note", note_id, v, note_message(note_id, v)))
                if self.rng.random() < 0.1:
                    messages.append(("note", note_id, v, note_message(note_id, v)))
        self.malformed = collections.Counter()
        for i in range(self.a.malformed):
            kind, make = MALFORMED[i % len(MALFORMED)]
            self.malformed[kind] += 1
            messages.append(("malformed", kind, None, make(i)))
        self.rng.shuffle(messages)
        return messages

    def send(self, messages):
        """Sends in batches of 10, spread over --seconds; every entry must be acknowledged."""
        batches = [messages[i:i + 10] for i in range(0, len(messages), 10)]
        pause = self.a.seconds / max(len(batches), 1)
        for batch in batches:
            entries = [{"Id": str(i), "MessageBody": body,
                        "MessageAttributes": {"owner": {"DataType": "String", "StringValue": OWNER}}}
                       for i, (_, _, _, body) in enumerate(batch)]
            while entries:
                out = self.sqs.send_message_batch(QueueUrl=self.r["queue_url"], Entries=entries)
                failed = {f["Id"] for f in out.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
            time.sleep(pause)

    def faults(self):
        """Kills and store outages until told to stop."""
        next_kill, next_outage = time.monotonic() + self.a.kill_every, time.monotonic() + self.a.outage_every
        while not self.stop_faults.wait(0.2):
            now = time.monotonic()
            if now >= next_kill:
                victim = self.rng.randrange(len(self.consumers))
                live = [p for p in self.consumers if p.poll() is None]
                if live:
                    p = live[victim % len(live)]
                    p.kill()
                    p.wait()
                    self.kills += 1
                    self.start_consumer()
                next_kill = now + self.a.kill_every
            if now >= next_outage:
                self.store.set("down")
                self.outages += 1
                self.stop_faults.wait(self.a.outage_seconds)
                self.store.set("up")
                next_outage = time.monotonic() + self.a.outage_every

    # ------------------------------------------------------------------ the ledger
    def depth(self, url):
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in a.values())

    def stored_versions(self):
        items, start = {}, None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            page = self.dynamodb.query(
                TableName=self.r["table"], KeyConditionExpression="#o = :o", ConsistentRead=True,
                ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":o": {"S": OWNER}}, **kwargs)
            for item in page["Items"]:
                if item.get("entry", {}).get("S") == "note":
                    items[item["id"]["S"]] = int(item["version"]["N"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def dead_letters(self):
        """Every letter in the DLQ (received once each, then released)."""
        letters, handles, seen = [], [], set()
        for _ in range(200):
            out = self.sqs.receive_message(QueueUrl=self.r["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=120, MessageAttributeNames=["All"])
            messages = out.get("Messages", [])
            if not messages:
                break
            for m in messages:
                if m["MessageId"] not in seen:
                    seen.add(m["MessageId"])
                    letters.append(m)
                handles.append(m["ReceiptHandle"])
        for i in range(0, len(handles), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.r["dlq_url"], Entries=[
                {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0} for j, h in enumerate(handles[i:i + 10])])
        return letters

    def run(self):
        self.start()
        try:
            messages = self.workload()
            say(f"sending {len(messages)} messages over {self.a.seconds} s: {self.a.notes} notes "
                f"({sum(self.highest.values())} versions, duplicates among them), {self.a.malformed} malformed; "
                f"a consumer killed every {self.a.kill_every} s, the store down {self.a.outage_seconds} s "
                f"every {self.a.outage_every} s")
            faults = threading.Thread(target=self.faults, daemon=True)
            started = time.monotonic()
            faults.start()
            self.send(messages)
            sent_s = time.monotonic() - started
            say(f"sent in {sent_s:.0f} s; faults go on until the queue has drained")
            deadline = time.monotonic() + self.a.drain_timeout
            while self.depth(self.r["queue_url"]) > 0:
                if time.monotonic() > deadline:
                    raise SystemExit(f"soak: the queue did not drain in {self.a.drain_timeout} s")
                time.sleep(2)
                if time.monotonic() - started > self.a.seconds + 30:
                    self.stop_faults.set()
            self.stop_faults.set()
            faults.join()
            drained_s = time.monotonic() - started
            return self.ledger(messages, drained_s)
        finally:
            self.stop()

    def ledger(self, messages, drained_s):
        stored = self.stored_versions()
        letters = self.dead_letters()
        reasons = collections.Counter()
        dead_versions = collections.defaultdict(set)
        with_reason = 0
        for m in letters:
            attrs = m.get("MessageAttributes", {})
            kind = attrs.get("error_kind", {}).get("StringValue", "max_receive_count")
            reasons[kind] += 1
            if kind in self.malformed and attrs.get("error_reason", {}).get("StringValue"):
                with_reason += 1
            try:
                body = json.loads(m["Body"])
                dead_versions[body["note"]["id"]].add(body["note"]["version"])
            except (ValueError, KeyError, TypeError):
                pass
        lost_notes = [n for n, v in self.highest.items()
                      if stored.get(n) != v and v not in dead_versions.get(n, set())]
        # A malformed message counts as accounted for only in the DLQ with the consumer's reason.
        malformed_in_dlq = min(with_reason, sum(reasons[k] for k in self.malformed))
        lost_malformed = max(0, sum(self.malformed.values()) - malformed_in_dlq)
        outcomes = collections.Counter()
        redeliveries = 0
        for line in (STATE / "soak-consumers.log").read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "outcome":
                outcomes[entry.get("outcome")] += 1
                if int(entry.get("receive_count", 1)) > 1:
                    redeliveries += 1
        at_highest = sum(1 for n, v in self.highest.items() if stored.get(n) == v)
        print()
        print("notes-sync soak ledger")
        print(f"  sent            {len(messages)} messages: {self.a.notes} notes in "
              f"{sum(self.highest.values())} versions (+{len(messages) - sum(self.highest.values()) - self.a.malformed} "
              f"duplicates), {self.a.malformed} malformed")
        print(f"  consumers       {self.a.consumers} competing; {self.kills} SIGKILLs (each replaced), "
              f"{self.outages} store outages of {self.a.outage_seconds} s")
        print(f"  stored          {at_highest} of {self.a.notes} notes at their highest version")
        print(f"  dead-lettered   {len(letters)}: " + ", ".join(f"{n} {k}" for k, n in reasons.most_common()))
        print(f"  outcomes        " + ", ".join(f"{n} {k}" for k, n in outcomes.most_common())
              + f"; {redeliveries} deliveries were redeliveries")
        print(f"  malformed       {malformed_in_dlq} of {self.a.malformed} in the DLQ with their reason (expected by kind: "
              + ", ".join(f"{n} {k}" for k, n in self.malformed.most_common()) + ")")
        print(f"  throughput      {len(messages) / drained_s:.0f} messages/s ({len(messages)} in {drained_s:.0f} s "
              "from the first send to an empty queue; the sending is paced over --seconds)")
        print(f"  lost            {len(lost_notes) + lost_malformed}   ({len(lost_notes)} notes neither stored at "
              f"their highest version nor in the DLQ, {lost_malformed} malformed not in the DLQ)")
        for n in lost_notes[:10]:
            print(f"    {n}: highest {self.highest[n]}, stored {stored.get(n)}, in the DLQ {sorted(dead_versions.get(n, []))}")
        return 0 if not lost_notes and not lost_malformed else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--notes", type=int, default=2000)
    p.add_argument("--consumers", type=int, default=3)
    p.add_argument("--seconds", type=int, default=90, help="how long the sending takes")
    p.add_argument("--kill-every", type=float, default=5)
    p.add_argument("--outage-every", type=float, default=20)
    p.add_argument("--outage-seconds", type=float, default=4)
    p.add_argument("--malformed", type=int, default=40)
    p.add_argument("--drain-timeout", type=int, default=600)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if args.consumers < 1 or args.notes < 1:
        p.error("--consumers and --notes must be at least 1")
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_PROFILE", None)
    STATE.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    sys.exit(Soak(args).run())


if __name__ == "__main__":
    main()
