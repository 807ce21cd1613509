//! Which server and database a report describes.

use serde::Serialize;
use sqlx::PgConnection;

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub version: String,
    pub database: String,
    pub connected_as: String,
    /// Address and port the server answered on (absent over a Unix socket).
    pub address: Option<String>,
    /// The cluster's system identifier (pg_control_system), when readable:
    /// it tells this cluster from a copy restored elsewhere.
    pub system_identifier: Option<String>,
}

impl Server {
    pub fn describe(&self) -> String {
        let mut text = format!("PostgreSQL {}", self.version);
        if let Some(address) = &self.address {
            text.push_str(&format!(" at {address}"));
        }
        if let Some(id) = &self.system_identifier {
            text.push_str(&format!(", system identifier {id}"));
        }
        text
    }
}

pub async fn read(conn: &mut PgConnection) -> Result<Server, sqlx::Error> {
    let (version, database, connected_as, address, may_read_control): (
        String,
        String,
        String,
        Option<String>,
        bool,
    ) = sqlx::query_as(
        "SELECT current_setting('server_version'), current_database(), current_user::text,
                host(inet_server_addr()) || ':' || inet_server_port(),
                has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let system_identifier = if may_read_control {
        sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
            .fetch_optional(&mut *conn)
            .await?
    } else {
        None
    };
    Ok(Server {
        version,
        database,
        connected_as,
        address,
        system_identifier,
    })
}
