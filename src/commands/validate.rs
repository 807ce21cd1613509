//! `rlsctl validate`: read the spec and say what it declares.

use std::io::Write;

use anyhow::Result;

use super::Exit;
use super::load_spec::load_spec;
use crate::cli::{Format, SpecArgs};

pub(super) fn run(args: &SpecArgs) -> Result<Exit> {
    let spec = load_spec(args)?;
    let runtime: Vec<&str> = spec.runtime_roles().map(|r| r.name.as_str()).collect();
    let mut out = super::stdout::stdout();
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "valid": true,
                "tables": spec.tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
                "runtime_roles": runtime,
                "policies": spec.policies.len(),
                "maintenance_roles": spec.maintenance.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
                "spec_hash": spec.hash,
            })
        ),
        Format::Text => writeln!(
            out,
            "{}: valid: {} tables, runtime roles {}, {} extra policies",
            args.config.display(),
            spec.tables.len(),
            runtime.join(", "),
            spec.policies.len()
        ),
    }?;
    Ok(Exit::Success)
}
