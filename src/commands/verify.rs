//! `rlsctl verify`: prove, row by row, what each runtime role can reach.

use anyhow::Result;
use sqlx::PgConnection;

use super::load_spec::spec_unless_roles_given;
use super::progress_bar::ProgressBar;
use super::{Exit, color_stdout};
use crate::cli::{Format, VerifyArgs};
use crate::connect::connect;
use crate::spec::TenantSource;
use crate::verify::{Binding, Matrix, Target as VerifyTarget};

pub(super) async fn run(args: &VerifyArgs) -> Result<Exit> {
    let spec = spec_unless_roles_given(&args.config, &args.roles, "verify")?;
    if args.fleet.targets.is_some() {
        if args.runtime_url.is_some() {
            anyhow::bail!(
                "--runtime-url names one database's runtime login; it cannot go with --targets"
            );
        }
        return crate::fleet::run("verify", &args.fleet, args.format == Format::Json).await;
    }
    let (_server, mut conn) = match (&spec, args.ephemeral) {
        (Some(spec), true) => {
            let (server, conn) = super::database::open_applied_ephemeral(spec).await?;
            (Some(server), conn)
        }
        _ => (None, connect(&args.database_url).await?),
    };
    let spec_less = spec.is_none();
    let mut target = if let Some(spec) = spec {
        let mut target = VerifyTarget::from_spec(&spec);
        if !args.roles.is_empty() {
            target.roles = args.roles.clone();
        }
        target
    } else {
        VerifyTarget {
            roles: args.roles.clone(),
            tables: Default::default(),
            only: Vec::new(),
            tenant_column: args.tenant_column.clone(),
            probe_values: Default::default(),
            binding: Binding {
                source: match &args.jwt_claim {
                    Some(claim) => TenantSource::JwtClaim {
                        claims_setting: args.claims_setting.clone(),
                        claim: claim.clone(),
                    },
                    None => TenantSource::Setting(args.setting.clone()),
                },
            },
            when_unbound: args.when_unbound,
            cross_tenant: Vec::new(),
            commands: Default::default(),
            scopes: Default::default(),
            accepted_oracles: Default::default(),
            policies: Vec::new(),
        }
    };
    if spec_less
        && args.jwt_claim.is_none()
        && let Some((column, role)) = tenants_that_are_roles(&mut conn, &target.roles).await?
    {
        eprintln!(
            "verify: the tenant policies compare {column} with the acting role: tenants are roles (as `tenancy.source: current_user` declares)"
        );
        target.tenant_column = column;
        target.binding.source = TenantSource::Role(role);
    }
    target.only = args.tables.clone();
    // Connected before probing, so a wrong runtime URL fails fast.
    let mut runtime = connect_runtime(args.runtime_url.as_deref()).await?;
    let mut matrix = run_verify(&mut conn, &target).await?;
    probe_runtime(&mut conn, runtime.as_mut(), &target, &mut matrix).await?;
    let mut out = super::stdout::stdout();
    match args.format {
        Format::Json => crate::verify::report::write_json(&mut out, &matrix)?,
        Format::Text => crate::verify::report::write_table(&mut out, &matrix, color_stdout())?,
    }
    Ok(verify_exit(&matrix, args.strict))
}

/// The verify run check and migrate-existing share: a progress bar while it
/// runs, its warning on stderr after.
pub(super) async fn run_verify(conn: &mut PgConnection, target: &VerifyTarget) -> Result<Matrix> {
    let mut bar = ProgressBar::new("verify");
    let matrix = crate::verify::verify(conn, target, &mut |done, total, object| {
        bar.show(done, total, object)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::verify::report::write_warning(&mut std::io::stderr().lock(), &matrix)?;
    Ok(matrix)
}

/// The `--runtime-url` connection, if one is given; connect before probing,
/// so a wrong URL fails fast (its password masked in the error).
pub(super) async fn connect_runtime(url: Option<&str>) -> Result<Option<PgConnection>> {
    match url {
        Some(url) => Ok(Some(
            crate::connect::connect_to(url)
                .await
                .map_err(|e| anyhow::anyhow!("--runtime-url: {e}"))?,
        )),
        None => Ok(None),
    }
}

/// Adds the runtime connection's rows to the matrix, when there is one.
pub(super) async fn probe_runtime(
    conn: &mut PgConnection,
    runtime: Option<&mut PgConnection>,
    target: &VerifyTarget,
    matrix: &mut Matrix,
) -> Result<()> {
    if let Some(runtime) = runtime {
        crate::verify::runtime_connection::probe(conn, runtime, target, matrix)
            .await
            .map_err(|e| anyhow::anyhow!("--runtime-url: {e}"))?;
    }
    Ok(())
}

pub(super) fn verify_exit(matrix: &Matrix, strict: bool) -> Exit {
    if matrix.summary.leaks > 0 || (strict && matrix.summary.not_proven > 0) {
        Exit::Attention
    } else {
        Exit::Success
    }
}

/// Without a spec: when every tenant comparison the policies make compares a
/// column with the acting role (`owner = current_user`), the tenants are
/// roles; the column and which role function, or `None`.
async fn tenants_that_are_roles(
    conn: &mut PgConnection,
    roles: &[String],
) -> Result<Option<(String, crate::spec::SessionRole)>> {
    let scope = crate::catalog::Scope {
        function: None,
        roles: roles.to_vec(),
        resolvers: Vec::new(),
    };
    let snapshot = crate::catalog::read(conn, &scope).await?;
    let mut found = None;
    for table in snapshot.state.tables.values() {
        for policy in table.policies.values() {
            let Some(using) = &policy.using else { continue };
            let Some(comparison) = crate::adopt::comparison::anywhere(using.as_str()) else {
                continue;
            };
            match (comparison.role, &found) {
                (None, _) => return Ok(None),
                (Some(role), None) => found = Some((comparison.column, role)),
                (Some(role), Some((column, seen))) => {
                    if *column != comparison.column || *seen != role {
                        return Ok(None);
                    }
                }
            }
        }
    }
    Ok(found)
}
