//! A real streaming replica of the test process's throwaway primary
//! (pg_basebackup -R, then a hot standby), started once, on first use, for
//! the tests that prove read-only commands work where nothing can be written.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use sqlx::{Connection, PgConnection};

const SUPERVISOR: &str = r#"
set -u
trap '' PIPE
dir="$1"; port="$2"; bin="$3"; as_postgres="$4"; primary="$5"; basebackup="$6"
server() { if [ "$as_postgres" = yes ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! server "$basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$dir/data" -R -X stream --checkpoint=fast --no-sync >"$dir/basebackup.log" 2>&1; then
  echo "pg_basebackup failed:"; cat "$dir/basebackup.log"; rm -rf "$dir"; exit 1
fi
server "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$dir" -c hot_standby=on -c fsync=off \
  -c max_connections=200 -c max_locks_per_transaction=1024 \
  >"$dir/server.log" 2>&1 &
pid=$!
trap 'server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
tries=0
# A hot standby that accepts connections says "ready" (or, on some majors,
# "standby") in postmaster.pid.
until status="$(sed -n 8p "$dir/data/postmaster.pid" 2>/dev/null | tr -d ' ')"; [ "$status" = ready ] || [ "$status" = standby ]; do
  if ! kill -0 $pid 2>/dev/null; then echo "the standby did not start:"; cat "$dir/server.log"; exit 1; fi
  tries=$((tries + 1))
  if [ $tries -gt 1200 ]; then echo "the standby did not accept connections within 60 s"; exit 1; fi
  sleep 0.05
done
echo ready
cat >/dev/null
"#;

/// The running standby; its supervisor stops it when the test process ends.
pub struct Replica {
    port: u16,
    _supervisor: Child,
    _stdin: ChildStdin,
}

static REPLICA: OnceLock<Option<Replica>> = OnceLock::new();

/// The standby, or None (said on stderr) when the server binaries in use
/// carry no pg_basebackup (the registry packages of other majors do not).
pub fn replica() -> Option<&'static Replica> {
    REPLICA.get_or_init(start).as_ref()
}

fn start() -> Option<Replica> {
    let primary = crate::harness::server();
    let bin = rlsctl::ephemeral::find_binaries().expect("server binaries");
    // The bin folder may hold links to the real installation (a
    // /usr/local/bin with initdb, postgres and pg_ctl only): its
    // pg_basebackup sits beside the real postgres.
    let beside_postgres = std::fs::canonicalize(bin.join("postgres"))
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("pg_basebackup")));
    let Some(basebackup) = [Some(bin.join("pg_basebackup")), beside_postgres]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
    else {
        eprintln!(
            "skipped: the hot-standby tests need pg_basebackup, and {} has none",
            bin.display()
        );
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("rlsctl-replica-")
        .tempdir()
        .unwrap()
        .keep();
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if as_root {
        assert!(
            Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .unwrap()
                .success()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("rlsctl-replica")
        .arg(&dir)
        .arg(port.to_string())
        .arg(&bin)
        .arg(if as_root { "yes" } else { "no" })
        .arg(primary.port().to_string())
        .arg(&basebackup)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the replica supervisor");
    let stdin = supervisor.stdin.take().unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(supervisor.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    if first.trim() != "ready" {
        let rest: Vec<String> = stdout.lines().map_while(Result::ok).collect();
        panic!("{first}{}", rest.join("\n"));
    }
    Some(Replica {
        port,
        _supervisor: supervisor,
        _stdin: stdin,
    })
}

impl Replica {
    /// The URL of `database` on the standby.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Waits until the standby has replayed everything the primary wrote so far.
    pub async fn catch_up(&self, primary_url: &str) {
        let mut primary = PgConnection::connect(primary_url).await.unwrap();
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .unwrap();
        let mut standby = PgConnection::connect(&self.url_for("postgres"))
            .await
            .unwrap();
        for _ in 0..1200 {
            let done: bool =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&lsn)
                    .fetch_one(&mut standby)
                    .await
                    .unwrap();
            if done {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the standby did not replay up to {lsn} within 60 s");
    }
}
