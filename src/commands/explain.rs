//! `rlsctl explain ID`: what an audit finding means and how to fix it.

use std::io::Write;

use anyhow::Result;

use super::Exit;

pub(super) fn run(id: &str) -> Result<Exit> {
    let Some(info) = crate::audit::explain(id) else {
        let ids: Vec<&str> = crate::audit::known_findings().map(|i| i.id).collect();
        anyhow::bail!("no finding `{id}`; known ids:\n  {}", ids.join("\n  "));
    };
    writeln!(
        super::stdout::stdout(),
        "{} ({})\n\n{}\n\nWhy it matters: {}\n\nFix: {}",
        info.id,
        info.severity.label(),
        info.title,
        info.why,
        info.fix
    )?;
    Ok(Exit::Success)
}
