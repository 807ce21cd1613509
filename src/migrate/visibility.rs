//! Before filling anything: can the connecting role see the rows the
//! backfill derives each tenant from?
//!
//! A managed-cloud admin owns the tables but is neither superuser nor
//! BYPASSRLS, so on a parent table under FORCE ROW LEVEL SECURITY it sees no
//! rows unless a policy admits it. A backfill through such a parent derives
//! NULL for every row, and the run would end blaming the data. PostgreSQL
//! says whether row security applies to the current user on a table
//! (`row_security_active`); where it does on a table the derivation reads,
//! a sample of the rows to fill shows whether any tenant can be derived at
//! all. None derivable from a non-empty sample is a refusal naming the
//! tables, the role and the fixes, before anything changes.

use sqlx::PgConnection;

use super::{MigrateError, Subject, db};
use crate::quote::Sql;

/// Rows sampled to tell "RLS hides the parents" from "some rows lack a parent".
const SAMPLE: i64 = 100;

pub(super) async fn check(conn: &mut PgConnection, s: &Subject<'_>) -> Result<(), MigrateError> {
    let sources = sources(&s.derivation);
    if sources.is_empty() {
        return Ok(());
    }
    let (user, hidden) = crate::catalog::row_security::active_for_current_user(conn, &sources)
        .await
        .map_err(db(
            "asking whether row security applies to the backfill's sources",
        ))?;
    if hidden.is_empty() {
        return Ok(());
    }
    let filter = if s.has_column {
        Sql::new(" WHERE x.").ident(s.column()).push(" IS NULL")
    } else {
        Sql::new("")
    };
    let sample = Sql::new("SELECT count(*), count(d) FROM (SELECT ")
        .sql(&s.derivation)
        .push(" AS d FROM ")
        .qname(s.table())
        .push(" AS x")
        .sql(&filter)
        .push(" LIMIT $1) AS sample");
    let (sampled, derived): (i64, i64) = sqlx::query_as(sample.to_query())
        .bind(SAMPLE)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("sampling the rows to fill"))?;
    if sampled > 0 && derived == 0 {
        return Err(MigrateError::Refused(format!(
            "the backfill of {table} derives each row's tenant from {sources}, and row-level security applies to {user} there \
(it is neither superuser nor BYPASSRLS, and the table is FORCEd or owned by another role): it sees none of their rows, \
so not one of {sampled} sampled row(s) gets a tenant. Nothing was changed. Run migrate-existing as a role that bypasses \
RLS on those tables, or declare {user}'s access under `maintenance:` (a policy that admits it to every row) and apply first.",
            table = s.table(),
            sources = hidden.join(", "),
        )));
    }
    Ok(())
}

/// The tables a derivation reads, as `to_regclass` takes them.
fn sources(derivation: &Sql) -> Vec<String> {
    let Ok(parsed) = pg_query::parse(derivation.shown(), pg_query::ParserOptions::PLPGSQL_EXPR)
    else {
        return Vec::new();
    };
    crate::sql_tree::relations(parsed.protobuf.nodes().into_iter().map(|(node, ..)| node))
}

#[cfg(test)]
mod tests {
    use super::sources;
    use crate::quote::Sql;

    #[test]
    fn the_tables_a_derivation_reads_are_found_in_its_tree() {
        let via = Sql::new(
            "(SELECT \"v2\".\"tenant_id\" FROM \"public\".\"tasks\" AS \"v1\" JOIN \"app\".\"Projects\" AS \"v2\" ON \"v2\".\"id\" = \"v1\".\"project_id\" WHERE \"v1\".\"id\" = x.\"task_id\")",
        );
        assert_eq!(
            sources(&via),
            vec![
                "\"app\".\"Projects\"".to_string(),
                "\"public\".\"tasks\"".to_string()
            ]
        );
        assert!(sources(&Sql::new("'00000000-0000-0000-0000-000000000001'::uuid")).is_empty());
    }
}
