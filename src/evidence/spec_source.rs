//! Which spec a report held the database to: its content hash, its files and,
//! when the folder is in a git work tree, the commit and whether it was clean.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::spec::Spec;

#[derive(Debug, Clone, Serialize)]
pub struct SpecSource {
    pub hash: String,
    pub files: Vec<String>,
    pub git_commit: Option<String>,
    /// The spec folder differs from the commit (uncommitted changes).
    pub git_dirty: bool,
}

impl SpecSource {
    pub fn git_commit_label(&self) -> String {
        match &self.git_commit {
            None => "not in a git repository".to_string(),
            Some(commit) if self.git_dirty => format!("{commit} (with uncommitted changes)"),
            Some(commit) => commit.clone(),
        }
    }
}

pub fn read(spec: &Spec, dir: &Path) -> SpecSource {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let git_dirty = git_commit.is_some()
        && git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    SpecSource {
        hash: spec.hash.clone(),
        files,
        git_commit,
        git_dirty,
    }
}
