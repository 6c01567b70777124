"""Creates the demo queues and the notes table in the local emulators (see emulators.sh)."""
import json

import boto3

SQS = "http://127.0.0.1:4566"
DYNAMODB = "http://127.0.0.1:5000"
MAX_RECEIVE_COUNT = 5

sqs = boto3.client("sqs", endpoint_url=SQS)
for suffix, extra in (("", {}), (".fifo", {"FifoQueue": "true"})):
    dlq_url = sqs.create_queue(
        QueueName=f"notes-sync-dlq{suffix}",
        Attributes={"MessageRetentionPeriod": "1209600", **extra},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url = sqs.create_queue(
        QueueName=f"notes-sync-queue{suffix}",
        Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive), **extra},
    )["QueueUrl"]
    print(f"queue {url} -> {dlq_url}")

dynamodb = boto3.client("dynamodb", endpoint_url=DYNAMODB)
if "notes-sync-notes" not in dynamodb.list_tables()["TableNames"]:
    dynamodb.create_table(
        TableName="notes-sync-notes",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
print("table notes-sync-notes")
