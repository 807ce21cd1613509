//! A fingerprint of the catalog state isolation rests on: two reports with the
//! same fingerprint describe the same tables, policies, grants, functions and
//! roles. It is the sha256 of sorted lines, so it does not depend on the
//! order the server returns them in.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

#[derive(Debug, Clone, Serialize)]
pub struct Fingerprint {
    pub sha256: String,
    /// How many catalog entries it covers.
    pub entries: usize,
}

/// Relations (kind, RLS flags, owner, grants), policies, functions in user
/// schemas (security, volatility, owner, settings, body hash), schemas' owners
/// and grants, and the given roles' attributes and memberships. rlsctl's own
/// bookkeeping schema is left out: its history grows with every apply.
const QUERY: &str = r#"
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'rlsctl')
       AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
)
SELECT 'schema ' || n.nspname || ' owner=' || pg_get_userbyid(s.nspowner)
       || ' acl=' || coalesce(s.nspacl::text, '')
  FROM user_ns n JOIN pg_namespace s ON s.oid = n.oid
UNION ALL
SELECT 'relation ' || n.nspname || '.' || c.relname || ' kind=' || c.relkind::text
       || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
       || ' owner=' || pg_get_userbyid(c.relowner) || ' acl=' || coalesce(c.relacl::text, '')
       || ' options=' || coalesce(c.reloptions::text, '')
  FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'policy ' || n.nspname || '.' || c.relname || ' ' || p.polname
       || ' cmd=' || p.polcmd::text || ' permissive=' || p.polpermissive
       || ' roles=' || array_to_string(ARRAY(SELECT CASE r WHEN 0 THEN 'public' ELSE pg_get_userbyid(r) END
                                              FROM unnest(p.polroles) r ORDER BY 1), ',')
       || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
       || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN user_ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'function ' || n.nspname || '.' || f.proname || '(' || pg_get_function_identity_arguments(f.oid) || ')'
       || ' definer=' || f.prosecdef || ' leakproof=' || f.proleakproof || ' volatile=' || f.provolatile::text
       || ' owner=' || pg_get_userbyid(f.proowner) || ' acl=' || coalesce(f.proacl::text, '')
       || ' config=' || coalesce(f.proconfig::text, '') || ' body=' || md5(coalesce(f.prosrc, ''))
  FROM pg_proc f JOIN user_ns n ON n.oid = f.pronamespace
UNION ALL
SELECT 'role ' || r.rolname || ' login=' || r.rolcanlogin || ' super=' || r.rolsuper
       || ' bypassrls=' || r.rolbypassrls || ' member_of='
       || array_to_string(ARRAY(SELECT pg_get_userbyid(m.roleid) FROM pg_auth_members m
                                 WHERE m.member = r.oid ORDER BY 1), ',')
  FROM pg_roles r WHERE r.rolname = ANY($1)
"#;

pub async fn read(conn: &mut PgConnection, roles: &[String]) -> Result<Fingerprint, sqlx::Error> {
    let mut lines: Vec<String> = sqlx::query_scalar(QUERY)
        .bind(roles)
        .fetch_all(&mut *conn)
        .await?;
    Ok(of_lines(&mut lines))
}

fn of_lines(lines: &mut [String]) -> Fingerprint {
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines.iter() {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    Fingerprint {
        sha256: hex::encode(hasher.finalize()),
        entries: lines.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_lines_arrive_in_does_not_change_the_fingerprint() {
        let mut a = vec!["policy b".to_string(), "relation a".to_string()];
        let mut b = vec!["relation a".to_string(), "policy b".to_string()];
        assert_eq!(of_lines(&mut a).sha256, of_lines(&mut b).sha256);
        let mut c = vec!["relation a".to_string(), "policy c".to_string()];
        assert_ne!(of_lines(&mut a).sha256, of_lines(&mut c).sha256);
    }
}
