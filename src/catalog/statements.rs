//! What pg_stat_statements recorded in this database: the statements an
//! application actually ran, for audit to read the tenant bindings among
//! them. Only this database's rows (`dbid`): the view covers the cluster.

use sqlx::{Connection, PgConnection};

use crate::quote::Sql;

/// pg_stat_statements in this database, as far as audit could read it.
#[derive(Debug, Clone, Default)]
pub enum StatementLog {
    /// The extension is not installed in this database.
    #[default]
    NotInstalled,
    /// Installed, but its rows could not be read (the library is not
    /// preloaded, or the view is not granted): the server's message.
    Unreadable(String),
    Read(RecordedStatements),
}

#[derive(Debug, Clone, Default)]
pub struct RecordedStatements {
    /// Every recorded statement whose text mentions `set` (any case): a
    /// superset of the SET statements and set_config calls, which the
    /// audit check then tells apart by parsing.
    pub statements: Vec<RecordedStatement>,
    /// The connected role sees every role's query text (superuser or
    /// pg_read_all_stats); otherwise only its own.
    pub all_roles: bool,
    /// `pg_stat_statements.track_utility`: when off, SET statements are
    /// not recorded at all.
    pub track_utility: bool,
    /// `pg_stat_statements.track`: `none` records nothing.
    pub track: String,
}

/// One pg_stat_statements row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStatement {
    /// As stored: constants replaced by `$n` (SET values too, from 18 on).
    pub query: String,
    pub calls: i64,
    /// The role it ran as (`userid`), or the oid of a dropped role.
    pub role: String,
}

/// Reads the log, in one query where the extension is missing and two where
/// it is installed. The row read runs in a savepoint: a view that raises
/// (library not preloaded) leaves the audit's transaction usable.
pub async fn read_statement_log(
    conn: &mut PgConnection,
) -> Result<(StatementLog, u32), sqlx::Error> {
    let found: Option<(String, bool, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT n.nspname::text,
                pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
                pg_catalog.current_setting('pg_stat_statements.track_utility', true),
                pg_catalog.current_setting('pg_stat_statements.track', true)
           FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some((schema, all_roles, track_utility, track)) = found else {
        return Ok((StatementLog::NotInstalled, 1));
    };
    // The filter only narrows what travels; the check parses every row it gets.
    let query =
        Sql::new("SELECT s.query, s.calls, coalesce(r.rolname::text, s.userid::text) FROM ")
            .ident(&schema)
            .push(
                ".pg_stat_statements s
               LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
              WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d
                               WHERE d.datname = pg_catalog.current_database())
                AND s.query ILIKE '%set%'
              ORDER BY s.query, 3",
            );
    let mut savepoint = conn.begin().await?;
    let rows: Result<Vec<(Option<String>, i64, String)>, sqlx::Error> =
        sqlx::query_as(query.to_query())
            .fetch_all(&mut *savepoint)
            .await;
    let rows = match rows {
        Ok(rows) => {
            savepoint.commit().await?;
            rows
        }
        Err(e) => {
            savepoint.rollback().await?;
            return Ok((
                StatementLog::Unreadable(crate::errors::database_message(&e)),
                2,
            ));
        }
    };
    let statements = rows
        .into_iter()
        .filter_map(|(query, calls, role)| {
            Some(RecordedStatement {
                query: query?,
                calls,
                role,
            })
        })
        .collect();
    Ok((
        StatementLog::Read(RecordedStatements {
            statements,
            all_roles,
            track_utility: track_utility.is_none_or(|v| v == "on"),
            track: track.unwrap_or_else(|| "top".into()),
        }),
        2,
    ))
}
