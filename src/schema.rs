//! JSON Schemas of the job and outcome contracts, generated from the Rust
//! types and committed under `schemas/` for the API team.

use schemars::JsonSchema;
use serde_json::Value;

/// The draft 2020-12 schema of `T`. Optional fields are absent when unset,
/// never `null`, so `null` is taken out of every `type` list schemars adds it
/// to for an `Option`.
pub fn generate<T: JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    drop_null_types(&mut schema);
    schema
}

fn drop_null_types(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [single] = types.as_slice() {
                    let single = single.clone();
                    map.insert("type".into(), single);
                }
            }
            if let Some(Value::Array(variants)) = map.get_mut("anyOf") {
                variants.retain(|v| v != &serde_json::json!({"type": "null"}));
                if let [Value::Object(single)] = variants.as_slice() {
                    let single = single.clone();
                    map.remove("anyOf");
                    map.extend(single);
                }
            }
            map.values_mut().for_each(drop_null_types);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_types),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_is_taken_out_of_optional_types() {
        let mut schema = json!({"properties": {
            "a": {"type": ["string", "null"]},
            "b": {"type": "integer"},
            "c": {"description": "d", "anyOf": [{"$ref": "#/$defs/C"}, {"type": "null"}]},
        }});
        drop_null_types(&mut schema);
        assert_eq!(
            schema,
            json!({"properties": {
                "a": {"type": "string"},
                "b": {"type": "integer"},
                "c": {"description": "d", "$ref": "#/$defs/C"},
            }})
        );
    }
}
