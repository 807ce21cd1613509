//! Tenant resolvers: webhooks and API keys arrive without a tenant — the
//! worker holds a provider session id or a key. A resolver is a narrow
//! SECURITY DEFINER function, declared in the spec, that looks the value up in
//! one table and returns its one tenant, or NULL (unknown, or ambiguous):
//!
//! ```sql
//! CREATE OR REPLACE FUNCTION rls.tenant_for_session(text) RETURNS uuid
//!   LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS '
//! SELECT (pg_catalog.array_agg(DISTINCT x."tenant_id"))[1] FROM "public"."sessions" x
//!  WHERE x."provider_session_id" = $1 HAVING pg_catalog.count(DISTINCT x."tenant_id") = 1';
//! REVOKE ALL ON FUNCTION rls.tenant_for_session(text) FROM PUBLIC;
//! GRANT EXECUTE ON FUNCTION rls.tenant_for_session(text) TO webhook_worker;
//! ```
//!
//! It is owned by the admin that applies it, runs with a pinned search_path
//! (no hijack through a schema the caller can write), and only the named roles
//! may execute it. Drift in any of that is a change `plan` shows and `audit`
//! reports.

use std::collections::BTreeSet;

use crate::model::Volatility;
use crate::quote::{QualifiedName, ident};
use crate::spec::ResolverSpec;

/// `proconfig` of a resolver: the search_path it runs with.
pub const SEARCH_PATH: &str = "search_path=pg_catalog, pg_temp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    pub name: QualifiedName,
    /// The argument's type as `format_type` prints it.
    pub arg_type: String,
    pub returns: String,
    pub language: String,
    pub volatility: Volatility,
    pub security_definer: bool,
    /// `pg_proc.proconfig`.
    pub config: Vec<String>,
    pub body: String,
    /// Roles that may EXECUTE it besides its owner; `PUBLIC` by name.
    pub executors: BTreeSet<String>,
}

impl Resolver {
    /// The desired function for a declared resolver.
    pub fn from_spec(spec: &ResolverSpec, returns: &str) -> Resolver {
        let tenant = ident(&spec.tenant_column);
        let body = format!(
            "\nSELECT (pg_catalog.array_agg(DISTINCT x.{tenant}))[1] FROM {} x\n WHERE x.{} = $1 HAVING pg_catalog.count(DISTINCT x.{tenant}) = 1\n",
            spec.table.quoted(),
            ident(&spec.key),
        );
        Resolver {
            name: spec.name.clone(),
            arg_type: spec.key_type.sql_name().to_string(),
            returns: returns.to_string(),
            language: "sql".into(),
            volatility: Volatility::Stable,
            security_definer: true,
            config: vec![SEARCH_PATH.to_string()],
            body,
            executors: spec.roles.iter().cloned().collect(),
        }
    }

    /// Same signature: CREATE OR REPLACE can turn one into the other.
    pub fn same_signature(&self, other: &Resolver) -> bool {
        self.arg_type == other.arg_type && self.returns == other.returns
    }

    pub fn same_definition(&self, other: &Resolver) -> bool {
        self.same_signature(other)
            && self.language == other.language
            && self.volatility == other.volatility
            && self.security_definer == other.security_definer
            && self.config == other.config
            && self.body == other.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TenantType;

    fn spec() -> ResolverSpec {
        ResolverSpec {
            name: QualifiedName::new("rls", "tenant_for_session"),
            table: QualifiedName::new("public", "wa\"sessions"),
            key: "provider_session_id".into(),
            key_type: TenantType::Text,
            tenant_column: "tenant_id".into(),
            roles: vec!["worker".into()],
            origin: crate::spec::Origin {
                file: "spec.yaml".into(),
                line: 1,
                column: 1,
                source_line: "".into(),
            },
        }
    }

    #[test]
    fn the_body_quotes_every_name_and_returns_one_tenant_or_none() {
        let r = Resolver::from_spec(&spec(), "uuid");
        assert!(
            r.body.contains(r#"FROM "public"."wa""sessions" x"#),
            "{}",
            r.body
        );
        assert!(r.body.contains(r#"WHERE x."provider_session_id" = $1"#));
        assert!(
            r.body
                .contains("HAVING pg_catalog.count(DISTINCT x.\"tenant_id\") = 1")
        );
        assert!(r.security_definer);
        assert_eq!(r.config, vec![SEARCH_PATH.to_string()]);
    }

    #[test]
    fn a_search_path_or_security_change_is_a_different_definition() {
        let wanted = Resolver::from_spec(&spec(), "uuid");
        let mut live = wanted.clone();
        assert!(wanted.same_definition(&live));
        live.config.clear();
        assert!(!wanted.same_definition(&live));
        let mut invoker = wanted.clone();
        invoker.security_definer = false;
        assert!(!wanted.same_definition(&invoker));
    }
}
