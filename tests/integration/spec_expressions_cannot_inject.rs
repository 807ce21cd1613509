//! Whatever a spec expression says, it reaches the server as one expression
//! inside one statement. Each attempt below tries to run a second statement
//! (creating a table named `pwned…`) from `validate`, `plan`, `audit` and
//! `apply`; each either is refused with `file:line:column`, leaving the
//! database exactly as it was, or turns out to be one harmless expression
//! (a string that merely contains the attack), and no `pwned` table exists.

use crate::harness::{PROJECTS, TestDb, unique};

/// Refused by the grammar, or harmless as one expression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Refused,
    Harmless,
}
use Expect::{Harmless, Refused};

const ATTEMPTS: &[(&str, Expect)] = &[
    // The two that passed the old hand-written lexer.
    (
        r"name = '\') ; COMMIT ; CREATE TABLE public.pwned (x int) ; --'",
        Refused,
    ),
    (
        "EXISTS (SELECT 1 AS a$q$)) ; COMMIT ; CREATE TABLE public.pwned (x int) ; -- $q$)",
        Refused,
    ),
    // Closing the USING clause or the statement.
    ("true); CREATE TABLE pwned (x int); --", Refused),
    ("true) WITH CHECK (true", Refused),
    ("true) TO PUBLIC USING (true", Refused),
    ("true; CREATE TABLE pwned (x int)", Refused),
    ("true\n; CREATE TABLE pwned (x int)", Refused),
    ("true ; COMMIT ; CREATE TABLE pwned (x int)", Refused),
    ("(SELECT true); CREATE TABLE pwned (x int)", Refused),
    ("true)) ; CREATE TABLE pwned (x int) ; SELECT ((1", Refused),
    ("(true", Refused),
    // Comments that would swallow the closing parenthesis.
    ("true -- ) ; CREATE TABLE pwned (x int)", Refused),
    ("true /* ) ; CREATE TABLE pwned (x int); */", Refused),
    (
        "true /* /* nested */ ) ; CREATE TABLE pwned (x int) ; */",
        Refused,
    ),
    // Escape strings and standard strings.
    (
        r"name = E'\'' ) ; CREATE TABLE pwned (x int) ; --'",
        Refused,
    ),
    (r"name = E'\\' ) ; CREATE TABLE pwned (x int) ; --", Refused),
    (r"name = 'a\'; CREATE TABLE pwned (x int); --'", Refused),
    (r"e'\\'';CREATE TABLE pwned(x int);--' = name", Harmless),
    (
        r"name = E'it\'s ) ; CREATE TABLE pwned (x int) ; --'",
        Harmless,
    ),
    // Dollar quotes, where PostgreSQL starts one and where it does not.
    (
        "name = $$ ) ; $$ ) ; CREATE TABLE pwned (x int) ; --",
        Refused,
    ),
    (
        "name = $a$ x $b$ ) ; CREATE TABLE pwned (x int) ; -- $a$",
        Harmless,
    ),
    ("name = $tag$ ) ; CREATE TABLE pwned (x int)", Refused),
    ("name = $ $ ) ; CREATE TABLE pwned (x int) ; --", Refused),
    // Quoted identifiers and Unicode escapes.
    ("\"x\"\")\" = 1) ; CREATE TABLE pwned (x int) ; --", Refused),
    (
        "U&\"\\0029\" = 1) ; CREATE TABLE pwned (x int); --",
        Refused,
    ),
    (
        "U&'\\0027) ; CREATE TABLE pwned (x int) ; --' = name",
        Harmless,
    ),
    (
        "U&'x' UESCAPE ';' ) ; CREATE TABLE pwned (x int) ; --",
        Refused,
    ),
    ("name = 'ʼ) ; CREATE TABLE pwned (x int) ; --'", Harmless),
    ("name = ＇) ; CREATE TABLE pwned (x int)", Refused),
    // Unbalanced quotes.
    (
        "name = 'unterminated ) ; CREATE TABLE pwned (x int)",
        Refused,
    ),
    (
        "name = \"unterminated ) ; CREATE TABLE pwned (x int)",
        Refused,
    ),
    // Bit strings, semicolons inside every kind of literal and identifier.
    ("B'1' = B'1') ; CREATE TABLE pwned (x int) ; --", Refused),
    ("name = 'a;b' AND \"name\" <> $$c;d$$", Harmless),
    ("\"name\" IS NULL OR name = E'x;\\'y'", Harmless),
    // Not one expression: a query shape, a list, a label.
    ("true FROM pg_roles", Refused),
    ("true, (SELECT 1)", Refused),
    ("true AS pwned", Refused),
    ("true UNION SELECT 1", Refused),
    ("true\0; CREATE TABLE pwned (x int)", Refused),
];

/// The spec file, with the expression as a YAML double-quoted scalar.
fn spec(role: &str, expression: &str) -> String {
    let quoted = serde_json::to_string(expression).unwrap();
    format!(
        "roles:\n  - name: {role}\ntables:\n  - projects\npolicies:\n  - name: attempt\n    tables: [projects]\n    using: {quoted}\n"
    )
}

async fn pwned_tables(db: &TestDb) -> i64 {
    db.scalar_i64("SELECT count(*) FROM pg_catalog.pg_class WHERE relname LIKE 'pwned%'")
        .await
}

async fn attempt(expression: &str, expect: Expect) {
    let db = TestDb::new().await;
    let role = unique("app");
    db.migration("V1__schema.sql", PROJECTS);
    db.spec(&spec(&role, expression));
    let before = db.fingerprint(&[&role]).await;
    for command in ["validate", "plan", "apply", "audit"] {
        let run = if command == "validate" {
            crate::harness::Run::from(
                std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
                    .arg("validate")
                    .current_dir(db.path())
                    .output()
                    .unwrap(),
            )
        } else {
            db.rlsctl(&[command])
        };
        match expect {
            Refused => {
                assert_eq!(
                    run.code, 1,
                    "{command} accepted {expression:?}\n{}{}",
                    run.stdout, run.stderr
                );
                assert!(
                    run.stderr.contains("spec.yaml:8:"),
                    "{command} on {expression:?} gave no file:line:column:\n{}",
                    run.stderr
                );
                assert_eq!(
                    before,
                    db.fingerprint(&[&role]).await,
                    "{command} changed the database for {expression:?}"
                );
            }
            Harmless => assert!(
                run.code == 0 || (command == "audit" && run.code == 2),
                "{command} refused the harmless {expression:?}\n{}",
                run.stderr
            ),
        }
        assert_eq!(pwned_tables(&db).await, 0, "{command} ran {expression:?}");
    }
    if expect == Harmless {
        // The whole text stayed inside the one policy expression.
        db.assert_converged();
    }
}

#[tokio::test]
async fn injection_attempts_in_spec_expressions_are_refused_or_harmless() {
    assert!(ATTEMPTS.len() >= 30);
    for (expression, expect) in ATTEMPTS {
        attempt(expression, *expect).await;
    }
}
