//! Changes → the statements that make them, in the order they must run.

use serde::Serialize;

use std::collections::BTreeSet;

use crate::diff::Change;
use crate::grants::{GrantKind, GrantTarget, ObjectPrivilege};
use crate::model::{ContextFunction, MANAGED_MARKER, Policy, Privilege, Role, RoleAttribute};
use crate::quote::{QualifiedName, Sql};
use crate::scram;
use crate::spec::Command;

/// One statement of a plan, with what it is about.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: Sql,
    pub kind: &'static str,
    pub object: String,
    /// Runs after the transaction commits (CREATE/DROP INDEX CONCURRENTLY).
    pub outside_transaction: bool,
    /// A CREATE ROLE: the role as the spec wants it. Roles are cluster-wide,
    /// so an apply to another database may create it at the same moment.
    pub creates_role: Option<Role>,
}

/// How `CREATE ROLE … PASSWORD` and `ALTER ROLE … PASSWORD` get their value
/// (a SCRAM verifier of it).
pub enum Passwords {
    /// Read the environment variable the spec names; missing is an error.
    FromEnvironment,
    /// Show a mask instead (plan, sql): the statement is for reading only.
    Masked,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "role {role}: its password comes from the environment variable {variable}, which is not set (nothing was applied)"
    )]
    Missing { role: String, variable: String },
    #[error("role {role}: {source} (nothing was applied)")]
    NoRandomness {
        role: String,
        source: crate::scram::NoRandomness,
    },
}

/// The JSON shape of a planned statement.
#[derive(Debug, Clone, Serialize)]
pub struct StatementView {
    pub kind: &'static str,
    pub object: String,
    pub sql: String,
    pub outside_transaction: bool,
}

impl Statement {
    pub fn view(&self) -> StatementView {
        StatementView {
            kind: self.kind,
            object: self.object.clone(),
            sql: self.sql.shown().to_string(),
            outside_transaction: self.outside_transaction,
        }
    }
}

pub fn render(changes: &[Change], passwords: &Passwords) -> Result<Vec<Statement>, PasswordError> {
    let mut out = Vec::new();
    for change in changes {
        for sql in render_change(change, passwords)? {
            out.push(Statement {
                sql,
                kind: change.kind(),
                object: change.object(),
                outside_transaction: change.outside_transaction(),
                creates_role: match change {
                    Change::CreateRole { role } => Some(role.clone()),
                    _ => None,
                },
            });
        }
    }
    out.sort_by_key(|s| s.outside_transaction); // stable: keeps the order within each part
    Ok(out)
}

fn render_change(change: &Change, passwords: &Passwords) -> Result<Vec<Sql>, PasswordError> {
    Ok(match change {
        Change::CreateSchema { schema } => {
            vec![Sql::new("CREATE SCHEMA IF NOT EXISTS ").ident(schema)]
        }
        Change::CreateRole { role } => {
            let sql = role_attributes(
                Sql::new("CREATE ROLE ").ident(&role.name),
                &role.attributes(),
            );
            vec![with_password(sql, role, passwords)?]
        }
        Change::AlterRole { name, attributes } => vec![alter_role(name, attributes)],
        Change::SetPassword { role, .. } => vec![with_password(
            Sql::new("ALTER ROLE ").ident(&role.name),
            role,
            passwords,
        )?],
        Change::ReplaceFunction { function } => vec![create_function(function)],
        Change::GrantExecute { function, role } => vec![grantee(
            Sql::new("GRANT EXECUTE ON FUNCTION ")
                .qname(function)
                .push("() TO "),
            role,
        )],
        Change::RevokeExecute { function, role } => vec![grantee(
            Sql::new("REVOKE EXECUTE ON FUNCTION ")
                .qname(function)
                .push("() FROM "),
            role,
        )],
        Change::GrantSchemaUsage { schema, role } => {
            vec![grantee(
                Sql::new("GRANT USAGE ON SCHEMA ")
                    .ident(schema)
                    .push(" TO "),
                role,
            )]
        }
        Change::EnableRls { table } => vec![
            Sql::new("ALTER TABLE ")
                .qname(table)
                .push(" ENABLE ROW LEVEL SECURITY"),
        ],
        Change::ForceRls { table } => vec![
            Sql::new("ALTER TABLE ")
                .qname(table)
                .push(" FORCE ROW LEVEL SECURITY"),
        ],
        Change::DropPolicy { table, name } => {
            vec![
                Sql::new("DROP POLICY ")
                    .ident(name)
                    .push(" ON ")
                    .qname(table),
            ]
        }
        Change::AlterPolicy { table, policy } => {
            let sql = Sql::new("ALTER POLICY ")
                .ident(&policy.name)
                .push(" ON ")
                .qname(table);
            vec![policy_clauses(roles(sql.push(" TO "), policy), policy)]
        }
        Change::CreatePolicy { table, policy } => {
            let kind = if policy.permissive {
                " AS PERMISSIVE FOR "
            } else {
                " AS RESTRICTIVE FOR "
            };
            let sql = Sql::new("CREATE POLICY ")
                .ident(&policy.name)
                .push(" ON ")
                .qname(table)
                .push(kind)
                .push(command_keyword(policy.command))
                .push(" TO ");
            vec![
                policy_clauses(roles(sql, policy), policy),
                Sql::new("COMMENT ON POLICY ")
                    .ident(&policy.name)
                    .push(" ON ")
                    .qname(table)
                    .push(" IS ")
                    .literal(MANAGED_MARKER),
            ]
        }
        Change::GrantTable {
            table,
            role,
            privileges,
        } => vec![grantee(
            privilege_list(Sql::new("GRANT "), privileges)
                .push(" ON TABLE ")
                .qname(table)
                .push(" TO "),
            role,
        )],
        Change::RevokeTable {
            table,
            role,
            privileges,
        } => vec![grantee(
            privilege_list(Sql::new("REVOKE "), privileges)
                .push(" ON TABLE ")
                .qname(table)
                .push(" FROM "),
            role,
        )],
        Change::GrantObject {
            target,
            argument_types,
            role,
            privileges,
        } => vec![grantee(
            object_name(
                object_privileges(Sql::new("GRANT "), privileges).push(target.kind.on_clause()),
                target,
                argument_types,
            )
            .push(" TO "),
            role,
        )],
        Change::RevokeObject {
            target,
            argument_types,
            role,
            privileges,
            grant_option,
        } => {
            let revoke = if *grant_option {
                Sql::new("REVOKE GRANT OPTION FOR ")
            } else {
                Sql::new("REVOKE ")
            };
            // CASCADE: what the role granted on from these goes with them
            // (without it the REVOKE fails while such grants exist).
            vec![
                grantee(
                    object_name(
                        object_privileges(revoke, privileges).push(target.kind.on_clause()),
                        target,
                        argument_types,
                    )
                    .push(" FROM "),
                    role,
                )
                .push(" CASCADE"),
            ]
        }
        Change::GrantSequenceUsage { sequence, role } => vec![grantee(
            Sql::new("GRANT USAGE ON SEQUENCE ")
                .qname(sequence)
                .push(" TO "),
            role,
        )],
        Change::ReplaceResolver {
            resolver,
            drop_first,
        } => {
            let mut statements = Vec::new();
            if let Some(arg_type) = drop_first {
                statements.push(
                    Sql::new("DROP FUNCTION ")
                        .qname(&resolver.name)
                        .push("(")
                        .push(type_keyword(arg_type))
                        .push(")"),
                );
            }
            statements.push(
                Sql::new("CREATE OR REPLACE FUNCTION ")
                    .qname(&resolver.name)
                    .push("(")
                    .push(type_keyword(&resolver.arg_type))
                    .push(") RETURNS ")
                    .push(type_keyword(&resolver.returns))
                    .push(" LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ")
                    .literal(&resolver.body),
            );
            statements
        }
        Change::GrantResolverExecute {
            function,
            arg_type,
            role,
        } => vec![grantee(
            Sql::new("GRANT EXECUTE ON FUNCTION ")
                .qname(function)
                .push("(")
                .push(type_keyword(arg_type))
                .push(") TO "),
            role,
        )],
        Change::RevokeResolverExecute {
            function,
            arg_type,
            role,
        } => vec![grantee(
            Sql::new("REVOKE EXECUTE ON FUNCTION ")
                .qname(function)
                .push("(")
                .push(type_keyword(arg_type))
                .push(") FROM "),
            role,
        )],
        Change::SetTenantDefault {
            table,
            column,
            function,
        } => vec![
            Sql::new("ALTER TABLE ")
                .qname(table)
                .push(" ALTER COLUMN ")
                .ident(column)
                .push(" SET DEFAULT ")
                .qname(function)
                .push("()"),
        ],
        Change::DropInvalidIndex {
            table,
            name,
            concurrently,
        } => {
            let start = if *concurrently {
                "DROP INDEX CONCURRENTLY IF EXISTS "
            } else {
                "DROP INDEX IF EXISTS "
            };
            let index = crate::quote::QualifiedName::new(table.schema.clone(), name.clone());
            vec![Sql::new(start).qname(&index)]
        }
        Change::CreateIndex {
            table,
            index,
            concurrently,
        } => {
            let start = if *concurrently {
                "CREATE INDEX CONCURRENTLY "
            } else {
                "CREATE INDEX "
            };
            vec![
                Sql::new(start)
                    .ident(&index.name)
                    .push(" ON ")
                    .qname(table)
                    .push(" (")
                    .idents(index.columns.iter().map(String::as_str))
                    .push(")"),
            ]
        }
    })
}

/// `ALTER ROLE name` with exactly `attributes`: also the fix rlsctl names
/// when it refuses to make a change itself.
pub fn alter_role(name: &str, attributes: &[RoleAttribute]) -> Sql {
    role_attributes(Sql::new("ALTER ROLE ").ident(name), attributes)
}

/// A new role gets every attribute that matters for isolation spelled out,
/// never left to defaults; an altered one only those that change.
fn role_attributes(mut sql: Sql, attributes: &[RoleAttribute]) -> Sql {
    for attribute in attributes {
        sql = sql.push(" ").push(attribute.keyword());
    }
    sql
}

fn with_password(sql: Sql, role: &Role, passwords: &Passwords) -> Result<Sql, PasswordError> {
    let Some(variable) = &role.password_env else {
        return Ok(sql);
    };
    Ok(match passwords {
        Passwords::Masked => sql.push(" PASSWORD ").secret_literal("********"),
        // A SCRAM verifier, never the password: the statement text can end up
        // in the server log, pg_stat_activity and statement tracing.
        Passwords::FromEnvironment => match std::env::var(variable) {
            Ok(value) if !value.is_empty() => {
                let verifier =
                    scram::verifier(&value).map_err(|source| PasswordError::NoRandomness {
                        role: role.name.clone(),
                        source,
                    })?;
                sql.push(" PASSWORD ").secret_literal(&verifier)
            }
            _ => {
                return Err(PasswordError::Missing {
                    role: role.name.clone(),
                    variable: variable.clone(),
                });
            }
        },
    })
}

fn create_function(function: &ContextFunction) -> Sql {
    let returns = match function.returns.as_str() {
        "text" => "text",
        "bigint" => "bigint",
        "integer" => "integer",
        _ => "uuid",
    };
    let language = if function.language == "plpgsql" {
        " LANGUAGE plpgsql"
    } else {
        " LANGUAGE sql"
    };
    Sql::new("CREATE OR REPLACE FUNCTION ")
        .qname(&function.name)
        .push("() RETURNS ")
        .push(returns)
        .push(language)
        .push(" STABLE PARALLEL SAFE AS ")
        .literal(&function.body)
}

/// A type name rlsctl writes into DDL: only the ones it declares, so a name
/// read from the catalog is never pasted as SQL.
fn type_keyword(name: &str) -> &'static str {
    match name {
        "uuid" => "uuid",
        "bigint" => "bigint",
        "integer" => "integer",
        _ => "text",
    }
}

fn object_privileges(mut sql: Sql, privileges: &BTreeSet<ObjectPrivilege>) -> Sql {
    for (i, privilege) in privileges.iter().enumerate() {
        if i > 0 {
            sql = sql.push(", ");
        }
        sql = sql.push(privilege.keyword());
    }
    sql
}

/// The object as a GRANT names it: a schema by its name, a function with
/// its argument types as the catalog has them (each a quoted qualified name).
fn object_name(sql: Sql, target: &GrantTarget, argument_types: &[QualifiedName]) -> Sql {
    match target.kind {
        GrantKind::Schema => sql.ident(&target.name.name),
        GrantKind::Function => {
            let mut sql = sql.qname(&target.name).push("(");
            for (i, argument) in argument_types.iter().enumerate() {
                if i > 0 {
                    sql = sql.push(", ");
                }
                sql = sql.qname(argument);
            }
            sql.push(")")
        }
        GrantKind::Table | GrantKind::Sequence => sql.qname(&target.name),
    }
}

/// `PUBLIC` is a keyword, not a role name to quote.
fn grantee(sql: Sql, role: &str) -> Sql {
    if role == "PUBLIC" {
        sql.push("PUBLIC")
    } else {
        sql.ident(role)
    }
}

fn roles(mut sql: Sql, policy: &Policy) -> Sql {
    for (i, role) in policy.roles.iter().enumerate() {
        if i > 0 {
            sql = sql.push(", ");
        }
        sql = grantee(sql, role);
    }
    sql
}

fn policy_clauses(mut sql: Sql, policy: &Policy) -> Sql {
    if let Some(using) = &policy.using {
        sql = sql.push(" USING (").expr(using).push(")");
    }
    if let Some(check) = &policy.with_check {
        sql = sql.push(" WITH CHECK (").expr(check).push(")");
    }
    sql
}

fn command_keyword(command: Command) -> &'static str {
    match command {
        Command::All => "ALL",
        Command::Select => "SELECT",
        Command::Insert => "INSERT",
        Command::Update => "UPDATE",
        Command::Delete => "DELETE",
    }
}

fn privilege_list(mut sql: Sql, privileges: &std::collections::BTreeSet<Privilege>) -> Sql {
    for (i, privilege) in privileges.iter().enumerate() {
        if i > 0 {
            sql = sql.push(", ");
        }
        sql = sql.push(privilege.keyword());
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::desired_state;
    use crate::diff::{Normalized, Options, diff};
    use crate::model::State;
    use crate::spec::load_str;
    use std::path::Path;

    #[test]
    fn the_full_ddl_of_a_spec_quotes_every_name_and_masks_passwords() {
        let spec = load_str(
            Path::new("p.yaml"),
            "roles:\n  - name: \"app\\\"x\"\n    login: true\n    password_env: SOME_UNSET_VARIABLE_FOR_TEST\ntables:\n  - { schema: \"my schema\", name: \"select\" }\n",
        )
        .unwrap();
        let changes = diff(
            &desired_state(&spec),
            &State::default(),
            &Normalized::default(),
            "tenant_id",
            Options::default(),
        )
        .changes;
        let text: Vec<String> = render(&changes, &Passwords::Masked)
            .unwrap()
            .iter()
            .map(|s| s.sql.to_string())
            .collect();
        let all = text.join(";\n");
        assert!(
            all.contains(
                r#"CREATE ROLE "app""x" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '********'"#
            ),
            "{all}"
        );
        assert!(
            all.contains(r#"ALTER TABLE "my schema"."select" FORCE ROW LEVEL SECURITY"#),
            "{all}"
        );
        assert!(all.contains(r#"CREATE POLICY "tenant_isolation" ON "my schema"."select" AS PERMISSIVE FOR ALL TO "app""x" USING ("tenant_id" = (SELECT "rls"."current_tenant_id"())) WITH CHECK ("tenant_id" = (SELECT "rls"."current_tenant_id"()))"#), "{all}");
        assert!(
            all.contains(r#"REVOKE EXECUTE ON FUNCTION "rls"."current_tenant_id"() FROM PUBLIC"#),
            "{all}"
        );
        let missing = render(&changes, &Passwords::FromEnvironment).unwrap_err();
        assert!(
            matches!(&missing, PasswordError::Missing { variable, .. } if variable == "SOME_UNSET_VARIABLE_FOR_TEST"),
            "{missing}"
        );
    }

    #[test]
    fn alter_role_names_only_the_attributes_that_change() {
        let changes = [Change::AlterRole {
            name: "app".into(),
            attributes: vec![RoleAttribute::Login(true)],
        }];
        let sql: Vec<String> = render(&changes, &Passwords::Masked)
            .unwrap()
            .iter()
            .map(|s| s.sql.to_string())
            .collect();
        assert_eq!(sql, vec![r#"ALTER ROLE "app" LOGIN"#.to_string()]);
    }
}
