//! Reads `template.yaml` and asserts the relations that keep notes from being lost, so a
//! later edit of the template cannot silently break one (issue 4). Each test is named after
//! the relation it guards.
//!
//! Parameters are not fixed numbers: where a property depends on a parameter, the test
//! checks every value the parameter may take (its `AllowedValues`, else its `Default`,
//! `MinValue` and `MaxValue`), and both branches of every `Fn::If`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::{Mapping, Value};

/// The template, with CloudFormation's short tags (`!Ref x`, `!GetAtt a.b`, `!Sub s`, ...)
/// rewritten into their long forms (`{Ref: x}`, `{Fn::GetAtt: [a, b]}`, `{Fn::Sub: s}`).
struct Template {
    root: Value,
}

impl Template {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
        let text = std::fs::read_to_string(&path).expect("read template.yaml");
        let raw: Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
        Self { root: long_form(raw) }
    }

    fn section(&self, name: &str) -> &Mapping {
        self.root.get(name).and_then(Value::as_mapping).unwrap_or_else(|| panic!("template has no {name} section"))
    }

    fn resource(&self, logical_id: &str) -> &Value {
        self.section("Resources").get(logical_id).unwrap_or_else(|| panic!("no resource {logical_id}"))
    }

    fn resources_of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.section("Resources")
            .iter()
            .filter(move |(_, v)| v.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(k, v)| (k.as_str().unwrap(), v))
    }

    /// The source queue: the one queue with a RedrivePolicy.
    fn source_queue(&self) -> (&str, &Value) {
        let with_redrive: Vec<_> =
            self.resources_of_type("AWS::SQS::Queue").filter(|(_, q)| prop(q, "RedrivePolicy").is_some()).collect();
        assert_eq!(with_redrive.len(), 1, "exactly one queue redrives to a DLQ");
        with_redrive[0]
    }

    /// The DLQ: the queue the source's RedrivePolicy targets (`Fn::GetAtt: [Dlq, Arn]`).
    fn dead_letter_queue(&self) -> (&str, &Value) {
        let (_, source) = self.source_queue();
        let target = prop(source, "RedrivePolicy")
            .and_then(|r| r.get("deadLetterTargetArn"))
            .expect("RedrivePolicy.deadLetterTargetArn");
        let id = get_att_of(target, "Arn").expect("deadLetterTargetArn is !GetAtt <Queue>.Arn");
        let dlq = self.resource(id);
        assert_eq!(dlq.get("Type").and_then(Value::as_str), Some("AWS::SQS::Queue"));
        (id, dlq)
    }

    /// The function with an SQS event on the source queue, and that event's properties.
    fn consumer(&self) -> (&str, &Value, &Value) {
        let (source_id, _) = self.source_queue();
        for (id, f) in self.resources_of_type("AWS::Serverless::Function") {
            let Some(events) = prop(f, "Events").and_then(Value::as_mapping) else {
                continue;
            };
            for event in events.values() {
                let is_sqs = event.get("Type").and_then(Value::as_str) == Some("SQS");
                let props = event.get("Properties");
                let queue = props.and_then(|p| p.get("Queue"));
                if is_sqs && queue.and_then(|q| get_att_of(q, "Arn")) == Some(source_id) {
                    return (id, f, props.unwrap());
                }
            }
        }
        panic!("no function has an SQS event on the source queue {source_id}");
    }

    /// The logical id of the `AWS::Lambda::EventSourceMapping` SAM generates for the consumer's
    /// SQS event: `<function id><event id>` (SAM's "generated CloudFormation resources").
    fn consumer_mapping_id(&self) -> String {
        let (function_id, function, event) = self.consumer();
        let events = prop(function, "Events").and_then(Value::as_mapping).unwrap();
        let name = events.iter().find(|(_, e)| e.get("Properties") == Some(event)).map(|(k, _)| text(k)).unwrap();
        format!("{function_id}{name}")
    }

    fn parameter(&self, name: &str) -> &Value {
        self.section("Parameters").get(name).unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// Every value a parameter may take, as far as the template bounds it.
    fn parameter_values(&self, name: &str) -> Vec<Value> {
        let p = self.parameter(name);
        if let Some(allowed) = p.get("AllowedValues").and_then(Value::as_sequence) {
            return allowed.clone();
        }
        ["Default", "MinValue", "MaxValue"].iter().filter_map(|k| p.get(*k).cloned()).collect()
    }

    /// All the values `node` may evaluate to. `bound` fixes some parameters to one value;
    /// other parameters range over `parameter_values`. `Fn::If` yields both branches,
    /// `AWS::NoValue` yields Null, and references to resources stay symbolic.
    fn eval(&self, node: &Value, bound: &BTreeMap<&str, Value>) -> Vec<Value> {
        let Some(map) = node.as_mapping().filter(|m| m.len() == 1) else {
            return vec![node.clone()];
        };
        let (key, arg) = map.iter().next().unwrap();
        match key.as_str().unwrap_or_default() {
            "Ref" => {
                let name = arg.as_str().expect("Ref takes a name");
                if let Some(v) = bound.get(name) {
                    vec![v.clone()]
                } else if name == "AWS::NoValue" {
                    vec![Value::Null]
                } else if self.section("Parameters").contains_key(name) {
                    self.parameter_values(name)
                } else {
                    vec![node.clone()]
                }
            }
            "Fn::If" => {
                let args = arg.as_sequence().expect("Fn::If takes a list");
                [&args[1], &args[2]].into_iter().flat_map(|b| self.eval(b, bound)).collect()
            }
            "Fn::FindInMap" => {
                let args = arg.as_sequence().expect("Fn::FindInMap takes a list");
                let mappings = self.section("Mappings");
                let mut out = Vec::new();
                for map_name in self.eval(&args[0], bound) {
                    for k1 in self.eval(&args[1], bound) {
                        for k2 in self.eval(&args[2], bound) {
                            let found = mappings
                                .get(text(&map_name))
                                .and_then(|m| m.get(text(&k1)))
                                .and_then(|m| m.get(text(&k2)))
                                .unwrap_or_else(|| panic!("FindInMap {map_name:?}/{k1:?}/{k2:?} has no entry"));
                            out.push(found.clone());
                        }
                    }
                }
                out
            }
            _ => vec![node.clone()],
        }
    }

    /// Numeric values of `node`; NoValue counts as `absent_as`.
    fn numbers(&self, node: &Value, bound: &BTreeMap<&str, Value>, absent_as: i64) -> Vec<i64> {
        self.eval(node, bound).iter().map(|v| if v.is_null() { absent_as } else { number(v) }).collect()
    }
}

/// `Properties.<name>` of a resource.
fn prop<'a>(resource: &'a Value, name: &str) -> Option<&'a Value> {
    resource.get("Properties").and_then(|p| p.get(name))
}

/// `Some(id)` when `node` is `{Fn::GetAtt: [id, attr]}`.
fn get_att_of<'a>(node: &'a Value, attr: &str) -> Option<&'a str> {
    let args = node.get("Fn::GetAtt")?.as_sequence()?;
    (args.get(1)?.as_str()? == attr).then(|| args[0].as_str()).flatten()
}

fn reference(name: &str) -> Value {
    let mut m = Mapping::new();
    m.insert("Ref".into(), name.into());
    Value::Mapping(m)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

fn number(v: &Value) -> i64 {
    text(v).parse().unwrap_or_else(|_| panic!("expected a number, found {v:?}"))
}

fn long_form(v: Value) -> Value {
    match v {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, arg) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => {
                    let arg = match inner {
                        Value::String(s) => {
                            let (res, attr) = s.split_once('.').expect("!GetAtt Resource.Attribute");
                            Value::Sequence(vec![res.into(), attr.into()])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), arg)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut m = Mapping::new();
            m.insert(key.into(), arg);
            Value::Mapping(m)
        }
        Value::Mapping(m) => Value::Mapping(m.into_iter().map(|(k, v)| (k, long_form(v))).collect()),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(long_form).collect()),
        other => other,
    }
}

/// Name of the parameter a property is a plain `Ref` to.
fn referenced_parameter<'a>(t: &Template, node: &'a Value) -> Option<&'a str> {
    let name = node.get("Ref")?.as_str()?;
    t.section("Parameters").contains_key(name).then_some(name)
}

const FOURTEEN_DAYS: i64 = 14 * 24 * 60 * 60;

#[test]
fn source_visibility_timeout_is_at_least_six_function_timeouts_plus_batching_window() {
    let t = Template::load();
    let (_, source) = t.source_queue();
    let (_, function, event) = t.consumer();
    let visibility = prop(source, "VisibilityTimeout").expect("source queue sets VisibilityTimeout");
    let timeout = prop(function, "Timeout").expect("consumer sets Timeout");
    // The batching window may be absent (FIFO branch): absent = 0.
    let window_max = event
        .get("MaximumBatchingWindowInSeconds")
        .map(|w| t.numbers(w, &BTreeMap::new(), 0).into_iter().max().unwrap())
        .unwrap_or(0);

    // The timeout and the visibility timeout may both follow one parameter: check each of
    // its values together, not the worst case of one against the best of the other.
    let timeout_param = referenced_parameter(&t, timeout);
    let timeouts = t.numbers(timeout, &BTreeMap::new(), 3);
    assert!(!timeouts.is_empty());
    for seconds in timeouts {
        let mut bound = BTreeMap::new();
        if let Some(p) = timeout_param {
            bound.insert(p, Value::from(seconds));
        }
        for vis in t.numbers(visibility, &bound, 30) {
            assert!(
                vis >= 6 * seconds + window_max,
                "visibility timeout {vis} s < 6 x function timeout {seconds} s + batching window {window_max} s"
            );
            assert!(vis <= 43_200, "visibility timeout {vis} s exceeds the SQS maximum of 12 h");
        }
    }
}

#[test]
fn dlq_retention_is_fourteen_days_and_longer_than_the_source_retention() {
    let t = Template::load();
    let none = BTreeMap::new();
    let (_, source) = t.source_queue();
    let (_, dlq) = t.dead_letter_queue();
    // An absent MessageRetentionPeriod is SQS's default of 4 days.
    let retention = |q: &Value| match prop(q, "MessageRetentionPeriod") {
        Some(r) => t.numbers(r, &none, 345_600),
        None => vec![345_600],
    };
    let dlq_retention = retention(dlq);
    assert!(dlq_retention.iter().all(|&r| r == FOURTEEN_DAYS), "DLQ retention {dlq_retention:?} != 14 days");
    for source_retention in retention(source) {
        assert!(
            source_retention < FOURTEEN_DAYS,
            "source retention {source_retention} s is not shorter than the DLQ's: a dead-lettered \
             message keeps its enqueue time and would expire in the DLQ first"
        );
    }
}

#[test]
fn max_receive_count_parameter_feeds_both_the_redrive_policy_and_the_function_env() {
    let t = Template::load();
    let (_, source) = t.source_queue();
    let (_, function, _) = t.consumer();
    let redrive = prop(source, "RedrivePolicy").unwrap().get("maxReceiveCount").expect("maxReceiveCount");
    let param = referenced_parameter(&t, redrive).expect("maxReceiveCount is a !Ref to a parameter");
    let env =
        prop(function, "Environment").and_then(|e| e.get("Variables")).expect("consumer has Environment.Variables");
    assert_eq!(env.get("MAX_RECEIVE_COUNT"), Some(&reference(param)), "MAX_RECEIVE_COUNT must be !Ref {param}");

    let p = t.parameter(param);
    assert!(number(p.get("Default").expect("Default")) >= 5, "{param} default must be >= 5");
    let min = number(p.get("MinValue").expect("parameter has a MinValue"));
    let max = number(p.get("MaxValue").expect("parameter has a MaxValue"));
    assert!((1..=max).contains(&min) && max <= 1000, "{param} range {min}..={max} outside SQS's 1..=1000");
}

#[test]
fn function_env_names_the_table_and_the_dlq() {
    let t = Template::load();
    let (dlq_id, _) = t.dead_letter_queue();
    let (_, function, _) = t.consumer();
    let env = prop(function, "Environment").and_then(|e| e.get("Variables")).unwrap();
    assert_eq!(env.get("DLQ_URL"), Some(&reference(dlq_id)), "DLQ_URL must be !Ref {dlq_id} (its URL)");
    let table = env.get("TABLE_NAME").and_then(|v| v.get("Ref")).and_then(Value::as_str);
    let table = table.expect("TABLE_NAME is a !Ref");
    assert_eq!(t.resource(table).get("Type").and_then(Value::as_str), Some("AWS::DynamoDB::Table"));
}

#[test]
fn retries_reach_the_dlq_before_the_source_retention_expires() {
    // A message that expires in the source queue before its last receive is lost silently.
    let t = Template::load();
    let none = BTreeMap::new();
    let (_, source) = t.source_queue();
    let (_, function, _) = t.consumer();
    let env = prop(function, "Environment").and_then(|e| e.get("Variables")).unwrap();
    let max_receives = t.numbers(prop(source, "RedrivePolicy").unwrap().get("maxReceiveCount").unwrap(), &none, 0);
    let backoff_max = t.numbers(env.get("BACKOFF_MAX_SECONDS").expect("BACKOFF_MAX_SECONDS"), &none, 900);
    let visibility = t.numbers(prop(source, "VisibilityTimeout").unwrap(), &none, 30);
    let retention = t.numbers(prop(source, "MessageRetentionPeriod").unwrap(), &none, 345_600);
    let longest_wait = backoff_max.iter().chain(&visibility).max().unwrap();
    let worst = (max_receives.iter().max().unwrap() - 1) * longest_wait;
    let shortest_retention = *retention.iter().min().unwrap();
    assert!(worst < shortest_retention, "worst-case retry path {worst} s >= source retention {shortest_retention} s");
}

#[test]
fn dlq_redrive_allow_policy_names_only_the_source_queue() {
    let t = Template::load();
    let none = BTreeMap::new();
    let (_, source) = t.source_queue();
    let (_, dlq) = t.dead_letter_queue();
    let policy = prop(dlq, "RedriveAllowPolicy").expect("DLQ has a RedriveAllowPolicy");
    assert_eq!(policy.get("redrivePermission").and_then(Value::as_str), Some("byQueue"));
    let arns = policy.get("sourceQueueArns").and_then(Value::as_sequence).expect("sourceQueueArns");
    assert_eq!(arns.len(), 1, "only the source queue");
    // The source queue is named (a !GetAtt would be circular), so compare the ARN's last
    // segment with the queue name, branch by branch.
    let names: Vec<String> = t
        .eval(prop(source, "QueueName").expect("source queue is named"), &none)
        .iter()
        .map(|n| text(n.get("Fn::Sub").unwrap_or(n)))
        .collect();
    let arns: Vec<String> = t.eval(&arns[0], &none).iter().map(|a| text(a.get("Fn::Sub").unwrap_or(a))).collect();
    assert_eq!(arns.len(), names.len(), "one ARN per queue-name branch");
    for (arn, name) in arns.iter().zip(&names) {
        assert!(
            arn.starts_with("arn:") && arn.ends_with(&format!(":{name}")),
            "RedriveAllowPolicy ARN {arn} must end with the source queue's name {name}"
        );
    }
}

#[test]
fn dlq_depth_alarm_measures_visible_messages_on_the_dlq_and_notifies_the_alarm_topic() {
    let t = Template::load();
    let (dlq_id, _) = t.dead_letter_queue();
    let alarms: Vec<_> = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .filter(|(_, a)| {
            prop(a, "Dimensions").and_then(Value::as_sequence).is_some_and(|dims| {
                dims.iter().any(|d| {
                    d.get("Name").and_then(Value::as_str) == Some("QueueName")
                        && d.get("Value").and_then(|v| get_att_of(v, "QueueName")) == Some(dlq_id)
                })
            })
        })
        .collect();
    // The depth alarm; the DLQ's age has its own (below).
    let depth: Vec<_> = alarms
        .into_iter()
        .filter(|(_, a)| prop(a, "MetricName").and_then(Value::as_str) == Some("ApproximateNumberOfMessagesVisible"))
        .collect();
    assert_eq!(depth.len(), 1, "exactly one alarm watches the DLQ's depth");
    let (id, alarm) = depth[0];
    assert_eq!(prop(alarm, "Namespace").and_then(Value::as_str), Some("AWS/SQS"), "{id}");
    assert_eq!(
        prop(alarm, "MetricName").and_then(Value::as_str),
        Some("ApproximateNumberOfMessagesVisible"),
        "{id} must measure the DLQ's visible messages"
    );
    assert!(
        prop(alarm, "ComparisonOperator").and_then(Value::as_str).is_some_and(|op| op.starts_with("GreaterThan")),
        "{id} fires when the depth exceeds the threshold"
    );
    for key in ["Threshold", "EvaluationPeriods"] {
        assert!(referenced_parameter(&t, prop(alarm, key).unwrap()).is_some(), "{id}.{key} is a parameter");
    }
    let actions = prop(alarm, "AlarmActions").and_then(Value::as_sequence).expect("AlarmActions");
    assert!(!actions.is_empty(), "{id} has AlarmActions");
    for action in actions {
        let target = action.get("Ref").and_then(Value::as_str).expect("alarm action is a !Ref");
        assert_eq!(
            t.resource(target).get("Type").and_then(Value::as_str),
            Some("AWS::SNS::Topic"),
            "{id} must notify the SNS alarm topic"
        );
    }
    let says = |k: &str| prop(alarm, k).map(|v| format!("{v:?}").to_lowercase()).unwrap_or_default();
    assert!(
        says("AlarmName").contains("critical") && says("AlarmDescription").contains("critical"),
        "severity critical"
    );
}

#[test]
fn sqs_event_source_reports_batch_item_failures() {
    let t = Template::load();
    let (_, _, event) = t.consumer();
    let types = event.get("FunctionResponseTypes").and_then(Value::as_sequence).expect("FunctionResponseTypes");
    assert!(
        types.iter().any(|v| v.as_str() == Some("ReportBatchItemFailures")),
        "without ReportBatchItemFailures one failed record retries the whole batch"
    );
    // A ceiling on concurrent invocations (left out only for provisioned mode, which AWS does
    // not combine with it: rules_refuse_provisioned_mode_together_with_maximum_concurrency_naming_both).
    let scaling = t.eval(event.get("ScalingConfig").expect("ScalingConfig"), &BTreeMap::new());
    assert!(scaling.iter().any(|s| s.get("MaximumConcurrency").is_some()));
}

#[test]
fn client_policy_grants_only_send_on_the_source_queue_and_read_on_the_flags_parameter() {
    let t = Template::load();
    let (source_id, _) = t.source_queue();
    let policies: Vec<_> = t.resources_of_type("AWS::IAM::ManagedPolicy").collect();
    assert_eq!(policies.len(), 1, "one managed policy for client apps");
    let (id, policy) = policies[0];
    let statements =
        prop(policy, "PolicyDocument").and_then(|d| d.get("Statement")).and_then(Value::as_sequence).unwrap();
    let grants: Vec<(String, String)> =
        statements.iter().map(|s| (text(&s["Action"]), format!("{:?}", s["Resource"]))).collect();
    assert_eq!(grants.len(), 2, "{grants:?}");
    assert_eq!(grants[0].0, "sqs:SendMessage");
    assert_eq!(get_att_of(&statements[0]["Resource"], "Arn"), Some(source_id), "send only to the source queue");
    assert_eq!(grants[1].0, "ssm:GetParameter");
    let (flags_id, _) = t.resources_of_type("AWS::SSM::Parameter").next().expect("the flags parameter");
    assert!(
        grants[1].1.contains(&format!("parameter${{{flags_id}}}")),
        "read only the flags parameter: {}",
        grants[1].1
    );
    let outputs = t.section("Outputs");
    assert!(
        outputs.values().any(|o| o.get("Value") == Some(&reference(id))),
        "an output gives the policy's ARN so an app's role can attach it"
    );
}

/// Issue 9, item 4: the DLQ takes any source message plus a dead letter's attributes, and
/// the consumer fits letters into the DLQ's limit.
#[test]
fn dlq_maximum_message_size_leaves_room_for_the_attributes_and_is_the_consumers_limit() {
    let t = Template::load();
    let none = BTreeMap::new();
    // An absent MaximumMessageSize is SQS's default of 256 KiB.
    let size = |q: &Value| prop(q, "MaximumMessageSize").map_or(vec![262_144], |v| t.numbers(v, &none, 262_144));
    let (source_max, dlq_max) = (size(t.source_queue().1), size(t.dead_letter_queue().1));
    let (source_max, dlq_max) = (source_max.into_iter().max().unwrap(), dlq_max.into_iter().min().unwrap());
    assert!(dlq_max >= source_max + 4096, "DLQ {dlq_max} B leaves no room for attributes over {source_max} B");
    assert!(dlq_max <= 1_048_576, "above the SQS maximum");
    let (_, function, _) = t.consumer();
    let env = prop(function, "Environment").and_then(|e| e.get("Variables")).expect("environment");
    let consumer_limit = env.get("DLQ_MAX_MESSAGE_BYTES").map(number).expect("DLQ_MAX_MESSAGE_BYTES");
    assert_eq!(consumer_limit, dlq_max);
}

/// Issue 9, item 5: every allowed (function timeout, deadline margin) pair in which the
/// margin is not shorter than the timeout is refused by a Rule, and no other pair is.
#[test]
fn rules_refuse_a_deadline_margin_not_shorter_than_the_function_timeout() {
    let t = Template::load();
    let (_, function, _) = t.consumer();
    let env = prop(function, "Environment").and_then(|e| e.get("Variables")).expect("environment");
    let timeout_param = env.get("FUNCTION_TIMEOUT_SECONDS").and_then(|v| referenced_parameter(&t, v)).unwrap();
    let margin_param = env.get("DEADLINE_MARGIN_MS").and_then(|v| referenced_parameter(&t, v)).unwrap();
    assert_eq!(prop(function, "Timeout"), Some(&reference(timeout_param)), "the consumer sees its own timeout");
    for timeout in t.parameter_values(timeout_param).iter().map(number) {
        for margin in t.parameter_values(margin_param).iter().map(number) {
            let values = defaults_with(&t, &[(timeout_param, timeout), (margin_param, margin)]);
            let refused = !refusing_rules(&t, &values).is_empty();
            assert_eq!(refused, margin >= timeout * 1000, "timeout {timeout} s, margin {margin} ms");
        }
    }
}

/// Every parameter at its default, except those given.
fn defaults_with<'a>(t: &'a Template, given: &[(&'a str, i64)]) -> BTreeMap<&'a str, String> {
    let mut values: BTreeMap<&str, String> =
        t.section("Parameters").iter().filter_map(|(k, p)| Some((k.as_str()?, p.get("Default").map(text)?))).collect();
    for (name, value) in given {
        values.insert(name, value.to_string());
    }
    values
}

/// Whether a rule function holds for these parameter values. Just the forms the template
/// uses: Equals, Not, Contains over Refs and literals.
fn holds(node: &Value, values: &BTreeMap<&str, String>) -> bool {
    let scalar = |v: &Value| match v.get("Ref").and_then(Value::as_str) {
        Some(name) => values.get(name).cloned().unwrap_or_else(|| panic!("unbound {name}")),
        None => text(v),
    };
    let (key, arg) = node.as_mapping().and_then(|m| m.iter().next()).expect("a rule function");
    let args = arg.as_sequence().expect("a rule function takes a list");
    match key.as_str().unwrap() {
        "Fn::Equals" => scalar(&args[0]) == scalar(&args[1]),
        "Fn::Not" => !holds(&args[0], values),
        "Fn::Contains" => args[0].as_sequence().unwrap().iter().map(text).any(|v| v == scalar(&args[1])),
        other => panic!("rule function {other} not understood by this test"),
    }
}

/// The descriptions of the assertions that refuse these parameter values.
fn refusing_rules(t: &Template, values: &BTreeMap<&str, String>) -> Vec<String> {
    let mut refusals = Vec::new();
    for rule in t.section("Rules").values() {
        if rule.get("RuleCondition").is_some_and(|c| !holds(c, values)) {
            continue;
        }
        for assertion in rule["Assertions"].as_sequence().unwrap() {
            if !holds(&assertion["Assert"], values) {
                refusals.push(text(&assertion["AssertDescription"]));
            }
        }
    }
    refusals
}

/// AWS refuses ProvisionedPollerConfig together with ScalingConfig.MaximumConcurrency
/// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html: "mutually exclusive").
/// The event sets each from one parameter; a Rule refuses every pair that would set both, with
/// a message naming both, and no other pair.
#[test]
fn rules_refuse_provisioned_mode_together_with_maximum_concurrency_naming_both() {
    let t = Template::load();
    let (_, _, event) = t.consumer();
    let branch_param = |key: &str, inner: &str| -> String {
        let node = event.get(key).unwrap_or_else(|| panic!("the event sets {key}"));
        let on = t.eval(node, &BTreeMap::new()).into_iter().find(|v| !v.is_null()).expect("an on branch");
        referenced_parameter(&t, &on[inner]).unwrap_or_else(|| panic!("{key}.{inner} is a parameter")).to_owned()
    };
    let concurrency = branch_param("ScalingConfig", "MaximumConcurrency");
    let pollers = branch_param("ProvisionedPollerConfig", "MinimumPollers");
    // Both are optional: a NoValue branch each, so that either can be left out.
    for key in ["ScalingConfig", "ProvisionedPollerConfig"] {
        assert!(t.eval(&event[key], &BTreeMap::new()).iter().any(Value::is_null), "{key} can be left out");
    }
    // Today's behaviour by default: a ScalingConfig ceiling, no provisioned mode.
    assert_eq!(t.parameter(&pollers).get("Default").map(text).as_deref(), Some("0"));
    assert_ne!(t.parameter(&concurrency).get("Default").map(text).as_deref(), Some("0"));
    for p in [0, 1, 2, 10, 200] {
        for c in [0, 1, 2, 10, 1000] {
            let values = defaults_with(&t, &[(pollers.as_str(), p), (concurrency.as_str(), c)]);
            let refusals = refusing_rules(&t, &values);
            let both = p != 0 && c != 0;
            let expected = both || p == 1 || c == 1;
            assert_eq!(!refusals.is_empty(), expected, "pollers {p}, concurrency {c}: {refusals:?}");
            if both {
                let says = refusals.join(" ");
                assert!(says.contains(&pollers) && says.contains(&concurrency), "names both: {says}");
            }
        }
    }
}

/// The mapping's EventCount metrics are on the dashboard, by the UUID of the mapping SAM
/// generates for the consumer's event, and the event publishes them when the parameter says so.
#[test]
fn dashboard_draws_the_mappings_event_count_metrics_by_its_uuid_and_the_event_publishes_them() {
    let t = Template::load();
    let (id, body, _) = dashboard(&t);
    let mapping = t.consumer_mapping_id();
    let (_, _, event) = t.consumer();
    let configs = t.eval(event.get("MetricsConfig").expect("the event sets MetricsConfig"), &BTreeMap::new());
    assert!(configs.iter().any(Value::is_null), "MetricsConfig can be left out (today's behaviour)");
    let on = configs.iter().find(|c| !c.is_null()).unwrap();
    assert_eq!(on["Metrics"], Value::Sequence(vec!["EventCount".into()]));
    let mut seen = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let m = metric.as_array().unwrap();
            if m.get(2).and_then(|d| d.as_str()) == Some("EventSourceMappingUUID") {
                assert_eq!(m[0], "AWS/Lambda");
                assert_eq!(placeholder(&m[3]), Some(mapping.as_str()), "{id}: {} names the consumer's mapping", m[1]);
                seen.push(m[1].as_str().unwrap().to_owned());
            }
        }
    }
    for name in ESM_SQS_METRICS {
        assert!(seen.iter().any(|s| s == name), "{id} does not show {name}");
    }
}

/// The event source mapping metrics Lambda publishes for an SQS source (EventCount, and
/// ProvisionedPollers in provisioned mode), per
/// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics.
/// DroppedEventCount and OnFailureDestinationDeliveredEventCount are for stream and Kafka sources only.
const ESM_SQS_METRICS: [&str; 6] = [
    "PolledEventCount",
    "FilteredOutEventCount",
    "InvokedEventCount",
    "FailedInvokeEventCount",
    "DeletedEventCount",
    "ProvisionedPollers",
];

/// The dashboard's body: its `Fn::Sub` JSON text with every `${Name}` / `${Resource.Attr}`
/// replaced by the string `"@Name@"`, parsed, and the names it substitutes.
fn dashboard(t: &Template) -> (&str, serde_json::Value, Vec<String>) {
    let dashboards: Vec<_> = t.resources_of_type("AWS::CloudWatch::Dashboard").collect();
    assert_eq!(dashboards.len(), 1, "one dashboard for the stack");
    let (id, resource) = dashboards[0];
    let body = prop(resource, "DashboardBody").and_then(|b| b.get("Fn::Sub")).and_then(Value::as_str);
    let body = body.expect("DashboardBody is a !Sub of the JSON text");
    let mut names = Vec::new();
    let mut json = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').expect("an unclosed ${ in the dashboard");
        let name = &rest[start + 2..end];
        // Quoted or not (a number such as the threshold), the placeholder is a JSON string.
        json.push_str(rest[..start].strip_suffix('"').unwrap_or(&rest[..start]));
        json.push_str(&format!("\"@{name}@\""));
        rest = &rest[end + 1..];
        rest = rest.strip_prefix('"').unwrap_or(rest);
        names.push(name.to_owned());
    }
    json.push_str(rest);
    let parsed = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{id}'s body is not JSON: {e}"));
    (id, parsed, names)
}

/// `"@Name@"` → `Name`.
fn placeholder(v: &serde_json::Value) -> Option<&str> {
    v.as_str()?.strip_prefix('@')?.strip_suffix('@')
}

#[test]
fn dashboard_substitutes_only_parameters_pseudo_parameters_and_resources_of_this_template() {
    let t = Template::load();
    let (id, _, names) = dashboard(&t);
    let mapping = t.consumer_mapping_id();
    for name in names {
        if name == mapping {
            continue; // generated by SAM from the consumer's event (consumer_mapping_id)
        }
        let (resource, attr) = name.split_once('.').map_or((name.as_str(), None), |(r, a)| (r, Some(a)));
        let known = match attr {
            None => {
                name.starts_with("AWS::")
                    || t.section("Parameters").contains_key(name.as_str())
                    || t.section("Resources").contains_key(name.as_str())
            }
            Some(_) => t.section("Resources").contains_key(resource),
        };
        assert!(known, "{id} substitutes ${{{name}}}, which is no parameter or resource of the template");
    }
}

#[test]
fn every_dashboard_metric_exists_with_dimensions_that_resolve_to_this_stack() {
    let t = Template::load();
    let (id, body, _) = dashboard(&t);
    let (function, function_resource, _) = t.consumer();
    let type_of = |logical_id: &str| t.resource(logical_id).get("Type").and_then(Value::as_str).unwrap_or_default();
    // The EMF namespace is the parameter the function passes to the code as METRICS_NAMESPACE,
    // and its default is the code's own default.
    let env = prop(function_resource, "Environment").and_then(|e| e.get("Variables")).expect("function env");
    let namespace_param = referenced_parameter(&t, env.get("METRICS_NAMESPACE").expect("METRICS_NAMESPACE"))
        .expect("METRICS_NAMESPACE is a parameter");
    assert_eq!(
        t.parameter(namespace_param).get("Default").map(text),
        Some(notes_sync::config::DEFAULT_METRICS_NAMESPACE.to_owned()),
        "the template's default namespace is the code's"
    );
    // AWS's own metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/aws-services-cloudwatch-metrics.html),
    // per namespace: its names and the dimension that identifies our resource, with that resource's type.
    let aws: [(&str, &[&str], &str, &str); 4] = [
        (
            "AWS/SQS",
            &[
                "ApproximateNumberOfMessagesVisible",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateAgeOfOldestMessage",
            ],
            "QueueName",
            "AWS::SQS::Queue",
        ),
        (
            "AWS/Lambda",
            &["Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"],
            "FunctionName",
            "AWS::Serverless::Function",
        ),
        ("AWS/DynamoDB", &["ThrottledRequests", "ConsumedWriteCapacityUnits"], "TableName", "AWS::DynamoDB::Table"),
        // HTTP APIs (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html).
        (
            "AWS/ApiGateway",
            &["Count", "4xx", "5xx", "Latency", "IntegrationLatency"],
            "ApiId",
            "AWS::Serverless::HttpApi",
        ),
    ];
    let mut emf_seen = Vec::new();
    let widgets = body["widgets"].as_array().expect("widgets");
    for widget in widgets.iter().filter(|w| w["type"] == "metric") {
        let title = widget["properties"]["title"].as_str().unwrap_or("?");
        for metric in widget["properties"]["metrics"].as_array().expect("metrics") {
            let parts: Vec<_> = metric.as_array().unwrap().iter().filter(|p| !p.is_object()).collect();
            let (namespace, name) = (&parts[0], parts[1].as_str().expect("metric name"));
            let dimensions: BTreeMap<&str, &serde_json::Value> =
                parts[2..].chunks(2).map(|d| (d[0].as_str().expect("dimension name"), d[1])).collect();
            if placeholder(namespace) == Some(namespace_param) {
                assert!(
                    sqs_partial_batch::metrics::NAMES.contains(&name),
                    "{id} / {title}: the consumer writes no EMF metric {name}"
                );
                assert_eq!(dimensions.keys().copied().collect::<Vec<_>>(), ["FunctionName"], "{title}: {name}");
                assert_eq!(placeholder(dimensions["FunctionName"]), Some(function), "{title}: {name}");
                emf_seen.push(name);
                continue;
            }
            let namespace = namespace.as_str().expect("namespace");
            if let Some(uuid) = dimensions.get("EventSourceMappingUUID") {
                assert_eq!(namespace, "AWS/Lambda", "{title}: {name}");
                assert!(ESM_SQS_METRICS.contains(&name), "{title}: Lambda publishes no {name} for an SQS mapping");
                assert_eq!(placeholder(uuid), Some(t.consumer_mapping_id().as_str()), "{title}: {name}");
                continue;
            }
            let (_, names, key, resource_type) = aws
                .iter()
                .find(|(ns, ..)| *ns == namespace)
                .unwrap_or_else(|| panic!("{id} / {title}: unexpected namespace {namespace}"));
            assert!(names.contains(&name), "{title}: {namespace} has no metric {name} here");
            let value = dimensions.get(key).and_then(|v| placeholder(v));
            let resource = value.map(|v| v.split_once('.').map_or(v, |(r, _)| r));
            let resource = resource.unwrap_or_else(|| panic!("{title}: {name} has no {key} of this stack"));
            assert_eq!(type_of(resource), *resource_type, "{title}: {name}'s {key} is {resource}");
        }
    }
    // The consumer's outcomes and message ages are all on it.
    for name in [
        "Received",
        "Succeeded",
        "Unchanged",
        "Retried",
        "DeadLettered",
        "BrakeEngaged",
        "MessageAgeMax",
        "MessageAgeP50",
    ] {
        assert!(emf_seen.contains(&name), "{id} does not show {name}");
    }
}

#[test]
fn dashboard_dlq_widget_draws_the_dlq_alarm_threshold_parameter_not_a_copy() {
    let t = Template::load();
    let (id, body, _) = dashboard(&t);
    let (dlq, _) = t.dead_letter_queue();
    let dlq_depth = |w: &&serde_json::Value| {
        w["properties"]["metrics"].as_array().is_some_and(|metrics| {
            metrics.iter().any(|m| {
                m[1] == "ApproximateNumberOfMessagesVisible" && placeholder(&m[3]) == Some(&format!("{dlq}.QueueName"))
            })
        })
    };
    let widget = body["widgets"].as_array().unwrap().iter().find(dlq_depth).expect("a DLQ depth widget");
    let line = &widget["properties"]["annotations"]["horizontal"][0]["value"];
    let alarm = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|(_, a)| {
            prop(a, "Dimensions")
                .and_then(Value::as_sequence)
                .is_some_and(|d| d.iter().any(|d| d.get("Value").and_then(|v| get_att_of(v, "QueueName")) == Some(dlq)))
        })
        .map(|(_, a)| a)
        .expect("the DLQ alarm");
    let threshold =
        referenced_parameter(&t, prop(alarm, "Threshold").unwrap()).expect("the alarm's threshold parameter");
    assert_eq!(placeholder(line), Some(threshold), "{id}: the DLQ line must be ${{{threshold}}}");
}

#[test]
fn dashboard_shows_every_alarm_of_the_stack_and_reads_top_down_along_the_flow() {
    let t = Template::load();
    let (id, body, _) = dashboard(&t);
    let widgets = body["widgets"].as_array().unwrap();
    let alarm_widget = widgets.iter().find(|w| w["type"] == "alarm").expect("an alarm status widget");
    let shown: Vec<_> =
        alarm_widget["properties"]["alarms"].as_array().unwrap().iter().filter_map(placeholder).collect();
    for (alarm, _) in t.resources_of_type("AWS::CloudWatch::Alarm") {
        assert!(shown.contains(&format!("{alarm}.Arn").as_str()), "{id} does not show {alarm}");
    }
    // Queues, then the consumer's own metrics, then the function, then the table, then the
    // sync API, then alarms.
    let row = |namespace: &dyn Fn(&serde_json::Value) -> bool| -> i64 {
        widgets
            .iter()
            .filter(|w| w["properties"]["metrics"].as_array().is_some_and(|m| m.iter().any(|m| namespace(&m[0]))))
            .map(|w| w["y"].as_i64().unwrap())
            .min()
            .expect("a widget for each stage")
    };
    let rows = [
        row(&|ns| ns == "AWS/SQS"),
        row(&|ns| placeholder(ns).is_some()),
        row(&|ns| ns == "AWS/Lambda"),
        row(&|ns| ns == "AWS/DynamoDB"),
        row(&|ns| ns == "AWS/ApiGateway"),
        alarm_widget["y"].as_i64().unwrap(),
    ];
    assert!(rows.is_sorted(), "{id}: rows out of the flow's order: {rows:?}");
    let url = t.section("Outputs").get("DashboardUrl").and_then(|o| o.get("Value")).expect("a DashboardUrl output");
    assert!(format!("{url:?}").contains(&format!("${{{id}}}")), "DashboardUrl names {id}");
}

/// The sync API's function: the one with HttpApi events.
fn api_function(t: &Template) -> (&str, &Value) {
    let with_http: Vec<_> = t
        .resources_of_type("AWS::Serverless::Function")
        .filter(|(_, f)| {
            prop(f, "Events")
                .and_then(Value::as_mapping)
                .is_some_and(|e| e.values().any(|e| e.get("Type").and_then(Value::as_str) == Some("HttpApi")))
        })
        .collect();
    assert_eq!(with_http.len(), 1, "one sync API function");
    with_http[0]
}

/// `(actions, resources)` of each statement of a role's inline policies.
fn role_grants(role: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    let as_list = |v: &Value| match v {
        Value::Sequence(items) => items.iter().map(|i| format!("{i:?}")).collect(),
        other => vec![format!("{other:?}")],
    };
    let mut grants = Vec::new();
    for policy in prop(role, "Policies").and_then(Value::as_sequence).expect("inline policies") {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            assert_eq!(text(&statement["Effect"]), "Allow");
            let actions = match &statement["Action"] {
                Value::Sequence(a) => a.iter().map(text).collect(),
                a => vec![text(a)],
            };
            grants.push((actions, as_list(&statement["Resource"])));
        }
    }
    grants
}

#[test]
fn the_api_role_sends_only_to_the_source_queue_and_reads_the_table_by_key_and_index_never_scans_or_writes() {
    let t = Template::load();
    let (_, function) = api_function(&t);
    let role_id = get_att_of(prop(function, "Role").expect("an explicit role"), "Arn").expect("Role: !GetAtt X.Arn");
    let (source_id, _) = t.source_queue();
    let (table_id, _) = t.resources_of_type("AWS::DynamoDB::Table").next().unwrap();
    let grants = role_grants(t.resource(role_id));
    let actions: Vec<&str> = grants.iter().flat_map(|(a, _)| a.iter().map(String::as_str)).collect();
    assert_eq!(
        actions,
        ["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "dynamodb:Query", "dynamodb:GetItem"]
    );
    for (actions, resources) in &grants {
        let resources = resources.join(" ");
        if actions.iter().any(|a| a.starts_with("sqs:")) {
            assert_eq!(
                resources,
                format!("{:?}", Value::Mapping(get_att(source_id, "Arn"))),
                "send to the source only"
            );
        }
        if actions.iter().any(|a| a.starts_with("dynamodb:")) {
            assert!(resources.contains(&format!("\"{table_id}\"")), "{resources}");
            assert!(
                resources.contains(&format!("${{{table_id}.Arn}}/index/{}", notes_sync::notes::table::BY_APPLIED_AT))
            );
        }
    }
}

fn get_att(id: &str, attr: &str) -> Mapping {
    let mut m = Mapping::new();
    m.insert("Fn::GetAtt".into(), Value::Sequence(vec![id.into(), attr.into()]));
    m
}

#[test]
fn only_the_api_role_and_the_trusted_sender_roles_may_send_to_the_source_queue() {
    let t = Template::load();
    let (source_id, _) = t.source_queue();
    let (_, function) = api_function(&t);
    let role_id = get_att_of(prop(function, "Role").unwrap(), "Arn").unwrap();
    let deny = t
        .resources_of_type("AWS::SQS::QueuePolicy")
        .flat_map(|(_, p)| prop(p, "PolicyDocument").unwrap()["Statement"].as_sequence().unwrap().clone())
        .find(|s| text(&s["Effect"]) == "Deny" && s["Action"] == "sqs:SendMessage")
        .expect("a Deny on sqs:SendMessage");
    assert_eq!(get_att_of(&deny["Resource"], "Arn"), Some(source_id));
    assert_eq!(deny["Principal"], "*", "everyone but the named principals");
    let allowed = &deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"];
    // Both branches of the trusted-senders condition name the API's role; one adds the parameter.
    let branches = allowed["Fn::If"].as_sequence().expect("Fn::If on HasTrustedSenders");
    let with = format!("{:?}", branches[1]);
    assert!(with.contains(&format!("${{{role_id}.Arn}},${{TrustedSenderRoleArns}}")), "{with}");
    assert_eq!(branches[2], Value::Sequence(vec![Value::Mapping(get_att(role_id, "Arn"))]));
    assert_eq!(t.parameter("TrustedSenderRoleArns").get("Default").map(text), Some(String::new()), "none by default");
}

#[test]
fn the_http_api_authorizer_and_the_function_trust_the_same_pool_and_app_client() {
    let t = Template::load();
    let (pool_id, _) = t.resources_of_type("AWS::Cognito::UserPool").next().expect("a user pool");
    let (client_id, client) = t.resources_of_type("AWS::Cognito::UserPoolClient").next().expect("an app client");
    assert_eq!(prop(client, "UserPoolId"), Some(&reference(pool_id)));
    let flows: Vec<String> =
        prop(client, "ExplicitAuthFlows").unwrap().as_sequence().unwrap().iter().map(text).collect();
    assert_eq!(flows, ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]);
    assert_eq!(prop(client, "GenerateSecret").and_then(Value::as_bool), Some(false), "a public client");
    let (api_id, api) = t.resources_of_type("AWS::Serverless::HttpApi").next().expect("an HTTP API");
    let auth = prop(api, "Auth").unwrap();
    let name = text(&auth["DefaultAuthorizer"]);
    let jwt = &auth["Authorizers"][name.as_str()]["JwtConfiguration"];
    assert_eq!(
        jwt["issuer"],
        Value::Mapping(
            [("Fn::Sub".into(), format!("https://cognito-idp.${{AWS::Region}}.amazonaws.com/${{{pool_id}}}").into())]
                .into_iter()
                .collect()
        )
    );
    assert_eq!(jwt["audience"], Value::Sequence(vec![reference(client_id)]));
    let (_, function) = api_function(&t);
    let env = &prop(function, "Environment").unwrap()["Variables"];
    use notes_sync::api::config::vars;
    assert_eq!(env[vars::USER_POOL_ID], reference(pool_id));
    assert_eq!(env[vars::USER_POOL_CLIENT_IDS], reference(client_id));
    let (source_id, _) = t.source_queue();
    assert_eq!(env[vars::QUEUE_URL], reference(source_id));
    // Every route goes through that API, so through its authorizer.
    let events = prop(function, "Events").unwrap().as_mapping().unwrap();
    let mut routes: Vec<String> = events
        .values()
        .map(|e| {
            assert_eq!(e["Properties"]["ApiId"], reference(api_id));
            assert!(e["Properties"].get("Auth").is_none(), "no route opts out of the authorizer");
            format!("{} {}", text(&e["Properties"]["Method"]), text(&e["Properties"]["Path"]))
        })
        .collect();
    routes.sort();
    assert_eq!(routes, ["GET /v1/changes", "GET /v1/notes/{id}", "POST /v1/changes"]);
    let throttle = prop(api, "DefaultRouteSettings").expect("route throttling");
    assert!(throttle.get("ThrottlingRateLimit").is_some() && throttle.get("ThrottlingBurstLimit").is_some());
    for output in ["ApiUrl", "UserPoolId", "UserPoolClientId"] {
        assert!(t.section("Outputs").contains_key(output), "output {output}");
    }
}

#[test]
fn the_table_is_keyed_as_the_code_reads_it_and_rejections_expire_with_the_dlqs_letters() {
    use notes_sync::notes::table;
    let t = Template::load();
    let (_, notes) = t.resources_of_type("AWS::DynamoDB::Table").next().unwrap();
    let keys = |schema: &Value| -> Vec<(String, String)> {
        schema.as_sequence().unwrap().iter().map(|k| (text(&k["AttributeName"]), text(&k["KeyType"]))).collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(keys(prop(notes, "KeySchema").unwrap()), [pair(table::OWNER, "HASH"), pair(table::KEY, "RANGE")]);
    let indexes = prop(notes, "LocalSecondaryIndexes").and_then(Value::as_sequence).expect("a local index");
    let index = indexes.iter().find(|i| text(&i["IndexName"]) == table::BY_APPLIED_AT).expect("the pull's index");
    // Local, not global: only a local index can be read with ConsistentRead.
    assert_eq!(keys(&index["KeySchema"]), [pair(table::OWNER, "HASH"), pair(table::APPLIED_AT, "RANGE")]);
    assert_eq!(text(&index["Projection"]["ProjectionType"]), "ALL", "the pull reads whole notes from it");
    let ttl = prop(notes, "TimeToLiveSpecification").unwrap();
    assert_eq!((text(&ttl["AttributeName"]), ttl["Enabled"].as_bool()), (table::EXPIRES_AT.to_owned(), Some(true)));
    let (_, consumer, _) = t.consumer();
    let rejection_ttl = number(&prop(consumer, "Environment").unwrap()["Variables"]["REJECTION_TTL_SECONDS"]);
    let dlq_retention = number(prop(t.dead_letter_queue().1, "MessageRetentionPeriod").unwrap());
    assert_eq!(rejection_ttl, dlq_retention, "a rejection lives as long as its letter");
}

#[test]
fn the_pull_overlap_exceeds_the_consumers_timeout_by_a_minute_of_clock_skew_for_every_timeout() {
    let t = Template::load();
    let (_, api) = api_function(&t);
    let (_, consumer, _) = t.consumer();
    let overlap = &prop(api, "Environment").unwrap()["Variables"]["PULL_OVERLAP_SECONDS"];
    let timeout_param = referenced_parameter(&t, prop(consumer, "Timeout").unwrap()).expect("a timeout parameter");
    for timeout in t.parameter_values(timeout_param) {
        let bound = BTreeMap::from([(timeout_param, timeout.clone())]);
        for w in t.numbers(overlap, &bound, 0) {
            assert!(w >= number(&timeout) + 60, "timeout {timeout:?}: overlap {w} s");
        }
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic_both_ways() {
    let t = Template::load();
    let (topic, _) = t.resources_of_type("AWS::SNS::Topic").next().unwrap();
    for (id, alarm) in t.resources_of_type("AWS::CloudWatch::Alarm") {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(prop(alarm, actions), Some(&Value::Sequence(vec![reference(topic)])), "{id} {actions}");
        }
    }
}

#[test]
fn the_dlq_age_alarm_fires_days_before_a_dead_letter_expires_for_every_threshold() {
    let t = Template::load();
    let (dlq_id, dlq) = t.dead_letter_queue();
    let retention = number(prop(dlq, "MessageRetentionPeriod").unwrap());
    let (id, alarm) = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|(_, a)| {
            prop(a, "MetricName").and_then(Value::as_str) == Some("ApproximateAgeOfOldestMessage")
                && format!("{:?}", prop(a, "Dimensions")).contains(&format!("\"{dlq_id}\""))
        })
        .expect("an age alarm on the DLQ");
    let none = BTreeMap::new();
    let periods = t.numbers(prop(alarm, "EvaluationPeriods").unwrap(), &none, 1);
    let period = number(prop(alarm, "Period").unwrap());
    for threshold in t.numbers(prop(alarm, "Threshold").unwrap(), &none, 0) {
        for &n in &periods {
            // It fires once the age has been above the threshold for its periods; by then there
            // must still be three days to inspect, fix and redrive.
            let fires_at = threshold + n * period;
            assert!(
                fires_at + 3 * 24 * 3600 <= retention,
                "{id}: threshold {threshold} s fires at {fires_at} s of {retention}"
            );
        }
    }
    let says = |k: &str| prop(alarm, k).map(|v| format!("{v:?}").to_lowercase()).unwrap_or_default();
    assert!(says("AlarmDescription").contains("docs/deploy.md#dlq-age"), "{id} names its runbook entry");
}

#[test]
fn the_consumer_role_id_is_an_output_so_operators_can_tell_its_dead_letters_from_forged_ones() {
    let t = Template::load();
    let (id, consumer, _) = t.consumer();
    let role =
        prop(consumer, "Role").and_then(|r| get_att_of(r, "Arn")).unwrap_or_else(|| panic!("{id} names its role"));
    let output =
        t.section("Outputs").get("ConsumerRoleId").and_then(|o| o.get("Value")).expect("a ConsumerRoleId output");
    assert_eq!(get_att_of(output, "RoleId"), Some(role), "ConsumerRoleId is the role {id} runs as");
}
