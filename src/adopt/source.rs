//! Where the tenant comes from: the setting (or JWT claim) the tenant
//! comparison reads, directly or through the functions it calls, and whether
//! the policies call a context function the spec can adopt.

use std::collections::{BTreeMap, BTreeSet};

use super::Context;
use super::comparison::{TenantComparison, claim};
use crate::audit::expression_tree::sources;
use crate::quote::QualifiedName;
use crate::spec::TenantSource;

/// A function the tenant comparison calls, as the catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionBody {
    pub name: QualifiedName,
    /// `pg_proc.prosrc`.
    pub body: String,
}

pub(super) fn discover(
    comparison: &TenantComparison,
    functions: &BTreeMap<Vec<String>, FunctionBody>,
    made_by_rlsctl: bool,
    todos: &mut Vec<String>,
) -> (Context, Option<TenantSource>) {
    // Tenants that are roles: no function, no setting.
    if let Some(role) = comparison.role {
        return (
            Context::Inline(comparison.value.clone()),
            Some(TenantSource::Role(role)),
        );
    }
    let context = match &comparison.wrapped_function {
        Some(called) => match functions.get(called) {
            Some(f) if made_by_rlsctl => Context::Generated {
                name: f.name.clone(),
                // The raising form's message, as `desired` writes it.
                error: f.body.contains("rlsctl: no tenant is bound"),
            },
            Some(f) => Context::Function(f.name.clone()),
            None => {
                todos.push(format!(
                    "the tenant policies call {}(), which was not found as a function without arguments: written inline instead",
                    called.join(".")
                ));
                Context::Inline(comparison.value.clone())
            }
        },
        None => Context::Inline(comparison.value.clone()),
    };
    let mut settings = comparison.settings.clone();
    let mut claims: BTreeSet<String> = comparison.claim.iter().cloned().collect();
    for called in &comparison.functions {
        if let Some(f) = functions.get(called) {
            let (s, c) = read_by(&f.body);
            settings.extend(s);
            claims.extend(c);
        }
    }
    let source = match (settings.len(), claims.len()) {
        (1, 1) => Some(TenantSource::JwtClaim {
            claims_setting: settings.pop_first().unwrap_or_default(),
            claim: claims.pop_first().unwrap_or_default(),
        }),
        (1, 0) => Some(TenantSource::Setting(
            settings.pop_first().unwrap_or_default(),
        )),
        _ => None,
    }
    .filter(|source| match source {
        // Only dotted names are settings an application may define.
        TenantSource::Setting(s)
        | TenantSource::JwtClaim {
            claims_setting: s, ..
        } => s.contains('.'),
        TenantSource::Role(_) => true,
    });
    if source.is_none() {
        todos.push(format!(
            "could not tell which setting carries the tenant (read: {}): `source:` is left at its default; set it to the setting your application binds, which verify binds too",
            if settings.is_empty() {
                "none".to_string()
            } else {
                settings.into_iter().collect::<Vec<_>>().join(", ")
            }
        ));
    }
    (context, source)
}

/// The settings and JWT claims a function body reads: parsed as SQL where
/// it is SQL, else (PL/pgSQL) found by the `current_setting('…'` calls and
/// `->> '…'` lookups it spells out.
fn read_by(body: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut settings = BTreeSet::new();
    let mut claims = BTreeSet::new();
    if let Ok(parsed) = pg_query::parse(body, 0) {
        for statement in &parsed.protobuf.stmts {
            let Some(node) = statement.stmt.as_deref() else {
                continue;
            };
            settings.extend(sources(node).0);
            let json = serde_json::to_value(node).unwrap_or_default();
            claims.extend(claim(&json));
        }
        return (settings, claims);
    }
    settings.extend(quoted_after(body, "current_setting('"));
    claims.extend(quoted_after(body, "->> '"));
    claims.extend(quoted_after(body, "->>'"));
    (settings, claims)
}

/// The text up to the closing quote after each `opening`.
fn quoted_after(body: &str, opening: &str) -> Vec<String> {
    body.match_indices(opening)
        .filter_map(|(at, _)| {
            let rest = &body[at + opening.len()..];
            rest.find('\'').map(|end| rest[..end].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_body_tells_the_setting_in_sql_and_in_plpgsql() {
        let (settings, claims) =
            read_by("SELECT nullif(pg_catalog.current_setting('app.org', true), '')::uuid");
        assert_eq!(settings, BTreeSet::from(["app.org".to_string()]));
        assert!(claims.is_empty());
        let (settings, claims) = read_by(
            "\nBEGIN\n  RETURN (current_setting('request.jwt.claims', true)::jsonb ->> 'school_id')::uuid;\nEND\n",
        );
        assert_eq!(settings, BTreeSet::from(["request.jwt.claims".to_string()]));
        assert_eq!(claims, BTreeSet::from(["school_id".to_string()]));
    }
}
