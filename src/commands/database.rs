//! Opening the database the flags name, and the apply settings they give.

use anyhow::Result;
use sqlx::PgConnection;

use crate::apply::Settings;
use crate::cli::{DatabaseArgs, database_url};
use crate::connect::{connect_to, redact};
use crate::ephemeral::EphemeralServer;

/// A connection to the database the flags name (or to a throwaway server
/// that lives as long as the returned handle), and the URL to show.
pub(super) async fn open_database(
    args: &DatabaseArgs,
) -> Result<(Option<EphemeralServer>, String, PgConnection)> {
    let server = if args.ephemeral {
        eprintln!("starting a throwaway PostgreSQL…");
        Some(EphemeralServer::start()?)
    } else {
        None
    };
    let url = match (&server, database_url(&args.database_url)) {
        (Some(server), _) => server.url(),
        (None, Some(url)) => url,
        (None, None) => anyhow::bail!(
            "no database to connect to: pass --database-url, set RLSCTL_ADMIN_DATABASE_URL or DATABASE_URL, or use --ephemeral"
        ),
    };
    let conn = connect_to(&url).await?;
    Ok((server, redact(&url), conn))
}

pub(super) fn apply_settings(args: &DatabaseArgs) -> Settings {
    let (migrations_dir, migrations_required) = args.migrations_dir();
    Settings {
        migrations_dir,
        migrations_required,
        prune: args.prune,
        allow_empty: args.allow_empty,
        allow_rls_filtered_migrations: args.allow_rls_filtered_migrations,
        lock_timeout: args.lock_timeout.clone(),
        rotate_passwords: args.rotate_passwords,
    }
}

/// `audit --ephemeral`, `verify --ephemeral`: a throwaway server with the
/// migrations (`./migrations`, if any) and `spec` applied, so they judge what
/// the repository builds. The server lives as long as the returned handle.
pub(super) async fn open_applied_ephemeral(
    spec: &crate::spec::Spec,
) -> Result<(EphemeralServer, PgConnection)> {
    eprintln!("starting a throwaway PostgreSQL…");
    let server = EphemeralServer::start()?;
    let mut conn = connect_to(&server.url()).await?;
    let settings = Settings {
        migrations_dir: "migrations".into(),
        migrations_required: false,
        prune: false,
        allow_empty: false,
        allow_rls_filtered_migrations: false,
        lock_timeout: "5s".into(),
        rotate_passwords: false,
    };
    let mut bar = super::progress_bar::ProgressBar::new("apply");
    crate::apply::apply(&mut conn, spec, &settings, &mut |event| bar.report(event))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((server, conn))
}
