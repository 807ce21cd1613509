//! The targets file of `--targets`: which databases a fleet run reaches.
//!
//! Two forms. One target per line — a connection URL, or the name of an
//! environment variable holding one (so the file itself need hold no
//! secret); blank lines and `#` comments are skipped:
//!
//! ```text
//! postgres://rlsctl@eu-1.db.internal/app
//! US_DATABASE_URL
//! ```
//!
//! Or a YAML list giving each target a name:
//!
//! ```yaml
//! - name: eu-1
//!   url: postgres://rlsctl@eu-1.db.internal/app
//! - name: us-1
//!   env: US_DATABASE_URL
//! ```
//!
//! Everything is checked before any target runs: a line that is neither, a
//! variable that is not set, two targets with one name — each an error at
//! `file:line:column`, and nothing runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::connect::redact;
use crate::spec::lines::Lines;
use crate::spec::{Origin, SpecError};

/// One database of the fleet.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// What reports call it: the YAML name, the variable's name, or the URL
    /// with its password masked.
    pub name: String,
    /// The connection URL; may hold a password, so never printed.
    pub url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({:?}, {})", self.name, redact(&self.url))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetDoc {
    name: Spanned<String>,
    url: Option<Spanned<String>>,
    env: Option<Spanned<String>>,
}

/// Reads the targets file at `path`.
pub fn load(path: &Path) -> Result<Vec<Target>, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::general(format!("cannot read {}: {e}", path.display())))?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// The targets `text` (read from `file`) names; `env` looks variables up.
pub fn parse(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, SpecError> {
    // Errors show the offending line: with its passwords masked.
    let shown: String = text
        .lines()
        .map(crate::connect::redact_in_message)
        .collect::<Vec<_>>()
        .join("\n");
    let lines = Lines::new(&shown);
    let at = |line: u64, column: u64| Origin::new(file, &lines, line, column);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let targets = match first {
        None => {
            return Err(SpecError::general(format!(
                "{}: names no target (one database URL or environment variable name per line, or a YAML list of name + url/env)",
                file.display()
            )));
        }
        Some(l) if l == "-" || l.starts_with("- ") => yaml(file, text, &at, env)?,
        Some(_) => plain(text, &at, env)?,
    };
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for (target, origin) in &targets {
        if seen.insert(&target.name, ()).is_some() {
            return Err(SpecError::at(
                origin,
                format!(
                    "a second target named {:?}: names must be unique",
                    target.name
                ),
            ));
        }
    }
    Ok(targets.into_iter().map(|(t, _)| t).collect())
}

fn plain(
    text: &str,
    at: &dyn Fn(u64, u64) -> Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(Target, Origin)>, SpecError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let word = line.trim();
        if word.is_empty() || word.starts_with('#') {
            continue;
        }
        let column = (line.len() - line.trim_start().len() + 1) as u64;
        let origin = at(index as u64 + 1, column);
        let target = if is_url(word) {
            Target {
                name: shown_url(word),
                url: word.to_string(),
            }
        } else if is_variable_name(word) {
            Target {
                name: word.to_string(),
                url: from_variable(word, &origin, env)?,
            }
        } else {
            return Err(SpecError::at(
                &origin,
                "expected a database URL (postgres://…) or the name of an environment variable holding one",
            ));
        };
        out.push((target, origin));
    }
    Ok(out)
}

fn yaml(
    file: &Path,
    text: &str,
    at: &dyn Fn(u64, u64) -> Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(Target, Origin)>, SpecError> {
    let docs: Vec<TargetDoc> = serde_saphyr::from_str(text).map_err(|e| {
        // The message may quote the value it could not read: a URL, masked.
        let message = crate::connect::redact_in_message(
            e.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .split(" at line ")
                .next()
                .unwrap_or_default(),
        );
        match e.location() {
            Some(loc) => SpecError::at(&at(loc.line(), loc.column()), message),
            None => SpecError::general(format!("{}: {message}", file.display())),
        }
    })?;
    let spot = |s: &Spanned<String>| at(s.referenced.line(), s.referenced.column());
    let mut out = Vec::new();
    for doc in docs {
        let origin = spot(&doc.name);
        let url = match (&doc.url, &doc.env) {
            (Some(url), None) if is_url(&url.value) => url.value.clone(),
            (Some(url), None) => {
                return Err(SpecError::at(
                    &spot(url),
                    "url: expected a database URL (postgres://…)",
                ));
            }
            (None, Some(var)) if is_variable_name(&var.value) => {
                from_variable(&var.value, &spot(var), env)?
            }
            (None, Some(var)) => {
                return Err(SpecError::at(
                    &spot(var),
                    "env: expected the name of an environment variable",
                ));
            }
            _ => {
                return Err(SpecError::at(
                    &origin,
                    "give exactly one of url: or env: for this target",
                ));
            }
        };
        if doc.name.value.trim().is_empty() {
            return Err(SpecError::at(&origin, "the name is empty"));
        }
        out.push((
            Target {
                name: doc.name.value.clone(),
                url,
            },
            origin,
        ));
    }
    Ok(out)
}

fn from_variable(
    name: &str,
    origin: &Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SpecError> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        Some(url) if is_url(url.trim()) => Ok(url.trim().to_string()),
        Some(_) => Err(SpecError::at(
            origin,
            format!("environment variable {name} does not hold a database URL (postgres://…)"),
        )),
        None => Err(SpecError::at(
            origin,
            format!("environment variable {name} is not set"),
        )),
    }
}

fn is_url(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    (lower.starts_with("postgres://") || lower.starts_with("postgresql://"))
        && !word.contains(char::is_whitespace)
}

fn is_variable_name(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A URL as a report may show it: user, host, port and database, no password.
fn shown_url(url: &str) -> String {
    redact(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "EU_URL" => Some("postgres://app:s3cret@eu.internal/app".into()),
            "NOT_A_URL" => Some("hello".into()),
            _ => None,
        }
    }

    fn parse_text(text: &str) -> Result<Vec<Target>, SpecError> {
        parse(Path::new("targets.txt"), text, &env)
    }

    #[test]
    fn lines_name_urls_and_variables_and_skip_comments() {
        let targets = parse_text(
            "# the fleet\npostgres://rlsctl:hunter2@db1.internal:5433/app\n\n  EU_URL\n",
        )
        .unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(
            targets[0].url,
            "postgres://rlsctl:hunter2@db1.internal:5433/app"
        );
        assert!(!targets[0].name.contains("hunter2"), "{}", targets[0].name);
        assert!(
            targets[0].name.contains("db1.internal"),
            "{}",
            targets[0].name
        );
        assert_eq!(targets[1].name, "EU_URL");
        assert_eq!(targets[1].url, "postgres://app:s3cret@eu.internal/app");
        assert!(!format!("{targets:?}").contains("s3cret"));
    }

    #[test]
    fn a_yaml_list_gives_names() {
        let targets = parse_text(
            "- name: eu-1\n  env: EU_URL\n- name: us-1\n  url: postgresql://u@us.internal/app\n",
        )
        .unwrap();
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["eu-1", "us-1"]);
        assert_eq!(targets[1].url, "postgresql://u@us.internal/app");
    }

    #[test]
    fn bad_lines_unset_variables_and_repeated_names_point_at_file_line_column() {
        let cases = [
            (
                "postgres://a@h/db\n  not a url\n",
                "targets.txt:2:3",
                "expected a database URL",
            ),
            ("MISSING_URL\n", "targets.txt:1:1", "MISSING_URL is not set"),
            (
                "NOT_A_URL\n",
                "targets.txt:1:1",
                "does not hold a database URL",
            ),
            (
                "EU_URL\nEU_URL\n",
                "targets.txt:2:1",
                "a second target named",
            ),
            (
                "- name: a\n  url: postgres://h/a\n  env: EU_URL\n",
                "targets.txt:1:9",
                "exactly one of",
            ),
            (
                "- name: a\n  urll: postgres://h/a\n",
                "targets.txt:2:",
                "unknown field",
            ),
            (
                "- name: a\n  env: MISSING_URL\n",
                "targets.txt:2:8",
                "MISSING_URL is not set",
            ),
        ];
        for (text, place, message) in cases {
            let error = parse_text(text).unwrap_err().to_string();
            assert!(error.starts_with(place), "{text:?}: {error}");
            assert!(error.contains(message), "{text:?}: {error}");
        }
        let empty = parse_text("# nothing\n").unwrap_err().to_string();
        assert!(empty.contains("names no target"), "{empty}");
    }

    #[test]
    fn a_yaml_error_never_shows_a_password() {
        let error = parse_text("- name: a\n  url: [postgres://u:pw@h/db\n")
            .unwrap_err()
            .to_string();
        assert!(!error.contains(":pw@"), "{error}");
    }
}
