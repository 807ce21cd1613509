//! A throwaway PostgreSQL cluster: `apply --ephemeral`, and the test harness.
//!
//! A small supervisor shell script owns the server: it runs initdb and
//! postgres in a temp dir on a free port, says `ready`, then waits for its
//! stdin to close. rlsctl holds the other end of that pipe, so however rlsctl
//! ends (normal exit, Ctrl-C, a panic, SIGKILL) the pipe closes and the
//! supervisor stops the server and deletes the directory. The supervisor runs
//! in its own process group so a terminal's Ctrl-C reaches only rlsctl.
//! initdb refuses to run as root: as root, the server programs run as the
//! `postgres` OS user while the supervisor stays root, so it can remove the
//! directory wherever TMPDIR points.
//!
//! Where the server's library folder holds pg_stat_statements, the server
//! preloads it, so a database may `CREATE EXTENSION pg_stat_statements` as a
//! production server with it would (audit reads it; see
//! `catalog::statements`). Loading it creates nothing in any database.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

const SUPERVISOR: &str = r#"
set -u
# If rlsctl is gone before "ready", that echo must fail quietly so the EXIT
# trap below still stops the server.
trap '' PIPE
dir="$1"; port="$2"; bin="$3"; as_postgres="$4"; preload="$5"
server() { if [ "$as_postgres" = yes ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! server "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
  echo "initdb failed:"; cat "$dir/initdb.log"; rm -rf "$dir"; exit 1
fi
server "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$dir" -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c max_connections=200 -c max_locks_per_transaction=1024 \
  -c shared_preload_libraries="$preload" >"$dir/server.log" 2>&1 &
pid=$!
trap 'server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
tries=0
# The postmaster writes "ready" as the 8th line of postmaster.pid once it
# accepts connections (PostgreSQL 10+): no pg_isready needed.
until [ "$(sed -n 8p "$dir/data/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; do
  if ! kill -0 $pid 2>/dev/null; then echo "the server did not start:"; cat "$dir/server.log"; exit 1; fi
  tries=$((tries + 1))
  if [ $tries -gt 1200 ]; then echo "the server did not accept connections within 60 s"; exit 1; fi
  sleep 0.05
done
echo ready
cat >/dev/null
"#;

#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb, postgres and pg_ctl in $RLSCTL_PG_BINDIR when set, else on PATH, in `pg_config --bindir` and in /usr/lib/postgresql/*/bin).\nInstall them (Debian/Ubuntu: `apt-get install postgresql`), point RLSCTL_PG_BINDIR at a bin folder, or pass --database-url to use an existing server."
    )]
    NoBinaries,
    #[error("could not start a throwaway PostgreSQL: {0}")]
    Start(String),
    #[error(
        "RLSCTL_PG_BINDIR is {0}, which lacks {1}: it must hold initdb, postgres and pg_ctl (rlsctl does not fall back to another server when it is set)"
    )]
    IncompleteBinDir(String, &'static str),
}

/// A running throwaway server; dropping it stops the server and removes its files.
pub struct EphemeralServer {
    supervisor: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    dir: PathBuf,
    preloads_stat_statements: bool,
}

/// The library audit reads recorded statements from.
pub const STAT_STATEMENTS: &str = "pg_stat_statements";

impl EphemeralServer {
    pub fn start() -> Result<EphemeralServer, EphemeralError> {
        let bin = find_binaries()?;
        let mut last = String::new();
        // A free port can be taken between our probe and the server's bind.
        for _ in 0..3 {
            match Self::start_once(&bin) {
                Ok(server) => return Ok(server),
                Err(EphemeralError::Start(message)) => last = message,
                Err(other) => return Err(other),
            }
        }
        Err(EphemeralError::Start(last))
    }

    fn start_once(bin: &Path) -> Result<EphemeralServer, EphemeralError> {
        let start_error =
            |what: &str, e: std::io::Error| EphemeralError::Start(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("rlsctl-pg-")
            .tempdir()
            .map_err(|e| start_error("creating a temp dir", e))?
            .keep();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| start_error("finding a free port", e))?
            .port();
        let as_root = running_as_root();
        let preload = stat_statements_library(bin).is_some();
        if as_root {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .map_err(|e| start_error("chown of the temp dir", e))?;
            if !status.success() {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(EphemeralError::Start(
                    "running as root needs an OS user `postgres` to own the server (initdb refuses root)".into(),
                ));
            }
        }
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("rlsctl-postgres")
            .arg(&dir)
            .arg(port.to_string())
            .arg(bin)
            .arg(if as_root { "yes" } else { "no" })
            .arg(if preload { STAT_STATEMENTS } else { "" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut supervisor = command
            .spawn()
            .map_err(|e| start_error("starting the supervisor", e))?;
        let stdin = supervisor.stdin.take();
        let mut stdout = BufReader::new(supervisor.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        if first.trim() != "ready" {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            drop(stdin);
            let _ = supervisor.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(EphemeralError::Start(
                format!("{first}{rest}").trim().to_string(),
            ));
        }
        Ok(EphemeralServer {
            supervisor,
            stdin,
            port,
            dir,
            preloads_stat_statements: preload,
        })
    }

    /// Whether the server preloads pg_stat_statements (its library is
    /// installed beside the server's binaries).
    pub fn preloads_stat_statements(&self) -> bool {
        self.preloads_stat_statements
    }

    /// Superuser URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (pg_hba.conf, postgresql.conf).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where the server writes its log (stderr).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Stops the server and waits until its files are gone.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stdin.take().is_some() {
            let _ = self.supervisor.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for EphemeralServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// pg_stat_statements' library in the server's own library folder, if
/// installed: `pg_config --pkglibdir` where the bin folder has pg_config,
/// else the folders a relocatable build or Debian puts beside `bin`
/// (`../lib/postgresql`, `../lib`) — beside the given folder and beside the
/// real `postgres` when the folder only links to it.
pub fn stat_statements_library(bin: &Path) -> Option<PathBuf> {
    let file = format!("{STAT_STATEMENTS}.so");
    let mut folders = Vec::new();
    if let Ok(out) = Command::new(bin.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        && out.status.success()
    {
        folders.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let real_bin = std::fs::canonicalize(bin.join("postgres"))
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    for bin in std::iter::once(bin.to_path_buf()).chain(real_bin) {
        if let Some(prefix) = bin.parent() {
            folders.push(prefix.join("lib").join("postgresql"));
            folders.push(prefix.join("lib"));
        }
    }
    folders
        .into_iter()
        .map(|folder| folder.join(&file))
        .find(|library| library.is_file())
}

/// The programs a throwaway server needs.
const PROGRAMS: [&str; 3] = ["initdb", "postgres", "pg_ctl"];

/// The environment variable that chooses the server binaries.
pub const BINDIR_VARIABLE: &str = "RLSCTL_PG_BINDIR";

/// `$RLSCTL_PG_BINDIR` when set (and then nothing else), else PATH, then
/// `pg_config --bindir`, then Debian's versioned folders (newest first).
pub fn find_binaries() -> Result<PathBuf, EphemeralError> {
    if let Some(dir) = std::env::var_os(BINDIR_VARIABLE).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return match PROGRAMS.iter().find(|b| !dir.join(b).is_file()) {
            Some(missing) => Err(EphemeralError::IncompleteBinDir(
                dir.display().to_string(),
                missing,
            )),
            None => Ok(dir),
        };
    }
    let complete = |dir: &Path| PROGRAMS.iter().all(|b| dir.join(b).is_file());
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|d| std::cmp::Reverse(d.0));
    candidates.extend(debian.into_iter().map(|(_, p)| p));
    candidates
        .into_iter()
        .find(|d| complete(d))
        .ok_or(EphemeralError::NoBinaries)
}
