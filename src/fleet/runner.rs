//! Runs one rlsctl command against every target, a few at a time.
//!
//! Each target gets its own rlsctl process, the same binary with the same
//! flags, connected through `RLSCTL_ADMIN_DATABASE_URL` (so no URL shows in a
//! process listing) and asked for JSON. A process per target is what makes a
//! failure stay where it happened: an unreachable server, refused
//! credentials or a rolled-back apply end that process and nothing else, and
//! no connection, transaction or throwaway state is shared between targets.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::targets::Target;
use crate::connect::redact_in_message;

/// What one target's run ended with.
#[derive(Debug, Clone)]
pub struct TargetRun {
    pub name: String,
    /// rlsctl's exit code for this target (1 when it could not be run at all).
    pub exit: i32,
    /// The target's JSON document, when the command got as far as printing it.
    pub document: Option<serde_json::Value>,
    /// What it printed on stderr, secrets masked: the error when it failed.
    pub stderr: String,
}

/// Runs `rlsctl <command> <args> --format json` for each of `targets`, at
/// most `jobs` at once; results in `targets` order.
pub async fn run(
    program: &Path,
    command: &str,
    args: &[OsString],
    targets: &[Target],
    jobs: usize,
) -> Vec<TargetRun> {
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    let mut tasks = Vec::new();
    for target in targets {
        let permits = permits.clone();
        let mut child = tokio::process::Command::new(program);
        child
            .arg(command)
            .args(args)
            .args(["--format", "json"])
            .env("RLSCTL_ADMIN_DATABASE_URL", &target.url)
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            one(child, &target).await
        }));
    }
    let mut out = Vec::new();
    for (task, target) in tasks.into_iter().zip(targets) {
        out.push(task.await.unwrap_or_else(|e| TargetRun {
            name: target.name.clone(),
            exit: 1,
            document: None,
            stderr: format!("internal error: {e}"),
        }));
    }
    out
}

async fn one(mut child: tokio::process::Command, target: &Target) -> TargetRun {
    match child.output().await {
        Ok(output) => {
            let stdout = String::from_utf8_lossy(&output.stdout);
            TargetRun {
                name: target.name.clone(),
                exit: output.status.code().unwrap_or(1),
                document: serde_json::from_str(&stdout).ok(),
                stderr: scrub(&String::from_utf8_lossy(&output.stderr), &target.url),
            }
        }
        Err(e) => TargetRun {
            name: target.name.clone(),
            exit: 1,
            document: None,
            stderr: format!("could not start rlsctl for this target: {e}"),
        },
    }
}

/// `text` with every connection string masked, and the target's own URL
/// and password too wherever they appear on their own.
fn scrub(text: &str, url: &str) -> String {
    let mut text = redact_in_message(text.trim());
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(password) = parsed.password()
        && !password.is_empty()
    {
        text = text.replace(password, "***");
        if let Ok(decoded) = url::form_urlencoded::parse(password.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .ok_or(())
            && !decoded.is_empty()
        {
            text = text.replace(&decoded, "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn a_target_password_is_masked_even_outside_a_url() {
        let url = "postgres://app:pa%24%24word@db.internal/app";
        let said =
            "error: password pa$$word rejected for postgres://app:pa%24%24word@db.internal/app";
        let shown = scrub(said, url);
        assert!(
            !shown.contains("pa$$word") && !shown.contains("pa%24%24word"),
            "{shown}"
        );
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
