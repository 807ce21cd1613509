//! `rlsctl schema`: the JSON Schema of the spec, for editors and CI.

use std::io::Write;

use anyhow::Result;

use super::Exit;

pub(super) fn run() -> Result<Exit> {
    super::stdout::stdout().write_all(crate::spec::json_schema().as_bytes())?;
    Ok(Exit::Success)
}
