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

fn server() -> &'static EphemeralServer {
    SERVER.get_or_init(|| EphemeralServer::start().expect("start the test PostgreSQL"))
}

/// A name no other test in this process uses (databases, roles).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A test's own database and project folder (policies/, migrations/).
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = unique("rlsctl_test");
        let mut admin = PgConnection::connect(&server().url())
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let dir = tempfile::tempdir().expect("project dir");
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        TestDb {
            url: server().url_for(&name),
            dir,
        }
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

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlsctl"));
        command
            .args(args)
            .arg("--database-url")
            .arg(&self.url)
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

    pub async fn execute(&self, sql: &str) {
        let mut conn = self.connect().await;
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
