//! Config errors that point at `file:line:column` and show the offending line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lines::Lines;

/// Where something was written in the spec: kept on every declared object so
/// errors found later (a missing table, a rejected expression) point back at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    /// The text of that line, for the snippet under the message; shared by
    /// every origin on the line.
    pub source_line: Arc<str>,
}

impl Origin {
    pub fn new(file: &Path, lines: &Lines, line: u64, column: u64) -> Self {
        Origin {
            file: file.to_path_buf(),
            line,
            column,
            source_line: lines.line(line),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A problem with the spec. Rendered like a compiler error:
///
/// ```text
/// error: unknown field `colum`, expected one of `column`, `type`, …
///   --> policies/tenancy.yaml:3:3
///    |
///  3 |   colum: tenant_id
///    |   ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub message: String,
    pub origin: Option<Origin>,
}

impl SpecError {
    pub fn at(origin: &Origin, message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
            origin: Some(origin.clone()),
        }
    }

    pub fn general(message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
            origin: None,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            None => write!(f, "{}", self.message),
            Some(origin) => {
                let number = origin.line.to_string();
                let pad = " ".repeat(number.len());
                let caret_pad = " ".repeat(origin.column.saturating_sub(1) as usize);
                write!(
                    f,
                    "{origin}: {message}\n{pad} |\n{number} | {line}\n{pad} | {caret_pad}^",
                    message = self.message,
                    line = origin.source_line,
                )
            }
        }
    }
}
