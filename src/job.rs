//! The job contract (version 1): parsing, validation and envelopes.
//!
//! Parsing is strict. A body is refused with a [`Rejection`] naming the field
//! and the rule it broke when it is not JSON, not an object, names an unknown
//! `type` or field, or holds a value of the wrong type or shape. Rejections
//! never echo the external id, and echo other values only when they pass
//! their own validation.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ids::{AccountId, DistributionId, ExternalId, ImsOrgId};

/// SQS refuses bodies above 256 KiB; anything larger did not come from the
/// queue and is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest opaque identifier (`jobId`, `siteId`, `rescanId`) accepted and
/// echoed in outcomes.
pub const MAX_OPAQUE_ID_CHARS: usize = 256;

/// Largest `maxDistributions` a rescan may ask for.
pub const MAX_DISTRIBUTIONS_CAP: u64 = 100_000;

const OPAQUE_RULE: &str = "must be a string of 1-256 characters without control characters";
const HOST_RULE: &str = "must be a host name of 1-253 characters of [A-Za-z0-9.-]";

/// The kinds of job the worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Enable,
    Rescan,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Enable => "enable",
            JobKind::Rescan => "rescan",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        const COMMON: [&str; 7] =
            ["type", "version", "accountId", "externalId", "imsOrgId", "jobId", "siteId"];
        match self {
            JobKind::Enable => &[
                COMMON[0],
                COMMON[1],
                COMMON[2],
                COMMON[3],
                COMMON[4],
                COMMON[5],
                COMMON[6],
                "distributionId",
                "siteHost",
                "allowDomainMismatch",
                "rescanId",
            ],
            JobKind::Rescan => &[
                COMMON[0],
                COMMON[1],
                COMMON[2],
                COMMON[3],
                COMMON[4],
                COMMON[5],
                COMMON[6],
                "maxDistributions",
            ],
        }
    }
}

/// A job, validated. Serialises to the wire form without `version`, which
/// [`Job::to_body`] adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Job {
    Enable(EnableJob),
    Rescan(RescanJob),
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Enable(_) => JobKind::Enable,
            Job::Rescan(_) => JobKind::Rescan,
        }
    }

    pub fn account_id(&self) -> &AccountId {
        match self {
            Job::Enable(job) => &job.account_id,
            Job::Rescan(job) => &job.account_id,
        }
    }

    /// The body the API would send for this job (`version` 1 included).
    pub fn to_body(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(map) = &mut value {
            map.insert("version".into(), Value::from(1));
        }
        value.to_string()
    }
}

/// The JSON Schema of job messages (version 1), generated from [`Job`]. The
/// optional `version` field is added here: it lives on the wire only.
pub fn json_schema() -> Value {
    let mut schema = crate::schema::generate::<Job>();
    schema["title"] = "cdn-log-delivery job, version 1".into();
    schema["description"] = "A message on the jobs queue. A body may also be an EventBridge event \
                             whose `detail` is such a message."
        .into();
    if let Some(variants) = schema["oneOf"].as_array_mut() {
        for variant in variants {
            variant["properties"]["version"] = serde_json::json!({"description": "The contract version; omitted means 1.", "const": 1});
        }
    }
    schema
}

/// Switch on log delivery for one distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnableJob {
    pub account_id: AccountId,
    pub external_id: ExternalId,
    pub ims_org_id: ImsOrgId,
    pub distribution_id: DistributionId,
    /// Echoed in outcomes; defaults to the SQS message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub job_id: Option<String>,
    /// Opaque; echoed in outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub site_id: Option<String>,
    /// When set, the distribution's aliases must contain it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9.-]{1,253}$"))]
    pub site_host: Option<String>,
    /// Skip the `siteHost` check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_domain_mismatch: bool,
    /// The `jobId` of the rescan that fanned this job out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub rescan_id: Option<String>,
}

/// Make sure every distribution of an account has log delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RescanJob {
    pub account_id: AccountId,
    pub external_id: ExternalId,
    pub ims_org_id: ImsOrgId,
    /// Echoed in outcomes and carried by fanned-out jobs as `rescanId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub job_id: Option<String>,
    /// Opaque; echoed in outcomes and carried by fanned-out jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub site_id: Option<String>,
    /// Cap on the distributions one rescan handles.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000))]
    pub max_distributions: Option<u32>,
}

/// Identifiers read from a refused body, each only if it is valid on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SafeIds {
    pub job_id: Option<String>,
    pub account_id: Option<AccountId>,
    pub distribution_id: Option<DistributionId>,
    pub site_id: Option<String>,
    pub rescan_id: Option<String>,
}

/// Why a body was refused. `reason` names the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    /// The job type, when the body named a known one.
    pub kind: Option<JobKind>,
    pub reason: String,
    pub ids: Box<SafeIds>,
}

/// Parses and validates one message body.
///
/// An EventBridge event (`detail-type` plus an object `detail`) is unwrapped
/// first; EventBridge Scheduler sends job bodies as they are.
///
/// # Errors
///
/// A [`Rejection`] for any body that is not a valid version-1 job.
pub fn parse(body: &str) -> Result<Job, Rejection> {
    let reject = |reason: String| Rejection { kind: None, reason, ids: Box::default() };
    if body.len() > MAX_BODY_BYTES {
        return Err(reject(format!(
            "body is {} bytes, more than the 256 KiB SQS allows",
            body.len()
        )));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| {
        reject(format!(
            "body is not valid JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut object) = value else {
        return Err(reject(format!("body must be a JSON object, not {}", type_name(&value))));
    };
    if object.contains_key("detail-type") && object.contains_key("detail") {
        object = match object.remove("detail") {
            Some(Value::Object(detail)) => detail,
            other => {
                return Err(reject(format!(
                    "detail: an EventBridge envelope's detail must be a job object, not {}",
                    type_name(&other.unwrap_or_default())
                )));
            }
        };
    }

    let fields = Fields(&object);
    let ids = Box::new(fields.safe_ids());
    let rejection =
        |kind: Option<JobKind>, reason: String| Rejection { kind, reason, ids: ids.clone() };

    let kind = match object.get("type") {
        None => return Err(rejection(None, "type: is required".into())),
        Some(Value::String(t)) if t == "enable" => JobKind::Enable,
        Some(Value::String(t)) if t == "rescan" => JobKind::Rescan,
        Some(_) => {
            return Err(rejection(None, r#"type: must be "enable" or "rescan""#.into()));
        }
    };
    fields.parse(kind).map_err(|reason| rejection(Some(kind), reason))
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn parse(&self, kind: JobKind) -> Result<Job, String> {
        if let Some(unknown) = self.0.keys().find(|k| !kind.fields().contains(&k.as_str())) {
            return Err(format!(
                "{}: unknown field for {} jobs",
                printable(unknown),
                kind.as_str()
            ));
        }
        match self.0.get("version") {
            None => {}
            Some(v) if v.as_u64() == Some(1) => {}
            Some(_) => return Err("version: must be the number 1".into()),
        }

        let account_id = self.required("accountId", AccountId::parse)?;
        let external_id = self.required("externalId", ExternalId::parse)?;
        let ims_org_id = self.required("imsOrgId", ImsOrgId::parse)?;
        let job_id = self.optional("jobId", opaque)?;
        let site_id = self.optional("siteId", opaque)?;

        Ok(match kind {
            JobKind::Enable => Job::Enable(EnableJob {
                account_id,
                external_id,
                ims_org_id,
                distribution_id: self.required("distributionId", DistributionId::parse)?,
                job_id,
                site_id,
                site_host: self.optional("siteHost", host)?,
                allow_domain_mismatch: match self.0.get("allowDomainMismatch") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("allowDomainMismatch: must be a boolean".into()),
                },
                rescan_id: self.optional("rescanId", opaque)?,
            }),
            JobKind::Rescan => Job::Rescan(RescanJob {
                account_id,
                external_id,
                ims_org_id,
                job_id,
                site_id,
                max_distributions: match self.0.get("maxDistributions") {
                    None => None,
                    Some(v) => match v.as_u64() {
                        Some(n @ 1..=MAX_DISTRIBUTIONS_CAP) => u32::try_from(n).ok(),
                        _ => {
                            return Err(format!(
                                "maxDistributions: must be a whole number from 1 to {MAX_DISTRIBUTIONS_CAP}"
                            ));
                        }
                    },
                },
            }),
        })
    }

    fn required<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<T, String> {
        self.optional(name, parse)?.ok_or_else(|| format!("{name}: is required"))
    }

    fn optional<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => parse(s).map(Some).map_err(|rule| format!("{name}: {rule}")),
            Some(other) => Err(format!("{name}: must be a string, not {}", type_name(other))),
        }
    }

    /// Identifiers that can be echoed even though the body is refused.
    fn safe_ids(&self) -> SafeIds {
        let read = |name: &str| self.0.get(name).and_then(Value::as_str);
        SafeIds {
            job_id: read("jobId").and_then(|s| opaque(s).ok()),
            account_id: read("accountId").and_then(|s| AccountId::parse(s).ok()),
            distribution_id: read("distributionId").and_then(|s| DistributionId::parse(s).ok()),
            site_id: read("siteId").and_then(|s| opaque(s).ok()),
            rescan_id: read("rescanId").and_then(|s| opaque(s).ok()),
        }
    }
}

fn opaque(value: &str) -> Result<String, &'static str> {
    let count = value.chars().count();
    if (1..=MAX_OPAQUE_ID_CHARS).contains(&count) && !value.chars().any(char::is_control) {
        Ok(value.to_owned())
    } else {
        Err(OPAQUE_RULE)
    }
}

fn host(value: &str) -> Result<String, &'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    if (1..=253).contains(&value.len()) && value.bytes().all(allowed) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(HOST_RULE)
    }
}

/// A field name from the body made safe to put in a reason: escaped, then
/// cut to 64 characters (escaping can make a short name long).
fn printable(name: &str) -> String {
    let escaped = format!("{name:?}");
    if escaped.chars().count() <= 64 {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(64).collect();
    cut.push_str("...");
    cut
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enable_body() -> Value {
        json!({
            "type": "enable",
            "accountId": "123456789012",
            "externalId": "ext-id-secret",
            "imsOrgId": "8C6043F15F43B6390A49401A@AdobeOrg",
            "distributionId": "EDFDVBD6EXAMPLE",
        })
    }

    fn rejected(body: &Value) -> Rejection {
        parse(&body.to_string()).unwrap_err()
    }

    #[test]
    fn a_minimal_enable_job_parses() {
        let Job::Enable(job) = parse(&enable_body().to_string()).unwrap() else {
            panic!("not enable")
        };
        assert_eq!(job.account_id.as_str(), "123456789012");
        assert_eq!(job.distribution_id.as_str(), "EDFDVBD6EXAMPLE");
        assert_eq!(job.ims_org_id.safe(), "8c6043f15f43b6390a49401a");
        assert!(!job.allow_domain_mismatch);
        assert_eq!(job.job_id, None);
    }

    #[test]
    fn a_full_rescan_job_parses() {
        let body = json!({
            "type": "rescan", "version": 1, "accountId": "123456789012", "externalId": "ab",
            "imsOrgId": "ORG@AdobeOrg", "jobId": "job-1", "siteId": "site-1", "maxDistributions": 50,
        });
        let Job::Rescan(job) = parse(&body.to_string()).unwrap() else { panic!("not rescan") };
        assert_eq!(job.max_distributions, Some(50));
        assert_eq!(job.job_id.as_deref(), Some("job-1"));
        assert_eq!(job.site_id.as_deref(), Some("site-1"));
    }

    #[test]
    fn an_eventbridge_envelope_is_unwrapped() {
        let body = json!({
            "version": "0", "id": "6a7e8feb", "detail-type": "cdn-log-delivery.rescan",
            "source": "scheduler", "account": "111122223333", "time": "2026-12-01T00:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"type": "rescan", "accountId": "123456789012", "externalId": "ab", "imsOrgId": "o"},
        });
        assert_eq!(parse(&body.to_string()).unwrap().kind(), JobKind::Rescan);
    }

    #[test]
    fn an_envelope_with_a_non_object_detail_is_rejected() {
        let r = rejected(&json!({"detail-type": "x", "detail": "nope"}));
        assert!(r.reason.starts_with("detail:"), "{}", r.reason);
    }

    #[test]
    fn unknown_fields_are_named() {
        let mut body = enable_body();
        body["maxDistributions"] = json!(3);
        let r = rejected(&body);
        assert_eq!(r.kind, Some(JobKind::Enable));
        assert_eq!(r.reason, "\"maxDistributions\": unknown field for enable jobs");
    }

    #[test]
    fn unknown_types_are_rejected_with_kind_unknown() {
        let mut body = enable_body();
        body["type"] = json!("disable");
        let r = rejected(&body);
        assert_eq!(r.kind, None);
        assert!(r.reason.starts_with("type:"));
        body["type"] = json!(7);
        assert!(rejected(&body).reason.starts_with("type:"));
    }

    #[test]
    fn each_field_rule_is_named() {
        for (field, value, expect) in [
            ("accountId", json!("12345"), "accountId: must be a string of exactly 12 ASCII digits"),
            ("accountId", json!(123456789012_u64), "accountId: must be a string, not a number"),
            ("externalId", json!("a"), "externalId: must be 2-1224"),
            ("imsOrgId", json!("@AdobeOrg"), "imsOrgId: must have a non-empty safe form"),
            ("distributionId", json!("short"), "distributionId: must match"),
            ("siteHost", json!("bad host"), "siteHost: must be a host name"),
            ("allowDomainMismatch", json!("true"), "allowDomainMismatch: must be a boolean"),
            ("jobId", json!(""), "jobId: must be a string of 1-256"),
            ("siteId", json!("a\u{0}b"), "siteId: must be a string of 1-256"),
            ("version", json!(2), "version: must be the number 1"),
            ("version", json!("1"), "version: must be the number 1"),
        ] {
            let mut body = enable_body();
            body[field] = value;
            let r = rejected(&body);
            assert!(r.reason.starts_with(expect), "{field}: {}", r.reason);
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in ["accountId", "externalId", "imsOrgId", "distributionId"] {
            let mut body = enable_body();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(rejected(&body).reason, format!("{field}: is required"));
        }
        assert_eq!(rejected(&json!({})).reason, "type: is required");
    }

    #[test]
    fn max_distributions_must_be_a_positive_whole_number() {
        for bad in [json!(0), json!(-1), json!(1.5), json!("10"), json!(100_001)] {
            let body = json!({"type": "rescan", "accountId": "123456789012", "externalId": "ab",
                              "imsOrgId": "o", "maxDistributions": bad});
            assert!(rejected(&body).reason.starts_with("maxDistributions:"));
        }
    }

    #[test]
    fn non_json_and_non_objects_are_rejected() {
        assert!(parse("not json").unwrap_err().reason.starts_with("body is not valid JSON"));
        assert!(parse("[1,2]").unwrap_err().reason.starts_with("body must be a JSON object"));
        assert!(parse("").unwrap_err().reason.starts_with("body is not valid JSON"));
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert!(parse(&body).unwrap_err().reason.contains("256 KiB"));
    }

    #[test]
    fn deeply_nested_bodies_are_rejected_not_overflowed() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&body).unwrap_err().reason.starts_with("body is not valid JSON"));
    }

    #[test]
    fn rejections_carry_only_valid_identifiers_and_never_the_external_id() {
        let mut body = enable_body();
        body["jobId"] = json!("job-7");
        body["siteHost"] = json!(42);
        body["accountId"] = json!("not-an-account");
        let r = rejected(&body);
        assert_eq!(r.ids.job_id.as_deref(), Some("job-7"));
        assert_eq!(r.ids.account_id, None);
        assert_eq!(r.ids.distribution_id.as_ref().map(|d| d.as_str()), Some("EDFDVBD6EXAMPLE"));
        assert!(!format!("{r:?}").contains("ext-id-secret"));
    }

    #[test]
    fn bad_external_id_reason_does_not_echo_it() {
        let mut body = enable_body();
        body["externalId"] = json!("contains spaces which are not allowed");
        let r = rejected(&body);
        assert!(!r.reason.contains("contains spaces"));
    }

    #[test]
    fn long_unknown_field_names_are_cut_and_escaped() {
        let mut body = enable_body();
        body[format!("{}\n", "k".repeat(500))] = json!(1);
        let r = rejected(&body);
        assert!(r.reason.len() < 120, "{}", r.reason);
        assert!(!r.reason.contains('\n'));
        let mut body = enable_body();
        body["\u{7f}".repeat(300)] = json!(1);
        assert!(rejected(&body).reason.len() < 120, "escapes are cut too");
    }

    #[test]
    fn to_body_round_trips() {
        let mut body = enable_body();
        body["rescanId"] = json!("r-1");
        body["siteId"] = json!("s-1");
        body["allowDomainMismatch"] = json!(true);
        let job = parse(&body.to_string()).unwrap();
        let again = parse(&job.to_body()).unwrap();
        assert_eq!(job, again);
        let wire: Value = serde_json::from_str(&job.to_body()).unwrap();
        assert_eq!(wire["version"], json!(1));
        assert_eq!(wire["externalId"], json!("ext-id-secret"));
    }
}
