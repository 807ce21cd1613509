//! The live one-argument functions that carry the declared tenant
//! resolvers' names (see `crate::resolver`).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::model::Volatility;
use crate::quote::QualifiedName;
use crate::resolver::Resolver;

type Row = (
    String,
    String,
    String,
    String,
    String,
    bool,
    Option<Vec<String>>,
    String,
    Vec<String>,
);

/// The live one-argument functions with the resolvers' names.
pub async fn read_resolvers(
    conn: &mut PgConnection,
    names: &[&QualifiedName],
) -> Result<BTreeMap<QualifiedName, Resolver>, sqlx::Error> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let schemas: Vec<&str> = names.iter().map(|n| n.schema.as_str()).collect();
    let functions: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT n.nspname::text, p.proname::text,
                pg_catalog.format_type(p.proargtypes[0], NULL), pg_catalog.format_type(p.prorettype, NULL),
                l.lanname::text || ':' || p.provolatile::text, p.prosecdef, p.proconfig, p.prosrc, ",
        function_executors!(),
        "
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_catalog.pg_language l ON l.oid = p.prolang
           JOIN unnest($1::text[], $2::text[]) AS wanted(schema_name, function_name)
             ON wanted.schema_name = n.nspname AND wanted.function_name = p.proname
          WHERE p.pronargs = 1"
    ))
    .bind(&schemas)
    .bind(&functions)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(schema, name, arg_type, returns, kind, security_definer, config, body, executors)| {
                let (language, volatility) = kind.split_once(':').unwrap_or((&kind, "v"));
                let name = QualifiedName::new(schema, name);
                (
                    name.clone(),
                    Resolver {
                        name,
                        arg_type,
                        returns,
                        language: language.to_string(),
                        volatility: Volatility::from_catalog(volatility),
                        security_definer,
                        config: config.unwrap_or_default(),
                        body,
                        executors: executors.into_iter().collect(),
                    },
                )
            },
        )
        .collect())
}
