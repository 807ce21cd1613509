//! Data changes in a migration that row-level security would silently narrow.
//!
//! Once rlsctl has FORCEd RLS on a table, its owner is subject to the
//! policies too. An admin that is neither superuser nor BYPASSRLS (every
//! managed-cloud admin) then sees only the rows a policy admits — usually
//! none, since no tenant is bound while migrations run. An `INSERT … SELECT`,
//! `UPDATE`, `DELETE` or `MERGE` in a later migration does not fail: it
//! touches zero rows and the deploy looks green. Before anything runs, each
//! pending migration is read with PostgreSQL's grammar; a data-changing
//! statement on a table where `row_security_active()` holds for the
//! connecting role is refused with the file, line and table, unless the file
//! binds a tenant itself (`set_config(…)` or `SET` of a custom setting) or
//! the run says the filtering is intended.

use std::path::PathBuf;

use pg_query::NodeRef;
use pg_query::protobuf::node::Node as N;

/// One data-changing statement of a migration and the tables it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dml {
    pub file: PathBuf,
    pub line: usize,
    pub kind: &'static str,
    /// As `to_regclass` takes them (quoted, schema-qualified when written so).
    pub tables: Vec<String>,
}

/// The statements of `sql` that change data and would be narrowed by RLS,
/// or none when the file binds a tenant setting itself.
pub fn statements(file: &std::path::Path, sql: &str) -> Vec<Dml> {
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        return Vec::new();
    };
    if binds_a_setting(&parsed) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        let kind = match node {
            N::InsertStmt(insert) => {
                match insert.select_stmt.as_deref().and_then(|s| s.node.as_ref()) {
                    // VALUES into a table the admin cannot see fails loudly on
                    // WITH CHECK; only a query can come back empty.
                    Some(N::SelectStmt(select)) if select.values_lists.is_empty() => {
                        "INSERT … SELECT"
                    }
                    _ => continue,
                }
            }
            N::UpdateStmt(_) => "UPDATE",
            N::DeleteStmt(_) => "DELETE",
            N::MergeStmt(_) => "MERGE",
            N::CreateTableAsStmt(_) => "CREATE TABLE … AS",
            _ => continue,
        };
        let tables = crate::sql_tree::relations(node.nodes().into_iter().map(|(n, ..)| n));
        let offset = raw.stmt_location.max(0) as usize;
        let line = sql[..offset.min(sql.len())].matches('\n').count()
            + 1
            + leading_lines(&sql[offset.min(sql.len())..]);
        out.push(Dml {
            file: file.to_path_buf(),
            line,
            kind,
            tables,
        });
    }
    out
}

/// Lines of whitespace and comments before the statement's first word.
fn leading_lines(rest: &str) -> usize {
    let trimmed = rest.trim_start();
    let mut skipped = &rest[..rest.len() - trimmed.len()];
    let mut rest = trimmed;
    let mut lines = skipped.matches('\n').count();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find('\n').map_or(after.len(), |n| n + 1);
        let next = after[end..].trim_start();
        skipped = &after[..after.len() - next.len()];
        lines += skipped.matches('\n').count();
        rest = next;
    }
    lines
}

/// `SELECT set_config(…)` anywhere, or `SET [LOCAL] x.y = …` of a custom
/// (dotted) setting: the migration binds a tenant (or a claim) itself.
fn binds_a_setting(parsed: &pg_query::ParseResult) -> bool {
    parsed.protobuf.nodes().into_iter().any(|(n, ..)| {
        match n {
        NodeRef::FuncCall(call) => call.funcname.iter().any(|part| {
            matches!(&part.node, Some(N::String(s)) if s.sval.eq_ignore_ascii_case("set_config"))
        }),
        NodeRef::VariableSetStmt(set) => set.name.contains('.'),
        _ => false,
    }
    })
}

#[cfg(test)]
mod tests {
    use super::statements;
    use std::path::Path;

    fn kinds(sql: &str) -> Vec<(usize, &'static str, Vec<String>)> {
        statements(Path::new("V2__x.sql"), sql)
            .into_iter()
            .map(|d| (d.line, d.kind, d.tables))
            .collect()
    }

    #[test]
    fn data_changes_that_can_come_back_empty_are_found_with_their_tables() {
        let sql = "CREATE TABLE archive (id int);\n-- copy the old rows\nINSERT INTO archive SELECT id FROM public.tasks;\nUPDATE \"Tasks\" SET done = true;\nDELETE FROM tasks WHERE id IN (SELECT task_id FROM comments);\nINSERT INTO tasks (id) VALUES (1);\n";
        assert_eq!(
            kinds(sql),
            vec![
                (
                    3,
                    "INSERT … SELECT",
                    vec!["\"archive\"".into(), "\"public\".\"tasks\"".into()]
                ),
                (4, "UPDATE", vec!["\"Tasks\"".into()]),
                (5, "DELETE", vec!["\"comments\"".into(), "\"tasks\"".into()]),
            ]
        );
    }

    #[test]
    fn a_migration_that_binds_a_tenant_itself_is_left_alone() {
        assert!(kinds("SELECT set_config('app.current_tenant_id', '00000000-0000-0000-0000-000000000001', true);\nUPDATE tasks SET done = true;").is_empty());
        assert!(kinds("SET LOCAL app.current_tenant_id = 'x';\nDELETE FROM tasks;").is_empty());
        assert!(!kinds("SET LOCAL lock_timeout = '1s';\nDELETE FROM tasks;").is_empty());
    }
}
