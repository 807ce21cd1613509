//! A policy expression from the spec.
//!
//! Expressions are SQL by nature and reach PostgreSQL as written, so they are
//! the one piece of spec text that is not quoted. What this type guarantees,
//! by construction, is that the text is exactly one SQL expression as
//! PostgreSQL's own grammar reads it (libpg_query, through the `pg_query`
//! crate, in the grammar mode PL/pgSQL uses for its expressions): no second
//! statement, no `)` that ends the surrounding `USING (…)`, no comment that
//! would swallow the closing parenthesis. A hand-written lexer cannot promise
//! that (it would have to agree with the server on `E'…'`, dollar quotes,
//! nested comments, Unicode escapes…); the real one can. Statements carrying
//! an expression are also sent one per message over the extended query
//! protocol, so even a disagreement could not start a second statement.
//! PostgreSQL then checks names and types for real (see `normalize`).

use std::fmt;

use pg_query::protobuf::{self, Token, node::Node as N};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expression(String);

impl Expression {
    /// Checks `text`; on failure returns the byte offset of the problem and why.
    pub fn parse(text: &str) -> Result<Expression, (usize, String)> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err((0, "the expression is empty".into()));
        }
        let lead = text.len() - text.trim_start().len();
        check_one_expression(trimmed).map_err(|(at, why)| (lead + at, why))?;
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

fn check_one_expression(text: &str) -> Result<(), (usize, String)> {
    if let Some(at) = text.find('\0') {
        return Err((at, "the expression contains a NUL character".into()));
    }
    let tokens = pg_query::scan_tokens(text).map_err(|e| (0, lexer_message(&e)))?;
    for token in &tokens {
        let at = token.start.max(0) as usize;
        match Token::try_from(token.token) {
            Ok(Token::SqlComment | Token::CComment) => {
                return Err((at, "comments are not allowed in a policy expression".into()));
            }
            Ok(Token::Ascii59) => {
                return Err((at, "a policy expression cannot contain `;`".into()));
            }
            _ => {}
        }
    }
    let parsed = pg_query::parse(text, pg_query::ParserOptions::PLPGSQL_EXPR)
        .map_err(|e| syntax_error(text, &tokens, &e))?;
    let [statement] = parsed.protobuf.stmts.as_slice() else {
        return Err((0, "this is not one SQL expression".into()));
    };
    match statement.stmt.as_ref().and_then(|s| s.node.as_ref()) {
        Some(N::SelectStmt(select)) if is_bare_target_list(select) => {
            match select.target_list.as_slice() {
                [one] => match one.node.as_ref() {
                    Some(N::ResTarget(target))
                        if target.name.is_empty()
                            && target.val.as_deref().is_some_and(is_value) =>
                    {
                        Ok(())
                    }
                    Some(N::ResTarget(target)) if !target.name.is_empty() => Err((
                        target.location.max(0) as usize,
                        format!(
                            "text after the expression (`{}`) is not part of it",
                            target.name
                        ),
                    )),
                    _ => Err((0, "this is not one SQL expression".into())),
                },
                [] => Err((0, "the expression is empty".into())),
                [_, second, ..] => Err((
                    location_of(second),
                    "this is a list of expressions, not one (a `,` outside parentheses)".into(),
                )),
            }
        }
        _ => Err((
            0,
            "this is not one SQL expression (it continues like a query: FROM, WHERE, ORDER BY…)"
                .into(),
        )),
    }
}

/// PL/pgSQL's expression grammar is a SELECT without the keyword; only the
/// target list may be present.
fn is_bare_target_list(select: &protobuf::SelectStmt) -> bool {
    select.distinct_clause.is_empty()
        && select.into_clause.is_none()
        && select.from_clause.is_empty()
        && select.where_clause.is_none()
        && select.group_clause.is_empty()
        && select.having_clause.is_none()
        && select.window_clause.is_empty()
        && select.values_lists.is_empty()
        && select.sort_clause.is_empty()
        && select.limit_offset.is_none()
        && select.limit_count.is_none()
        && select.locking_clause.is_empty()
        && select.with_clause.is_none()
        && select.larg.is_none()
        && select.rarg.is_none()
        && select.op == protobuf::SetOperation::SetopNone as i32
}

/// `*` and `t.*` parse as targets but are no value.
fn is_value(node: &protobuf::Node) -> bool {
    match node.node.as_ref() {
        Some(N::ColumnRef(column)) => !column
            .fields
            .iter()
            .any(|f| matches!(f.node, Some(N::AStar(_)))),
        Some(_) => true,
        None => false,
    }
}

fn location_of(node: &protobuf::Node) -> usize {
    match node.node.as_ref() {
        Some(N::ResTarget(target)) => target.location.max(0) as usize,
        _ => 0,
    }
}

fn lexer_message(error: &pg_query::Error) -> String {
    match error {
        pg_query::Error::Scan(message) | pg_query::Error::Parse(message) => message.clone(),
        other => other.to_string(),
    }
}

/// The parser's message, and where: libpg_query says "at or near "x"" (or
/// "at end of input"); the first token with that text is the place.
fn syntax_error(
    text: &str,
    tokens: &[protobuf::ScanToken],
    error: &pg_query::Error,
) -> (usize, String) {
    let message = lexer_message(error);
    let at = if message.ends_with("at end of input") {
        text.len()
    } else {
        message
            .split_once("at or near \"")
            .and_then(|(_, near)| near.strip_suffix('"'))
            .and_then(|near| {
                tokens.iter().find_map(|t| {
                    let (s, e) = (t.start.max(0) as usize, t.end.max(0) as usize);
                    (text.get(s..e) == Some(near)).then_some(s)
                })
            })
            .unwrap_or(0)
    };
    (at, message)
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
            "name = E'it\\'s'",
            "tenant_id IN (SELECT t.id FROM app.tenants t WHERE t.active)",
            "a$q$ = 1",
            "U&\"d\\0061t\\+000061\" = 1",
            "  NOT archived  ",
            "CASE WHEN x THEN 1 ELSE 2 END = 1",
        ] {
            assert!(
                Expression::parse(ok).is_ok(),
                "{ok}: {:?}",
                Expression::parse(ok)
            );
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
            "   ",
            "true; SELECT 1",
            "a, b",
            "a FROM pg_roles",
            "a WHERE true",
            "true x",
            "true AS x",
            "*",
            "DISTINCT a",
            "a ORDER BY 1",
            "a UNION SELECT 1",
            "a FOR UPDATE",
            "nul\0byte",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// The two injections of the trust issue: a hand-written lexer took `\'`
    /// for an escape in a standard string and `$q$` after an identifier
    /// character for a dollar quote; PostgreSQL does neither.
    #[test]
    fn injections_that_fooled_the_old_lexer_are_rejected() {
        for bad in [
            r"name = '\') ; COMMIT ; CREATE TABLE public.pwned (x int) ; --'",
            "EXISTS (SELECT 1 AS a$q$)) ; COMMIT ; CREATE TABLE public.pwned (x int) ; -- $q$)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_syntax_error_points_at_the_offending_token() {
        let (at, why) = Expression::parse("a = 1 )").unwrap_err();
        assert_eq!(at, 6, "{why}");
        let (at, _) = Expression::parse("x = 1; y").unwrap_err();
        assert_eq!(at, 5);
    }
}
