//! SECURITY DEFINER functions: a function that runs with its owner's rights,
//! reads tenant tables and can be called with no argument is a way around the
//! caller's policies (its owner may bypass them). Called as the runtime role
//! with A bound, it must return none of B's rows.
//!
//! Which tables a function reads comes from its body, parsed by PostgreSQL's
//! grammar (`audit::function_body`); a body in another language is not probed
//! (audit's SECURITY_DEFINER findings still name it). Functions that need an
//! argument are not called: verify cannot know a meaningful one.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use super::Probing;
use crate::audit::function_body;
use crate::catalog::{Function, View};
use crate::quote::{QualifiedName, Sql};
use crate::verify::{Cell, VerifyError, db};

/// A SECURITY DEFINER function verify calls: it needs no argument, returns
/// rows or a value, and its body reads tenant tables.
#[derive(Debug, Clone)]
pub struct DefinerFunction {
    pub name: QualifiedName,
    /// Its identity arguments as the server prints them (all with defaults).
    pub arguments: String,
    pub owner: String,
    /// The tenant tables its body reads.
    pub reads: BTreeSet<QualifiedName>,
    /// Roles with EXECUTE; `PUBLIC` when nobody revoked the default.
    pub executors: BTreeSet<String>,
    /// VOLATILE: calling it may do what a rollback does not undo.
    pub volatile: bool,
    /// Its body runs SQL built at run time: which tables it reads is unknown.
    pub dynamic: bool,
}

impl DefinerFunction {
    /// Whether a role that can act as every role in `reach` may call it.
    pub fn callable_by(&self, reach: &BTreeSet<String>) -> bool {
        self.executors.contains("PUBLIC")
            || reach.contains(&self.owner)
            || !self.executors.is_disjoint(reach)
    }
}

/// The SECURITY DEFINER functions among `functions` that read one of
/// `tenant_tables` (directly, or through one of `views`), or run SQL built at
/// run time, and can be called with no argument (every argument has a
/// default) returning something other than `void` or a trigger.
pub async fn callable_definer_functions<'a>(
    conn: &mut PgConnection,
    functions: &[Function],
    views: &'a [View],
    tenant_tables: impl Fn(&QualifiedName) -> bool,
    known: impl Iterator<Item = &'a QualifiedName> + Clone,
) -> Result<Vec<DefinerFunction>, VerifyError> {
    let mut candidates = BTreeMap::new();
    for function in functions.iter().filter(|f| f.security_definer) {
        let path = function
            .pinned_search_path()
            .unwrap_or_else(|| vec![function.owner.clone(), "public".to_string()]);
        let Some(touched) = function_body::tables_touched(
            &function.language,
            &function.body,
            &path,
            known.clone().chain(views.iter().map(|v| &v.name)),
        ) else {
            continue;
        };
        // A view it reads stands for the tables the view reads.
        let reads: BTreeSet<QualifiedName> = touched
            .iter()
            .flat_map(|t| match views.iter().find(|v| &v.name == t) {
                Some(view) => view.reads.iter().cloned().collect::<Vec<_>>(),
                None => vec![t.clone()],
            })
            .filter(|t| tenant_tables(t))
            .collect();
        let dynamic = function_body::runs_dynamic_sql(&function.language, &function.body);
        if !reads.is_empty() || dynamic {
            candidates.insert(function.signature(), (function, (reads, dynamic)));
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // Which of them take no required argument and return something to read
    // (`arguments` is the identity list as the server prints it, names and
    // all, so it is compared as printed rather than parsed).
    let (schemas, names, arguments): (Vec<String>, Vec<String>, Vec<String>) = candidates
        .values()
        .map(|(f, _)| {
            (
                f.name.schema.clone(),
                f.name.name.clone(),
                f.arguments.clone(),
            )
        })
        .fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |mut acc, (s, n, a)| {
                acc.0.push(s);
                acc.1.push(n);
                acc.2.push(a);
                acc
            },
        );
    let callable: Vec<String> = sqlx::query_scalar(
        "SELECT c.ord::text
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
                AS c(schema_name, function_name, arguments, ord)
           JOIN pg_catalog.pg_namespace n ON n.nspname = c.schema_name
           JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = c.function_name
                AND pg_catalog.pg_get_function_identity_arguments(p.oid) = c.arguments
           JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
          WHERE p.pronargs = p.pronargdefaults
            AND p.prokind = 'f'
            AND (t.typtype <> 'p' OR t.typname = 'record')",
    )
    .bind(schemas)
    .bind(names)
    .bind(arguments)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading the SECURITY DEFINER functions verify can call"))?;
    let candidates: Vec<_> = candidates.into_values().collect();
    let callable: Vec<_> = callable
        .iter()
        .filter_map(|ord| ord.parse::<usize>().ok())
        .filter_map(|ord| candidates.get(ord - 1))
        .collect();
    Ok(callable
        .into_iter()
        .map(|(function, reads)| DefinerFunction {
            name: function.name.clone(),
            arguments: function.arguments.clone(),
            owner: function.owner.clone(),
            reads: reads.0.clone(),
            dynamic: reads.1,
            executors: function.executors.clone(),
            volatile: function.volatility == "v",
        })
        .collect())
}

impl Probing<'_> {
    /// Calls the function with no argument as the role, with A bound: no row
    /// (or value) of B may come back.
    pub async fn definer_function(
        &mut self,
        conn: &mut PgConnection,
        function: &DefinerFunction,
    ) -> Result<Cell, VerifyError> {
        if function.dynamic {
            return Ok(Cell::not_proven(
                "its body runs SQL built at run time (EXECUTE), so verify cannot tell which tenant tables to plant rows in; audit's SECURITY_DEFINER findings name it",
            ));
        }
        let source = Sql::new("").qname(&function.name).push("()");
        self.shows_none_of_b(conn, &function.reads, &source, "the function")
            .await
    }
}
