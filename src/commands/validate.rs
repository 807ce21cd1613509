//! `rlsctl validate`: read the spec and say what it declares.

use std::io::Write;

use anyhow::Result;

use super::Exit;
use super::stdout::stdout;
use crate::cli::{ValidateArgs, ValidateFormat};

pub(super) fn run(args: &ValidateArgs) -> Result<Exit> {
    let loaded = crate::spec::load(&args.config);
    let mut out = stdout();
    if args.format == ValidateFormat::Sarif {
        // The log is the result either way; the exit status and stderr still
        // say whether the spec is valid.
        crate::sarif::write_validation(&mut out, loaded.as_ref())?;
    }
    // The error is already a located, rendered message.
    let spec = loaded.map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime: Vec<&str> = spec.runtime_roles().map(|r| r.name.as_str()).collect();
    match args.format {
        ValidateFormat::Sarif => Ok(()),
        ValidateFormat::Json => writeln!(
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
        ValidateFormat::Text => writeln!(
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
