"""Creates in the local emulators what template.yaml creates in AWS, from the template's own
values: queue attributes, redrive policy, table keys and index, the DLQ-depth alarm and its
topic, the client feature flags parameter in SSM, the dashboard, and the Cognito user pool and
app client (in moto, beside DynamoDB).
No number is copied here; change the template and the local system follows.

    provision.py [--sqs-endpoint URL] [--dynamodb-endpoint URL] [--stack NAME]
                 [--queue-type standard|fifo|both] [--parameter Name=Value ...]
                 [--alarm-period SECONDS]

Prints one JSON object with the URLs, ARNs and names it made (per queue type). Local
differences, on purpose: the topic is not KMS-encrypted (LocalStack has no CloudWatch-to-SNS
key policy to honour), and `--alarm-period` may shorten the alarm's 60 s period so a demo or a
test sees the alarm fire in seconds rather than minutes (threshold and number of periods stay
the template's).
"""
import argparse
import json
import re
import sys
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, REGION, PARTITION = "000000000000", "us-east-1", "aws"
NO_VALUE = object()


class Template:
    """template.yaml with parameters resolved to their defaults (or overrides)."""

    def __init__(self, path, stack, overrides):
        loader = type("CfnLoader", (yaml.SafeLoader,), {})

        def tag(l, suffix, node):
            if isinstance(node, yaml.ScalarNode):
                value = l.construct_scalar(node)
                if suffix == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = l.construct_sequence(node, deep=True)
            else:
                value = l.construct_mapping(node, deep=True)
            return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}

        loader.add_multi_constructor("!", tag)
        self.doc = yaml.load(Path(path).read_text(), Loader=loader)
        self.params = {k: str(v.get("Default", "")) for k, v in self.doc.get("Parameters", {}).items()}
        for name, value in overrides.items():
            if name not in self.params:
                sys.exit(f"provision: template.yaml has no parameter {name!r}")
            self.params[name] = value
        self.pseudo = {
            "AWS::StackName": stack, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION, "AWS::NoValue": NO_VALUE,
        }
        self.made = {}  # logical id -> {"Ref": ..., attribute: ...} of resources created so far

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.made[name]["Ref"]

    def condition(self, name):
        return self.eval(self.doc["Conditions"][name])

    def eval(self, v):
        if isinstance(v, list):
            return [x for x in (self.eval(x) for x in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (key, arg), = v.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = self.eval(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(arg))
            if key == "Fn::Or":
                return any(self.eval(arg))
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                m, k1, k2 = (str(self.eval(x)) for x in arg)
                return self.doc["Mappings"][m][k1][k2]
            if key == "Fn::GetAtt":
                return self.made[arg[0]][arg[1]]
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.eval(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(names.get(m[1]) or self.sub(m[1])), text)
        return {k: x for k, x in ((k, self.eval(x)) for k, x in v.items()) if x is not NO_VALUE}

    def sub(self, name):
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self.made[logical][attribute]
        return self.ref(name)

    def properties(self, logical_id):
        return self.eval(self.doc["Resources"][logical_id].get("Properties", {}))

    def find(self, resource_type, pick=lambda props: True):
        for logical_id, resource in self.doc["Resources"].items():
            if resource["Type"] == resource_type and pick(resource.get("Properties", {})):
                return logical_id
        sys.exit(f"provision: template.yaml has no {resource_type} that fits")


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create_queue(sqs, t, logical_id):
    props = t.properties(logical_id)
    name = props.pop("QueueName")
    attributes = {k: json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in props.items() if k not in ("Tags", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds")}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = queue_arn(sqs, url)
    t.made[logical_id] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
    return url, arn


def user_pool(cognito, t):
    """The template's user pool and app client, made once per stack name (moto's Cognito)."""
    pool_id_logical = t.find("AWS::Cognito::UserPool")
    props = t.properties(pool_id_logical)
    existing = [p for p in cognito.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == props["UserPoolName"]]
    if existing:
        pool_id = existing[0]["Id"]
    else:
        pool_id = cognito.create_user_pool(PoolName=props["UserPoolName"], Policies=props["Policies"],
                                           AdminCreateUserConfig=props["AdminCreateUserConfig"])["UserPool"]["Id"]
    t.made[pool_id_logical] = {"Ref": pool_id}
    client_logical = t.find("AWS::Cognito::UserPoolClient")
    client = t.properties(client_logical)
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    named = [c for c in clients if c["ClientName"] == client["ClientName"]]
    if named:
        client_id = named[0]["ClientId"]
    else:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName=client["ClientName"], GenerateSecret=bool(client["GenerateSecret"]),
            ExplicitAuthFlows=client["ExplicitAuthFlows"])["UserPoolClient"]["ClientId"]
    t.made[client_logical] = {"Ref": client_id}
    return pool_id, client_id


def alarm_arn(name):
    return f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def put_dashboard(cloudwatch, t, suffix):
    """The template's dashboard, its body resolved as CloudFormation would. The function is not
    deployed locally: its widgets name `local`, the function name the consumer's metrics carry
    outside Lambda. Alarms that are not created locally still get their ARN."""
    dashboard_id = t.find("AWS::CloudWatch::Dashboard")
    t.made.setdefault(t.find("AWS::Serverless::Function"), {"Ref": "local"})
    # No API Gateway v2 locally (the API runs under `cargo lambda watch`): its widgets name a
    # stand-in id.
    t.made.setdefault(t.find("AWS::Serverless::HttpApi"), {"Ref": f"{t.pseudo['AWS::StackName']}-api-local"})
    # Nor the event source mappings SAM generates from SQS events (logical id <function><event>):
    # their widgets name a stand-in UUID.
    for logical_id, resource in t.doc["Resources"].items():
        for event_id, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") == "SQS":
                t.made.setdefault(f"{logical_id}{event_id}", {"Ref": f"{logical_id}{event_id}-local"})
    for logical_id, resource in t.doc["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and logical_id not in t.made:
            name = t.eval(resource["Properties"]["AlarmName"])
            t.made[logical_id] = {"Ref": name, "Arn": alarm_arn(name)}
    props = t.properties(dashboard_id)
    name = props["DashboardName"] + suffix
    json.loads(props["DashboardBody"])  # CloudFormation would refuse a body that is not JSON
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
    return name


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sqs-endpoint", default="http://127.0.0.1:4566")
    p.add_argument("--dynamodb-endpoint", default="http://127.0.0.1:5000")
    p.add_argument("--stack", default="notes-sync")
    p.add_argument("--queue-type", choices=["standard", "fifo", "both"], default="both")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--alarm-period", type=int, help="seconds per alarm period (template: 60)")
    p.add_argument("--template", default=str(ROOT / "template.yaml"))
    args = p.parse_args()
    overrides = dict(x.split("=", 1) for x in args.parameter)

    sqs = boto3.client("sqs", endpoint_url=args.sqs_endpoint, region_name=REGION)
    sns = boto3.client("sns", endpoint_url=args.sqs_endpoint, region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=args.sqs_endpoint, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=args.dynamodb_endpoint, region_name=REGION)
    cognito = boto3.client("cognito-idp", endpoint_url=args.dynamodb_endpoint, region_name=REGION)
    out = {}

    types = ["standard", "fifo"] if args.queue_type == "both" else [args.queue_type]
    for queue_type in types:
        t = Template(args.template, args.stack, {**overrides, "QueueType": queue_type})
        source_id = t.find("AWS::SQS::Queue", lambda props: "RedrivePolicy" in props)
        dlq_id = t.find("AWS::SQS::Queue", lambda props: "RedriveAllowPolicy" in props)
        dlq_url, dlq_arn = create_queue(sqs, t, dlq_id)
        url, arn = create_queue(sqs, t, source_id)

        # The alarm topic, an SQS inbox subscribed to it (to observe notifications), and the
        # DLQ-depth alarm as the template defines it.
        topic_id = t.find("AWS::SNS::Topic")
        topic_name = f"{args.stack}-alarms" + ("-fifo" if queue_type == "fifo" else "")
        topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
        t.made[topic_id] = {"Ref": topic_arn, "TopicArn": topic_arn}
        inbox_url = sqs.create_queue(QueueName=f"{topic_name}-inbox")["QueueUrl"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, inbox_url))
        alarm_id = t.find("AWS::CloudWatch::Alarm",
                          lambda props: props.get("MetricName") == "ApproximateNumberOfMessagesVisible")
        alarm = {k: v for k, v in t.properties(alarm_id).items() if k not in ("Tags",)}
        template_period = alarm["Period"]
        if args.alarm_period:
            alarm["Period"] = args.alarm_period
        if queue_type == "fifo" and len(types) > 1:
            alarm["AlarmName"] += "-fifo"  # one stack holds one queue type; locally both live side by side
        for k in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
            if k in alarm:
                alarm[k] = int(alarm[k])
        alarm["Threshold"] = float(alarm["Threshold"])
        cloudwatch.put_metric_alarm(**alarm)
        t.made[alarm_id] = {"Ref": alarm["AlarmName"], "Arn": alarm_arn(alarm["AlarmName"])}

        table_id = t.find("AWS::DynamoDB::Table")
        table_props = t.properties(table_id)
        table = f"{args.stack}-notes"
        t.made[table_id] = {"Ref": table}
        if table not in dynamodb.list_tables()["TableNames"]:
            dynamodb.create_table(TableName=table, AttributeDefinitions=table_props["AttributeDefinitions"],
                                  KeySchema=table_props["KeySchema"], BillingMode=table_props["BillingMode"],
                                  LocalSecondaryIndexes=table_props["LocalSecondaryIndexes"])
            ttl = table_props["TimeToLiveSpecification"]
            dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})
        pool_id, client_id = user_pool(cognito, t)
        # The client feature flags parameter, with the template's name and initial value.
        ssm = boto3.client("ssm", endpoint_url=args.sqs_endpoint, region_name=REGION)
        flags = t.properties(t.find("AWS::SSM::Parameter"))
        ssm.put_parameter(Name=flags["Name"], Value=flags["Value"], Type=flags["Type"], Overwrite=True)
        dashboard_name = put_dashboard(cloudwatch, t, suffix="-fifo" if queue_type == "fifo" and len(types) > 1 else "")
        max_receive_count = t.properties(source_id)["RedrivePolicy"]["maxReceiveCount"]
        out[queue_type] = {
            "queue_url": url, "queue_arn": arn, "dlq_url": dlq_url, "dlq_arn": dlq_arn,
            "max_receive_count": int(max_receive_count), "table": table,
            "topic_arn": topic_arn, "alarm_inbox_url": inbox_url, "flags_parameter": flags["Name"],
            "alarm_name": alarm["AlarmName"], "alarm_threshold": alarm["Threshold"],
            "alarm_evaluation_periods": alarm["EvaluationPeriods"],
            "alarm_period": alarm["Period"], "template_alarm_period": int(template_period),
            "dashboard": dashboard_name,
            "user_pool_id": pool_id, "user_pool_client_id": client_id,
            "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
            "jwks_url": f"{args.dynamodb_endpoint}/{pool_id}/.well-known/jwks.json",
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
