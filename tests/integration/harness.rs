//! One throwaway PostgreSQL per test process (initdb costs seconds), a fresh
//! database per test, role names unique per test (roles are cluster-wide),
//! and rlsctl run as the user runs it: the binary, in a project folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rlsctl::catalog::{self, Scope};
use rlsctl::ephemeral::EphemeralServer;
use rlsctl::model::State;
use sqlx::{Connection, PgConnection};

static SERVER: OnceLock<EphemeralServer> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn server() -> &'static EphemeralServer {
    SERVER.get_or_init(|| {
        let server = EphemeralServer::start().expect("start the test PostgreSQL");
        if server.preloads_stat_statements() {
            record_statements_only_where_asked(&server.url());
        }
        server
    })
}

/// pg_stat_statements keeps `pg_stat_statements.max` entries and evicts the
/// least used: the whole suite's statements would push out the few a test
/// reads. So the cluster records none, and `install_stat_statements` turns
/// recording on for its own database only.
fn record_statements_only_where_asked(url: &str) {
    let url = url.to_string();
    // The first caller may be inside a test's runtime, which cannot block.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&url).await.expect("connect");
            for sql in [
                "ALTER SYSTEM SET pg_stat_statements.track = 'none'",
                "SELECT pg_catalog.pg_reload_conf()",
            ] {
                sqlx::raw_sql(sql)
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        })
    })
    .join()
    .expect("configure pg_stat_statements");
}

/// A name no other test in this process uses (databases, roles).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Everything the test server has logged so far.
pub fn server_log() -> String {
    String::from_utf8_lossy(&std::fs::read(server().log_file()).expect("read the server log"))
        .into_owned()
}

/// Runs `sql` as the superuser on the server's own database: for
/// cluster-wide objects (roles) made before a test's database.
pub async fn cluster_execute(sql: &str) {
    let mut conn = PgConnection::connect(&server().url())
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Makes `role` log in with a SCRAM password over TCP (the test server
/// otherwise trusts everyone). Only this role's line is added.
pub async fn require_scram_password_for(role: &str) {
    let hba = server().data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
    let line = format!(
        "host all {} 127.0.0.1/32 scram-sha-256\n",
        rlsctl::quote::ident(role)
    );
    std::fs::write(&hba, format!("{line}{rules}")).expect("write pg_hba.conf");
    let mut admin = PgConnection::connect(&server().url())
        .await
        .expect("connect");
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut admin)
        .await
        .expect("reload");
}

/// A test's own database and project folder (policies/, migrations/).
pub struct TestDb {
    /// Connects as the superuser.
    pub url: String,
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::create("").await
    }

    /// A fresh managed-cloud admin (LOGIN CREATEROLE CREATEDB, neither
    /// superuser nor BYPASSRLS) and a database it owns; returns its name too.
    pub async fn for_managed_admin() -> (TestDb, String) {
        let admin = unique("cloud_admin");
        cluster_execute(&format!(
            "CREATE ROLE {admin} LOGIN CREATEROLE CREATEDB NOSUPERUSER NOBYPASSRLS"
        ))
        .await;
        (TestDb::owned_by(&admin).await, admin)
    }

    /// A database owned by `owner`, a role the test made: how a managed
    /// service (RDS, Cloud SQL…) hands a database to its non-superuser admin.
    pub async fn owned_by(owner: &str) -> TestDb {
        TestDb::create(&format!(" OWNER {}", rlsctl::quote::ident(owner))).await
    }

    async fn create(options: &str) -> TestDb {
        let name = unique("rlsctl_test");
        let mut admin = PgConnection::connect(&server().url())
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name}{options}"
        )))
        .execute(&mut admin)
        .await
        .expect("create database");
        // Every database starts as PostgreSQL 15+ makes it: before 15, PUBLIC
        // may CREATE in schema public (which audit rightly reports, and which
        // would otherwise be a finding in every test on 13 and 14), and the
        // schema belongs to the bootstrap superuser, not the database's owner.
        let mut db = PgConnection::connect(&server().url_for(&name))
            .await
            .expect("connect");
        sqlx::raw_sql(
            "DO $$ BEGIN
               IF current_setting('server_version_num')::int < 150000 THEN
                 REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                 EXECUTE format('ALTER SCHEMA public OWNER TO %I',
                   (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database
                     WHERE datname = current_database()));
               END IF;
             END $$",
        )
        .execute(&mut db)
        .await
        .expect("the PostgreSQL 15 defaults for schema public");
        let dir = tempfile::tempdir().expect("project dir");
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        TestDb {
            url: server().url_for(&name),
            name,
            dir,
        }
    }

    /// `CREATE EXTENSION pg_stat_statements` in this database, recording
    /// top-level statements in sessions that connect to it from now on,
    /// where the test server preloads it (its library is installed beside
    /// the server's binaries, as on Debian's PostgreSQL and the packaged
    /// majors). Where it is absent, says so on stderr and returns false:
    /// the caller returns.
    pub async fn install_stat_statements(&self) -> bool {
        if !server().preloads_stat_statements() {
            eprintln!(
                "SKIPPED: this server's library folder has no pg_stat_statements, so the test server does not preload it"
            );
            return false;
        }
        self.execute(&format!(
            "ALTER DATABASE {} SET pg_stat_statements.track = 'top'",
            rlsctl::quote::ident(&self.name)
        ))
        .await;
        self.execute("CREATE EXTENSION pg_stat_statements").await;
        true
    }

    /// This database's URL for logging in as `role` (the server trusts everyone).
    pub fn url_as(&self, role: &str) -> String {
        format!(
            "postgres://{role}@127.0.0.1:{}/{}",
            server().port(),
            self.name
        )
    }

    /// A database whose migrations create PROJECTS, with a spec declaring
    /// `tables` for a fresh runtime role; returns the role's name too.
    pub async fn with_projects(tables: &[&str]) -> (TestDb, String) {
        let db = TestDb::new().await;
        let role = unique("app");
        db.migration("V1__schema.sql", PROJECTS);
        db.spec(&simple_spec(&role, tables));
        (db, role)
    }

    /// PROJECTS applied for a fresh runtime role and a cross-tenant reader,
    /// with a restrictive extra policy (`spec_with_reader`): returns both roles.
    pub async fn applied_with_reader() -> (TestDb, String, String) {
        let db = TestDb::new().await;
        let (role, reader) = (unique("app"), unique("reader"));
        db.migration("V1__schema.sql", PROJECTS);
        db.spec(&spec_with_reader(&role, &reader, "NOT archived"));
        db.rlsctl(&["apply"]).success();
        (db, role, reader)
    }

    /// A database with the repo's own policies/ and migrations/. Its role
    /// names are fixed (app_user…): only one test may use this.
    pub async fn with_repo_project() -> TestDb {
        let db = TestDb::new().await;
        for dir in ["policies", "migrations"] {
            for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, db.path().join(dir).join(path.file_name().unwrap())).unwrap();
            }
        }
        db
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the spec with one file holding `yaml`.
    pub fn spec(&self, yaml: &str) {
        let policies = self.path().join("policies");
        for entry in std::fs::read_dir(&policies).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::fs::write(policies.join("spec.yaml"), yaml).unwrap();
    }

    pub fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.path().join("migrations").join(file), sql).unwrap();
    }

    /// Runs `rlsctl ARGS --database-url <this db>` in the project folder.
    pub fn rlsctl(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        Run::from(command.output().expect("run rlsctl"))
    }

    /// Runs `rlsctl ARGS` connected as `role` instead of the superuser.
    pub fn rlsctl_as(&self, role: &str, args: &[&str]) -> Run {
        let mut command = self.command_at(&self.url_as(role), args);
        Run::from(command.output().expect("run rlsctl"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_at(&self.url, args)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn command_at(&self, url: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlsctl"));
        command
            .args(args)
            .arg("--database-url")
            .arg(url)
            .current_dir(self.path())
            .env_remove("DATABASE_URL")
            .env_remove("RLSCTL_ADMIN_DATABASE_URL");
        command
    }

    /// `rlsctl ARGS` in the project folder, for the commands that need no database.
    pub fn offline_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlsctl"));
        command.args(args).current_dir(self.path());
        command
    }

    /// The database matches the spec: `plan` has nothing to do.
    #[track_caller]
    pub fn assert_converged(&self) {
        let sql = self
            .rlsctl(&["plan", "--format", "json"])
            .success()
            .planned_sql();
        assert!(sql.is_empty(), "expected an empty plan, got {sql:#?}");
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect")
    }

    /// The isolation-relevant catalog, for before/after comparisons.
    pub async fn state(&self, roles: &[&str]) -> State {
        let mut conn = self.connect().await;
        let scope = Scope {
            function: Some(rlsctl::quote::QualifiedName::new(
                "rls",
                "current_tenant_id",
            )),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            resolvers: Vec::new(),
        };
        let mut state = catalog::read(&mut conn, &scope)
            .await
            .expect("read catalog")
            .state;
        // Roles are cluster-wide and other tests create theirs concurrently.
        state
            .roles
            .retain(|name, _| name == "postgres" || roles.contains(&name.as_str()));
        state
    }

    pub async fn scalar_text(&self, sql: &'static str) -> String {
        let mut conn = self.connect().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql)
    }

    /// The server's `server_version_num` (e.g. 170010).
    pub async fn server_version(&self) -> i32 {
        self.scalar_text("SELECT current_setting('server_version_num')")
            .await
            .parse()
            .expect("a version number")
    }

    pub async fn scalar_i64(&self, sql: &'static str) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql)
    }

    /// `count(*)` of each table, in order.
    pub async fn row_counts(&self, tables: &[&str]) -> Vec<i64> {
        let mut conn = self.connect().await;
        let mut counts = Vec::new();
        for table in tables {
            let sql = format!("SELECT count(*) FROM {}", rlsctl::quote::ident(table));
            counts.push(
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut conn)
                    .await
                    .expect("count rows"),
            );
        }
        counts
    }

    pub async fn history_rows(&self) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar("SELECT count(*) FROM rlsctl.apply_history")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0)
    }

    /// Everything a command could change in this database, as sorted lines:
    /// schemas, relations (kind, RLS flags, owner, grants), columns,
    /// constraints, indexes, triggers, policies, functions, default
    /// privileges, role settings, the given roles' attributes and memberships,
    /// and the row count of every table (rlsctl's history tables included).
    /// Sequence positions are left out: a rolled-back insert still advances one.
    pub async fn fingerprint(&self, roles: &[&str]) -> Vec<String> {
        let mut conn = self.connect().await;
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        sqlx::query_scalar(FINGERPRINT)
            .bind(&roles)
            .fetch_all(&mut conn)
            .await
            .expect("fingerprint the database")
    }

    pub async fn execute(&self, sql: &str) {
        self.execute_at(&self.url, sql).await;
    }

    /// Runs `sql` logged in as `role`.
    pub async fn execute_as(&self, role: &str, sql: &str) {
        self.execute_at(&self.url_as(role), sql).await;
    }

    async fn execute_at(&self, url: &str, sql: &str) {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A finished rlsctl process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "rlsctl failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(self) -> Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// The SQL statements of a `plan --format json`.
    pub fn planned_sql(&self) -> Vec<String> {
        self.json()["statements"]
            .as_array()
            .expect("statements")
            .iter()
            .map(|s| s["sql"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A spec with one runtime role and the given tables (names made unique by the caller).
pub fn simple_spec(role: &str, tables: &[&str]) -> String {
    let mut yaml = format!("roles:\n  - name: {role}\ntables:\n");
    for t in tables {
        yaml.push_str(&format!("  - {t}\n"));
    }
    yaml
}

/// projects and tasks for `role`, a cross-tenant reader, and a restrictive
/// extra policy whose USING is `archived`.
pub fn spec_with_reader(role: &str, reader: &str, archived: &str) -> String {
    format!(
        "roles:
  - name: {role}
  - name: {reader}
    cross_tenant: read
    reason: Reports across customers.
tables:
  - projects
  - {{ name: tasks, commands: [select, insert] }}
policies:
  - name: archived_read_only
    tables: [projects]
    command: update
    kind: restrictive
    using: {archived}
"
    )
}

pub const PROJECTS: &str = "CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    archived boolean NOT NULL DEFAULT false);
CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    title text NOT NULL);";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const FINGERPRINT: &str = "
WITH rel AS (
  SELECT c.oid, c.relname, n.nspname, c.relkind
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%')
SELECT line FROM (
  SELECT format('schema %s owner=%s acl=%s', n.nspname, n.nspowner::regrole, n.nspacl)
    FROM pg_catalog.pg_namespace n
   WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('relation %I.%I kind=%s rls=%s force=%s owner=%s acl=%s options=%s',
                rel.nspname, rel.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                c.relowner::regrole, c.relacl, c.reloptions)
    FROM rel JOIN pg_catalog.pg_class c ON c.oid = rel.oid
  UNION ALL
  SELECT format('column %I.%I.%I type=%s notnull=%s default=%s acl=%s', rel.nspname, rel.relname,
                a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attacl)
    FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  UNION ALL
  SELECT format('constraint %s on %I.%I: %s valid=%s', co.conname, rel.nspname, rel.relname,
                pg_catalog.pg_get_constraintdef(co.oid), co.convalidated)
    FROM rel JOIN pg_catalog.pg_constraint co ON co.conrelid = rel.oid
  UNION ALL
  SELECT format('index %s valid=%s', pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid)
    FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
  UNION ALL
  SELECT format('trigger %s on %I.%I: %s', t.tgname, rel.nspname, rel.relname, pg_catalog.pg_get_triggerdef(t.oid))
    FROM rel JOIN pg_catalog.pg_trigger t ON t.tgrelid = rel.oid
  UNION ALL
  SELECT format('policy %s on %I.%I: %s %s roles=%s using=%s check=%s', p.polname, rel.nspname,
                rel.relname, p.polcmd, p.polpermissive, p.polroles::regrole[],
                pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
    FROM rel JOIN pg_catalog.pg_policy p ON p.polrelid = rel.oid
  UNION ALL
  SELECT format('function %s owner=%s acl=%s volatile=%s definer=%s config=%s body=%s',
                p.oid::regprocedure, p.proowner::regrole, p.proacl, p.provolatile, p.prosecdef,
                p.proconfig, md5(p.prosrc))
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT format('default acl %s %s %s', d.defaclrole::regrole, d.defaclnamespace, d.defaclacl)
    FROM pg_catalog.pg_default_acl d
  UNION ALL
  SELECT format('setting role=%s this_db=%s %s', s.setrole::regrole, s.setdatabase <> 0, s.setconfig)
    FROM pg_catalog.pg_db_role_setting s
   WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      OR (s.setdatabase = 0 AND s.setrole::regrole::text = ANY($1))
  UNION ALL
  SELECT format('role %s login=%s super=%s bypass=%s createrole=%s inherit=%s password=%s member_of=%s',
                r.rolname, r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolinherit,
                r.rolpassword IS NOT NULL,
                ARRAY(SELECT m.roleid::regrole::text
                             || (to_jsonb(m) - 'oid' - 'roleid' - 'member' - 'grantor')::text
                        FROM pg_catalog.pg_auth_members m
                       WHERE m.member = r.oid ORDER BY 1))
    FROM pg_catalog.pg_authid r WHERE r.rolname = ANY($1)
  UNION ALL
  SELECT format('rows %I.%I = %s', rel.nspname, rel.relname,
                (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
                 rel.nspname, rel.relname), false, true, '')))[1]::text)
    FROM rel WHERE rel.relkind IN ('r', 'p')
) lines(line)
ORDER BY line";
