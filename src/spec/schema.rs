//! The JSON Schema of `policies/*.yaml`, generated from the very types the
//! loader deserializes (`document`), so editors complete and check what
//! rlsctl accepts: unknown keys (`deny_unknown_fields`) are refused, renamed
//! keys (`type`) and defaults appear as rlsctl reads them. The published copy
//! is `schema/policies.schema.json`; a test keeps it equal to this.

use schemars::generate::SchemaSettings;

use super::document::Document;

/// Where the repository publishes the schema, relative to its root.
pub const PUBLISHED: &str = "schema/policies.schema.json";

/// The schema as published: pretty JSON (draft-07, which every YAML editor
/// plugin reads), ending in a newline.
pub fn json_schema() -> String {
    let mut schema = SchemaSettings::draft07()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<Document>();
    schema.insert("title".into(), "rlsctl spec (policies/*.yaml)".into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_the_one_the_types_generate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PUBLISHED);
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == json_schema(),
            "{PUBLISHED} is out of date with the spec types: regenerate it with\n  cargo run -- schema > {PUBLISHED}"
        );
    }

    #[test]
    fn the_schema_says_what_serde_accepts() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        let definitions = &schema["definitions"];
        // deny_unknown_fields: no object takes a key it does not list.
        assert_eq!(schema["additionalProperties"], false);
        for name in [
            "TenancyDoc",
            "RoleDoc",
            "PolicyDoc",
            "TableMap",
            "FunctionMap",
        ] {
            assert_eq!(definitions[name]["additionalProperties"], false, "{name}");
        }
        // rename: the column's type is written `type`.
        let tenancy = &definitions["TenancyDoc"]["properties"];
        assert!(tenancy.get("type").is_some() && tenancy.get("column_type").is_none());
        // default: optional, with rlsctl's default shown.
        let policy = &definitions["PolicyDoc"];
        assert_eq!(policy["properties"]["command"]["default"], "all");
        assert_eq!(policy["properties"]["kind"]["default"], "permissive");
        let required: Vec<&str> = policy["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(required, ["name", "tables"]);
        // A table is a name or a map.
        let table = &definitions["TableDoc"]["anyOf"];
        assert_eq!(table[0]["type"], "string");
    }
}
