//! The one place where text becomes SQL.
//!
//! Every statement rlsctl sends is an [`Sql`] value. Its builder only accepts
//! `&'static str` for keywords; names go through [`Sql::ident`] (double-quoted),
//! values through [`Sql::literal`] (single-quoted), and the spec's policy
//! expressions through [`Sql::expr`], which only takes an expression the config
//! stage has already checked for statement breaks. Values that can be bound
//! (settings, lookups) are bound parameters instead and never reach this module.
//!
//! An `Sql` keeps a second, display-only text in which secrets are masked, so a
//! plan, an error message or the history table can show a statement without
//! showing a password.

use std::fmt;

use crate::spec::Expression;

/// A schema-qualified name, compared and ordered by its parts (never by its
/// quoted form), so `public.t` and `"public"."t"` are the same object.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// The quoted SQL form, `"schema"."name"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    /// Human form for messages: quotes only where SQL would need them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            display_ident(&self.schema),
            display_ident(&self.name)
        )
    }
}

/// Double-quotes an identifier, doubling embedded quotes. Always quoting keeps
/// reserved words, mixed case, unicode and punctuation exact.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes only when the bare form would not round-trip: for messages and plans.
pub fn display_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_string() } else { ident(name) }
}

/// Single-quotes a string literal. A value with a backslash uses the `E''`
/// form so the result means the same whatever `standard_conforming_strings` is.
pub fn literal(value: &str) -> String {
    let doubled = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// A statement under construction, or finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sql {
    text: String,
    shown: String,
}

impl Sql {
    pub fn new(keywords: &'static str) -> Self {
        Sql {
            text: keywords.to_string(),
            shown: keywords.to_string(),
        }
    }

    /// Appends fixed SQL text (keywords, punctuation).
    pub fn push(mut self, keywords: &'static str) -> Self {
        self.text.push_str(keywords);
        self.shown.push_str(keywords);
        self
    }

    fn append(mut self, both: &str) -> Self {
        self.text.push_str(both);
        self.shown.push_str(both);
        self
    }

    pub fn ident(self, name: &str) -> Self {
        self.append(&ident(name))
    }

    pub fn idents<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self = self.push(", ");
            }
            self = self.ident(name);
        }
        self
    }

    pub fn qname(self, name: &QualifiedName) -> Self {
        self.append(&name.quoted())
    }

    pub fn literal(self, value: &str) -> Self {
        self.append(&literal(value))
    }

    /// A literal that must never be displayed (a password).
    pub fn secret_literal(mut self, value: &str) -> Self {
        self.text.push_str(&literal(value));
        self.shown.push_str("'********'");
        self
    }

    /// A policy expression from the spec, already checked by the config stage
    /// to be one parenthesis-balanced expression with no statement break.
    pub fn expr(self, expression: &Expression) -> Self {
        self.append(expression.as_str())
    }

    /// A fragment (never a secret) as a string literal: a function body.
    pub fn literal_of(self, fragment: &Sql) -> Self {
        self.append(&literal(&fragment.text))
    }

    /// `json_populate_record(NULL::table, $1::json) AS r`: a bound JSON
    /// document as the table's row type, so values reach the server bound and
    /// parsed by each column's own type, with no type name pasted.
    pub fn json_row(table: &QualifiedName) -> Sql {
        Sql::new("pg_catalog.json_populate_record(NULL::")
            .qname(table)
            .push(", $1::json) AS r")
    }

    /// Appends another finished statement fragment (keeps its masking).
    pub fn sql(mut self, other: &Sql) -> Self {
        self.text.push_str(&other.text);
        self.shown.push_str(&other.shown);
        self
    }

    /// Statements joined into one multi-statement string for the simple
    /// query protocol (one round trip for many small DDL statements).
    pub fn batch(statements: &[Sql]) -> Sql {
        let mut out = Sql::default();
        for (i, statement) in statements.iter().enumerate() {
            if i > 0 {
                out = out.push(";\n");
            }
            out = out.sql(statement);
        }
        out
    }

    /// The masked text for humans, plans and history.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The only way to hand a statement to sqlx.
    pub fn to_query(&self) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(self.text.clone())
    }
}

impl fmt::Display for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_embedded_quotes_doubled() {
        assert_eq!(ident(r#"we"ird; DROP"#), r#""we""ird; DROP""#);
        assert_eq!(ident("select"), r#""select""#);
        assert_eq!(display_ident("tenant_id"), "tenant_id");
        assert_eq!(display_ident("Tenant"), r#""Tenant""#);
        assert_eq!(display_ident("é"), r#""é""#);
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b'"), r"E'a\\b'''");
    }

    #[test]
    fn secrets_are_masked_in_the_shown_text_only() {
        let sql = Sql::new("ALTER ROLE ")
            .ident("app")
            .push(" PASSWORD ")
            .secret_literal("hunter2");
        assert_eq!(sql.shown(), r#"ALTER ROLE "app" PASSWORD '********'"#);
        assert!(sql.to_query().0.contains("'hunter2'"));
        assert!(!sql.to_string().contains("hunter2"));
    }
}
