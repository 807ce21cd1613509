//! Reading the spec a command was pointed at.

use anyhow::Result;

use crate::cli::SpecArgs;
use crate::spec::{self, Spec};

pub(super) fn load_spec(args: &SpecArgs) -> Result<Spec> {
    // The error is already a located, rendered message.
    spec::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))
}

/// audit and verify read a spec from `--config` (default `policies`) unless
/// they were given the runtime roles with `--role` and no `--config`.
pub(super) fn spec_unless_roles_given(
    config: &Option<std::path::PathBuf>,
    roles: &[String],
    command: &str,
) -> Result<Option<Spec>> {
    if !roles.is_empty() && config.is_none() {
        return Ok(None);
    }
    let config = config.clone().unwrap_or_else(|| "policies".into());
    spec::load(&config).map(Some).map_err(|e| {
        anyhow::anyhow!("{e}\n(to {command} without a spec, name the runtime role with --role)")
    })
}
