//! Statements a migration may not contain, found before anything runs.
//!
//! rlsctl runs every pending migration and then the policies in one
//! transaction, so they commit together or not at all, and `plan` rolls the
//! same work back. A `COMMIT` in a migration file would end that transaction
//! early: `plan` would commit migrations it only meant to show, and a failing
//! `apply` would leave new tables behind without their policies. Statements
//! that PostgreSQL refuses inside a transaction block (CREATE INDEX
//! CONCURRENTLY, VACUUM…) cannot work here either. Each file is parsed with
//! PostgreSQL's own grammar (libpg_query), so a `COMMIT` inside a string, a
//! comment or a function body is not mistaken for one, and one outside them
//! is never missed.

use std::path::{Path, PathBuf};

use pg_query::protobuf::{self, node::Node as N};

/// A migration statement rlsctl refuses to run, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub statement: String,
    pub why: &'static str,
    pub instead: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}\n  {}\n{}",
            self.file.display(),
            self.line,
            self.column,
            self.why,
            self.statement,
            self.instead
        )
    }
}

const TRANSACTION: (&str, &str) = (
    "transaction control in a migration: rlsctl runs all pending migrations and the policies in one transaction, and this statement would end it (or nest it) early",
    "Remove it: every migration already runs inside rlsctl's transaction, which commits only when the policies are in place too.",
);
const OUTSIDE_TRANSACTION: (&str, &str) = (
    "this statement cannot run inside a transaction block, and rlsctl runs migrations in one",
    "Run it outside rlsctl (by hand or in a separate deploy step). Tenant indexes need no migration: rlsctl builds them CONCURRENTLY itself after committing.",
);
const LEXING: (&str, &str) = (
    "a migration may not change how the SQL after it is read",
    "Remove the setting; write strings as E'…' where backslash escapes are meant.",
);

/// The first refused statement of migration `file` (its text `sql`), or a
/// parse error as a refusal: a file PostgreSQL's grammar cannot read would
/// fail on the server anyway, and cannot be checked.
pub fn check(file: &Path, sql: &str) -> Result<(), Refused> {
    let at = |offset: usize, why: &'static str, instead: &'static str| {
        let (line, column) = line_column(sql, offset);
        let statement = sql[offset.min(sql.len())..]
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        Refused {
            file: file.to_path_buf(),
            line,
            column,
            statement,
            why,
            instead,
        }
    };
    let parsed = match pg_query::parse(sql, 0) {
        Ok(parsed) => parsed,
        Err(error) => {
            let offset = unreadable_statement(sql).unwrap_or(0);
            let mut refused = at(
                offset,
                "PostgreSQL's grammar cannot read this migration",
                "",
            );
            refused.statement = error.to_string();
            refused.instead = "Fix the syntax; rlsctl checks every migration before running any.";
            return Err(refused);
        }
    };
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        if let Some((why, instead)) = refusal(node) {
            let offset = raw.stmt_location.max(0) as usize;
            let skipped = leading_trivia(&sql[offset.min(sql.len())..]);
            return Err(at(offset + skipped, why, instead));
        }
    }
    Ok(())
}

fn refusal(node: &N) -> Option<(&'static str, &'static str)> {
    match node {
        N::TransactionStmt(_) => Some(TRANSACTION),
        N::IndexStmt(index) if index.concurrent => Some(OUTSIDE_TRANSACTION),
        N::DropStmt(drop) if drop.concurrent => Some(OUTSIDE_TRANSACTION),
        N::ReindexStmt(reindex)
            if has_option(&reindex.params, "concurrently")
                || reindex.kind == protobuf::ReindexObjectType::ReindexObjectSystem as i32
                || reindex.kind == protobuf::ReindexObjectType::ReindexObjectDatabase as i32 =>
        {
            Some(OUTSIDE_TRANSACTION)
        }
        N::VacuumStmt(vacuum) if vacuum.is_vacuumcmd => Some(OUTSIDE_TRANSACTION),
        N::ClusterStmt(cluster) if cluster.relation.is_none() => Some(OUTSIDE_TRANSACTION),
        N::CreatedbStmt(_)
        | N::DropdbStmt(_)
        | N::AlterSystemStmt(_)
        | N::CreateTableSpaceStmt(_)
        | N::DropTableSpaceStmt(_)
        | N::CreateSubscriptionStmt(_)
        | N::DropSubscriptionStmt(_) => Some(OUTSIDE_TRANSACTION),
        N::DiscardStmt(_) => Some(OUTSIDE_TRANSACTION),
        N::VariableSetStmt(set)
            if matches!(
                set.name.as_str(),
                "standard_conforming_strings" | "backslash_quote"
            ) =>
        {
            Some(LEXING)
        }
        _ => None,
    }
}

fn has_option(params: &[protobuf::Node], name: &str) -> bool {
    params.iter().any(|p| match p.node.as_ref() {
        Some(N::DefElem(def)) => def.defname.eq_ignore_ascii_case(name),
        _ => false,
    })
}

/// libpg_query's statement location includes the whitespace and comments
/// before it; a person wants the line where the statement's first word is.
/// Where the first statement PostgreSQL's grammar cannot read starts. The
/// scanner splits statements even where the grammar fails, but leaves out
/// those that do not start with a keyword: the first piece it skipped, or
/// the first it kept that does not parse, is the one.
fn unreadable_statement(sql: &str) -> Option<usize> {
    let content = |from: usize, to: usize| {
        let mut at = from;
        loop {
            at += leading_trivia(&sql[at..to]);
            match sql[at..to].strip_prefix(';') {
                Some(_) => at += 1,
                None => break,
            }
        }
        (at < to).then_some(at)
    };
    let mut previous_end = 0;
    for statement in pg_query::split_with_scanner(sql).ok()? {
        let start = statement.as_ptr() as usize - sql.as_ptr() as usize;
        if let Some(skipped) = content(previous_end, start) {
            return Some(skipped);
        }
        if pg_query::parse(statement, 0).is_err() {
            return content(start, start + statement.len()).or(Some(start));
        }
        previous_end = start + statement.len();
    }
    content(previous_end, sql.len())
}

fn leading_trivia(rest: &str) -> usize {
    let mut i = 0;
    let bytes = rest.as_bytes();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if rest[i..].starts_with("--") {
            i += rest[i..].find('\n').map_or(rest.len() - i, |n| n + 1);
        } else if rest[i..].starts_with("/*") {
            // Comments nest in PostgreSQL.
            let mut depth = 0;
            while i < bytes.len() {
                if rest[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if rest[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            return i;
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::check;
    use std::path::Path;

    fn refused(sql: &str) -> Option<(usize, usize, String)> {
        check(Path::new("V1__x.sql"), sql)
            .err()
            .map(|r| (r.line, r.column, r.statement))
    }

    #[test]
    fn transaction_control_is_refused_with_its_line() {
        let sql = "CREATE TABLE a (id int);\n\n  -- done\n  COMMIT;\nCREATE TABLE b (id int);\n";
        assert_eq!(refused(sql), Some((4, 3, "COMMIT;".into())));
        for bad in [
            "BEGIN; CREATE TABLE a (id int); COMMIT;",
            "START TRANSACTION;",
            "END;",
            "ROLLBACK;",
            "SAVEPOINT s;",
            "RELEASE SAVEPOINT s;",
            "ROLLBACK TO SAVEPOINT s;",
            "PREPARE TRANSACTION 'x';",
            "COMMIT AND CHAIN;",
            "commit",
        ] {
            assert!(refused(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction_are_refused() {
        for bad in [
            "CREATE INDEX CONCURRENTLY i ON t (a);",
            "DROP INDEX CONCURRENTLY i;",
            "REINDEX (CONCURRENTLY) TABLE t;",
            "REINDEX TABLE CONCURRENTLY t;",
            "VACUUM t;",
            "VACUUM;",
            "CREATE DATABASE x;",
            "ALTER SYSTEM SET work_mem = '1MB';",
            "DISCARD ALL;",
            "SET standard_conforming_strings = off;",
        ] {
            assert!(refused(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn the_words_inside_strings_comments_and_bodies_are_not_statements() {
        for ok in [
            "SELECT 'COMMIT; BEGIN';",
            "-- COMMIT;\nCREATE TABLE a (id int);",
            "/* outer /* COMMIT; */ still comment */ SELECT 1;",
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;",
            "CREATE INDEX i ON t (a); ANALYZE t; REINDEX TABLE t;",
            "SET LOCAL lock_timeout = '1s';",
            "",
        ] {
            assert_eq!(refused(ok), None, "{ok}");
        }
    }

    #[test]
    fn a_file_the_grammar_cannot_read_is_refused_before_anything_runs() {
        assert!(refused("CREATE TABLE (;").is_some());
    }

    #[test]
    fn a_syntax_error_names_the_line_of_its_statement() {
        for (sql, line) in [
            (
                "CREATE TABLE t (a int);\n\n-- then\nSELEC 1;\nSELECT 2;\n",
                4,
            ),
            ("SELECT 1;\nCREATE TABLE (;\n", 2),
            ("SELECT 1;\n/* last */ SELEC 2\n", 2),
            ("SELEC 1;", 1),
        ] {
            let refused = check(Path::new("migrations/V1__x.sql"), sql).unwrap_err();
            assert_eq!(refused.line, line, "{refused}");
            assert!(refused.to_string().contains("syntax error"), "{refused}");
        }
    }
}
