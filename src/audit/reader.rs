//! The posture read aside: a second connection to the same database reads
//! the posture (roles, views, functions, keys…) while the audit's own
//! connection reads the catalog. At 10,000 tables the two reads cost about
//! the same, and the server runs them side by side.
//!
//! It is used only when it can be trusted to be the same read:
//! - it works in a read-only transaction that it rolls back;
//! - it must have begun its transaction by the time the catalog read is done,
//!   or soon after ([`GRACE`]): behind a pooler with one server connection,
//!   held by the audit's own transaction, it would wait forever, so it is
//!   abandoned;
//! - it must have read the same server and database (a host name that
//!   resolves to a primary and its replicas could send it elsewhere);
//! - any failure, including a refused connection, means the posture is read
//!   on the audit's connection as without it.

use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::catalog::{self, UnnamedPosture};

/// A second connection being opened; `None` once it failed.
pub type Connecting = JoinHandle<Option<PgConnection>>;

/// How long a reader that has not begun its transaction is waited for once
/// the catalog is read. On a small database the catalog read can end before
/// a second connection has authenticated.
const GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// Which server process and database a connection reads.
type Server = (String, String);

const SERVER: &str =
    "SELECT pg_catalog.pg_postmaster_start_time()::text, pg_catalog.current_database()::text";

/// The read running on its own connection; dropping it abandons the read.
pub struct Aside {
    task: JoinHandle<Option<(Server, UnnamedPosture)>>,
    begun: oneshot::Receiver<()>,
}

impl Aside {
    pub fn start(connecting: Connecting, server_version_num: u32) -> Aside {
        let (begun, begun_rx) = oneshot::channel();
        Aside {
            task: tokio::spawn(read(connecting, server_version_num, begun)),
            begun: begun_rx,
        }
    }

    /// The posture read aside, or `None` when `conn` must read it.
    pub async fn take(mut self, conn: &mut PgConnection) -> Option<UnnamedPosture> {
        tokio::time::timeout(GRACE, &mut self.begun)
            .await
            .ok()?
            .ok()?;
        let (server, posture) = (&mut self.task).await.ok()??;
        let here: Server = sqlx::query_as(SERVER).fetch_one(&mut *conn).await.ok()?;
        (server == here).then_some(posture)
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read(
    connecting: Connecting,
    server_version_num: u32,
    begun: oneshot::Sender<()>,
) -> Option<(Server, UnnamedPosture)> {
    let mut reader = connecting.await.ok()??;
    let read = async {
        let mut tx = reader.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await?;
        let _ = begun.send(());
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        let server: Server = sqlx::query_as(SERVER).fetch_one(&mut *tx).await?;
        let posture = catalog::read_posture_unnamed(&mut tx, server_version_num).await?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>((server, posture))
    }
    .await;
    let _ = reader.close().await;
    read.ok()
}
