//! desired − live → the changes that make the database match the spec.
//!
//! Pure: no I/O. Expressions are compared in the server's own deparse form
//! (see `normalize`), so a spec written with other spacing, case or casts is
//! not a change. An empty result is the idempotency guarantee.

use std::collections::{BTreeMap, BTreeSet};

use crate::grants::{GrantTarget, ObjectPrivilege};
use crate::model::{ContextFunction, Index, Policy, Privilege, Role, RoleAttribute, State};
use crate::quote::QualifiedName;
use crate::spec::{Command, Expression};

/// The server's deparse of each spec expression, keyed by (table, text as written).
#[derive(Debug, Clone, Default)]
pub struct Normalized(pub BTreeMap<(QualifiedName, String), String>);

impl Normalized {
    fn form<'a>(&'a self, table: &QualifiedName, expression: &'a Expression) -> &'a str {
        self.0
            .get(&(table.clone(), expression.as_str().to_string()))
            .map(String::as_str)
            .unwrap_or(expression.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateSchema {
        schema: String,
    },
    CreateRole {
        role: Role,
    },
    /// Only the attributes that differ, never the whole set.
    AlterRole {
        name: String,
        attributes: Vec<RoleAttribute>,
    },
    /// `ALTER ROLE … PASSWORD` from the role's `password_env`, on a role that
    /// exists: it has no password yet, or `--rotate-passwords` was given.
    SetPassword {
        role: Role,
        reason: PasswordReason,
    },
    ReplaceFunction {
        function: ContextFunction,
    },
    GrantExecute {
        function: QualifiedName,
        role: String,
    },
    RevokeExecute {
        function: QualifiedName,
        role: String,
    },
    GrantSchemaUsage {
        schema: String,
        role: String,
    },
    EnableRls {
        table: QualifiedName,
    },
    ForceRls {
        table: QualifiedName,
    },
    DropPolicy {
        table: QualifiedName,
        name: String,
    },
    AlterPolicy {
        table: QualifiedName,
        policy: Policy,
    },
    CreatePolicy {
        table: QualifiedName,
        policy: Policy,
    },
    GrantTable {
        table: QualifiedName,
        role: String,
        privileges: BTreeSet<Privilege>,
    },
    RevokeTable {
        table: QualifiedName,
        role: String,
        privileges: BTreeSet<Privilege>,
    },
    /// A serial column's sequence, for a role that may insert into its table.
    GrantSequenceUsage {
        sequence: QualifiedName,
        role: String,
    },
    /// A tenant resolver, created or redefined; `drop_first` names the
    /// argument type of a live one whose signature differs.
    ReplaceResolver {
        resolver: crate::resolver::Resolver,
        drop_first: Option<String>,
    },
    GrantResolverExecute {
        function: QualifiedName,
        arg_type: String,
        role: String,
    },
    RevokeResolverExecute {
        function: QualifiedName,
        arg_type: String,
        role: String,
    },
    /// Privileges on a declared object that is not a tenant table (`grants:`);
    /// `argument_types` name a function's arguments as the catalog has them.
    GrantObject {
        target: GrantTarget,
        argument_types: Vec<QualifiedName>,
        role: String,
        privileges: BTreeSet<ObjectPrivilege>,
    },
    /// `--prune`: what a declared role holds on a declared object beyond the
    /// spec; with `grant_option`, only the right to grant them on (the
    /// privileges stay). Either revokes, CASCADE, what the role granted on.
    RevokeObject {
        target: GrantTarget,
        argument_types: Vec<QualifiedName>,
        role: String,
        privileges: BTreeSet<ObjectPrivilege>,
        grant_option: bool,
    },
    /// Writers that omit the tenant get the bound one (`default_from_context`).
    SetTenantDefault {
        table: QualifiedName,
        column: String,
        function: QualifiedName,
    },
    /// The leftover of a failed CONCURRENTLY build: it blocks nothing but serves nothing.
    DropInvalidIndex {
        table: QualifiedName,
        name: String,
        concurrently: bool,
    },
    CreateIndex {
        table: QualifiedName,
        index: Index,
        concurrently: bool,
    },
}

impl Change {
    /// A stable name for the kind of change (JSON output, summaries).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::CreateSchema { .. } => "create_schema",
            Change::CreateRole { .. } => "create_role",
            Change::AlterRole { .. } => "alter_role",
            Change::SetPassword { .. } => "set_password",
            Change::ReplaceFunction { .. } => "replace_function",
            Change::GrantExecute { .. } => "grant_execute",
            Change::RevokeExecute { .. } => "revoke_execute",
            Change::GrantSchemaUsage { .. } => "grant_schema_usage",
            Change::EnableRls { .. } => "enable_rls",
            Change::ForceRls { .. } => "force_rls",
            Change::DropPolicy { .. } => "drop_policy",
            Change::AlterPolicy { .. } => "alter_policy",
            Change::CreatePolicy { .. } => "create_policy",
            Change::GrantTable { .. } => "grant_table",
            Change::RevokeTable { .. } => "revoke_table",
            Change::GrantSequenceUsage { .. } => "grant_sequence_usage",
            Change::GrantObject { .. } => "grant_object",
            Change::RevokeObject { .. } => "revoke_object",
            Change::SetTenantDefault { .. } => "set_tenant_default",
            Change::ReplaceResolver { .. } => "replace_resolver",
            Change::GrantResolverExecute { .. } => "grant_execute",
            Change::RevokeResolverExecute { .. } => "revoke_execute",
            Change::DropInvalidIndex { .. } => "drop_invalid_index",
            Change::CreateIndex { .. } => "create_index",
        }
    }

    /// The object the change is about, for messages.
    pub fn object(&self) -> String {
        match self {
            Change::CreateSchema { schema } => format!("schema {schema}"),
            Change::CreateRole { role } => format!("role {}", role.name),
            Change::AlterRole { name, .. } => format!("role {name}"),
            Change::SetPassword { role, .. } => format!("role {}", role.name),
            Change::ReplaceFunction { function } => format!("function {}()", function.name),
            Change::GrantExecute { function, .. } | Change::RevokeExecute { function, .. } => {
                format!("function {function}()")
            }
            Change::GrantSchemaUsage { schema, .. } => format!("schema {schema}"),
            Change::EnableRls { table }
            | Change::ForceRls { table }
            | Change::GrantTable { table, .. }
            | Change::RevokeTable { table, .. } => format!("table {table}"),
            Change::GrantSequenceUsage { sequence, .. } => format!("sequence {sequence}"),
            Change::GrantObject { target, .. } | Change::RevokeObject { target, .. } => {
                target.to_string()
            }
            Change::SetTenantDefault { table, column, .. } => format!("column {table}.{column}"),
            Change::ReplaceResolver { resolver, .. } => {
                format!("function {}({})", resolver.name, resolver.arg_type)
            }
            Change::GrantResolverExecute {
                function, arg_type, ..
            }
            | Change::RevokeResolverExecute {
                function, arg_type, ..
            } => format!("function {function}({arg_type})"),
            Change::DropPolicy { table, name } => format!("policy {name} on {table}"),
            Change::AlterPolicy { table, policy } | Change::CreatePolicy { table, policy } => {
                format!("policy {} on {table}", policy.name)
            }
            Change::DropInvalidIndex { table, name, .. } => format!("index {name} on {table}"),
            Change::CreateIndex { table, index, .. } => format!("index {} on {table}", index.name),
        }
    }

    /// Runs after the transaction commits (CREATE INDEX CONCURRENTLY cannot run inside one).
    pub fn outside_transaction(&self) -> bool {
        matches!(
            self,
            Change::CreateIndex {
                concurrently: true,
                ..
            } | Change::DropInvalidIndex {
                concurrently: true,
                ..
            }
        )
    }
}

/// Something `plan` shows but does not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A policy on a declared table that the spec does not declare.
    UnmanagedPolicy { table: QualifiedName, name: String },
    /// A table rlsctl once managed (its policies carry the marker) that left the spec.
    UndeclaredManagedTable {
        table: QualifiedName,
        policies: Vec<String>,
    },
    /// A table with the tenant column that no spec entry covers.
    UncoveredTable {
        table: QualifiedName,
        column: String,
    },
    /// A declared table whose tenant column `migrate-existing` has yet to
    /// add (`null_rows` is `None`) or to fill (`null_rows` rows hold NULL).
    AwaitingBackfill {
        table: QualifiedName,
        null_rows: Option<i64>,
    },
    /// A declared role with `password_env` exists, and the connecting role
    /// (not a superuser) cannot read whether it has a password.
    PasswordUnknown { role: String, variable: String },
    /// A declared role holds privileges on a declared object (`grants:`)
    /// beyond what the spec grants it there.
    ExtraObjectPrivileges {
        target: GrantTarget,
        role: String,
        privileges: BTreeSet<ObjectPrivilege>,
        /// Held WITH GRANT OPTION, which the spec never grants (the
        /// privileges themselves may be declared).
        grant_option: bool,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::UnmanagedPolicy { table, name } => write!(
                f,
                "policy {name} on {table} is not in the spec: kept (--prune drops it)"
            ),
            Notice::UndeclaredManagedTable { table, policies } => write!(
                f,
                "table {table} is no longer in the spec but has rlsctl policies ({}): kept (--prune drops them)",
                policies.join(", ")
            ),
            Notice::UncoveredTable { table, column } => write!(
                f,
                "table {table} has a `{column}` column but is not declared: no tenant isolation covers it"
            ),
            Notice::AwaitingBackfill {
                table,
                null_rows: None,
            } => write!(
                f,
                "table {table} has no tenant column yet: skipped until `rlsctl migrate-existing --table {table}` adds and fills it"
            ),
            Notice::AwaitingBackfill {
                table,
                null_rows: Some(rows),
            } => write!(
                f,
                "table {table} has {rows} row(s) whose tenant column is NULL, which a tenant policy would hide: skipped until `rlsctl migrate-existing --table {table}` fills them"
            ),
            Notice::ExtraObjectPrivileges {
                target,
                role,
                privileges,
                grant_option: true,
            } => write!(
                f,
                "role {role} holds {} on {target} WITH GRANT OPTION, which the spec never grants (the role may grant it on to anyone): kept (--prune revokes the grant option)",
                privileges
                    .iter()
                    .map(|p| p.keyword())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Notice::ExtraObjectPrivileges {
                target,
                role,
                privileges,
                grant_option: false,
            } => write!(
                f,
                "role {role} holds {} on {target}, which the spec does not grant it: kept (--prune revokes it)",
                privileges
                    .iter()
                    .map(|p| p.keyword())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Notice::PasswordUnknown { role, variable } => write!(
                f,
                "role {role} exists; whether it has a password only a superuser can read (pg_authid), so it is left as it is: `rlsctl apply --rotate-passwords` sets it from {variable}"
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Drop policies the spec does not declare (on declared tables) and the
    /// rlsctl-made policies of tables that left the spec.
    pub prune: bool,
}

/// Each declared resolver exists with its definition, and exactly its
/// roles (and no one else but its owner) may execute it.
fn resolver_changes(desired: &State, live: &State) -> Vec<Change> {
    let mut changes = Vec::new();
    for (name, want) in &desired.resolvers {
        let live_executors = match live.resolvers.get(name) {
            Some(have) if want.same_definition(have) => have.executors.clone(),
            Some(have) if want.same_signature(have) => {
                changes.push(Change::ReplaceResolver {
                    resolver: want.clone(),
                    drop_first: None,
                });
                have.executors.clone()
            }
            other => {
                changes.push(Change::ReplaceResolver {
                    resolver: want.clone(),
                    drop_first: other.map(|have| have.arg_type.clone()),
                });
                live.new_resolver_executors
                    .get(&name.schema)
                    .cloned()
                    .unwrap_or_else(|| BTreeSet::from(["PUBLIC".to_string()]))
            }
        };
        for role in live_executors.difference(&want.executors) {
            changes.push(Change::RevokeResolverExecute {
                function: name.clone(),
                arg_type: want.arg_type.clone(),
                role: role.clone(),
            });
        }
        for role in want.executors.difference(&live_executors) {
            changes.push(Change::GrantResolverExecute {
                function: name.clone(),
                arg_type: want.arg_type.clone(),
                role: role.clone(),
            });
        }
    }
    changes
}

pub fn diff(
    desired: &State,
    live: &State,
    normalized: &Normalized,
    tenant_column: &str,
    options: Options,
) -> Diff {
    let mut out = Diff::default();
    let changes = &mut out.changes;

    for schema in &desired.schemas {
        if !live.schemas.contains(schema) {
            changes.push(Change::CreateSchema {
                schema: schema.clone(),
            });
        }
    }

    changes.extend(role_changes(&desired.roles, &live.roles));

    if let Some(function) = &desired.function {
        // A new function is executable by PUBLIC until revoked, unless
        // default privileges say otherwise (Supabase grants EXECUTE on every
        // new function to its API roles): revoked in the same apply.
        let live_executors = match &live.function {
            Some(current) => {
                if !current.same_definition(function) {
                    changes.push(Change::ReplaceFunction {
                        function: function.clone(),
                    });
                }
                current.executors.clone()
            }
            None => {
                changes.push(Change::ReplaceFunction {
                    function: function.clone(),
                });
                live.new_function_executors
                    .clone()
                    .unwrap_or_else(|| BTreeSet::from(["PUBLIC".to_string()]))
            }
        };
        for role in live_executors.difference(&function.executors) {
            changes.push(Change::RevokeExecute {
                function: function.name.clone(),
                role: role.clone(),
            });
        }
        for role in function.executors.difference(&live_executors) {
            changes.push(Change::GrantExecute {
                function: function.name.clone(),
                role: role.clone(),
            });
        }
    }

    changes.extend(resolver_changes(desired, live));

    for (role, schema) in &desired.schema_usage {
        if !live.schema_usage.contains(&(role.clone(), schema.clone())) {
            changes.push(Change::GrantSchemaUsage {
                schema: schema.clone(),
                role: role.clone(),
            });
        }
    }

    for (name, want) in &desired.tables {
        let empty = Default::default();
        let have = live.tables.get(name).unwrap_or(&empty);
        if !have.rls_enabled {
            changes.push(Change::EnableRls {
                table: name.clone(),
            });
        }
        if !have.rls_forced {
            changes.push(Change::ForceRls {
                table: name.clone(),
            });
        }

        for (policy_name, current) in &have.policies {
            if !want.policies.contains_key(policy_name) {
                if options.prune {
                    changes.push(Change::DropPolicy {
                        table: name.clone(),
                        name: policy_name.clone(),
                    });
                } else {
                    out.notices.push(Notice::UnmanagedPolicy {
                        table: name.clone(),
                        name: current.name.clone(),
                    });
                }
            }
        }
        for (policy_name, policy) in &want.policies {
            match have.policies.get(policy_name) {
                None => changes.push(Change::CreatePolicy {
                    table: name.clone(),
                    policy: policy.clone(),
                }),
                Some(current) => match compare_policy(name, policy, current, normalized) {
                    PolicyDelta::Same => {}
                    PolicyDelta::Alter => changes.push(Change::AlterPolicy {
                        table: name.clone(),
                        policy: policy.clone(),
                    }),
                    PolicyDelta::Recreate => {
                        changes.push(Change::DropPolicy {
                            table: name.clone(),
                            name: policy_name.clone(),
                        });
                        changes.push(Change::CreatePolicy {
                            table: name.clone(),
                            policy: policy.clone(),
                        });
                    }
                },
            }
        }

        if let Some((column, function)) = &want.context_default
            && have.columns.contains_key(column)
            && !have.context_defaults.contains(column)
        {
            changes.push(Change::SetTenantDefault {
                table: name.clone(),
                column: column.clone(),
                function: function.clone(),
            });
        }

        // A declared role the spec no longer gives this table (its `tables:`
        // narrowed) loses what it had here; other grantees are not ours.
        for (role, current) in &have.grants {
            if desired.roles.contains_key(role)
                && !want.grants.contains_key(role)
                && !current.is_empty()
            {
                changes.push(Change::RevokeTable {
                    table: name.clone(),
                    role: role.clone(),
                    privileges: current.clone(),
                });
            }
        }
        for (role, privileges) in &want.grants {
            let current = have.grants.get(role).cloned().unwrap_or_default();
            let missing: BTreeSet<Privilege> = privileges.difference(&current).copied().collect();
            let extra: BTreeSet<Privilege> = current.difference(privileges).copied().collect();
            if !missing.is_empty() {
                changes.push(Change::GrantTable {
                    table: name.clone(),
                    role: role.clone(),
                    privileges: missing,
                });
            }
            if !extra.is_empty() {
                changes.push(Change::RevokeTable {
                    table: name.clone(),
                    role: role.clone(),
                    privileges: extra,
                });
            }
            if privileges.contains(&Privilege::Insert) {
                for (sequence, users) in &have.sequences {
                    if !users.contains(role) && !users.contains("PUBLIC") {
                        changes.push(Change::GrantSequenceUsage {
                            sequence: sequence.clone(),
                            role: role.clone(),
                        });
                    }
                }
            }
        }

        for index in &want.indexes {
            if have
                .indexes
                .iter()
                .any(|i| i.valid && i.serves(&index.columns))
            {
                continue;
            }
            if have
                .indexes
                .iter()
                .any(|i| !i.valid && i.name == index.name)
            {
                changes.push(Change::DropInvalidIndex {
                    table: name.clone(),
                    name: index.name.clone(),
                    concurrently: false,
                });
            }
            changes.push(Change::CreateIndex {
                table: name.clone(),
                index: index.clone(),
                concurrently: false,
            });
        }
    }

    for (name, table) in &live.tables {
        if desired.tables.contains_key(name) {
            continue;
        }
        let ours: Vec<String> = table
            .policies
            .values()
            .filter(|p| p.managed)
            .map(|p| p.name.clone())
            .collect();
        if !ours.is_empty() {
            if options.prune {
                for policy in ours {
                    changes.push(Change::DropPolicy {
                        table: name.clone(),
                        name: policy,
                    });
                }
            } else {
                out.notices.push(Notice::UndeclaredManagedTable {
                    table: name.clone(),
                    policies: ours,
                });
            }
        } else if table.columns.contains_key(tenant_column) {
            out.notices.push(Notice::UncoveredTable {
                table: name.clone(),
                column: tenant_column.to_string(),
            });
        }
    }
    object_grant_changes(desired, live, options, &mut out);
    out
}

/// Each declared object that exists gets what the spec grants on it; what
/// a declared role holds there beyond that is revoked with `--prune`, and a
/// notice otherwise. A missing object is not a change: `references` refuses
/// the spec before anything is planned.
fn object_grant_changes(desired: &State, live: &State, options: Options, out: &mut Diff) {
    for (target, want) in &desired.object_grants {
        let Some(have) = live.object_grants.get(target) else {
            continue;
        };
        let mut revoked = false;
        for (role, privileges) in &want.privileges {
            if have.owner.as_ref() == Some(role) {
                continue;
            }
            let current = have.privileges.get(role).cloned().unwrap_or_default();
            let missing: BTreeSet<ObjectPrivilege> =
                privileges.difference(&current).copied().collect();
            let extra: BTreeSet<ObjectPrivilege> =
                current.difference(privileges).copied().collect();
            if !missing.is_empty() {
                out.changes.push(Change::GrantObject {
                    target: target.clone(),
                    argument_types: have.argument_types.clone(),
                    role: role.clone(),
                    privileges: missing,
                });
            }
            // Grant options on what stays (what is revoked loses its own).
            let grantable: BTreeSet<ObjectPrivilege> = have
                .grantable
                .get(role)
                .into_iter()
                .flatten()
                .filter(|p| !extra.contains(p))
                .copied()
                .collect();
            for (privileges, grant_option) in [(extra, false), (grantable, true)] {
                if privileges.is_empty() {
                    continue;
                }
                if options.prune {
                    revoked = true;
                    out.changes.push(Change::RevokeObject {
                        target: target.clone(),
                        argument_types: have.argument_types.clone(),
                        role: role.clone(),
                        privileges,
                        grant_option,
                    });
                } else {
                    out.notices.push(Notice::ExtraObjectPrivileges {
                        target: target.clone(),
                        role: role.clone(),
                        privileges,
                        grant_option,
                    });
                }
            }
        }
        // A revoke is CASCADE: a declared privilege another role received
        // from the revoked one goes with it, so every declared grant on the
        // object is made again after the revokes (a GRANT of what is held
        // changes nothing).
        if revoked {
            for (role, privileges) in &want.privileges {
                if privileges.is_empty() || have.owner.as_ref() == Some(role) {
                    continue;
                }
                out.changes.push(Change::GrantObject {
                    target: target.clone(),
                    argument_types: have.argument_types.clone(),
                    role: role.clone(),
                    privileges: privileges.clone(),
                });
            }
        }
    }
}

/// Why an existing role gets its password set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordReason {
    /// `rolpassword` is NULL: it cannot log in with a password at all.
    Unset,
    /// `--rotate-passwords`: whatever it is, it becomes the variable's value.
    Rotation,
}

/// What the live side knows of the passwords of existing roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordsKnown {
    /// Read from `pg_authid` (superusers only): the roles without a password.
    Unset(BTreeSet<String>),
    /// Not readable by the connecting role: `pg_roles` masks every password.
    Hidden,
}

/// The passwords to set on declared roles with `password_env` that exist in
/// `live` (a role created by this apply gets its password with CREATE ROLE,
/// so `created` are left out): all of them when `rotate`, else those known
/// to have none. When that cannot be known, a notice says so.
pub fn password_changes(
    desired: &BTreeMap<String, Role>,
    live: &BTreeMap<String, Role>,
    created: &BTreeSet<String>,
    known: &PasswordsKnown,
    rotate: bool,
) -> (Vec<Change>, Vec<Notice>) {
    let mut changes = Vec::new();
    let mut notices = Vec::new();
    for (name, role) in desired {
        let Some(variable) = &role.password_env else {
            continue;
        };
        if !live.contains_key(name) || created.contains(name) {
            continue;
        }
        let reason = match (rotate, known) {
            (true, _) => PasswordReason::Rotation,
            (false, PasswordsKnown::Unset(unset)) if unset.contains(name) => PasswordReason::Unset,
            (false, PasswordsKnown::Unset(_)) => continue,
            (false, PasswordsKnown::Hidden) => {
                notices.push(Notice::PasswordUnknown {
                    role: name.clone(),
                    variable: variable.clone(),
                });
                continue;
            }
        };
        changes.push(Change::SetPassword {
            role: role.clone(),
            reason,
        });
    }
    (changes, notices)
}

/// The role part of the diff. Roles are cluster-wide and depend on the spec
/// alone, so apply can check it before running anything (see `role_rights`).
pub fn role_changes(
    desired: &BTreeMap<String, Role>,
    live: &BTreeMap<String, Role>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (name, role) in desired {
        match live.get(name) {
            None => changes.push(Change::CreateRole { role: role.clone() }),
            Some(current) => {
                let attributes = role.changed_from(current);
                if !attributes.is_empty() {
                    changes.push(Change::AlterRole {
                        name: name.clone(),
                        attributes,
                    });
                }
            }
        }
    }
    changes
}

enum PolicyDelta {
    Same,
    /// Roles or expressions changed: `ALTER POLICY` keeps the policy in place.
    Alter,
    /// Command or permissiveness changed, or a clause was removed: ALTER cannot do that.
    Recreate,
}

fn compare_policy(
    table: &QualifiedName,
    want: &Policy,
    have: &Policy,
    normalized: &Normalized,
) -> PolicyDelta {
    if want.command != have.command || want.permissive != have.permissive {
        return PolicyDelta::Recreate;
    }
    let clause_removed = (want.using.is_none() && have.using.is_some())
        || (want.with_check.is_none() && have.with_check.is_some());
    if clause_removed {
        return PolicyDelta::Recreate;
    }
    let same_clause = |w: &Option<Expression>, h: &Option<Expression>| match (w, h) {
        (None, None) => true,
        (Some(w), Some(h)) => normalized.form(table, w) == h.as_str(),
        _ => false,
    };
    // An ALL or UPDATE policy without WITH CHECK checks new rows with its
    // USING expression: the same policy as one that repeats it.
    let have_check = match (&want.with_check, &have.with_check, have.command) {
        (Some(_), None, Command::All | Command::Update) => &have.using,
        _ => &have.with_check,
    };
    if want.roles != have.roles
        || !same_clause(&want.using, &have.using)
        || !same_clause(&want.with_check, have_check)
    {
        PolicyDelta::Alter
    } else {
        PolicyDelta::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::desired_state;
    use crate::model::Table;
    use crate::spec::load_str;
    use std::path::Path;

    const SPEC: &str = "roles:\n  - name: app\ntables:\n  - projects\n  - invoices\n";

    fn desired() -> State {
        desired_state(&load_str(Path::new("p.yaml"), SPEC).unwrap())
    }

    /// The diff with nothing normalised, tenant column `tenant_id`, no options.
    fn plain_diff(desired: &State, live: &State) -> Diff {
        diff(
            desired,
            live,
            &Normalized::default(),
            "tenant_id",
            Options::default(),
        )
    }

    /// A live state that matches `desired` exactly (as after a successful apply).
    fn converged(desired: &State) -> State {
        let mut live = desired.clone();
        for table in live.tables.values_mut() {
            table.columns.insert("tenant_id".into(), "uuid".into());
        }
        live
    }

    #[test]
    fn a_declared_object_grant_is_granted_and_an_extra_one_revoked_only_when_pruning_never_for_the_owner()
     {
        use crate::grants::{GrantKind, ObjectPrivilege};
        let desired = desired_state(
            &load_str(
                Path::new("p.yaml"),
                "roles:\n  - name: app\ngrants:\n  - table: countries\n    roles: [worker]\n    privileges: [select]\n",
            )
            .unwrap(),
        );
        let target = desired.object_grants.keys().next().unwrap().clone();
        assert_eq!(target.kind, GrantKind::Table);
        // The object does not exist: nothing to plan (the spec is refused before).
        assert!(
            !plain_diff(&desired, &State::default())
                .changes
                .iter()
                .any(|c| c.kind().ends_with("_object"))
        );

        let mut live = State::default();
        let mut have = crate::grants::ObjectGrants::default();
        have.privileges
            .insert("app".into(), BTreeSet::from([ObjectPrivilege::Insert]));
        live.object_grants.insert(target.clone(), have);
        let kept = plain_diff(&desired, &live);
        let grants: Vec<&Change> = kept
            .changes
            .iter()
            .filter(|c| c.kind() == "grant_object")
            .collect();
        assert!(
            matches!(grants[..], [Change::GrantObject { role, privileges, .. }]
            if role == "worker" && *privileges == BTreeSet::from([ObjectPrivilege::Select]))
        );
        assert!(!kept.changes.iter().any(|c| c.kind() == "revoke_object"));
        assert!(kept.notices.iter().any(|n| matches!(n,
            Notice::ExtraObjectPrivileges { role, .. } if role == "app")));

        let pruned = diff(
            &desired,
            &live,
            &Normalized::default(),
            "tenant_id",
            Options { prune: true },
        );
        assert!(pruned.changes.iter().any(|c| matches!(c,
            Change::RevokeObject { role, privileges, .. }
                if role == "app" && *privileges == BTreeSet::from([ObjectPrivilege::Insert]))));

        // The owner holds everything without a grant: nothing to grant or revoke.
        live.object_grants.get_mut(&target).unwrap().owner = Some("worker".into());
        assert!(
            !plain_diff(&desired, &live)
                .changes
                .iter()
                .any(|c| matches!(c, Change::GrantObject { role, .. } if role == "worker"))
        );
    }

    #[test]
    fn from_nothing_everything_is_created() {
        let d = desired();
        let out = plain_diff(&d, &State::default());
        let kinds: Vec<_> = out.changes.iter().map(Change::kind).collect();
        for kind in [
            "create_schema",
            "create_role",
            "replace_function",
            "revoke_execute",
            "grant_execute",
            "enable_rls",
            "force_rls",
            "create_policy",
            "grant_table",
            "create_index",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
    }

    #[test]
    fn a_new_function_loses_what_default_privileges_would_grant_it() {
        let d = desired();
        let mut live = converged(&d);
        live.function = None;
        live.new_function_executors = Some(BTreeSet::from(["anon".into(), "app".into()]));
        let out = plain_diff(&d, &live);
        let kinds: Vec<_> = out.changes.iter().map(Change::kind).collect();
        assert_eq!(kinds, ["replace_function", "revoke_execute"], "{out:?}");
        assert!(
            matches!(&out.changes[1], Change::RevokeExecute { role, .. } if role == "anon"),
            "{out:?}"
        );
    }

    #[test]
    fn a_converged_database_has_an_empty_diff() {
        let d = desired();
        let out = plain_diff(&d, &converged(&d));
        assert_eq!(out, Diff::default());
    }

    #[test]
    fn an_all_policy_without_with_check_matches_one_that_repeats_its_using() {
        let d = desired();
        let mut live = converged(&d);
        for t in live.tables.values_mut() {
            t.policies.get_mut("tenant_isolation").unwrap().with_check = None;
        }
        let out = plain_diff(&d, &live);
        assert!(out.changes.is_empty(), "{:?}", out.changes);

        // Nor does a policy declared without WITH CHECK differ from one without.
        let mut using_only = d.clone();
        for t in using_only.tables.values_mut() {
            t.policies.get_mut("tenant_isolation").unwrap().with_check = None;
        }
        let out = plain_diff(&using_only, &live);
        assert!(out.changes.is_empty(), "{:?}", out.changes);

        // A SELECT policy's USING checks no new rows: that difference stays.
        for t in live.tables.values_mut() {
            t.policies.get_mut("tenant_isolation").unwrap().command = Command::Select;
        }
        let out = plain_diff(&d, &live);
        assert!(
            out.changes
                .iter()
                .any(|c| matches!(c, Change::CreatePolicy { .. })),
            "{:?}",
            out.changes
        );
    }

    #[test]
    fn a_server_normalised_expression_is_not_a_change_but_a_different_one_is() {
        let d = desired();
        let mut live = converged(&d);
        let projects = QualifiedName::new("public", "projects");
        let written = d.tables[&projects].policies["tenant_isolation"]
            .using
            .clone()
            .unwrap();
        let deparsed = "(tenant_id = ( SELECT rls.current_tenant_id() AS current_tenant_id))";
        for t in live.tables.values_mut() {
            let p = t.policies.get_mut("tenant_isolation").unwrap();
            p.using = Some(Expression::trusted(deparsed.into()));
            p.with_check = Some(Expression::trusted(deparsed.into()));
        }
        let mut normalized = Normalized::default();
        for t in d.tables.keys() {
            normalized
                .0
                .insert((t.clone(), written.as_str().into()), deparsed.into());
        }
        let out = diff(&d, &live, &normalized, "tenant_id", Options::default());
        assert!(out.changes.is_empty(), "{:?}", out.changes);

        normalized.0.insert(
            (projects.clone(), written.as_str().into()),
            "(tenant_id = 42)".into(),
        );
        let out = diff(&d, &live, &normalized, "tenant_id", Options::default());
        assert_eq!(out.changes.len(), 1, "{:?}", out.changes);
        assert!(matches!(&out.changes[0], Change::AlterPolicy { table, .. } if *table == projects));
    }

    #[test]
    fn unmanaged_policies_are_kept_unless_pruned() {
        let d = desired();
        let mut live = converged(&d);
        let projects = QualifiedName::new("public", "projects");
        let mut extra = live.tables[&projects].policies["tenant_isolation"].clone();
        extra.name = "hand_made".into();
        extra.managed = false;
        live.tables
            .get_mut(&projects)
            .unwrap()
            .policies
            .insert("hand_made".into(), extra);
        let kept = plain_diff(&d, &live);
        assert!(kept.changes.is_empty());
        assert_eq!(
            kept.notices,
            vec![Notice::UnmanagedPolicy {
                table: projects.clone(),
                name: "hand_made".into()
            }]
        );
        let pruned = diff(
            &d,
            &live,
            &Normalized::default(),
            "tenant_id",
            Options { prune: true },
        );
        assert_eq!(
            pruned.changes,
            vec![Change::DropPolicy {
                table: projects,
                name: "hand_made".into()
            }]
        );
    }

    #[test]
    fn extra_privileges_of_a_managed_role_are_revoked() {
        let d = desired();
        let mut live = converged(&d);
        let projects = QualifiedName::new("public", "projects");
        live.tables
            .get_mut(&projects)
            .unwrap()
            .grants
            .get_mut("app")
            .unwrap()
            .insert(Privilege::Truncate);
        let out = plain_diff(&d, &live);
        assert_eq!(
            out.changes,
            vec![Change::RevokeTable {
                table: projects,
                role: "app".into(),
                privileges: [Privilege::Truncate].into()
            }]
        );
    }

    #[test]
    fn an_invalid_leftover_index_is_dropped_and_rebuilt_and_a_wider_index_serves() {
        let d = desired();
        let mut live = converged(&d);
        let projects = QualifiedName::new("public", "projects");
        let invoices = QualifiedName::new("public", "invoices");
        live.tables.get_mut(&projects).unwrap().indexes[0].valid = false;
        live.tables.get_mut(&invoices).unwrap().indexes = vec![Index {
            name: "mine".into(),
            columns: vec!["tenant_id".into(), "id".into()],
            valid: true,
        }];
        let out = plain_diff(&d, &live);
        let kinds: Vec<_> = out.changes.iter().map(|c| (c.kind(), c.object())).collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "drop_invalid_index",
                    "index projects_tenant_id_idx on public.projects".to_string()
                ),
                (
                    "create_index",
                    "index projects_tenant_id_idx on public.projects".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_role_whose_login_drifted_is_altered_in_login_only() {
        let d = desired();
        let mut live = converged(&d);
        live.roles.get_mut("app").unwrap().login = true;
        let out = plain_diff(&d, &live);
        assert_eq!(
            out.changes,
            vec![Change::AlterRole {
                name: "app".into(),
                attributes: vec![RoleAttribute::Login(false)]
            }]
        );
    }

    #[test]
    fn a_superuser_runtime_role_differs_in_superuser_only_and_tables_with_the_column_are_flagged() {
        let d = desired();
        let mut live = converged(&d);
        live.roles.get_mut("app").unwrap().superuser = true;
        let stray = QualifiedName::new("public", "notes");
        let mut table = Table {
            name: stray.clone(),
            ..Table::default()
        };
        table.columns.insert("tenant_id".into(), "uuid".into());
        live.tables.insert(stray.clone(), table);
        let out = plain_diff(&d, &live);
        assert_eq!(
            out.changes,
            vec![Change::AlterRole {
                name: "app".into(),
                attributes: vec![RoleAttribute::Superuser(false)]
            }]
        );
        assert_eq!(
            out.notices,
            vec![Notice::UncoveredTable {
                table: stray,
                column: "tenant_id".into()
            }]
        );
    }

    fn roles_with_passwords(names: &[&str]) -> BTreeMap<String, Role> {
        names
            .iter()
            .map(|name| {
                let role = Role {
                    name: name.to_string(),
                    login: true,
                    superuser: false,
                    bypass_rls: false,
                    password_env: Some(format!("{}_PASSWORD", name.to_uppercase())),
                };
                (name.to_string(), role)
            })
            .collect()
    }

    fn names(changes: &[Change]) -> Vec<(String, PasswordReason)> {
        changes
            .iter()
            .map(|c| match c {
                Change::SetPassword { role, reason } => (role.name.clone(), *reason),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn only_existing_roles_without_a_password_get_one_unless_rotating() {
        let desired = roles_with_passwords(&["api", "worker", "fresh"]);
        let mut live = roles_with_passwords(&["api", "worker", "fresh"]);
        live.values_mut().for_each(|r| r.password_env = None);
        let created = BTreeSet::from(["fresh".to_string()]);
        let known = PasswordsKnown::Unset(BTreeSet::from(["worker".into(), "fresh".into()]));

        let (changes, notices) = password_changes(&desired, &live, &created, &known, false);
        assert_eq!(
            names(&changes),
            vec![("worker".into(), PasswordReason::Unset)]
        );
        assert!(notices.is_empty());

        let (changes, _) = password_changes(&desired, &live, &created, &known, true);
        assert_eq!(
            names(&changes),
            vec![
                ("api".into(), PasswordReason::Rotation),
                ("worker".into(), PasswordReason::Rotation)
            ]
        );
    }

    #[test]
    fn a_password_nobody_may_read_is_left_alone_with_a_notice_naming_the_flag() {
        let desired = roles_with_passwords(&["api"]);
        let live = roles_with_passwords(&["api"]);
        let none = BTreeSet::new();
        let (changes, notices) =
            password_changes(&desired, &live, &none, &PasswordsKnown::Hidden, false);
        assert!(changes.is_empty());
        assert_eq!(notices.len(), 1);
        let text = notices[0].to_string();
        assert!(
            text.contains("--rotate-passwords") && text.contains("API_PASSWORD"),
            "{text}"
        );

        let (changes, notices) =
            password_changes(&desired, &live, &none, &PasswordsKnown::Hidden, true);
        assert_eq!(
            names(&changes),
            vec![("api".into(), PasswordReason::Rotation)]
        );
        assert!(notices.is_empty());
    }
}
