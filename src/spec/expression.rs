//! A policy expression from the spec.
//!
//! Expressions are SQL by nature and reach PostgreSQL as written, so they are
//! the one piece of spec text that is not quoted. What this type guarantees is
//! that the text cannot end the surrounding `USING (…)` or statement: its
//! parentheses balance outside quotes, and it holds no `;` and no comment.
//! PostgreSQL then checks it for real (see `normalize`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expression(String);

impl Expression {
    /// Checks `text`; on failure returns the byte offset of the problem and why.
    pub fn parse(text: &str) -> Result<Expression, (usize, String)> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err((0, "the expression is empty".into()));
        }
        check_shape(text)?;
        Ok(Expression(trimmed.to_string()))
    }

    /// For expressions rlsctl builds itself from quoted parts, and for the
    /// server's own deparse of a stored policy.
    pub(crate) fn trusted(text: String) -> Expression {
        Expression(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_shape(text: &str) -> Result<(), (usize, String)> {
    let bytes = text.as_bytes();
    let mut depth: i64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_quoted(bytes, i)?,
            b'$' => i = skip_dollar_quoted(text, i)?,
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return Err((
                        i,
                        "this `)` closes a parenthesis the expression did not open".into(),
                    ));
                }
                i += 1;
            }
            b';' => return Err((i, "a policy expression cannot contain `;`".into())),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                return Err((i, "comments are not allowed in a policy expression".into()));
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                return Err((i, "comments are not allowed in a policy expression".into()));
            }
            _ => i += 1,
        }
    }
    if depth != 0 {
        return Err((
            text.len(),
            "unbalanced parentheses: a `(` is never closed".into(),
        ));
    }
    Ok(())
}

/// Skips a '…' or "…" token (doubled quote = escaped); returns the index after it.
fn skip_quoted(bytes: &[u8], start: usize) -> Result<usize, (usize, String)> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        // E'…' strings may escape a quote with a backslash.
        if quote == b'\'' && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        i += 1;
    }
    Err((start, "this quote is never closed".into()))
}

/// Skips `$tag$ … $tag$`; a `$` that does not open a dollar quote (`$1`) is plain.
fn skip_dollar_quoted(text: &str, start: usize) -> Result<usize, (usize, String)> {
    let rest = &text[start + 1..];
    let tag_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if !rest[tag_len..].starts_with('$')
        || rest[..tag_len].starts_with(|c: char| c.is_ascii_digit())
    {
        return Ok(start + 1);
    }
    let delimiter = &text[start..start + tag_len + 2];
    let body_start = start + delimiter.len();
    match text[body_start..].find(delimiter) {
        Some(end) => Ok(body_start + end + delimiter.len()),
        None => Err((start, "this dollar quote is never closed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::Expression;

    #[test]
    fn ordinary_expressions_pass() {
        for ok in [
            "owner_id = (select auth.uid())",
            "status <> 'x;y' and note = 'it''s (not'",
            r#""we;ird" = 1"#,
            "body = $q$ ; -- ) $q$",
            "price > 0",
        ] {
            assert!(Expression::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn text_that_could_end_the_statement_is_rejected() {
        for bad in [
            "true); DROP TABLE users; --",
            "true) WITH CHECK (true",
            "true -- comment",
            "(a = 1",
            "/* x */ true",
            "'unterminated",
            "",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }
}
