//! The JSON Schemas in `schemas/` are generated from the Rust types; this
//! test fails when they drift. Regenerate with
//! `UPDATE_SCHEMAS=1 cargo test --test schemas`.

use serde_json::Value;

fn check(file: &str, generated: Value) {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{file} is out of date with the Rust types; run UPDATE_SCHEMAS=1 cargo test --test schemas"
    );
}

#[test]
fn the_job_schema_matches_the_types() {
    check("job.v1.schema.json", cdn_log_delivery::job::json_schema());
}

#[test]
fn the_outcome_schema_matches_the_types() {
    check("outcome.v1.schema.json", cdn_log_delivery::outcome::json_schema());
}

#[test]
fn the_job_schema_is_strict_and_names_both_types() {
    let schema = cdn_log_delivery::job::json_schema();
    let variants = schema["oneOf"].as_array().expect("one variant per type");
    let mut types: Vec<_> =
        variants.iter().map(|v| v["properties"]["type"]["const"].clone()).collect();
    types.sort_by_key(|t| t.to_string());
    assert_eq!(types, ["enable", "rescan"]);
    for variant in variants {
        assert_eq!(
            variant["additionalProperties"], false,
            "unknown fields are rejected: {variant}"
        );
        let required: Vec<_> =
            variant["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for field in ["type", "accountId", "externalId", "imsOrgId"] {
            assert!(required.contains(&field), "{field} is required: {variant}");
        }
        assert_eq!(variant["properties"]["version"]["const"], 1);
    }
}
