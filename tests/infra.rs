//! The templates in `infra/` keep the promises the worker's failure handling
//! rests on. `scripts/lint-infra` checks them against CloudFormation's
//! schemas, but cfn-lint skips most checks of an SQS event source whose queue
//! is a `!GetAtt` and knows nothing of this worker; these tests read the
//! templates and follow their references (event source → queue → dead-letter
//! queue, function → role) rather than trusting logical ids.

use std::collections::BTreeSet;

use cdn_log_delivery::config::{
    Config, DEFAULT_CONNECTOR_ROLE_NAME, DEFAULT_LOGS_TPS, DEFAULT_MAX_RECEIVE_COUNT,
};
use cdn_log_delivery::job::{self, JobKind};
use cdn_log_delivery::metrics;
use serde_yaml::Value;

const WORKER_TEMPLATE: &str = "template.yaml";
const CONNECTOR_TEMPLATE: &str = "connector-role.yaml";

/// Everything the customer's connector role may do, and nothing more.
const CONNECTOR_ACTIONS: [&str; 9] = [
    "logs:PutDeliverySource",
    "logs:GetDeliverySource",
    "logs:DescribeDeliverySources",
    "logs:DescribeDeliveries",
    "logs:CreateDelivery",
    "logs:GetDelivery",
    "cloudfront:ListDistributions",
    "cloudfront:GetDistribution",
    "cloudfront:AllowVendedLogDeliveryForResource",
];

/// Variables the worker cannot run its Lambda duties without: `Config`
/// refuses to start without the first two, and rescans and rejections need
/// the queues.
const REQUIRED_ENV: [&str; 4] = [
    "DELIVERY_DESTINATION_ACCOUNT_ID",
    "RESULTS_TOPIC_ARN",
    "JOBS_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
];

// ------------------------------------------------------------------ helpers

/// An intrinsic function, in short (`!Ref`) or long (`Ref:`) form.
#[derive(Debug, PartialEq, Eq)]
enum Intrinsic<'a> {
    Ref(&'a str),
    /// `Resource.Attribute`.
    GetAtt(String),
    /// The template string; variables maps are not used here.
    Sub(&'a str),
}

fn intrinsic(value: &Value) -> Option<Intrinsic<'_>> {
    let (name, arg) = match value {
        Value::Tagged(tagged) => (tagged.tag.to_string(), &tagged.value),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            (key.as_str()?.to_owned(), arg)
        }
        _ => return None,
    };
    match name.trim_start_matches('!') {
        "Ref" => arg.as_str().map(Intrinsic::Ref),
        "GetAtt" | "Fn::GetAtt" => match arg {
            Value::String(s) => Some(Intrinsic::GetAtt(s.clone())),
            Value::Sequence(parts) => {
                let parts: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
                Some(Intrinsic::GetAtt(parts?.join(".")))
            }
            _ => None,
        },
        "Sub" | "Fn::Sub" => match arg {
            Value::String(s) => Some(Intrinsic::Sub(s)),
            Value::Sequence(parts) => parts.first()?.as_str().map(Intrinsic::Sub),
            _ => None,
        },
        _ => None,
    }
}

/// `value[key]`, naming the whole path when it is missing.
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| {
        v.get(key).unwrap_or_else(|| panic!("no {} in the template", path.join(".")))
    })
}

/// A string or a list of strings, as IAM writes `Action` and `Resource`.
fn strings(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

struct Template {
    name: &'static str,
    root: Value,
}

impl Template {
    fn load(name: &'static str) -> Self {
        let path = format!("{}/infra/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let root = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self { name, root }
    }

    fn resource(&self, logical_id: &str) -> &Value {
        self.root
            .get("Resources")
            .and_then(|r| r.get(logical_id))
            .unwrap_or_else(|| panic!("{}: no resource {logical_id}", self.name))
    }

    fn resource_type(&self, logical_id: &str) -> &str {
        at(self.resource(logical_id), &["Type"]).as_str().unwrap()
    }

    fn properties(&self, logical_id: &str) -> &Value {
        at(self.resource(logical_id), &["Properties"])
    }

    /// `(logical id, properties)` of every resource of `ty`.
    fn resources_of_type(&self, ty: &str) -> Vec<(&str, &Value)> {
        at(&self.root, &["Resources"])
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().unwrap(), r.get("Properties").unwrap_or(&Value::Null)))
            .collect()
    }

    /// The one resource of `ty`.
    fn only(&self, ty: &str) -> (&str, &Value) {
        let found = self.resources_of_type(ty);
        assert_eq!(found.len(), 1, "{}: expected one {ty}, found {}", self.name, found.len());
        found[0]
    }

    fn parameter(&self, name: &str) -> &Value {
        self.root
            .get("Parameters")
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("{}: no parameter {name}", self.name))
    }

    fn parameter_default(&self, name: &str) -> String {
        scalar(at(self.parameter(name), &["Default"]))
            .unwrap_or_else(|| panic!("{}: parameter {name} has no scalar default", self.name))
    }

    /// The logical id a `!GetAtt X.Arn` (or `!Ref X`) points at.
    fn target_of(&self, reference: &Value) -> String {
        match intrinsic(reference) {
            Some(Intrinsic::GetAtt(att)) => {
                att.split_once('.').map_or(att.clone(), |(id, _)| id.to_owned())
            }
            Some(Intrinsic::Ref(id)) => id.to_owned(),
            other => panic!("{}: expected a reference, found {other:?}", self.name),
        }
    }

    /// A number written literally or as a `!Ref` to a parameter (its default).
    fn number(&self, value: &Value) -> u64 {
        let text = match intrinsic(value) {
            Some(Intrinsic::Ref(param)) => self.parameter_default(param),
            _ => scalar(value).unwrap_or_else(|| panic!("{}: {value:?} is no number", self.name)),
        };
        text.parse().unwrap_or_else(|_| panic!("{}: {text} is no number", self.name))
    }

    /// The worker function: the template's one Lambda function.
    fn function(&self) -> &Value {
        self.only("AWS::Serverless::Function").1
    }

    /// The SQS event source of the worker function.
    fn sqs_event_source(&self) -> &Value {
        let events = at(self.function(), &["Events"]).as_mapping().unwrap();
        let sqs: Vec<_> = events
            .values()
            .filter(|e| e.get("Type").and_then(Value::as_str) == Some("SQS"))
            .collect();
        assert_eq!(sqs.len(), 1, "expected one SQS event source, found {}", sqs.len());
        at(sqs[0], &["Properties"])
    }

    /// Logical id of the queue the worker consumes.
    fn jobs_queue(&self) -> String {
        self.target_of(at(self.sqs_event_source(), &["Queue"]))
    }

    /// Logical id of the queue the jobs queue's redrive policy targets.
    fn dead_letter_queue(&self) -> String {
        let jobs = self.jobs_queue();
        self.target_of(at(self.properties(&jobs), &["RedrivePolicy", "deadLetterTargetArn"]))
    }

    fn function_env(&self, name: &str) -> Option<&Value> {
        self.function().get("Environment")?.get("Variables")?.get(name)
    }

    /// Logical id of the role the worker function runs as.
    fn worker_role(&self) -> String {
        self.target_of(at(self.function(), &["Role"]))
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_true(value: Option<&Value>) -> bool {
    value.and_then(scalar).is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// Statements of every inline policy of `role`.
fn inline_statements(role: &Value) -> Vec<&Value> {
    let Some(policies) = role.get("Policies").and_then(Value::as_sequence) else {
        return Vec::new();
    };
    policies.iter().flat_map(|p| strings(at(p, &["PolicyDocument", "Statement"]))).collect()
}

fn action_names(statement: &Value) -> Vec<&str> {
    strings(at(statement, &["Action"])).into_iter().map(|a| a.as_str().unwrap()).collect()
}

/// Every string under an `Action` or `NotAction` key, however deeply nested
/// (queue and topic policies, roles, conditionals), with where it was found.
fn all_actions<'a>(value: &'a Value, path: &mut Vec<String>, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let key = scalar(key).unwrap_or_default();
                path.push(key.clone());
                if key == "Action" || key == "NotAction" {
                    string_leaves(child, &path.join("."), out);
                } else {
                    all_actions(child, path, out);
                }
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                all_actions(child, path, out);
                path.pop();
            }
        }
        Value::Tagged(tagged) => all_actions(&tagged.value, path, out),
        _ => {}
    }
}

fn string_leaves<'a>(value: &'a Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path.to_owned(), s)),
        Value::Sequence(items) => items.iter().for_each(|v| string_leaves(v, path, out)),
        Value::Mapping(map) => map.values().for_each(|v| string_leaves(v, path, out)),
        Value::Tagged(tagged) => string_leaves(&tagged.value, path, out),
        _ => {}
    }
}

// ------------------------------------------------------------ the event source

#[test]
fn event_source_reports_batch_item_failures() {
    let t = Template::load(WORKER_TEMPLATE);
    let types = at(t.sqs_event_source(), &["FunctionResponseTypes"]);
    assert!(
        strings(types).iter().any(|v| v.as_str() == Some("ReportBatchItemFailures")),
        "without ReportBatchItemFailures one retryable record sends the whole batch back: \
         {types:?}"
    );
}

#[test]
fn event_source_takes_batches_of_ten() {
    let t = Template::load(WORKER_TEMPLATE);
    assert_eq!(t.number(at(t.sqs_event_source(), &["BatchSize"])), 10);
}

#[test]
fn event_source_concurrency_is_bounded() {
    let t = Template::load(WORKER_TEMPLATE);
    let max = at(t.sqs_event_source(), &["ScalingConfig", "MaximumConcurrency"]);
    // Lambda accepts 2 to 1000; a parameter must not allow less either.
    assert!((2..=1000).contains(&t.number(max)), "MaximumConcurrency {max:?}");
    if let Some(Intrinsic::Ref(param)) = intrinsic(max) {
        let min = t.number(at(t.parameter(param), &["MinValue"]));
        assert!(min >= 2, "parameter {param} allows MaximumConcurrency {min}");
    }
}

// ------------------------------------------------------------ queues and topic

#[test]
fn jobs_and_dead_letter_queues_are_fifo() {
    let t = Template::load(WORKER_TEMPLATE);
    for queue in [t.jobs_queue(), t.dead_letter_queue()] {
        assert_eq!(t.resource_type(&queue), "AWS::SQS::Queue");
        assert!(is_true(t.properties(&queue).get("FifoQueue")), "{queue} is not FIFO");
    }
}

#[test]
fn redrive_moves_jobs_to_a_separate_dead_letter_queue() {
    let t = Template::load(WORKER_TEMPLATE);
    let (jobs, dlq) = (t.jobs_queue(), t.dead_letter_queue());
    assert_ne!(jobs, dlq, "the jobs queue redrives into itself");
    assert_eq!(t.resource_type(&dlq), "AWS::SQS::Queue");
    // The worker sends rejected bodies there itself.
    let dlq_url = t.function_env("DEAD_LETTER_QUEUE_URL").expect("DEAD_LETTER_QUEUE_URL");
    assert_eq!(t.target_of(dlq_url), dlq, "DEAD_LETTER_QUEUE_URL is not the redrive target");
    let jobs_url = t.function_env("JOBS_QUEUE_URL").expect("JOBS_QUEUE_URL");
    assert_eq!(t.target_of(jobs_url), jobs, "JOBS_QUEUE_URL is not the queue the worker consumes");
}

#[test]
fn redrive_receive_count_is_the_workers_max_receive_count() {
    let t = Template::load(WORKER_TEMPLATE);
    let redrive = at(t.properties(&t.jobs_queue()), &["RedrivePolicy", "maxReceiveCount"]);
    let env = t.function_env("MAX_RECEIVE_COUNT").expect("the function has no MAX_RECEIVE_COUNT");
    // One parameter for both, so that no deployment can set them apart.
    let (Some(Intrinsic::Ref(from_queue)), Some(Intrinsic::Ref(from_env))) =
        (intrinsic(redrive), intrinsic(env))
    else {
        panic!("maxReceiveCount {redrive:?} and MAX_RECEIVE_COUNT {env:?} must both be !Ref");
    };
    assert_eq!(from_queue, from_env, "maxReceiveCount and MAX_RECEIVE_COUNT differ");
    assert_eq!(
        t.number(redrive),
        u64::from(DEFAULT_MAX_RECEIVE_COUNT),
        "the parameter's default differs from the worker's"
    );
}

#[test]
fn visibility_timeout_is_at_least_six_function_timeouts() {
    let t = Template::load(WORKER_TEMPLATE);
    let timeout = t.number(at(t.function(), &["Timeout"]));
    let visibility = t.number(at(t.properties(&t.jobs_queue()), &["VisibilityTimeout"]));
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s is less than six times the function timeout {timeout} s"
    );
}

#[test]
fn queues_and_topics_are_encrypted() {
    let t = Template::load(WORKER_TEMPLATE);
    let queues = t.resources_of_type("AWS::SQS::Queue");
    let topics = t.resources_of_type("AWS::SNS::Topic");
    assert!(queues.len() >= 2 && !topics.is_empty(), "queues or topic missing");
    for (id, queue) in queues {
        assert!(
            is_true(queue.get("SqsManagedSseEnabled")) || queue.get("KmsMasterKeyId").is_some(),
            "queue {id} is not encrypted"
        );
    }
    for (id, topic) in topics {
        assert!(topic.get("KmsMasterKeyId").is_some(), "topic {id} is not encrypted");
    }
}

// ------------------------------------------------------------ the worker

#[test]
fn function_environment_covers_the_required_configuration() {
    let t = Template::load(WORKER_TEMPLATE);
    for name in REQUIRED_ENV {
        assert!(t.function_env(name).is_some(), "the function has no {name}");
    }
    // With the template's values (parameter defaults, sample ARNs and URLs
    // for resources), the worker's own configuration parser accepts them,
    // and the defaults are the worker's.
    let resolve = |name: &str| {
        let value = t.function_env(name)?;
        Some(match intrinsic(value) {
            Some(Intrinsic::Ref(param)) if t.root["Parameters"].get(param).is_some() => {
                match name {
                    // A required parameter has no default; any account will do.
                    "DELIVERY_DESTINATION_ACCOUNT_ID" => "111122223333".to_owned(),
                    _ => t.parameter_default(param),
                }
            }
            Some(_) if name == "RESULTS_TOPIC_ARN" => {
                "arn:aws:sns:us-east-1:444455556666:results".to_owned()
            }
            Some(_) if name.ends_with("_QUEUE_URL") => {
                format!("https://sqs.us-east-1.amazonaws.com/444455556666/{name}.fifo")
            }
            Some(other) => panic!("{name}: cannot resolve {other:?}"),
            None => scalar(value)?,
        })
    };
    let config = Config::from_lookup(resolve).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.max_receive_count.get(), DEFAULT_MAX_RECEIVE_COUNT);
    assert_eq!(config.logs_tps.get(), DEFAULT_LOGS_TPS);
    assert_eq!(config.connector_role_name, DEFAULT_CONNECTOR_ROLE_NAME);
    assert!(config.jobs_queue_url.is_some() && config.dead_letter_queue_url.is_some());
}

#[test]
fn function_logs_json() {
    let t = Template::load(WORKER_TEMPLATE);
    let function = t.function();
    let format = function
        .get("LoggingConfig")
        .and_then(|l| l.get("LogFormat"))
        .or_else(|| t.function_env("AWS_LAMBDA_LOG_FORMAT"))
        .and_then(Value::as_str);
    assert_eq!(format, Some("JSON"));
}

#[test]
fn worker_may_assume_only_the_connector_role() {
    let t = Template::load(WORKER_TEMPLATE);
    let role = t.worker_role();
    assert_eq!(t.resource_type(&role), "AWS::IAM::Role");
    let statements = inline_statements(t.properties(&role));
    let assume: Vec<_> =
        statements.iter().filter(|s| action_names(s).contains(&"sts:AssumeRole")).collect();
    assert_eq!(assume.len(), 1, "expected one sts:AssumeRole statement");
    assert_eq!(action_names(assume[0]), ["sts:AssumeRole"], "assume statement grants more");
    let resources = strings(at(assume[0], &["Resource"]));
    assert_eq!(resources.len(), 1, "sts:AssumeRole on more than one resource");
    let Some(Intrinsic::Sub(arn)) = intrinsic(resources[0]) else {
        panic!("sts:AssumeRole resource {:?} is not a !Sub", resources[0]);
    };
    assert!(arn.ends_with(":role/${ConnectorRoleName}"), "sts:AssumeRole on {arn}");
    assert_eq!(t.parameter_default("ConnectorRoleName"), DEFAULT_CONNECTOR_ROLE_NAME);
    // The role the worker assumes is the one its policy allows.
    let env = t.function_env("CONNECTOR_ROLE_NAME").map(intrinsic);
    assert_eq!(env, Some(Some(Intrinsic::Ref("ConnectorRoleName"))));
}

#[test]
fn worker_can_send_to_the_jobs_and_dead_letter_queues() {
    let t = Template::load(WORKER_TEMPLATE);
    let statements = inline_statements(t.properties(&t.worker_role()));
    let targets: BTreeSet<String> = statements
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .filter(|s| action_names(s).contains(&"sqs:SendMessage"))
        .flat_map(|s| strings(at(s, &["Resource"])))
        .map(|r| t.target_of(r))
        .collect();
    let expected: BTreeSet<String> = [t.jobs_queue(), t.dead_letter_queue()].into();
    assert_eq!(targets, expected, "rescan fan-out and rejections need both queues");
}

#[test]
fn no_action_has_a_wildcard() {
    for name in [WORKER_TEMPLATE, CONNECTOR_TEMPLATE] {
        let t = Template::load(name);
        let mut found = Vec::new();
        all_actions(&t.root, &mut Vec::new(), &mut found);
        assert!(found.len() >= 9, "{name}: only {} actions found", found.len());
        let wild: Vec<_> = found.iter().filter(|(_, a)| a.contains('*')).collect();
        assert!(wild.is_empty(), "{name}: wildcard actions {wild:?}");
    }
}

#[test]
fn batch_item_failures_alarm_watches_the_workers_metric() {
    let t = Template::load(WORKER_TEMPLATE);
    let alarms: Vec<_> = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a.get("MetricName").and_then(Value::as_str) == Some("BatchItemFailures"))
        .collect();
    assert_eq!(alarms.len(), 1, "expected one alarm on BatchItemFailures");
    let (id, alarm) = alarms[0];
    assert_eq!(at(alarm, &["Namespace"]).as_str(), Some(metrics::NAMESPACE), "{id}");
    // A metric is identified by all its dimensions: any other set than the
    // worker's (FunctionName alone) names a metric that never gets data.
    let dimensions = at(alarm, &["Dimensions"]).as_sequence().unwrap();
    assert_eq!(dimensions.len(), 1, "{id}: the worker emits FunctionName only");
    assert_eq!(at(&dimensions[0], &["Name"]).as_str(), Some("FunctionName"));
    let function = t.only("AWS::Serverless::Function").0;
    assert_eq!(t.target_of(at(&dimensions[0], &["Value"])), function);
}

// ------------------------------------------------------------ schedules

#[test]
fn scheduled_rescan_is_a_valid_job_for_the_jobs_queue() {
    let t = Template::load(WORKER_TEMPLATE);
    let (id, schedule) = t.only("AWS::Scheduler::Schedule");
    let target = at(schedule, &["Target"]);
    assert_eq!(t.target_of(at(target, &["Arn"])), t.jobs_queue(), "{id} targets another queue");

    // FIFO: the schedule names the account's message group and sends no
    // deduplication id, so the queue must derive one from the content.
    let group = at(target, &["SqsParameters", "MessageGroupId"]);
    let Some(Intrinsic::Ref(account_param)) = intrinsic(group) else {
        panic!("{id}: MessageGroupId {group:?} is not the account parameter");
    };
    assert!(
        is_true(t.properties(&t.jobs_queue()).get("ContentBasedDeduplication")),
        "scheduled sends carry no deduplication id"
    );

    let Some(Intrinsic::Sub(input)) = intrinsic(at(target, &["Input"])) else {
        panic!("{id}: Input is not a !Sub");
    };
    let body = input
        .trim()
        .replace(&format!("${{{account_param}}}"), "111122223333")
        .replace("${ExampleRescanExternalId}", "demo-external-id")
        .replace("${ExampleRescanImsOrgId}", "8C6043F15F43B6390A49401A@AdobeOrg");
    assert!(!body.contains("${"), "{id}: Input has unresolved variables: {body}");
    let job = job::parse(&body).unwrap_or_else(|e| panic!("{id}: the worker rejects {body}: {e}"));
    assert_eq!(job.kind(), JobKind::Rescan);
    assert_eq!(job.account_id().as_str(), "111122223333", "group and job name different accounts");
    assert!(is_true(t.parameter("ExampleRescanExternalId").get("NoEcho")));
}

// ------------------------------------------------------------ the customer's role

#[test]
fn connector_role_trusts_only_the_worker_role_with_the_external_id() {
    let t = Template::load(CONNECTOR_TEMPLATE);
    let (_, role) = t.only("AWS::IAM::Role");
    let trust = strings(at(role, &["AssumeRolePolicyDocument", "Statement"]));
    assert_eq!(trust.len(), 1, "the trust policy must have one statement");
    let statement = trust[0];
    assert_eq!(at(statement, &["Effect"]).as_str(), Some("Allow"));
    assert_eq!(action_names(statement), ["sts:AssumeRole"]);

    let principal = at(statement, &["Principal"]).as_mapping().unwrap();
    assert_eq!(principal.len(), 1, "principals besides AWS: {principal:?}");
    let aws = strings(at(statement, &["Principal", "AWS"]));
    assert_eq!(aws.len(), 1, "more than one principal: {aws:?}");
    assert_eq!(intrinsic(aws[0]), Some(Intrinsic::Ref("WorkerRoleArn")));

    let condition = at(statement, &["Condition"]).as_mapping().unwrap();
    assert_eq!(condition.len(), 1, "unexpected conditions {condition:?}");
    let external = at(statement, &["Condition", "StringEquals", "sts:ExternalId"]);
    assert_eq!(intrinsic(external), Some(Intrinsic::Ref("ExternalId")));

    let param = t.parameter("ExternalId");
    assert!(is_true(param.get("NoEcho")), "the external id must be NoEcho");
    assert_eq!(at(param, &["AllowedPattern"]).as_str(), Some("[A-Za-z0-9_+=,.@:/-]{2,1224}"));
    assert_eq!(t.parameter_default("RoleName"), DEFAULT_CONNECTOR_ROLE_NAME);
}

#[test]
fn connector_role_grants_exactly_the_nine_actions() {
    let t = Template::load(CONNECTOR_TEMPLATE);
    let (_, role) = t.only("AWS::IAM::Role");
    assert!(role.get("ManagedPolicyArns").is_none(), "managed policies add permissions");
    for ty in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        assert!(t.resources_of_type(ty).is_empty(), "a separate {ty} adds permissions");
    }
    let statements = inline_statements(role);
    assert!(
        statements.iter().all(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow")),
        "only Allow statements are expected"
    );
    let granted: BTreeSet<&str> = statements.iter().flat_map(|s| action_names(s)).collect();
    let expected: BTreeSet<&str> = CONNECTOR_ACTIONS.into();
    assert_eq!(granted, expected);
}
