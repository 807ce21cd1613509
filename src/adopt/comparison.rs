//! The tenant comparison inside a stored policy expression, read from its
//! tree: a column compared with a value that comes from a session setting, a
//! JWT claim or a context function, whatever the column is called.

use std::collections::BTreeSet;

use pg_query::protobuf::{self, Node, node::Node as N};
use serde_json::Value as Json;

use crate::audit::expression_tree::{PolicyExpression, names, scalar_select, sources};
use crate::spec::SessionRole;

/// `column = value`, where `value` carries the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantComparison {
    pub column: String,
    /// The compared value as SQL (the grammar's own deparse).
    pub value: String,
    /// The column was on the right: `value = column`.
    pub reversed: bool,
    /// Settings `value` reads with `current_setting`.
    pub settings: BTreeSet<String>,
    /// Functions without arguments `value` calls, as written (qualified or not).
    pub functions: Vec<Vec<String>>,
    /// `value` is exactly `(SELECT f())`: the context function `f`.
    pub wrapped_function: Option<Vec<String>>,
    /// The claim `value` takes from a JSON document with `->> 'claim'`.
    pub claim: Option<String>,
    /// `value` is the acting role's name (`CURRENT_USER`): tenants are roles.
    pub role: Option<SessionRole>,
}

/// The expression as a whole is one tenant comparison.
pub fn whole(expression: &str) -> Option<TenantComparison> {
    let parsed = PolicyExpression::parse(expression)?;
    comparison(&parsed, parsed.root())
}

/// Some comparison anywhere in the expression compares a column with the
/// tenant (under AND, OR, NOT…): the table is tenant data even when the
/// policy is not in a shape the spec can declare.
pub fn anywhere(expression: &str) -> Option<TenantComparison> {
    let parsed = PolicyExpression::parse(expression)?;
    let mut found = None;
    walk(parsed.root(), &mut |node| {
        if found.is_none() {
            found = comparison(&parsed, node);
        }
    });
    found
}

fn walk(node: &Node, visit: &mut dyn FnMut(&Node)) {
    visit(node);
    match &node.node {
        Some(N::BoolExpr(b)) => b.args.iter().for_each(|a| walk(a, visit)),
        Some(N::AExpr(e)) => {
            for side in [&e.lexpr, &e.rexpr].into_iter().flatten() {
                walk(side, visit);
            }
        }
        _ => {}
    }
}

fn comparison(parsed: &PolicyExpression, node: &Node) -> Option<TenantComparison> {
    let Some(N::AExpr(e)) = &node.node else {
        return None;
    };
    if e.kind != protobuf::AExprKind::AexprOp as i32 || names(&e.name) != ["="] {
        return None;
    }
    let (left, right) = (e.lexpr.as_deref()?, e.rexpr.as_deref()?);
    for (reversed, column_side, value) in [(false, left, right), (true, right, left)] {
        let Some(column) = column_of(column_side) else {
            continue;
        };
        let json = serde_json::to_value(value).unwrap_or(Json::Null);
        if contains_key(&json, "ColumnRef") {
            continue;
        }
        let role = role_function(value);
        let (settings, functions) = sources(value);
        if role.is_none() && settings.is_empty() && functions.is_empty() {
            continue;
        }
        return Some(TenantComparison {
            column,
            value: parsed.text(value),
            reversed,
            settings,
            functions,
            wrapped_function: wrapped_function(value),
            claim: claim(&json),
            role,
        });
    }
    None
}

/// `org_id`, `t.org_id`, or either cast (`(org_id)::text`).
fn column_of(node: &Node) -> Option<String> {
    match &node.node {
        Some(N::ColumnRef(c)) => names(&c.fields).last().cloned(),
        Some(N::TypeCast(c)) => column_of(c.arg.as_deref()?),
        _ => None,
    }
}

/// `CURRENT_USER`, `CURRENT_ROLE`, `SESSION_USER` or `USER`, cast or not:
/// the grammar reads them as SQL value functions (or, from PostgreSQL 16's
/// grammar on, as calls of the `pg_catalog` function of that name).
fn role_function(node: &Node) -> Option<SessionRole> {
    use protobuf::SqlValueFunctionOp as Op;
    match &node.node {
        Some(N::TypeCast(c)) => role_function(c.arg.as_deref()?),
        Some(N::SqlvalueFunction(f)) => match Op::try_from(f.op).ok()? {
            Op::SvfopCurrentUser | Op::SvfopCurrentRole | Op::SvfopUser => {
                Some(SessionRole::CurrentUser)
            }
            Op::SvfopSessionUser => Some(SessionRole::SessionUser),
            _ => None,
        },
        Some(N::FuncCall(call)) if call.args.is_empty() => match names(&call.funcname).as_slice() {
            [schema, name] if schema == "pg_catalog" => match name.as_str() {
                "current_user" | "current_role" | "user" => Some(SessionRole::CurrentUser),
                "session_user" => Some(SessionRole::SessionUser),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// `(SELECT f())` with nothing else in the sub-select.
fn wrapped_function(node: &Node) -> Option<Vec<String>> {
    let Some(N::SubLink(link)) = &node.node else {
        return None;
    };
    let Some(N::SelectStmt(select)) = link.subselect.as_deref()?.node.as_ref() else {
        return None;
    };
    match &scalar_select(select)?.node {
        Some(N::FuncCall(call)) if call.args.is_empty() => Some(names(&call.funcname)),
        _ => None,
    }
}

/// The string constant on the right of a `->>` operator.
pub(super) fn claim(json: &Json) -> Option<String> {
    match json {
        Json::Object(map) => {
            if let Some(e) = map.get("AExpr") {
                let operator = e.pointer("/name/0/node/String/sval").and_then(Json::as_str);
                let constant = e
                    .pointer("/rexpr/node/AConst/val/Sval/sval")
                    .or_else(|| e.pointer("/rexpr/node/TypeCast/arg/node/AConst/val/Sval/sval"))
                    .and_then(Json::as_str);
                if let (Some("->>"), Some(claim)) = (operator, constant) {
                    return Some(claim.to_string());
                }
            }
            map.values().find_map(claim)
        }
        Json::Array(items) => items.iter().find_map(claim),
        _ => None,
    }
}

fn contains_key(json: &Json, key: &str) -> bool {
    match json {
        Json::Object(map) => map.contains_key(key) || map.values().any(|v| contains_key(v, key)),
        Json::Array(items) => items.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_compared_with_a_cast_setting_is_a_tenant_comparison_whatever_its_name() {
        let c = whole("(org_id = (current_setting('app.org'::text, true))::uuid)").unwrap();
        assert_eq!(c.column, "org_id");
        assert!(!c.reversed);
        assert_eq!(c.settings, BTreeSet::from(["app.org".to_string()]));
        assert_eq!(c.wrapped_function, None);
        assert!(c.value.contains("current_setting('app.org'"), "{}", c.value);

        let c = whole("(current_setting('app.org'::text, true) = (account_id)::text)").unwrap();
        assert_eq!(c.column, "account_id");
        assert!(c.reversed);
    }

    #[test]
    fn a_jwt_claim_and_a_wrapped_context_function_are_recognised() {
        let c = whole(
            "(school_id = (((current_setting('request.jwt.claims'::text, true))::jsonb ->> 'tenant_id'::text))::uuid)",
        )
        .unwrap();
        assert_eq!(c.column, "school_id");
        assert_eq!(c.claim.as_deref(), Some("tenant_id"));
        assert_eq!(
            c.settings,
            BTreeSet::from(["request.jwt.claims".to_string()])
        );

        let c = whole("(tenant_id = ( SELECT app.current_org() AS current_org))").unwrap();
        assert_eq!(
            c.wrapped_function,
            Some(vec!["app".to_string(), "current_org".to_string()])
        );
        let c = whole("(tenant_id = app.current_org())").unwrap();
        assert_eq!(c.wrapped_function, None);
        assert_eq!(
            c.functions,
            vec![vec!["app".to_string(), "current_org".to_string()]]
        );
    }

    #[test]
    fn comparisons_of_columns_with_columns_or_constants_are_not_tenant_comparisons() {
        for text in [
            "(owner_id = other_id)",
            "(status = 'open'::text)",
            "true",
            "NOT archived",
        ] {
            assert_eq!(whole(text), None, "{text}");
            assert_eq!(anywhere(text), None, "{text}");
        }
    }

    #[test]
    fn a_column_compared_with_the_acting_role_is_a_comparison_with_tenants_that_are_roles() {
        let c = whole("(owner = CURRENT_USER)").unwrap();
        assert_eq!(
            (c.column.as_str(), c.role),
            ("owner", Some(SessionRole::CurrentUser))
        );
        let c = whole("(SESSION_USER = (owner)::text)").unwrap();
        assert_eq!(
            (c.column.as_str(), c.role),
            ("owner", Some(SessionRole::SessionUser))
        );
        assert_eq!(whole("(owner = CURRENT_DATE)"), None);
    }

    #[test]
    fn a_tenant_comparison_inside_a_larger_expression_is_found_but_is_not_whole() {
        let text = "((org_id = (current_setting('app.org'::text, true))::uuid) AND (NOT archived))";
        assert_eq!(whole(text), None);
        assert_eq!(anywhere(text).unwrap().column, "org_id");
    }
}
