//! `rlsctl init --from-db`: write the spec that describes a live database.
//!
//! Reads the catalog in a read-only transaction, discovers the spec
//! (`adopt`), checks that it loads as any spec does, and only then writes
//! one file. A folder that already holds a spec is left alone unless
//! `--force`, and the refusal comes before anything is read or written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sqlx::Connection;

use super::Exit;
use crate::adopt::{self, FunctionBody};
use crate::catalog::{self, Scope};
use crate::cli::{InitArgs, database_url};
use crate::connect::{connect_to, redact};
use crate::spec;

/// The one file init writes in the config folder.
const SPEC_FILE: &str = "rlsctl.yaml";

pub(super) async fn run(args: &InitArgs) -> Result<Exit> {
    let target = args.config.join(SPEC_FILE);
    let existing = existing_specs(&args.config)?;
    if !existing.is_empty() && !args.force {
        anyhow::bail!(
            "{} already holds a spec ({}): init writes nothing over it. Pass --force to replace {} (other *.yaml files are kept and read with it), or choose another folder with --config",
            args.config.display(),
            names(&existing),
            target.display()
        );
    }
    let Some(url) = database_url(&args.database_url) else {
        anyhow::bail!(
            "no database to describe: pass --database-url, or set RLSCTL_ADMIN_DATABASE_URL or DATABASE_URL"
        );
    };
    let shown = redact(&url);
    let mut conn = connect_to(&url).await?;

    // Read-only by construction: the server refuses any write in it.
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    let snapshot = catalog::read(&mut tx, &Scope::default())
        .await
        .context("reading the catalog")?;
    let mut functions = BTreeMap::new();
    for written in adopt::functions_called(&snapshot.state) {
        if let Some((name, body)) = catalog::zero_argument_function(&mut tx, &written)
            .await
            .context("reading the functions the tenant policies call")?
        {
            functions.insert(written, FunctionBody { name, body });
        }
    }
    tx.rollback().await?;

    let discovered = adopt::discover(&snapshot.state, &snapshot.current_user, &functions)
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let text = adopt::render(&discovered);
    // What is written must be a spec rlsctl reads; a failure here is a bug.
    spec::load_str(&target, &text).map_err(|e| {
        anyhow::anyhow!("the spec discovered in {shown} does not load, so nothing was written: {e}")
    })?;
    write_atomically(&args.config, &target, &text)?;

    let todos = text.matches("# TODO:").count();
    let others: Vec<PathBuf> = existing.into_iter().filter(|p| *p != target).collect();
    eprintln!(
        "wrote {}: {} tenant tables, runtime roles {}, {} other policies, {todos} TODOs (from {shown})",
        target.display(),
        discovered.tables.len(),
        discovered
            .roles
            .iter()
            .filter(|r| r.cross_tenant.is_none())
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        discovered.policies.len(),
    );
    if !others.is_empty() {
        eprintln!(
            "note: {} is read together with {}",
            target.display(),
            names(&others)
        );
    }
    eprintln!("next: review the TODOs, then `rlsctl validate` and `rlsctl plan`");
    Ok(Exit::Success)
}

/// The `*.yaml` files of `dir` (every one is part of the spec there).
fn existing_specs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Written beside the target and renamed over it: never half a file.
fn write_atomically(dir: &Path, target: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", target.display()))?;
    file.persist(target)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}
