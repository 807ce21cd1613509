//! Live state: what the server's catalog says, read with a fixed number of
//! queries whatever the number of tables (one per kind of object), so audit
//! and plan stay fast on schemas with thousands of tables.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use crate::model::{ContextFunction, Index, Privilege, Role, State, Table, Volatility};
use crate::quote::QualifiedName;
use crate::spec::Command;

/// A read of the live state, with what a report needs to say about it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: State,
    /// How many queries the read took: constant by design, and shown by benchmarks.
    pub queries: u32,
    pub current_user: String,
    pub database: String,
    pub server_version: String,
    /// The role initdb created (oid 10): always a superuser.
    pub bootstrap_superuser: String,
    /// What the connecting role may do with roles.
    pub connecting: Connecting,
    /// Each table's columns by attribute number, for reads that return
    /// attribute numbers (index and key columns).
    pub columns_by_number: ColumnsByNumber,
}

/// The connecting role's rights over roles (checked against `current_user`,
/// as PostgreSQL does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connecting {
    pub name: String,
    pub superuser: bool,
    pub create_role: bool,
    /// `server_version_num`, e.g. 150004: ADMIN OPTION matters from 160000.
    pub server_version_num: u32,
    /// Roles of the scope it holds ADMIN OPTION on (directly or through
    /// membership, as `pg_has_role` decides it).
    pub admin_of: BTreeSet<String>,
}

/// Every role of the cluster, and who is asking.
#[derive(Debug, Clone)]
pub struct LiveRoles {
    pub roles: BTreeMap<String, Role>,
    pub bootstrap_superuser: String,
    pub connecting: Connecting,
}

/// Roles are cluster-wide and their changes depend on the spec alone, so
/// apply reads them (two queries) before running anything.
pub async fn read_roles(
    conn: &mut PgConnection,
    scope_roles: &[String],
) -> Result<LiveRoles, sqlx::Error> {
    let rows: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT rolname::text, rolcanlogin, rolsuper, rolbypassrls FROM pg_catalog.pg_roles",
    )
    .fetch_all(&mut *conn)
    .await?;
    let roles = rows
        .into_iter()
        .map(|(name, login, superuser, bypass_rls)| {
            let role = Role {
                name: name.clone(),
                login,
                superuser,
                bypass_rls,
                password_env: None,
            };
            (name, role)
        })
        .collect();
    type ConnectingRow = (String, bool, bool, i32, String, Vec<String>);
    let (name, superuser, create_role, version, bootstrap_superuser, admin_of): ConnectingRow =
        sqlx::query_as(
            "SELECT me.rolname::text, me.rolsuper, me.rolcreaterole,
                    pg_catalog.current_setting('server_version_num')::int,
                    (SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = 10),
                    ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
                           WHERE r.rolname = ANY($1)
                             AND pg_catalog.pg_has_role(me.oid, r.oid, 'MEMBER WITH ADMIN OPTION'))
               FROM pg_catalog.pg_roles me
              WHERE me.rolname = current_user",
        )
        .bind(scope_roles)
        .fetch_one(&mut *conn)
        .await?;
    Ok(LiveRoles {
        roles,
        bootstrap_superuser,
        connecting: Connecting {
            name,
            superuser,
            create_role,
            server_version_num: u32::try_from(version).unwrap_or_default(),
            admin_of: admin_of.into_iter().collect(),
        },
    })
}

/// Which of `names` have no password. Only `pg_authid` holds passwords and
/// only superusers may read it (`pg_roles` shows `********` for every role,
/// with a password or not), so for anyone else the answer is `Hidden`.
pub async fn passwords_known(
    conn: &mut PgConnection,
    names: &[String],
    superuser: bool,
) -> Result<crate::diff::PasswordsKnown, sqlx::Error> {
    if !superuser {
        return Ok(crate::diff::PasswordsKnown::Hidden);
    }
    let unset: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_catalog.pg_authid
          WHERE rolname = ANY($1) AND rolpassword IS NULL",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    Ok(crate::diff::PasswordsKnown::Unset(
        unset.into_iter().collect(),
    ))
}

/// One role as it is now (apply re-reads a role another session just created).
pub async fn read_role(conn: &mut PgConnection, name: &str) -> Result<Option<Role>, sqlx::Error> {
    let row: Option<(bool, bool, bool)> = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(login, superuser, bypass_rls)| Role {
        name: name.to_string(),
        login,
        superuser,
        bypass_rls,
        password_env: None,
    }))
}

/// What besides tables the read should look at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The context function to read, if the spec names one.
    pub function: Option<QualifiedName>,
    /// Roles whose schema USAGE matters.
    pub roles: Vec<String>,
    /// Declared tenant resolvers to read (see `crate::resolver`).
    pub resolvers: Vec<QualifiedName>,
}

/// Splits the `schema<US>name` pairs the posture queries return.
fn qualified(pair: &str) -> QualifiedName {
    let (schema, name) = pair.split_once('\u{1f}').unwrap_or(("", pair));
    QualifiedName::new(schema, name)
}

/// Schemas that hold no user tables: the system's own and rlsctl's history.
/// A macro so every query stays one `&'static str` built by `concat!`.
macro_rules! user_schemas {
    () => {
        "n.nspname NOT IN ('pg_catalog', 'information_schema', 'rlsctl') AND n.nspname NOT LIKE 'pg\\_%'"
    };
}

/// Who may EXECUTE function `p` besides its owner, `PUBLIC` by name: a
/// NULL ACL is PostgreSQL's default, EXECUTE for PUBLIC.
macro_rules! function_executors {
    () => {
        "CASE WHEN p.proacl IS NULL THEN ARRAY['PUBLIC']
                     ELSE ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                            ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
                                  FROM pg_catalog.aclexplode(p.proacl) a
                                 WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner)
                END"
    };
}

// After the macros: the posture, column and resolver queries use them too.
mod columns;
mod keys;
mod node_tree;
mod object_grants;
mod policies;
mod posture;
mod resolvers;
pub mod row_security;
mod statements;
mod value_rules;
pub use columns::{Column, read_columns};
pub use object_grants::read_object_grants;
pub use policies::ColumnsByNumber;
pub use posture::{
    ColumnSequence, ForeignKey, ForeignTable, Function, MEMBERSHIP_OPTIONS_FROM, MembershipOptions,
    Path, Posture, RoleAttributes, Rule, Schema, Trigger, UniqueKey, UnnamedPosture, View,
    pinned_search_path, read_posture, read_posture_unnamed,
};
pub use statements::{RecordedStatement, RecordedStatements, StatementLog};
pub use value_rules::{ColumnType, Descendant, ValueRules, read_value_rules};

pub async fn read(conn: &mut PgConnection, scope: &Scope) -> Result<Snapshot, sqlx::Error> {
    let mut queries = 0u32;
    let mut state = State::default();

    queries += 1;
    let (database, server_version): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_setting('server_version')")
            .fetch_one(&mut *conn)
            .await?;

    queries += 1;
    queries += 1;
    let live_roles = read_roles(conn, &scope.roles).await?;
    state.roles = live_roles.roles;

    queries += 1;
    let schemas: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_catalog.pg_namespace")
            .fetch_all(&mut *conn)
            .await?;
    state.schemas = schemas.into_iter().map(|(s,)| s).collect();

    queries += 1;
    let usage: Vec<(String, String)> = sqlx::query_as(concat!(
        "SELECT r.rolname::text, n.nspname::text
           FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_namespace n
          WHERE r.rolname = ANY($1) AND ",
        user_schemas!(),
        "
            AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE')"
    ))
    .bind(&scope.roles)
    .fetch_all(&mut *conn)
    .await?;
    state.schema_usage = usage.into_iter().collect();

    queries += 1;
    type TableRow = (
        String,
        String,
        bool,
        bool,
        bool,
        String,
        Option<String>,
        Option<String>,
    );
    let tables: Vec<TableRow> = sqlx::query_as(concat!(
        "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    c.relkind = 'p', pg_catalog.pg_get_userbyid(c.relowner)::text,
                    parent.nspname::text, parent.relname::text
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN LATERAL (
                    SELECT pn.nspname, pc.relname
                      FROM pg_catalog.pg_inherits i
                      JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
                      JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
                     WHERE i.inhrelid = c.oid
                     ORDER BY i.inhseqno LIMIT 1) parent ON true
              WHERE c.relkind IN ('r', 'p') AND ",
        user_schemas!(),
        ""
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (schema, name, rls_enabled, rls_forced, partitioned, owner, parent_schema, parent) in tables
    {
        let qualified = QualifiedName::new(schema, name);
        state.tables.insert(
            qualified.clone(),
            Table {
                name: qualified,
                rls_enabled,
                rls_forced,
                partitioned,
                owner,
                parent: parent_schema
                    .zip(parent)
                    .map(|(s, n)| QualifiedName::new(s, n)),
                ..Table::default()
            },
        );
    }

    queries += 1;
    // The last column: the column's default calls the context function
    // (found through pg_depend, so no default is deparsed).
    let columns: Vec<(String, String, i16, String, String, bool, bool)> = sqlx::query_as(concat!(
        "WITH context_defaults AS (
             SELECT d.adrelid, d.adnum
               FROM pg_catalog.pg_depend dep
               JOIN pg_catalog.pg_attrdef d ON d.oid = dep.objid
               JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid
               JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
              WHERE dep.classid = 'pg_catalog.pg_attrdef'::regclass
                AND dep.refclassid = 'pg_catalog.pg_proc'::regclass
                AND pn.nspname = $1 AND p.proname = $2 AND p.pronargs = 0)
         SELECT n.nspname::text, c.relname::text, a.attnum, a.attname::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    (a.attrelid, a.attnum) IN (SELECT adrelid, adnum FROM context_defaults)
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ",
        user_schemas!(),
        ""
    ))
    .bind(scope.function.as_ref().map(|f| f.schema.as_str()))
    .bind(scope.function.as_ref().map(|f| f.name.as_str()))
    .fetch_all(&mut *conn)
    .await?;
    let mut by_number = ColumnsByNumber::new();
    for (schema, table, number, column, type_name, not_null, context_default) in columns {
        let table = QualifiedName::new(schema, table);
        if let Some(t) = state.tables.get_mut(&table) {
            by_number
                .entry(table)
                .or_default()
                .insert(number, (column.clone(), type_name.clone()));
            if not_null {
                t.not_null.insert(column.clone());
            }
            if context_default {
                t.context_defaults.insert(column.clone());
            }
            t.columns.insert(column, type_name);
        }
    }

    // Two queries: the stored trees, then one print per distinct shape.
    queries += policies::read(conn, &mut state, &by_number).await?;

    queries += 1;
    type IndexRow = (String, String, String, bool, Vec<i16>);
    let indexes: Vec<IndexRow> = sqlx::query_as(concat!(
        // Key columns as attribute numbers, named from the columns read
        // above: joining pg_attribute per key column and grouping again cost
        // more than any other part of this read at 10,000 tables. The key
        // columns (not INCLUDE ones) sliced out: a slice counts from one, as
        // the client expects, where int2vector counts from zero.
        "SELECT n.nspname::text, c.relname::text, i.relname::text, x.indisvalid,
                    (x.indkey::pg_catalog.int2[])[0:x.indnkeyatts - 1]
               FROM pg_catalog.pg_index x
               JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
               JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE x.indpred IS NULL AND c.relkind IN ('r', 'p') AND ",
        user_schemas!(),
        ""
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (schema, table, name, valid, keys) in indexes {
        let table = QualifiedName::new(schema, table);
        if let Some(t) = state.tables.get_mut(&table) {
            let by_number = by_number.get(&table);
            // Attribute number 0 is an expression key: it has no column
            // name and serves no column prefix.
            let columns = keys
                .iter()
                .map(|n| {
                    by_number
                        .and_then(|c| c.get(n))
                        .map(|(column, _)| column.clone())
                        .unwrap_or_else(|| "(expression)".into())
                })
                .collect();
            t.indexes.push(Index {
                name,
                columns,
                valid,
            });
        }
    }

    queries += 1;
    // Grouped by ACL: tables granted alike (most of them) share one row, so
    // 10,000 tables with the same grants are one ACL exploded, not 110,000
    // rows of privileges.
    type AclRow = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);
    let acls: Vec<AclRow> = sqlx::query_as(concat!(
        // aclitem can be hashed but not sorted: no ORDER BY in the
        // aggregates, whose inputs come in one order for both arrays.
        "SELECT array_agg(n.nspname::text), array_agg(c.relname::text),
                ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
                        FROM pg_catalog.aclexplode(c.relacl) a),
                ARRAY(SELECT a.privilege_type FROM pg_catalog.aclexplode(c.relacl) a)
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND c.relacl IS NOT NULL AND ",
        user_schemas!(),
        "
          GROUP BY c.relacl"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (schemas, tables, grantees, privileges) in acls {
        let mut grants: BTreeMap<String, BTreeSet<Privilege>> = BTreeMap::new();
        for (grantee, privilege) in grantees.into_iter().zip(&privileges) {
            if let Some(p) = Privilege::from_catalog(privilege) {
                grants.entry(grantee).or_default().insert(p);
            }
        }
        for (schema, table) in schemas.into_iter().zip(tables) {
            if let Some(t) = state.tables.get_mut(&QualifiedName::new(schema, table)) {
                t.grants.clone_from(&grants);
            }
        }
    }

    queries += 1;
    let sequences: Vec<(String, String, String, String, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT n.nspname::text, c.relname::text, sn.nspname::text, s.relname::text,
                ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
                        FROM pg_catalog.aclexplode(s.relacl) a
                       WHERE a.privilege_type = 'USAGE')
           FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
           JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
           JOIN pg_catalog.pg_class c ON c.oid = d.refobjid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a' AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (schema, table, sequence_schema, sequence, users) in sequences {
        if let Some(t) = state.tables.get_mut(&QualifiedName::new(schema, table)) {
            t.sequences.insert(
                QualifiedName::new(sequence_schema, sequence),
                users.into_iter().collect(),
            );
        }
    }

    if !scope.resolvers.is_empty() {
        queries += 1;
        let names: Vec<&QualifiedName> = scope.resolvers.iter().collect();
        state.resolvers = resolvers::read_resolvers(conn, &names).await?;
        for name in &scope.resolvers {
            if !state.resolvers.contains_key(name)
                && !state.new_resolver_executors.contains_key(&name.schema)
            {
                queries += 1;
                let executors = new_function_executors(conn, &name.schema)
                    .await?
                    .unwrap_or_else(|| BTreeSet::from(["PUBLIC".to_string()]));
                state
                    .new_resolver_executors
                    .insert(name.schema.clone(), executors);
            }
        }
    }

    if let Some(function) = &scope.function {
        queries += 1;
        state.function = read_function(conn, function).await?;
        if state.function.is_none() {
            queries += 1;
            state.new_function_executors = new_function_executors(conn, &function.schema).await?;
        }
    }

    Ok(Snapshot {
        state,
        queries,
        current_user: live_roles.connecting.name.clone(),
        database,
        server_version,
        bootstrap_superuser: live_roles.bootstrap_superuser,
        connecting: live_roles.connecting,
        columns_by_number: by_number,
    })
}

/// A function without arguments as a policy names it: `schema.name`, or a
/// bare name resolved through the search path as the policy's deparse
/// left it. Its qualified name and body (`prosrc`), if there is one.
pub async fn zero_argument_function(
    conn: &mut PgConnection,
    written: &[String],
) -> Result<Option<(QualifiedName, String)>, sqlx::Error> {
    let (schema, name) = match written {
        [name] => (None, name),
        [schema, name] => (Some(schema), name),
        _ => return Ok(None),
    };
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, p.prosrc
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE p.proname = $2 AND p.pronargs = 0
            AND CASE WHEN $1::text IS NULL THEN pg_catalog.pg_function_is_visible(p.oid)
                     ELSE n.nspname = $1 END
          ORDER BY n.nspname LIMIT 1",
    )
    .bind(schema)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(schema, body)| (QualifiedName::new(schema, name.as_str()), body)))
}

async fn read_function(
    conn: &mut PgConnection,
    name: &QualifiedName,
) -> Result<Option<ContextFunction>, sqlx::Error> {
    let row: Option<(String, String, String, bool, String, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT pg_catalog.format_type(p.prorettype, NULL), l.lanname::text, p.provolatile::text,
                p.proparallel = 's', p.prosrc, ",
        function_executors!(),
        "
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_catalog.pg_language l ON l.oid = p.prolang
          WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0"
    ))
    .bind(&name.schema)
    .bind(&name.name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(returns, language, volatility, parallel_safe, body, executors)| ContextFunction {
            name: name.clone(),
            returns,
            language,
            volatility: Volatility::from_catalog(volatility.as_str()),
            parallel_safe,
            body,
            executors: executors.into_iter().collect::<BTreeSet<_>>(),
        },
    ))
}

/// Who may execute a function `current_user` creates in `schema`, as
/// PostgreSQL computes a new object's privileges: the role's global default
/// privileges for functions, else the built-in default (PUBLIC), plus its
/// default privileges in that schema. `None` when no default privileges
/// apply, which means PUBLIC.
async fn new_function_executors(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<BTreeSet<String>>, sqlx::Error> {
    let (any, executors): (bool, Vec<String>) = sqlx::query_as(
        "WITH me AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user),
              defaults AS (
                SELECT d.defaclnamespace = 0 AS global, d.defaclacl
                  FROM pg_catalog.pg_default_acl d
                  JOIN me ON d.defaclrole = me.oid
                  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
                 WHERE d.defaclobjtype = 'f' AND (d.defaclnamespace = 0 OR n.nspname = $1)),
              acls AS (
                SELECT coalesce((SELECT defaclacl FROM defaults WHERE global),
                                pg_catalog.acldefault('f', (SELECT oid FROM me))) AS acl
                UNION ALL
                SELECT defaclacl FROM defaults WHERE NOT global)
         SELECT EXISTS (SELECT 1 FROM defaults),
                ARRAY(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                           ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
                        FROM acls, pg_catalog.aclexplode(acls.acl) a
                       WHERE a.privilege_type = 'EXECUTE'
                         AND a.grantee <> (SELECT oid FROM me))",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await?;
    Ok(any.then(|| executors.into_iter().collect()))
}

/// Which of `tables` hold data. Kept apart from [`read`] because measuring a
/// table opens it (an ACCESS SHARE lock), which only index creation needs.
pub async fn tables_with_rows(
    conn: &mut PgConnection,
    tables: &[QualifiedName],
) -> Result<BTreeSet<QualifiedName>, sqlx::Error> {
    if tables.is_empty() {
        return Ok(BTreeSet::new());
    }
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text
           FROM unnest($1::text[], $2::text[]) AS t(schema, name)
           JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
           JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
          WHERE pg_catalog.pg_relation_size(c.oid) > 0",
    )
    .bind(&schemas)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(s, n)| QualifiedName::new(s, n))
        .collect())
}

fn command_from_catalog(polcmd: &str) -> Command {
    match polcmd {
        "r" => Command::Select,
        "a" => Command::Insert,
        "w" => Command::Update,
        "d" => Command::Delete,
        _ => Command::All,
    }
}

/// Grants by grantee, for tests and reports.
pub type Grants = BTreeMap<String, BTreeSet<Privilege>>;
