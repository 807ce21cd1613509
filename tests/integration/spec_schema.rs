//! The published JSON Schema (`schema/policies.schema.json`) accepts the
//! repository's own specs and examples, and refuses what rlsctl refuses, so
//! an editor's squiggles agree with `rlsctl validate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::repo_root;

fn schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join(rlsctl::spec::PUBLISHED_SCHEMA)).unwrap(),
    )
    .unwrap()
}

/// The draft-07 keywords the generated schema uses, checked by hand (no
/// validator crate, no network): `$ref` into `definitions`, `type`, `enum`,
/// `anyOf`, `allOf`, `properties`, `required`, `additionalProperties`,
/// `items`. Returns every violation with its path.
fn violations(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/definitions/");
        return violations(root, &root["definitions"][name], value, path);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"));
        if !fits {
            out.push(format!("{path}: {actual}, expected {types:?}"));
            return out;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let Some(options) = schema["anyOf"].as_array() {
        let each: Vec<Vec<String>> = options
            .iter()
            .map(|o| violations(root, o, value, path))
            .collect();
        if each.iter().all(|v| !v.is_empty()) {
            out.push(format!("{path}: {value} matches none of anyOf"));
            // Why, for each alternative.
            out.extend(each.into_iter().flatten());
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(violations(root, part, value, path));
    }
    if let Value::Object(map) = value {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap();
            if !map.contains_key(key) {
                out.push(format!("{path}: `{key}` is required"));
            }
        }
        for (key, item) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => {
                    out.extend(violations(root, property, item, &format!("{path}.{key}")))
                }
                None if schema["additionalProperties"] == false => {
                    out.push(format!("{path}: unknown key `{key}`"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            out.extend(violations(root, item_schema, item, &format!("{path}[{i}]")));
        }
    }
    out
}

fn check_yaml(yaml: &str) -> Vec<String> {
    let value: Value = serde_saphyr::from_str(yaml).unwrap();
    let schema = schema();
    violations(&schema, &schema, &value, "$")
}

fn rlsctl_validates(yaml: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/spec.yaml"), yaml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status
        .success()
}

fn spec_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            spec_files(&path, out);
        } else if path.parent().is_some_and(|p| p.ends_with("policies"))
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        {
            out.push(path);
        }
    }
}

#[test]
fn the_repo_specs_and_examples_validate_against_the_published_schema() {
    let mut files = Vec::new();
    spec_files(&repo_root().join("policies"), &mut files);
    spec_files(&repo_root().join("examples"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let found = check_yaml(&text);
        assert!(found.is_empty(), "{}: {found:#?}", file.display());
        // The editor hint points at the published schema.
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# yaml-language-server: $schema=")
                && first.ends_with("schema/policies.schema.json"),
            "{}: first line {first:?}",
            file.display()
        );
    }
}

#[test]
fn the_schema_refuses_what_rlsctl_refuses() {
    let accepted = [
        "roles:\n  - name: app\ntables:\n  - projects\n  - { name: tasks, commands: [select], index: [title] }\n",
        "tenancy:\n  type: text\n  function: { name: app.tenant, managed: false }\n  when_unbound: error\nroles:\n  - name: app\ntables: [projects]\n",
        "tenancy:\n  function: rls.current_tenant_id\n  source: { jwt_claim: org_id }\nroles:\n  - name: app\ntables: [projects]\n",
        "tenancy:\n  column: owner\n  type: name\n  source: current_user\nroles:\n  - name: app\ntables: [notes]\n",
        "roles:\n  - name: app\n    login: true\npolicies:\n  - name: p\n    tables: [projects]\n    kind: restrictive\n    using: 'true'\ntables: [projects]\n",
    ];
    for yaml in accepted {
        assert_eq!(check_yaml(yaml), Vec::<String>::new(), "{yaml}");
        assert!(rlsctl_validates(yaml), "{yaml}");
    }
    let refused = [
        ("tenancy:\n  colum: tenant_id\n", "unknown key `colum`"),
        ("tenancy:\n  type: uuidv7\n", "is not one of"),
        ("roles:\n  - login: true\n", "`name` is required"),
        ("tables:\n  - { schema: app }\n", "matches none of anyOf"),
        ("tenancy:\n  source: owner\n", "matches none of anyOf"),
        (
            "policies:\n  - name: p\n    tables: [t]\n    command: upsert\n",
            "is not one of",
        ),
        (
            "roles:\n  - name: a\n    cross_tenant: write\n",
            "is not one of",
        ),
    ];
    for (yaml, why) in refused {
        let found = check_yaml(yaml);
        assert!(found.iter().any(|f| f.contains(why)), "{yaml}: {found:#?}");
        assert!(
            !rlsctl_validates(yaml),
            "rlsctl accepts what the schema refuses: {yaml}"
        );
    }
}
