//! SARIF 2.1.0 (the OASIS Static Analysis Results Interchange Format), which
//! GitHub code scanning and other CI tools read: audit findings and spec
//! errors as results, each at the spec line it is about where there is one.
//!
//! One run; `tool.driver.rules` holds every finding audit knows, with the
//! text of `rlsctl explain`, so a viewer can say why and how to fix without
//! rlsctl at hand. A finding about an object the spec declares (a table, a
//! role, a policy) is placed at its declaration; any other keeps a logical
//! location, the object's name in the database.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::audit::report::Report;
use crate::audit::{CheckInfo, Finding, Severity, known_findings};
use crate::spec::{CROSS_TENANT_PREFIX, Origin, Spec, SpecError};

pub const VERSION: &str = "2.1.0";
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule of a spec `validate` refuses.
pub const SPEC_INVALID: &str = "SPEC_INVALID";

/// An audit report as one SARIF log. `spec` places findings at their
/// declarations; without one (audit --role), every location is logical.
pub fn write_audit(out: &mut impl Write, report: &Report, spec: Option<&Spec>) -> io::Result<()> {
    let rules: Vec<CheckInfo> = unique_rules(known_findings());
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| audit_result(finding, &rules, spec))
        .collect();
    let mut run = run(rules.iter().map(rule).collect(), results);
    run["properties"] = json!({
        "database": report.database,
        "serverVersion": report.server_version,
        "connectedAs": report.connected_as,
        "specHash": report.spec_hash,
        "tenantTablesExamined": report.summary.tenant_tables,
    });
    write_log(out, run)
}

/// `validate`'s outcome: no result for a valid spec, one for the error.
pub fn write_validation(
    out: &mut impl Write,
    outcome: Result<&Spec, &SpecError>,
) -> io::Result<()> {
    let rules = vec![json!({
        "id": SPEC_INVALID,
        "name": "SpecInvalid",
        "shortDescription": { "text": "The spec in policies/*.yaml cannot be used" },
        "fullDescription": { "text": "rlsctl refuses a spec it does not fully understand: an unknown key, a wrong type, a name PostgreSQL would truncate, an expression that is not exactly one SQL expression, a policy on an undeclared table." },
        "help": { "text": "Fix the spec at the location shown; `rlsctl validate` checks it without a database." },
        "defaultConfiguration": { "level": "error" },
    })];
    let results = match outcome {
        Ok(_) => Vec::new(),
        Err(error) => {
            let mut result = json!({
                "ruleId": SPEC_INVALID,
                "ruleIndex": 0,
                "level": "error",
                "message": { "text": error.message },
            });
            if let Some(origin) = &error.origin {
                result["locations"] = json!([physical(origin)]);
            }
            vec![result]
        }
    };
    write_log(out, run(rules, results))
}

fn write_log(out: &mut impl Write, run: Value) -> io::Result<()> {
    let log = json!({
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [run],
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn run(rules: Vec<Value>, results: Vec<Value>) -> Value {
    json!({
        "tool": {
            "driver": {
                "name": "rlsctl",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }
        },
        "originalUriBaseIds": {
            "%SRCROOT%": { "description": { "text": "The folder rlsctl ran in" } }
        },
        "results": results,
    })
}

fn unique_rules(infos: impl Iterator<Item = CheckInfo>) -> Vec<CheckInfo> {
    let mut rules: Vec<CheckInfo> = Vec::new();
    for info in infos {
        if !rules.iter().any(|r| r.id == info.id) {
            rules.push(info);
        }
    }
    rules
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn rule(info: &CheckInfo) -> Value {
    json!({
        "id": info.id,
        "shortDescription": { "text": info.title },
        "fullDescription": { "text": info.why },
        "help": {
            "text": format!("{}\n\nWhy it matters: {}\n\nFix: {}", info.title, info.why, info.fix),
            "markdown": format!("**{}**\n\nWhy it matters: {}\n\nFix: {}\n\n`rlsctl explain {}`", info.title, info.why, info.fix, info.id),
        },
        "defaultConfiguration": { "level": level(info.severity) },
    })
}

fn audit_result(finding: &Finding, rules: &[CheckInfo], spec: Option<&Spec>) -> Value {
    let mut result = json!({
        "ruleId": finding.id,
        "level": level(finding.severity),
        "message": { "text": format!("{}: {}. Fix: {}", finding.object, finding.found, finding.fix) },
    });
    if let Some(index) = rules.iter().position(|r| r.id == finding.id) {
        result["ruleIndex"] = json!(index);
    }
    let logical = logical(&finding.object);
    let mut location = match spec.and_then(|spec| declaration(spec, &finding.object)) {
        Some(origin) => physical(origin),
        None => json!({}),
    };
    location["logicalLocations"] = json!([logical]);
    result["locations"] = json!([location]);
    if let Some(reason) = &finding.accepted {
        // Declared under `exceptions:` in the spec: shown, but suppressed.
        result["suppressions"] = json!([{ "kind": "inSource", "justification": reason }]);
    }
    result
}

/// A location in a spec file: relative to the folder rlsctl ran in, as the
/// file was named, so it resolves against the repository checkout.
fn physical(origin: &Origin) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": artifact(&origin.file),
            "region": {
                "startLine": origin.line.max(1),
                "startColumn": origin.column.max(1),
                "snippet": { "text": &*origin.source_line },
            }
        }
    })
}

fn artifact(file: &Path) -> Value {
    let uri: String = file
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    match url::Url::from_file_path(file) {
        Ok(absolute) => json!({ "uri": absolute.as_str() }),
        Err(()) => json!({ "uri": uri, "uriBaseId": "%SRCROOT%" }),
    }
}

/// `table public.projects` → the object's name and kind in the database.
fn logical(object: &str) -> Value {
    let (kind, name) = object.split_once(' ').unwrap_or(("object", object));
    json!({ "fullyQualifiedName": name, "name": name, "kind": kind })
}

/// Where the spec declares the object a finding is about, if it does.
fn declaration<'a>(spec: &'a Spec, object: &str) -> Option<&'a Origin> {
    let table = |name: &str| {
        spec.tables
            .iter()
            .find(|t| t.name.to_string() == name)
            .map(|t| &t.origin)
    };
    let role = |name: &str| {
        spec.roles
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.origin)
            .or_else(|| {
                spec.maintenance
                    .iter()
                    .find(|m| m.role == name)
                    .map(|m| &m.origin)
            })
            .or_else(|| {
                spec.bypass_roles
                    .iter()
                    .find(|b| b.role == name)
                    .map(|b| &b.origin)
            })
    };
    // An object under `grants:` is named as audit names it (`sequence s.n`,
    // `function s.f(text)`, `schema s`).
    if let Some(grant) = spec.grants.iter().find(|g| g.target.to_string() == object) {
        return Some(&grant.origin);
    }
    let (kind, rest) = object.split_once(' ')?;
    match kind {
        "table" => table(rest),
        "role" => role(rest),
        "constraint" => table(rest.rsplit_once(" on ")?.1),
        "policy" => {
            let (policy, on) = rest.rsplit_once(" on ")?;
            spec.policies
                .iter()
                .find(|p| p.name == policy && p.tables.iter().any(|t| t.to_string() == on))
                .map(|p| &p.origin)
                .or_else(|| {
                    let predicate = policy.strip_prefix(CROSS_TENANT_PREFIX)?;
                    spec.cross_tenant
                        .iter()
                        .find(|c| c.name == predicate)
                        .map(|c| &c.origin)
                        .or_else(|| role(predicate))
                })
                .or_else(|| {
                    spec.maintenance
                        .iter()
                        .find(|m| m.policy() == policy)
                        .map(|m| &m.origin)
                })
                .or_else(|| table(on))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "roles:
  - name: app
  - name: reporting
    cross_tenant: read
    reason: Reports across customers.
tables:
  - projects
  - { name: tasks, schema: work }
policies:
  - name: archived_read_only
    tables: [projects]
    command: update
    kind: restrictive
    using: NOT archived
grants:
  - function: ingest.normalize(text)
    roles: [app]
    privileges: [execute]
bypass_roles:
  - role: service_role
    reason: The backend's key only.
";

    fn line_of(object: &str) -> Option<u64> {
        let spec = crate::spec::load_str(Path::new("policies/spec.yaml"), SPEC).unwrap();
        declaration(&spec, object).map(|origin| origin.line)
    }

    #[test]
    fn a_finding_is_placed_at_the_declaration_of_its_object() {
        assert_eq!(line_of("table public.projects"), Some(7));
        assert_eq!(line_of("table work.tasks"), Some(8));
        assert_eq!(line_of("role app"), Some(2));
        assert_eq!(
            line_of("constraint projects_slug_key on public.projects"),
            Some(7)
        );
        assert_eq!(
            line_of("policy archived_read_only on public.projects"),
            Some(10)
        );
        // The generated policies: the tenant policy at its table, a
        // cross-tenant role's policy at the role.
        assert_eq!(line_of("policy tenant_isolation on work.tasks"), Some(8));
        assert_eq!(
            line_of("policy cross_tenant_reporting on public.projects"),
            Some(3)
        );
        assert_eq!(line_of("function ingest.normalize(text)"), Some(16));
        assert_eq!(line_of("role service_role"), Some(20));
        // Not in the spec: no physical location.
        assert_eq!(line_of("table public.notes"), None);
        assert_eq!(line_of("function rls.current_tenant_id()"), None);
        assert_eq!(line_of("database app"), None);
    }

    #[test]
    fn severities_map_to_sarif_levels() {
        assert_eq!(level(Severity::Error), "error");
        assert_eq!(level(Severity::Warning), "warning");
        assert_eq!(level(Severity::Info), "note");
    }
}
