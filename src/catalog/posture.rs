//! The rest of the catalog an audit needs: every path by which a role could
//! reach tenant rows without passing the tenant policy. Read only by `audit`,
//! with the same fixed-number-of-queries rule as the core read.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use super::qualified;
use crate::model::Privilege;
use crate::quote::QualifiedName;

#[derive(Debug, Clone, Default)]
pub struct Posture {
    /// member → the roles it is granted (directly), with what each grant allows.
    pub memberships: BTreeMap<String, BTreeMap<String, MembershipOptions>>,
    /// `ALTER ROLE/DATABASE … SET name = value` defaults: (role, database, name, value).
    pub settings: Vec<(Option<String>, Option<String>, String, String)>,
    pub views: Vec<View>,
    pub foreign_tables: Vec<ForeignTable>,
    /// SECURITY DEFINER functions, LEAKPROOF ones and functions that policies call.
    pub functions: Vec<Function>,
    /// Every schema but the system's, with the roles that may CREATE in it.
    pub schemas: Vec<Schema>,
    /// Column-level privileges by table, then grantee (`PUBLIC` by name): a
    /// role granted a column can read or write the table without a table grant.
    pub column_grants: BTreeMap<QualifiedName, BTreeMap<String, BTreeSet<Privilege>>>,
    /// (table, policy) → the functions its expressions call.
    pub policy_calls: BTreeMap<(QualifiedName, String), BTreeSet<QualifiedName>>,
    /// (table, policy) → the other tables and views its expressions read.
    pub policy_reads: BTreeMap<(QualifiedName, String), BTreeSet<QualifiedName>>,
    /// (child, parent) pairs of partitions and inheritance children.
    pub children: Vec<(QualifiedName, QualifiedName)>,
    /// The children above that are partitions (the others inherit).
    pub partitions: BTreeSet<QualifiedName>,
    pub triggers: Vec<Trigger>,
    pub rules: Vec<Rule>,
    pub unique_keys: Vec<UniqueKey>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Default privileges on future tables: (owner, schema, grantee, privilege).
    pub default_privileges: Vec<(String, Option<String>, String, String)>,
    /// Every role's attributes that decide whether it reaches rows as itself:
    /// name → (LOGIN, SUPERUSER, BYPASSRLS).
    pub role_attributes: BTreeMap<String, RoleAttributes>,
    /// Sequences that number a table's column (serial, identity).
    pub sequences: Vec<ColumnSequence>,
    /// Who may SELECT `pg_stat_activity` or EXECUTE `pg_stat_get_activity`
    /// in this database (`PUBLIC` by name), which show other sessions' queries.
    pub activity_readers: BTreeSet<String>,
    /// Roles granted CONNECT on this database by name (PUBLIC left out): the
    /// marker that a cluster-wide role is meant for this database.
    pub database_connectors: BTreeSet<String>,
    /// What pg_stat_statements recorded in this database, where installed.
    pub statement_log: super::StatementLog,
    pub queries: u32,
}

/// A sequence owned by a table's column.
#[derive(Debug, Clone)]
pub struct ColumnSequence {
    pub table: QualifiedName,
    pub column: String,
    pub sequence: QualifiedName,
    /// An identity column: INSERT on the table draws from it, no sequence grant needed.
    pub identity: bool,
    pub owner: String,
    /// grantee (`PUBLIC` by name) → USAGE, SELECT, UPDATE.
    pub grants: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RoleAttributes {
    pub login: bool,
    pub superuser: bool,
    pub bypass_rls: bool,
    /// REPLICATION: made for streaming or for taking copies.
    pub replication: bool,
}

#[derive(Debug, Clone)]
pub struct ForeignTable {
    pub name: QualifiedName,
    /// Roles granted SELECT (`PUBLIC` by name).
    pub readers: BTreeSet<String>,
    /// The roles its server has a user mapping for (`PUBLIC` by name): a
    /// query by one of them reaches the remote server with the mapping's credentials.
    pub mapped: BTreeSet<String>,
}

/// A rewrite rule on a table.
#[derive(Debug, Clone)]
pub struct Rule {
    pub table: QualifiedName,
    pub name: String,
    /// The command it rewrites: SELECT, UPDATE, INSERT or DELETE.
    pub event: String,
    /// The other relations its actions read or write.
    pub touches: BTreeSet<QualifiedName>,
}

/// What one membership lets its member do. PostgreSQL 16 stores both per
/// grant (`GRANT … WITH INHERIT …, SET …`); before 16 every membership allows
/// `SET ROLE` and passes rights on when the member has the INHERIT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MembershipOptions {
    /// The member holds the role's privileges without `SET ROLE`.
    pub inherit: bool,
    /// The member may `SET ROLE` to the role.
    pub set: bool,
}

/// How a role comes to act with another role's rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// It is that role.
    Itself,
    /// Through memberships with INHERIT: the rights are its own, no `SET ROLE` needed.
    Inherits,
    /// After `SET ROLE` to this role (memberships with SET), which is or inherits the other.
    SetRole(String),
}

impl Path {
    /// `role` reaching `target` this way, in words for a finding.
    pub fn describe(&self, role: &str, target: &str) -> String {
        match self {
            Path::Itself => format!("{role} is {target}"),
            Path::Inherits => {
                format!("{role} inherits the rights of {target} (membership with INHERIT)")
            }
            Path::SetRole(to) if to == target => {
                format!("{role} can SET ROLE {target} (membership with SET)")
            }
            Path::SetRole(to) => format!(
                "{role} can SET ROLE {to} (membership with SET), which inherits the rights of {target}"
            ),
        }
    }
}

impl Posture {
    /// Roles reachable from `role` over memberships that allow `follow`.
    fn closure(&self, role: &str, follow: fn(&MembershipOptions) -> bool) -> Vec<String> {
        let mut seen = BTreeSet::from([role.to_string()]);
        let mut order = vec![role.to_string()];
        let mut next = 0;
        // Breadth first, so the nearest role comes first.
        while let Some(r) = order.get(next).cloned() {
            next += 1;
            for (granted, options) in self.memberships.get(&r).into_iter().flatten() {
                if follow(options) && seen.insert(granted.clone()) {
                    order.push(granted.clone());
                }
            }
        }
        order
    }

    /// `role` and the roles whose privileges it holds without `SET ROLE`.
    pub fn inherits(&self, role: &str) -> BTreeSet<String> {
        self.closure(role, |o| o.inherit).into_iter().collect()
    }

    /// `role` and the roles it may `SET ROLE` to, and so take on their
    /// attributes (SUPERUSER, BYPASSRLS are never inherited).
    pub fn can_set_role(&self, role: &str) -> BTreeSet<String> {
        self.closure(role, |o| o.set).into_iter().collect()
    }

    /// Every role whose rights `role` can use, and how: inherited, or after
    /// a `SET ROLE` (the nearest such role named).
    pub fn paths(&self, role: &str) -> BTreeMap<String, Path> {
        let mut out = BTreeMap::new();
        for r in self.closure(role, |o| o.inherit) {
            let path = if r == role {
                Path::Itself
            } else {
                Path::Inherits
            };
            out.insert(r, path);
        }
        for to in self.closure(role, |o| o.set).into_iter().skip(1) {
            for r in self.closure(&to, |o| o.inherit) {
                out.entry(r).or_insert_with(|| Path::SetRole(to.clone()));
            }
        }
        out
    }

    /// `role` and every role it can act as: inherited, or by `SET ROLE`.
    pub fn reach(&self, role: &str) -> BTreeSet<String> {
        self.paths(role).into_keys().collect()
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub name: QualifiedName,
    pub materialized: bool,
    pub owner: String,
    pub security_invoker: bool,
    /// The relations its query reads.
    pub reads: BTreeSet<QualifiedName>,
    /// Roles granted SELECT (the owner implicitly too).
    pub readers: BTreeSet<String>,
}

impl View {
    /// Whether a role that can act as every role in `reach` (see
    /// `Posture::reach`) may select from the view: through a grant to PUBLIC
    /// or to one of those roles, or by owning it.
    pub fn readable_by(&self, reach: &BTreeSet<String>) -> bool {
        self.readers.contains("PUBLIC")
            || reach.contains(&self.owner)
            || !self.readers.is_disjoint(reach)
    }
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: QualifiedName,
    pub arguments: String,
    pub owner: String,
    pub security_definer: bool,
    /// `i`, `s` or `v`.
    pub volatility: String,
    /// `s` (safe), `r` (restricted) or `u` (unsafe).
    pub parallel: String,
    pub language: String,
    /// Roles with EXECUTE; `PUBLIC` when nobody revoked the default.
    pub executors: BTreeSet<String>,
    pub leakproof: bool,
    /// `proconfig`: the settings pinned with `SET name = value`, as `name=value`.
    pub config: Vec<String>,
    /// `prosrc`: the body as written (SQL, PL/pgSQL), or a C symbol.
    pub body: String,
}

impl Function {
    /// `"schema"."name"(argument types)`, as ALTER FUNCTION and REVOKE name it.
    pub fn signature(&self) -> String {
        format!("{}({})", self.name.quoted(), self.arguments)
    }

    /// The schemas of a pinned `SET search_path`, or `None` when the function
    /// runs with its caller's search_path.
    pub fn pinned_search_path(&self) -> Option<Vec<String>> {
        pinned_search_path(&self.config)
    }
}

/// The schemas of a `SET search_path` among a function's `proconfig`
/// (`name=value` entries), or `None` when it runs with its caller's path.
pub fn pinned_search_path(config: &[String]) -> Option<Vec<String>> {
    config.iter().find_map(|c| {
        let (name, value) = c.split_once('=')?;
        (name == "search_path").then(|| {
            value
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    })
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    /// The database's owner stands for `pg_database_owner`, here and below.
    pub owner: String,
    /// Roles granted CREATE (`PUBLIC` by name).
    pub create_grantees: BTreeSet<String>,
}

impl Schema {
    /// The role, among `reach` (or PUBLIC), through which one may CREATE here.
    pub fn creator_among(&self, reach: &BTreeSet<String>) -> Option<&str> {
        if reach.contains(&self.owner) {
            return Some(&self.owner);
        }
        self.create_grantees
            .iter()
            .find(|g| g.as_str() == "PUBLIC" || reach.contains(*g))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub table: QualifiedName,
    pub name: String,
    pub function: QualifiedName,
    pub security_definer: bool,
    pub owner: String,
    pub language: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct UniqueKey {
    pub table: QualifiedName,
    pub name: String,
    pub primary: bool,
    pub columns: Vec<String>,
    /// A single-column key whose default calls `gen_random_uuid()` or
    /// `uuid_generate_v4()`: its values cannot be guessed, so not probed.
    pub random_default: bool,
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub table: QualifiedName,
    pub name: String,
    pub columns: Vec<String>,
    pub references: QualifiedName,
    /// The referenced table's columns, in the order of `columns`.
    pub referenced_columns: Vec<String>,
}

/// `schema<US>name` of relation `c` in namespace `n`, parsed by `qualified`.
macro_rules! pair {
    ($n:literal, $c:literal) => {
        concat!($n, ".nspname::text || chr(31) || ", $c, ".relname::text")
    };
}

/// The grantee of an `aclexplode` row `a`, with PUBLIC by name.
macro_rules! grantee {
    () => {
        "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END"
    };
}

type ViewRow = (String, bool, String, bool, Vec<String>, Vec<String>);

type FunctionRow = (
    String,
    String,
    String,
    bool,
    String,
    String,
    String,
    Vec<String>,
    bool,
    Vec<String>,
    String,
);

type TriggerRow = (String, String, String, bool, String, String, String);

/// `server_version_num` from which each membership grant carries its own
/// INHERIT and SET options (`pg_auth_members.inherit_option`, `set_option`).
pub const MEMBERSHIP_OPTIONS_FROM: u32 = 160000;

/// Reads the posture; its key columns are named from `snapshot`'s columns.
pub async fn read_posture(
    conn: &mut PgConnection,
    snapshot: &super::Snapshot,
) -> Result<Posture, sqlx::Error> {
    read_posture_unnamed(conn, snapshot.connecting.server_version_num)
        .await?
        .finish(conn, snapshot)
        .await
}

/// A posture read before the snapshot it needs for naming key columns, so
/// that it can run on a second connection while the snapshot is read.
pub struct UnnamedPosture {
    posture: Posture,
    keys: super::keys::StoredKeys,
}

impl UnnamedPosture {
    /// Names the key columns from `snapshot` (asking the server, on `conn`,
    /// only for tables the snapshot did not read).
    pub async fn finish(
        self,
        conn: &mut PgConnection,
        snapshot: &super::Snapshot,
    ) -> Result<Posture, sqlx::Error> {
        let mut p = self.posture;
        let (unique, foreign) = self.keys.name(conn, &snapshot.columns_by_number).await?;
        p.unique_keys = unique;
        p.foreign_keys = foreign;
        Ok(p)
    }
}

/// Everything but the names of key columns. `server_version_num` chooses
/// the membership query, as the catalog columns differ by major.
pub async fn read_posture_unnamed(
    conn: &mut PgConnection,
    server_version_num: u32,
) -> Result<UnnamedPosture, sqlx::Error> {
    let mut p = Posture::default();

    // On 16+ one member may hold a role through several grantors: any grant
    // that allows an option allows it.
    let memberships = if server_version_num >= MEMBERSHIP_OPTIONS_FROM {
        "SELECT m.rolname::text, r.rolname::text, bool_or(am.inherit_option), bool_or(am.set_option)
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
           JOIN pg_catalog.pg_roles m ON m.oid = am.member
          GROUP BY m.rolname, r.rolname"
    } else {
        "SELECT m.rolname::text, r.rolname::text, m.rolinherit, true
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
           JOIN pg_catalog.pg_roles m ON m.oid = am.member"
    };
    let rows: Vec<(String, String, bool, bool)> =
        sqlx::query_as(memberships).fetch_all(&mut *conn).await?;
    for (member, role, inherit, set) in rows {
        p.memberships
            .entry(member)
            .or_default()
            .insert(role, MembershipOptions { inherit, set });
    }

    let rows: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT r.rolname::text, d.datname::text, unnest(s.setconfig)
           FROM pg_catalog.pg_db_role_setting s
           LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
           LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (role, database, setting) in rows {
        let (name, value) = setting.split_once('=').unwrap_or((&setting, ""));
        p.settings
            .push((role, database, name.to_string(), value.to_string()));
    }

    let rows: Vec<ViewRow> =
        sqlx::query_as(concat!(
            "SELECT ",
            pair!("n", "c"),
            ", c.relkind = 'm', pg_catalog.pg_get_userbyid(c.relowner)::text,
                    coalesce((SELECT o.option_value::bool FROM pg_catalog.pg_options_to_table(c.reloptions) o
                               WHERE o.option_name = 'security_invoker'), false),
                    ARRAY(SELECT DISTINCT ",
            pair!("rn", "rc"),
            "
                            FROM pg_catalog.pg_rewrite r
                            JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                            JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid AND d.refclassid = 'pg_catalog.pg_class'::regclass
                            JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
                           WHERE r.ev_class = c.oid AND rc.oid <> c.oid),
                    ARRAY(SELECT ",
            grantee!(),
            " FROM pg_catalog.aclexplode(c.relacl) a WHERE a.privilege_type = 'SELECT')
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('v', 'm') AND ",
            user_schemas!()
        ))
        .fetch_all(&mut *conn)
        .await?;
    for (name, materialized, owner, security_invoker, reads, readers) in rows {
        p.views.push(View {
            name: qualified(&name),
            materialized,
            owner,
            security_invoker,
            reads: reads.iter().map(|r| qualified(r)).collect(),
            readers: readers.into_iter().collect(),
        });
    }

    // pg_user_mappings (not pg_user_mapping) is readable without superuser.
    let rows: Vec<(String, Vec<String>, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT ",
        pair!("n", "c"),
        ", ARRAY(SELECT ",
        grantee!(),
        " FROM pg_catalog.aclexplode(c.relacl) a WHERE a.privilege_type = 'SELECT'),
                ARRAY(SELECT CASE WHEN um.umuser = 0 THEN 'PUBLIC' ELSE um.usename::text END
                        FROM pg_catalog.pg_user_mappings um WHERE um.srvid = ft.ftserver)
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
          WHERE c.relkind = 'f' AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    p.foreign_tables = rows
        .into_iter()
        .map(|(name, readers, mapped)| ForeignTable {
            name: qualified(&name),
            readers: readers.into_iter().collect(),
            mapped: mapped.into_iter().collect(),
        })
        .collect();

    let rows: Vec<FunctionRow> =
        sqlx::query_as(concat!(
            "SELECT n.nspname::text || chr(31) || p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid),
                    pg_catalog.pg_get_userbyid(p.proowner)::text, p.prosecdef, p.provolatile::text,
                    p.proparallel::text, l.lanname::text,
                    CASE WHEN p.proacl IS NULL THEN ARRAY['PUBLIC']
                         ELSE ARRAY(SELECT ",
            grantee!(),
            " FROM pg_catalog.aclexplode(p.proacl) a WHERE a.privilege_type = 'EXECUTE') END,
                    p.proleakproof, coalesce(p.proconfig, '{}'), p.prosrc
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang
              WHERE ",
            user_schemas!(),
            "
                AND (p.prosecdef OR p.proleakproof OR p.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend d
                                               WHERE d.classid = 'pg_catalog.pg_policy'::regclass
                                                 AND d.refclassid = 'pg_catalog.pg_proc'::regclass))"
        ))
        .fetch_all(&mut *conn)
        .await?;
    for (
        name,
        arguments,
        owner,
        security_definer,
        volatility,
        parallel,
        language,
        executors,
        leakproof,
        config,
        body,
    ) in rows
    {
        p.functions.push(Function {
            name: qualified(&name),
            arguments,
            owner,
            security_definer,
            volatility,
            parallel,
            language,
            executors: executors.into_iter().collect(),
            leakproof,
            config,
            body,
        });
    }

    // pg_database_owner (PostgreSQL 14+, owner of `public` from 15) means
    // whoever owns this database: named as that role, so membership works.
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(concat!(
        "WITH dbo AS (SELECT pg_catalog.pg_get_userbyid(d.datdba)::text AS name
                        FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
              s AS (SELECT n.nspname::text AS name, pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner,
                           ARRAY(SELECT ",
        grantee!(),
        " FROM pg_catalog.aclexplode(n.nspacl) a WHERE a.privilege_type = 'CREATE') AS grantees
                      FROM pg_catalog.pg_namespace n
                     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
         SELECT s.name,
                CASE s.owner WHEN 'pg_database_owner' THEN (SELECT name FROM dbo) ELSE s.owner END,
                ARRAY(SELECT CASE g WHEN 'pg_database_owner' THEN (SELECT name FROM dbo) ELSE g END
                        FROM unnest(s.grantees) g)
           FROM s"
    ))
    .fetch_all(&mut *conn)
    .await?;
    p.schemas = rows
        .into_iter()
        .map(|(name, owner, grantees)| Schema {
            name,
            owner,
            create_grantees: grantees.into_iter().collect(),
        })
        .collect();

    let rows: Vec<(String, String, String)> = sqlx::query_as(concat!(
        "SELECT DISTINCT ",
        pair!("n", "c"),
        ", ",
        grantee!(),
        ", a.privilege_type
           FROM pg_catalog.pg_attribute att
           JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
                LATERAL pg_catalog.aclexplode(att.attacl) a
          WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped
            AND c.relkind IN ('r', 'p') AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (table, grantee, privilege) in rows {
        if let Some(privilege) = Privilege::from_catalog(&privilege) {
            p.column_grants
                .entry(qualified(&table))
                .or_default()
                .entry(grantee)
                .or_default()
                .insert(privilege);
        }
    }

    // What each policy depends on: the functions it calls ('f') and the
    // other relations it reads ('r'), e.g. a membership lookup table.
    // One pass over pg_depend: its duplicate rows (a USING and a WITH CHECK
    // calling the same function) folded as oids, before any name is built.
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(concat!(
        "SELECT ",
        pair!("n", "c"),
        ", pol.polname::text,
                CASE WHEN d.refclassid = 'pg_catalog.pg_proc'::regclass THEN 'f' ELSE 'r' END,
                CASE WHEN d.refclassid = 'pg_catalog.pg_proc'::regclass THEN fn.nspname::text || chr(31) || pr.proname::text
                     ELSE ",
        pair!("rn", "rc"),
        " END
           FROM (SELECT DISTINCT dep.refclassid, dep.refobjid, dep.objid
                   FROM pg_catalog.pg_depend dep
                  WHERE dep.classid = 'pg_catalog.pg_policy'::regclass
                    AND dep.refclassid IN ('pg_catalog.pg_proc'::regclass, 'pg_catalog.pg_class'::regclass)) d
           JOIN pg_catalog.pg_policy pol ON pol.oid = d.objid
                AND NOT (d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = pol.polrelid)
           JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_proc pr ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND pr.oid = d.refobjid
           LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = pr.pronamespace
           LEFT JOIN pg_catalog.pg_class rc ON d.refclassid = 'pg_catalog.pg_class'::regclass AND rc.oid = d.refobjid
           LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
          WHERE pr.oid IS NOT NULL OR rc.oid IS NOT NULL"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (table, policy, kind, object) in rows {
        let into = if kind == "f" {
            &mut p.policy_calls
        } else {
            &mut p.policy_reads
        };
        into.entry((qualified(&table), policy))
            .or_default()
            .insert(qualified(&object));
    }

    let rows: Vec<(String, String, bool)> = sqlx::query_as(concat!(
            "SELECT ",
            pair!("n", "c"),
            ", ",
            pair!("pn", "pc"),
            ", c.relispartition
           FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE c.relkind IN ('r', 'p')"
        ))
    .fetch_all(&mut *conn)
    .await?;
    p.children = rows
        .iter()
        .map(|(c, parent, _)| (qualified(c), qualified(parent)))
        .collect();
    p.partitions = rows
        .iter()
        .filter(|(_, _, partition)| *partition)
        .map(|(c, _, _)| qualified(c))
        .collect();

    let rows: Vec<TriggerRow> = sqlx::query_as(concat!(
            "SELECT ",
            pair!("n", "c"),
            ", t.tgname::text, fn.nspname::text || chr(31) || pr.proname::text, pr.prosecdef,
                  pg_catalog.pg_get_userbyid(pr.proowner)::text, l.lanname::text, pr.prosrc
           FROM pg_catalog.pg_trigger t
           JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_proc pr ON pr.oid = t.tgfoid JOIN pg_catalog.pg_namespace fn ON fn.oid = pr.pronamespace
           JOIN pg_catalog.pg_language l ON l.oid = pr.prolang
          WHERE NOT t.tgisinternal AND ",
            user_schemas!()
        ))
    .fetch_all(&mut *conn)
    .await?;
    p.triggers = rows
        .into_iter()
        .map(
            |(table, name, function, security_definer, owner, language, body)| Trigger {
                table: qualified(&table),
                name,
                function: qualified(&function),
                security_definer,
                owner,
                language,
                body,
            },
        )
        .collect();

    let rows: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(concat!(
            "SELECT ",
            pair!("n", "c"),
            ", r.rulename::text,
                  CASE r.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT' ELSE 'DELETE' END,
                  ARRAY(SELECT DISTINCT ",
            pair!("dn", "dc"),
            " FROM pg_catalog.pg_depend d
                          JOIN pg_catalog.pg_class dc ON dc.oid = d.refobjid
                          JOIN pg_catalog.pg_namespace dn ON dn.oid = dc.relnamespace
                         WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class)
           FROM pg_catalog.pg_rewrite r
           JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND r.rulename <> '_RETURN' AND ",
            user_schemas!()
        ))
    .fetch_all(&mut *conn)
    .await?;
    p.rules = rows
        .into_iter()
        .map(|(table, name, event, touches)| Rule {
            table: qualified(&table),
            name,
            event,
            touches: touches.iter().map(|t| qualified(t)).collect(),
        })
        .collect();

    let keys = super::keys::read(conn).await?;

    let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(concat!(
        "SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, ",
        grantee!(),
        ", a.privilege_type
           FROM pg_catalog.pg_default_acl d
           LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
                LATERAL pg_catalog.aclexplode(d.defaclacl) a
          WHERE d.defaclobjtype = 'r'"
    ))
    .fetch_all(&mut *conn)
    .await?;
    p.default_privileges = rows;

    let rows: Vec<(String, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT rolname::text, rolcanlogin, rolsuper, rolbypassrls, rolreplication FROM pg_catalog.pg_roles",
    )
    .fetch_all(&mut *conn)
    .await?;
    p.role_attributes = rows
        .into_iter()
        .map(|(name, login, superuser, bypass_rls, replication)| {
            (
                name,
                RoleAttributes {
                    login,
                    superuser,
                    bypass_rls,
                    replication,
                },
            )
        })
        .collect();

    let rows: Vec<(String, String, String, bool, String, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT ",
        pair!("n", "c"),
        ", a.attname::text, ",
        pair!("sn", "s"),
        ", a.attidentity <> '', pg_catalog.pg_get_userbyid(s.relowner)::text,
                ARRAY(SELECT ",
        grantee!(),
        " || chr(31) || a.privilege_type FROM pg_catalog.aclexplode(s.relacl) a)
           FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_class s ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.oid AND s.relkind = 'S'
           JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
           JOIN pg_catalog.pg_class c ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
          WHERE d.deptype IN ('a', 'i') AND ",
        user_schemas!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    p.sequences = rows
        .into_iter()
        .map(|(table, column, sequence, identity, owner, acl)| {
            let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for entry in acl {
                if let Some((grantee, privilege)) = entry.split_once('\u{1f}') {
                    grants
                        .entry(grantee.to_string())
                        .or_default()
                        .insert(privilege.to_string());
                }
            }
            ColumnSequence {
                table: qualified(&table),
                column,
                sequence: qualified(&sequence),
                identity,
                owner,
                grants,
            }
        })
        .collect();

    // A NULL ACL is the default: PUBLIC may read the view and run the function.
    let readers: Vec<String> = sqlx::query_scalar(concat!(
        "SELECT DISTINCT g FROM (
           SELECT CASE WHEN c.relacl IS NULL THEN ARRAY['PUBLIC']
                       ELSE ARRAY(SELECT ",
        grantee!(),
        " FROM pg_catalog.aclexplode(c.relacl) a WHERE a.privilege_type = 'SELECT') END AS gs
             FROM pg_catalog.pg_class c
            WHERE c.oid = 'pg_catalog.pg_stat_activity'::regclass
           UNION ALL
           SELECT CASE WHEN p.proacl IS NULL THEN ARRAY['PUBLIC']
                       ELSE ARRAY(SELECT ",
        grantee!(),
        " FROM pg_catalog.aclexplode(p.proacl) a WHERE a.privilege_type = 'EXECUTE') END
             FROM pg_catalog.pg_proc p
            WHERE p.oid = 'pg_catalog.pg_stat_get_activity'::regproc
         ) x, unnest(x.gs) g"
    ))
    .fetch_all(&mut *conn)
    .await?;
    p.activity_readers = readers.into_iter().collect();

    let connectors: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT pg_catalog.pg_get_userbyid(a.grantee)::text
           FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
          WHERE d.datname = pg_catalog.current_database()
            AND a.privilege_type = 'CONNECT' AND a.grantee <> 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    p.database_connectors = connectors.into_iter().collect();

    let (statement_log, queries) = super::statements::read_statement_log(conn).await?;
    p.statement_log = statement_log;

    p.queries = 17 + queries;
    Ok(UnnamedPosture { posture: p, keys })
}
