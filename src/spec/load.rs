//! Reading `policies/*.yaml` into a validated [`Spec`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::document::{
    Access, BackfillDoc, BackupRoleDoc, BypassRoleDoc, Command, CrossTenantDoc, Document,
    FunctionDoc, GrantDoc, MaintenanceDoc, PolicyDoc, PolicyTo, ResolverDoc, RoleDoc, SourceDoc,
    TableDoc, TenancyDoc, TenantType, WhenUnbound,
};
use super::files::read_spec_file;
use super::lines::Lines;
use super::scope::{Scope, every_command, expand_commands};
use super::{
    AcceptedFinding, Backfill, BackupRole, BypassRole, CrossTenantPredicate, Expression, GrantSpec,
    MaintenanceAccess, NoTenantAccess, Origin, PolicySpec, ResolverSpec, RoleSpec, SessionRole,
    Spec, SpecError, TABLE_PLACEHOLDER, TableSpec, Tenancy, TenantSource, policy_name_for,
};
use crate::grants::{GrantKind, GrantTarget, ObjectPrivilege};
use crate::quote::QualifiedName;

/// PostgreSQL truncates names longer than NAMEDATALEN - 1 bytes; rlsctl refuses
/// them instead, so the name in the spec is the name in the catalog.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The generated policies' names, reserved so an extra policy cannot take
/// them. The tenant policy's is the default of `tenancy.policy_name`.
pub const TENANT_POLICY: &str = "tenant_isolation";
pub const CROSS_TENANT_PREFIX: &str = "cross_tenant_";
pub const MAINTENANCE_PREFIX: &str = "maintenance_";

/// Loads every `*.yaml` / `*.yml` file of `dir` (sorted by name).
pub fn load(dir: &Path) -> Result<Spec, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        SpecError::general(format!(
            "cannot read the config folder {}: {e} (pass --config DIR)",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SpecError::general(format!(
            "no *.yaml files in {}: nothing declares the tenant isolation",
            dir.display()
        )));
    }
    let mut sources = Vec::new();
    for file in files {
        let text = read_spec_file(&file)?;
        sources.push((file, text));
    }
    build(&sources)
}

/// Loads one in-memory document (tests, and `validate` of a single file).
pub fn load_str(file: &Path, text: &str) -> Result<Spec, SpecError> {
    build(&[(file.to_path_buf(), text.to_string())])
}

fn build(sources: &[(PathBuf, String)]) -> Result<Spec, SpecError> {
    let mut hasher = Sha256::new();
    let mut builder = Builder::default();
    for (file, text) in sources {
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
        let document: Document = if text.trim().is_empty() {
            Document::default()
        } else {
            serde_saphyr::from_str_with_options(text, yaml_options())
                .map_err(|e| yaml_error(file, text, &e))?
        };
        builder.add(file, text, document)?;
    }
    builder.finish(hex::encode(hasher.finalize()))
}

/// serde-saphyr's default budget (250,000 YAML nodes) refuses a spec of
/// 100,000 tables as soon as some are written as maps or a policy lists them
/// all. The file size limit already bounds the input; this bounds what it
/// may expand to, with room for 100,000 tables all written as maps. The
/// alias limits, which stop a small file from expanding exponentially, keep
/// their defaults.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: 2_000_000,
            max_events: 4_000_000,
        },
    }
}

fn yaml_error(file: &Path, text: &str, error: &serde_saphyr::Error) -> SpecError {
    let message = suggest_known_field(&yaml_message(error));
    match error.location() {
        Some(loc) => SpecError::at(
            &Origin::new(file, &Lines::new(text), loc.line(), loc.column()),
            message,
        ),
        None => SpecError::general(format!("{}: {message}", file.display())),
    }
}

/// The parser's message alone: the origin already says where, and `main`
/// already says `error:`, so its own "error: line L column C: " prefix and
/// " at line L column C" suffix would say both twice.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let mut inner = error;
    while !std::ptr::eq(inner.without_snippet(), inner) {
        inner = inner.without_snippet();
    }
    let full = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    let mut message = full.lines().next().unwrap_or_default().trim();
    message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((position, after)) = rest.split_once(": ")
        && position.split(" column ").all(|n| n.parse::<u64>().is_ok())
    {
        message = after;
    }
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string()
}

/// serde's "unknown field `colum`, expected one of …" (and "unknown variant")
/// with the closest expected name first; the parser's advice to its own
/// callers about duplicate keys turned into advice for the spec's author.
fn suggest_known_field(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`: a key appears once per map; merge the two entries");
    }
    let (what, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("field", rest)
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        ("value", rest)
    } else {
        return message.to_string();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = expected
        .trim_start_matches([',', ' '])
        .trim_start_matches("expected one of ")
        .trim_start_matches("expected ")
        .split(", ")
        .map(|k| k.trim().trim_matches('`'))
        .collect();
    match crate::suggest::closest(field, &known) {
        Some(key) => format!(
            "unknown {what} `{field}`: did you mean `{key}`? ({})",
            expected.trim_start_matches([',', ' '])
        ),
        None => message.to_string(),
    }
}

/// A policy whose expressions are checked but whose tables wait for `finish`.
struct PendingPolicy {
    origin: Origin,
    doc: PolicyDoc,
    table_origins: Vec<Origin>,
    using: Option<Expression>,
    with_check: Option<Expression>,
}

#[derive(Default)]
struct Builder {
    tenancy: Option<(Tenancy, Origin)>,
    /// Where `tenancy.policy_name` is written, for errors about its result.
    policy_name_origin: Option<Origin>,
    roles: Vec<RoleSpec>,
    tables: Vec<TableSpec>,
    policy_docs: Vec<PendingPolicy>,
    cross_tenant: Vec<CrossTenantPredicate>,
    exceptions: Vec<AcceptedFinding>,
    maintenance: Vec<MaintenanceAccess>,
    no_tenant_access: Vec<NoTenantAccess>,
    backup_roles: Vec<BackupRole>,
    bypass_roles: Vec<BypassRole>,
    grants: Vec<GrantSpec>,
    resolvers: Vec<PendingResolver>,
}

/// A resolver whose defaults (schema, tenant column) come from the tenancy,
/// which may be in another file: completed in `finish`.
struct PendingResolver {
    spec: ResolverSpec,
    schema_given: bool,
    tenant_column_given: bool,
    role_origins: Vec<Origin>,
}

/// Turns a `Spanned` into an origin in `file`.
struct Locator<'a> {
    file: &'a Path,
    lines: Lines<'a>,
}

impl Locator<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Origin {
        Origin::new(
            self.file,
            &self.lines,
            spanned.referenced.line(),
            spanned.referenced.column(),
        )
    }

    /// A name as written, checked to be a usable PostgreSQL identifier.
    fn identifier(&self, spanned: &Spanned<String>, what: &str) -> Result<String, SpecError> {
        check_identifier(&spanned.value, what).map_err(|m| SpecError::at(&self.at(spanned), m))?;
        Ok(spanned.value.clone())
    }

    fn expression(&self, spanned: &Spanned<String>, what: &str) -> Result<Expression, SpecError> {
        Expression::parse(&spanned.value).map_err(|(offset, why)| {
            SpecError::at(
                &self.within(spanned, offset),
                format!("invalid {what} expression: {why}"),
            )
        })
    }

    /// The position of byte `offset` of a scalar's value, where the source
    /// shows it verbatim on the value's first line (plain, block and simple
    /// quoted scalars); otherwise the value's own position.
    fn within(&self, spanned: &Spanned<String>, offset: usize) -> Origin {
        let mut origin = self.at(spanned);
        let Some(before) = spanned.value.get(..offset) else {
            return origin;
        };
        if before.contains('\n') {
            return origin;
        }
        let start = origin.column.saturating_sub(1) as usize;
        let line = &origin.source_line;
        let Some(rest) = line.char_indices().nth(start).map(|(i, _)| &line[i..]) else {
            return origin;
        };
        let shift = if rest.starts_with(before) {
            0
        } else if rest.starts_with(['"', '\'']) && rest[1..].starts_with(before) {
            1
        } else {
            return origin;
        };
        origin.column += (shift + before.chars().count()) as u64;
        origin
    }
}

fn check_identifier(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if name.contains('\0') {
        return Err(format!("{what} contains a NUL character"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "{what} `{name}` is {} bytes long; PostgreSQL names are at most {MAX_IDENTIFIER_BYTES} bytes",
            name.len()
        ));
    }
    Ok(())
}

/// `name` or `schema.name`; a name with more dots needs the map form.
fn split_qualified(text: &str, default_schema: &str) -> Result<(String, String), String> {
    match text.split('.').collect::<Vec<_>>()[..] {
        [name] => Ok((default_schema.to_string(), name.to_string())),
        [schema, name] => Ok((schema.to_string(), name.to_string())),
        _ => Err(format!(
            "`{text}` has more than one `.`; write `{{ schema: …, name: … }}` for names that contain dots"
        )),
    }
}

impl Builder {
    fn add(&mut self, file: &Path, text: &str, doc: Document) -> Result<(), SpecError> {
        let at = Locator {
            file,
            lines: Lines::new(text),
        };
        if let Some(tenancy) = doc.tenancy {
            let origin = at.at(&tenancy);
            if let Some((_, first)) = &self.tenancy {
                return Err(SpecError::at(
                    &origin,
                    format!("`tenancy` is declared twice (first at {first})"),
                ));
            }
            self.policy_name_origin = tenancy.value.policy_name.as_ref().map(|p| at.at(p));
            self.tenancy = Some((tenancy_from(&at, tenancy.value)?, origin));
        }
        for role in doc.roles {
            self.roles.push(role_from(&at, role)?);
        }
        for table in doc.tables {
            self.tables.push(table_from(&at, table)?);
        }
        for policy in doc.policies {
            let (using, with_check) = policy_expressions(&at, &policy.value)?;
            self.policy_docs.push(PendingPolicy {
                origin: at.at(&policy),
                table_origins: policy.value.tables.iter().map(|t| at.at(t)).collect(),
                doc: policy.value,
                using,
                with_check,
            });
        }
        for predicate in doc.cross_tenant {
            self.cross_tenant.push(cross_tenant_from(&at, predicate)?);
        }
        for entry in doc.maintenance {
            self.maintenance.push(maintenance_from(&at, entry)?);
        }
        for entry in doc.resolvers {
            self.resolvers.push(resolver_from(&at, entry)?);
        }
        for role in doc.no_tenant_access {
            self.no_tenant_access.push(NoTenantAccess {
                role: at.identifier(&role, "the no_tenant_access role")?,
                origin: at.at(&role),
            });
        }
        for entry in doc.backup_roles {
            self.backup_roles.push(backup_role_from(&at, entry)?);
        }
        for entry in doc.bypass_roles {
            self.bypass_roles.push(bypass_role_from(&at, entry)?);
        }
        for entry in doc.grants {
            self.grants.push(grant_from(&at, entry)?);
        }
        for exception in doc.exceptions {
            let origin = at.at(&exception);
            if exception.value.reason.trim().is_empty() {
                return Err(SpecError::at(
                    &origin,
                    "an accepted exception needs a `reason`",
                ));
            }
            self.exceptions.push(AcceptedFinding {
                finding: exception.value.finding,
                object: exception.value.object,
                reason: exception.value.reason,
                origin,
            });
        }
        Ok(())
    }

    fn finish(self, hash: String) -> Result<Spec, SpecError> {
        let tenancy = match self.tenancy {
            Some((t, _)) => t,
            None => tenancy_defaults(),
        };
        let mut tables = self.tables;
        for table in &mut tables {
            if table.column.is_empty() {
                table.column = tenancy.column.clone();
            }
            table.index_columns.insert(0, table.column.clone());
            table
                .default_from_context
                .get_or_insert(tenancy.default_from_context);
            if table.policy_name.is_empty() {
                table.policy_name = tenancy.policy_name.clone();
                let origin = self.policy_name_origin.as_ref().unwrap_or(&table.origin);
                check_tenant_policy_name(table).map_err(|m| SpecError::at(origin, m))?;
            }
        }
        check_unique(
            tables.iter().map(|t| (t.name.to_string(), &t.origin)),
            "table",
        )?;
        check_unique(
            self.roles.iter().map(|r| (r.name.clone(), &r.origin)),
            "role",
        )?;
        check_unique(
            self.cross_tenant
                .iter()
                .map(|c| (c.name.clone(), &c.origin)),
            "cross_tenant entry",
        )?;
        check_unique(
            self.maintenance.iter().map(|m| (m.role.clone(), &m.origin)),
            "maintenance role",
        )?;
        check_maintenance_roles(&self.maintenance, &self.roles)?;
        check_scopes(&tables, &self.roles, &self.cross_tenant)?;
        let resolvers = finish_resolvers(self.resolvers, &tenancy, &self.roles)?;
        check_unique(
            self.no_tenant_access
                .iter()
                .map(|n| (n.role.clone(), &n.origin)),
            "no_tenant_access role",
        )?;
        check_no_tenant_access(&self.no_tenant_access, &self.roles, &self.maintenance)?;
        check_unique(
            self.backup_roles
                .iter()
                .map(|b| (b.role.clone(), &b.origin)),
            "backup role",
        )?;
        check_unique(
            self.bypass_roles
                .iter()
                .map(|b| (b.role.clone(), &b.origin)),
            "bypass role",
        )?;
        check_bypass_roles(&self.bypass_roles, &self.roles, &self.no_tenant_access)?;
        check_grants_leave_tenant_tables(&self.grants, &tables)?;
        if !self.roles.iter().any(|r| r.cross_tenant.is_none()) {
            return Err(SpecError::general(
                "no runtime role is declared: add one under `roles:` (the role your application connects as), without `cross_tenant`",
            ));
        }

        let declared: BTreeSet<&QualifiedName> = tables.iter().map(|t| &t.name).collect();
        let mut policies = Vec::new();
        for pending in self.policy_docs {
            policies.push(policy_from(pending, &declared)?);
        }
        check_policy_names(
            &tables,
            &policies,
            &self.roles,
            &self.cross_tenant,
            &self.maintenance,
        )?;

        Ok(Spec {
            tenancy,
            roles: self.roles,
            tables,
            policies,
            cross_tenant: self.cross_tenant,
            exceptions: self.exceptions,
            maintenance: self.maintenance,
            resolvers,
            no_tenant_access: self.no_tenant_access,
            backup_roles: self.backup_roles,
            bypass_roles: self.bypass_roles,
            grants: self.grants,
            hash,
        })
    }
}

/// A role that must reach no tenant's rows cannot also be declared to reach them.
fn check_no_tenant_access(
    none: &[NoTenantAccess],
    roles: &[RoleSpec],
    maintenance: &[MaintenanceAccess],
) -> Result<(), SpecError> {
    for entry in none {
        let declared = roles
            .iter()
            .map(|r| (&r.name, &r.origin, "`roles:`"))
            .chain(
                maintenance
                    .iter()
                    .map(|m| (&m.role, &m.origin, "`maintenance:`")),
            );
        for (name, origin, key) in declared {
            if *name == entry.role {
                return Err(SpecError::at(
                    &entry.origin,
                    format!(
                        "role `{name}` is listed under no_tenant_access but declared with tenant access under {key} at {origin}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_unique<'a>(
    items: impl Iterator<Item = (String, &'a Origin)>,
    what: &str,
) -> Result<(), SpecError> {
    let mut seen: BTreeMap<String, &Origin> = BTreeMap::new();
    for (key, origin) in items {
        if let Some(first) = seen.get(&key) {
            return Err(SpecError::at(
                origin,
                format!("duplicate {what} `{key}` (first declared at {first})"),
            ));
        }
        seen.insert(key, origin);
    }
    Ok(())
}

/// Policy names are per table; generated names must not be taken by extras.
fn check_policy_names(
    tables: &[TableSpec],
    policies: &[PolicySpec],
    roles: &[RoleSpec],
    predicates: &[CrossTenantPredicate],
    maintenance: &[MaintenanceAccess],
) -> Result<(), SpecError> {
    let mut generated: BTreeSet<String> = BTreeSet::new();
    generated.extend(maintenance.iter().map(MaintenanceAccess::policy));
    for role in roles.iter().filter(|r| r.cross_tenant.is_some()) {
        generated.insert(format!("{CROSS_TENANT_PREFIX}{}", role.name));
    }
    for predicate in predicates {
        generated.insert(format!("{CROSS_TENANT_PREFIX}{}", predicate.name));
    }
    let mut tenant_policies: BTreeMap<&QualifiedName, String> = BTreeMap::new();
    for table in tables {
        let name = table.tenant_policy();
        if generated.contains(&name) {
            return Err(SpecError::at(
                &table.origin,
                format!(
                    "the tenant policy of table {} would be named `{name}`, which a cross_tenant or maintenance policy uses; choose another `policy_name`",
                    table.name
                ),
            ));
        }
        tenant_policies.insert(&table.name, name);
    }
    let mut seen: BTreeMap<(QualifiedName, String), &Origin> = BTreeMap::new();
    for policy in policies {
        let takes_tenant_policy = policy
            .tables
            .iter()
            .any(|t| tenant_policies.get(t) == Some(&policy.name));
        if generated.contains(&policy.name) || takes_tenant_policy {
            return Err(SpecError::at(
                &policy.origin,
                format!(
                    "policy name `{}` is one rlsctl generates; choose another name",
                    policy.name
                ),
            ));
        }
        for table in &policy.tables {
            let key = (table.clone(), policy.name.clone());
            if let Some(first) = seen.get(&key) {
                return Err(SpecError::at(
                    &policy.origin,
                    format!(
                        "policy `{}` is declared twice on table {table} (first at {first})",
                        policy.name
                    ),
                ));
            }
            seen.insert(key, &policy.origin);
        }
    }
    Ok(())
}

fn tenancy_defaults() -> Tenancy {
    Tenancy {
        column: "tenant_id".into(),
        column_type: TenantType::Uuid,
        source: TenantSource::Setting("app.current_tenant_id".into()),
        function: QualifiedName::new("rls", "current_tenant_id"),
        function_managed: true,
        when_unbound: WhenUnbound::Deny,
        policy_name: TENANT_POLICY.to_string(),
        default_from_context: false,
        inline: None,
        policy_to: PolicyTo::RuntimeRoles,
    }
}

/// A tenant policy name or pattern: `{table}` is its only placeholder.
fn check_policy_pattern(pattern: &str) -> Result<(), String> {
    if pattern.replace(TABLE_PLACEHOLDER, "").contains(['{', '}']) {
        return Err(format!(
            "`{pattern}`: the only placeholder a policy name may contain is `{TABLE_PLACEHOLDER}`"
        ));
    }
    // The shortest table name a pattern can meet.
    check_identifier(&policy_name_for(pattern, "t"), "the tenant policy name")
}

/// The table's tenant policy name, once its pattern meets the table's name.
fn check_tenant_policy_name(table: &TableSpec) -> Result<(), String> {
    check_identifier(
        &table.tenant_policy(),
        &format!("the tenant policy name of table {}", table.name),
    )
}

fn tenancy_from(at: &Locator, doc: TenancyDoc) -> Result<Tenancy, SpecError> {
    let defaults = tenancy_defaults();
    let column = match &doc.column {
        Some(c) => at.identifier(c, "the tenant column")?,
        None => defaults.column,
    };
    let (source, source_origin) = match &doc.source {
        None => (defaults.source, None),
        Some(source) => (source_from(at, source)?, Some(at.at(source))),
    };
    let (function, function_managed) = match &doc.function {
        None => (defaults.function, defaults.function_managed),
        Some(f) => (
            function_name(at, f)?,
            f.value.managed.unwrap_or(defaults.function_managed),
        ),
    };
    let policy_name = match &doc.policy_name {
        None => defaults.policy_name,
        Some(p) => {
            check_policy_pattern(&p.value).map_err(|m| SpecError::at(&at.at(p), m))?;
            p.value.clone()
        }
    };
    let inline = match (&doc.inline, &doc.function) {
        (None, _) => None,
        (Some(inline), Some(_)) => {
            return Err(SpecError::at(
                &at.at(inline),
                "`inline` and `function` exclude each other: the tenant policies either compare the column with an expression or call a context function",
            ));
        }
        (Some(inline), None) => Some(at.expression(inline, "`inline`")?),
    };
    // Tenants that are roles: each policy compares the column with the
    // role's name, inline, and there is no context function.
    let inline = match (&source, source_origin) {
        (TenantSource::Role(role), Some(origin)) => {
            let clash = if doc.function.is_some() {
                Some("`function`")
            } else if doc.inline.is_some() {
                Some("`inline`")
            } else if doc.default_from_context == Some(true) {
                Some("`default_from_context`")
            } else {
                None
            };
            if let Some(key) = clash {
                return Err(SpecError::at(
                    &origin,
                    format!(
                        "`source: {}` excludes {key}: the tenant policies compare the column with the role's name, so there is no context function",
                        role.sql()
                    ),
                ));
            }
            Some(Expression::trusted(role.sql().to_string()))
        }
        _ => inline,
    };
    Ok(Tenancy {
        inline,
        policy_to: doc.policy_to.unwrap_or(defaults.policy_to),
        column,
        column_type: doc.column_type.unwrap_or(defaults.column_type),
        source,
        function,
        function_managed,
        when_unbound: doc.when_unbound.unwrap_or(defaults.when_unbound),
        policy_name,
        default_from_context: doc
            .default_from_context
            .unwrap_or(defaults.default_from_context),
    })
}

fn function_name(at: &Locator, doc: &Spanned<FunctionDoc>) -> Result<QualifiedName, SpecError> {
    let (text, origin) = match (&doc.value.bare_name, &doc.value.name) {
        (Some(bare), _) => (bare, at.at(doc)),
        (None, Some(name)) => (&name.value, at.at(name)),
        (None, None) => {
            return Err(SpecError::at(
                &at.at(doc),
                "the context function needs a `name`",
            ));
        }
    };
    let (schema, name) = split_qualified(text, "").map_err(|m| SpecError::at(&origin, m))?;
    if schema.is_empty() {
        return Err(SpecError::at(
            &origin,
            "the context function needs a schema, e.g. `rls.current_tenant_id`",
        ));
    }
    for part in [&schema, &name] {
        check_identifier(part, "the context function name")
            .map_err(|m| SpecError::at(&origin, m))?;
    }
    Ok(QualifiedName::new(schema, name))
}

fn source_from(at: &Locator, source: &Spanned<SourceDoc>) -> Result<TenantSource, SpecError> {
    if let Some(role) = &source.value.role {
        return match role.as_str() {
            // The same function under the SQL standard's other name.
            "current_user" | "current_role" => Ok(TenantSource::Role(SessionRole::CurrentUser)),
            "session_user" => Ok(TenantSource::Role(SessionRole::SessionUser)),
            other => Err(SpecError::at(
                &at.at(source),
                format!(
                    "`source: {other}`: the plain form names the role itself (`current_user`, `current_role` or `session_user`); a setting is written `source: {{ setting: app.current_tenant_id }}`"
                ),
            )),
        };
    }
    let custom_setting = |s: &Spanned<String>| -> Result<String, SpecError> {
        // Only dotted names are custom settings an application may define.
        if !s.value.contains('.') || s.value.starts_with('.') || s.value.ends_with('.') {
            return Err(SpecError::at(
                &at.at(s),
                format!(
                    "`{}` is not a custom setting name: use a dotted name such as `app.current_tenant_id`",
                    s.value
                ),
            ));
        }
        Ok(s.value.clone())
    };
    match (&source.value.setting, &source.value.jwt_claim) {
        (Some(setting), None) => {
            if let Some(extra) = &source.value.claims_setting {
                return Err(SpecError::at(
                    &at.at(extra),
                    "`claims_setting` only goes with `jwt_claim`",
                ));
            }
            Ok(TenantSource::Setting(custom_setting(setting)?))
        }
        (None, Some(claim)) => {
            if claim.value.is_empty() {
                return Err(SpecError::at(&at.at(claim), "the JWT claim name is empty"));
            }
            let claims_setting = match &source.value.claims_setting {
                Some(s) => custom_setting(s)?,
                None => "request.jwt.claims".to_string(),
            };
            Ok(TenantSource::JwtClaim {
                claims_setting,
                claim: claim.value.clone(),
            })
        }
        _ => Err(SpecError::at(
            &at.at(source),
            "`source` needs exactly one of `setting` (a transaction-local setting) or `jwt_claim`",
        )),
    }
}

fn role_from(at: &Locator, role: Spanned<RoleDoc>) -> Result<RoleSpec, SpecError> {
    let origin = at.at(&role);
    let doc = role.value;
    let name = at.identifier(&doc.name, "the role name")?;
    if name.starts_with("pg_") {
        return Err(SpecError::at(
            &at.at(&doc.name),
            format!("role names starting with `pg_` are reserved by PostgreSQL: `{name}`"),
        ));
    }
    if doc.cross_tenant.is_some() && doc.reason.as_deref().unwrap_or("").trim().is_empty() {
        return Err(SpecError::at(
            &origin,
            format!(
                "role `{name}` crosses tenants: say why with `reason:` so the exception is on record"
            ),
        ));
    }
    let password_env = match doc.password_env {
        Some(env) if !doc.login => {
            return Err(SpecError::at(
                &at.at(&env),
                format!("role `{name}` has `password_env` but no `login: true`"),
            ));
        }
        Some(env) => {
            let valid = !env.value.is_empty()
                && env
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(SpecError::at(
                    &at.at(&env),
                    format!("`{}` is not an environment variable name", env.value),
                ));
            }
            Some(env.value)
        }
        None => None,
    };
    let commands = doc
        .commands
        .map(|list| {
            let commands = expand_commands(list.value.clone());
            let writes = commands.iter().any(|c| *c != Command::Select);
            if doc.cross_tenant == Some(Access::Read) && writes {
                return Err(SpecError::at(
                    &at.at(&list),
                    format!(
                        "role `{name}` reads across tenants (`cross_tenant: read`): its `commands` can only be [select]"
                    ),
                ));
            }
            if commands.is_empty() {
                return Err(SpecError::at(
                    &at.at(&list),
                    format!("role `{name}`: `commands` lists nothing; leave the role out of the spec instead"),
                ));
            }
            Ok(commands)
        })
        .transpose()?;
    let scope = Scope {
        tables: scope_tables(at, doc.tables.as_deref())?,
        commands,
    };
    Ok(RoleSpec {
        name,
        login: doc.login,
        password_env,
        cross_tenant: doc.cross_tenant,
        reason: doc.reason,
        scope,
        origin,
    })
}

/// A `tables:` list narrowing a role or predicate; checked against the
/// declared tables in `finish`.
fn scope_tables(
    at: &Locator,
    list: Option<&[Spanned<String>]>,
) -> Result<Option<Vec<(QualifiedName, Origin)>>, SpecError> {
    let Some(list) = list else {
        return Ok(None);
    };
    let mut tables = Vec::new();
    for table in list {
        let origin = at.at(table);
        let (schema, name) =
            split_qualified(&table.value, "public").map_err(|m| SpecError::at(&origin, m))?;
        tables.push((QualifiedName::new(schema, name), origin));
    }
    Ok(Some(tables))
}

/// Every table a `tables:` list names must be declared.
fn check_scopes(
    tables: &[TableSpec],
    roles: &[RoleSpec],
    predicates: &[CrossTenantPredicate],
) -> Result<(), SpecError> {
    let scopes = roles
        .iter()
        .map(|r| (format!("role `{}`", r.name), &r.scope))
        .chain(
            predicates
                .iter()
                .map(|p| (format!("cross_tenant `{}`", p.name), &p.scope)),
        );
    for (owner, scope) in scopes {
        for (name, origin) in scope.tables.iter().flatten() {
            if !tables.iter().any(|t| &t.name == name) {
                return Err(SpecError::at(
                    origin,
                    format!("{owner} names table {name}, which is not declared under `tables:`"),
                ));
            }
        }
    }
    Ok(())
}

fn table_from(at: &Locator, table: Spanned<TableDoc>) -> Result<TableSpec, SpecError> {
    let origin = at.at(&table);
    let doc = table.value;
    let name = match (&doc.bare_name, &doc.name, &doc.schema) {
        (Some(bare), _, _) => {
            let (schema, name) =
                split_qualified(bare, "public").map_err(|m| SpecError::at(&origin, m))?;
            for part in [&schema, &name] {
                check_identifier(part, "the table name").map_err(|m| SpecError::at(&origin, m))?;
            }
            QualifiedName::new(schema, name)
        }
        (None, Some(name), schema) => {
            // In the map form the name is taken whole; dots and all.
            let name = at.identifier(name, "the table name")?;
            let schema = match schema {
                Some(s) => at.identifier(s, "the schema name")?,
                None => "public".to_string(),
            };
            QualifiedName::new(schema, name)
        }
        (None, None, _) => return Err(SpecError::at(&origin, "a table entry needs a `name`")),
    };
    let column = match &doc.column {
        Some(c) => at.identifier(c, "the tenant column")?,
        None => String::new(), // filled with the tenancy default in `finish`
    };
    let commands: BTreeSet<Command> = match doc.commands {
        None => every_command(),
        Some(list) => expand_commands(list),
    };
    let mut index_columns = Vec::new();
    for column in &doc.index {
        index_columns.push(at.identifier(column, "the index column")?);
    }
    let backfill = doc
        .backfill
        .as_ref()
        .map(|b| backfill_from(at, b))
        .transpose()?;
    let mut probe_values = Vec::new();
    for (column, value) in &doc.probe_values {
        probe_values.push(crate::spec::ProbeValue {
            column: at.identifier(column, "a `probe_values` column")?,
            value: value.value.clone(),
            origin: at.at(column),
        });
    }
    probe_values.sort_by(|a, b| a.column.cmp(&b.column));
    let mut table = TableSpec {
        name,
        column,
        commands,
        index_columns,
        backfill,
        policy_name: String::new(), // the tenancy's unless set here; see `finish`
        default_from_context: doc.default_from_context, // else the tenancy's; see `finish`
        probe_values,
        origin,
    };
    if let Some(p) = &doc.policy_name {
        check_policy_pattern(&p.value).map_err(|m| SpecError::at(&at.at(p), m))?;
        table.policy_name = p.value.clone();
        check_tenant_policy_name(&table).map_err(|m| SpecError::at(&at.at(p), m))?;
    }
    Ok(table)
}

fn backfill_from(at: &Locator, doc: &Spanned<BackfillDoc>) -> Result<Backfill, SpecError> {
    let b = &doc.value;
    if let (Some(scope), None) = (&b.scope_foreign_key, &b.via) {
        return Err(SpecError::at(
            &at.at(scope),
            "`scope_foreign_key` goes with `via`: only a backfill through a foreign key has one to scope",
        ));
    }
    match (&b.via, &b.constant, &b.expression) {
        (Some(via), None, None) if !via.is_empty() => Ok(Backfill::Via {
            keys: via
                .iter()
                .map(|c| at.identifier(c, "a `via` column"))
                .collect::<Result<_, _>>()?,
            scope_foreign_key: b.scope_foreign_key.as_ref().is_none_or(|s| s.value),
        }),
        (None, Some(constant), None) => Ok(Backfill::Constant(constant.value.clone())),
        (None, None, Some(expression)) => Ok(Backfill::Expression(
            at.expression(expression, "`backfill`")?,
        )),
        _ => Err(SpecError::at(
            &at.at(doc),
            "`backfill` needs exactly one of `via: [fk_column, …]`, `constant: TENANT` or `expression: SQL`",
        )),
    }
}

fn policy_expressions(
    at: &Locator,
    doc: &PolicyDoc,
) -> Result<(Option<Expression>, Option<Expression>), SpecError> {
    let using = doc
        .using
        .as_ref()
        .map(|u| at.expression(u, "`using`"))
        .transpose()?;
    let with_check = doc
        .with_check
        .as_ref()
        .map(|w| at.expression(w, "`with_check`"))
        .transpose()?;
    Ok((using, with_check))
}

fn policy_from(
    pending: PendingPolicy,
    declared: &BTreeSet<&QualifiedName>,
) -> Result<PolicySpec, SpecError> {
    let PendingPolicy {
        origin,
        doc,
        table_origins,
        using,
        with_check,
    } = pending;
    let name = doc.name.value.clone();
    check_identifier(&name, "the policy name").map_err(|m| SpecError::at(&origin, m))?;
    let mut tables = Vec::new();
    for (table, table_origin) in doc.tables.iter().zip(&table_origins) {
        let (schema, table_name) =
            split_qualified(&table.value, "public").map_err(|m| SpecError::at(table_origin, m))?;
        let qualified = QualifiedName::new(schema, table_name);
        if !declared.contains(&qualified) {
            let names: Vec<String> = declared.iter().map(|t| t.to_string()).collect();
            return Err(SpecError::at(
                table_origin,
                format!(
                    "policy `{name}` is on table {qualified}, which is not declared under `tables:`{}",
                    crate::suggest::did_you_mean(&qualified.to_string(), &names)
                ),
            ));
        }
        tables.push(qualified);
    }
    if tables.is_empty() {
        return Err(SpecError::at(
            &origin,
            format!("policy `{name}` lists no `tables`"),
        ));
    }
    // PostgreSQL's own rules for which clause each command takes.
    match doc.command {
        Command::Select | Command::Delete if with_check.is_some() => {
            return Err(SpecError::at(
                &origin,
                format!(
                    "policy `{name}`: a {:?} policy cannot have `with_check`",
                    doc.command
                )
                .to_lowercase(),
            ));
        }
        Command::Insert if using.is_some() => {
            return Err(SpecError::at(
                &origin,
                format!("policy `{name}`: an insert policy takes `with_check`, not `using`"),
            ));
        }
        _ => {}
    }
    if using.is_none() && with_check.is_none() {
        return Err(SpecError::at(
            &origin,
            format!("policy `{name}` needs `using`, `with_check` or both"),
        ));
    }
    let mut roles = Vec::new();
    for role in &doc.roles {
        check_identifier(&role.value, "the role name").map_err(|m| SpecError::at(&origin, m))?;
        // PUBLIC is a keyword for every role, whatever its case, not a role name.
        if role.value.eq_ignore_ascii_case("public") {
            roles.push("PUBLIC".to_string());
        } else {
            roles.push(role.value.clone());
        }
    }
    Ok(PolicySpec {
        name,
        tables,
        command: doc.command,
        kind: doc.kind,
        roles,
        using,
        with_check,
        origin,
    })
}

fn cross_tenant_from(
    at: &Locator,
    doc: Spanned<CrossTenantDoc>,
) -> Result<CrossTenantPredicate, SpecError> {
    let origin = at.at(&doc);
    let doc = doc.value;
    let name = at.identifier(&doc.name, "the cross_tenant name")?;
    let when = at.expression(&doc.when, "`when`")?;
    let reason = doc.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(SpecError::at(
            &origin,
            format!("cross_tenant `{name}`: say why with `reason:` so the exception is on record"),
        ));
    }
    Ok(CrossTenantPredicate {
        name,
        when,
        access: doc.access,
        reason,
        scope: Scope {
            tables: scope_tables(at, doc.tables.as_deref())?,
            commands: None,
        },
        origin,
    })
}

fn resolver_from(at: &Locator, doc: Spanned<ResolverDoc>) -> Result<PendingResolver, SpecError> {
    let origin = at.at(&doc);
    let doc = doc.value;
    let (schema, name) = match doc.name.value.split_once('.') {
        Some(_) => {
            split_qualified(&doc.name.value, "").map_err(|m| SpecError::at(&at.at(&doc.name), m))?
        }
        None => (String::new(), doc.name.value.clone()),
    };
    for part in [&schema, &name].into_iter().filter(|p| !p.is_empty()) {
        check_identifier(part, "the resolver name")
            .map_err(|m| SpecError::at(&at.at(&doc.name), m))?;
    }
    let (table_schema, table) = split_qualified(&doc.table.value, "public")
        .map_err(|m| SpecError::at(&at.at(&doc.table), m))?;
    for part in [&table_schema, &table] {
        check_identifier(part, "the table name")
            .map_err(|m| SpecError::at(&at.at(&doc.table), m))?;
    }
    let key = at.identifier(&doc.key, "the key column")?;
    let tenant_column = match &doc.tenant_column {
        Some(c) => at.identifier(c, "the tenant column")?,
        None => String::new(),
    };
    if doc.roles.is_empty() {
        return Err(SpecError::at(
            &origin,
            format!("resolver `{name}` lists no `roles`: name the roles that may call it"),
        ));
    }
    let mut roles = Vec::new();
    let mut role_origins = Vec::new();
    for role in &doc.roles {
        roles.push(at.identifier(role, "the role name")?);
        role_origins.push(at.at(role));
    }
    Ok(PendingResolver {
        schema_given: !schema.is_empty(),
        tenant_column_given: !tenant_column.is_empty(),
        spec: ResolverSpec {
            name: QualifiedName::new(schema, name),
            table: QualifiedName::new(table_schema, table),
            key,
            key_type: doc.key_type.unwrap_or(TenantType::Text),
            tenant_column,
            roles,
            origin,
        },
        role_origins,
    })
}

/// Fills a resolver's defaults from the tenancy and checks that it may be
/// called only by declared roles.
fn finish_resolvers(
    pending: Vec<PendingResolver>,
    tenancy: &Tenancy,
    roles: &[RoleSpec],
) -> Result<Vec<ResolverSpec>, SpecError> {
    let mut out: Vec<ResolverSpec> = Vec::new();
    for p in pending {
        let mut spec = p.spec;
        if !p.schema_given {
            spec.name.schema = tenancy.function.schema.clone();
        }
        if !p.tenant_column_given {
            spec.tenant_column = tenancy.column.clone();
        }
        for (role, origin) in spec.roles.iter().zip(&p.role_origins) {
            if !roles.iter().any(|r| &r.name == role) {
                return Err(SpecError::at(
                    origin,
                    format!(
                        "resolver `{}` names role `{role}`, which is not declared under `roles:`",
                        spec.name
                    ),
                ));
            }
        }
        if spec.name == tenancy.function {
            return Err(SpecError::at(
                &spec.origin,
                format!("resolver `{}` has the context function's name", spec.name),
            ));
        }
        if let Some(first) = out.iter().find(|r| r.name == spec.name) {
            return Err(SpecError::at(
                &spec.origin,
                format!(
                    "resolver `{}` is declared twice (first at {})",
                    spec.name, first.origin
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// A maintenance role is the admin's, not the application's: were it also a
/// runtime or cross-tenant role, its open policy would reach the application.
fn check_maintenance_roles(
    maintenance: &[MaintenanceAccess],
    roles: &[RoleSpec],
) -> Result<(), SpecError> {
    for entry in maintenance {
        not_an_application_role(
            "maintenance",
            &entry.role,
            &entry.origin,
            roles,
            "a maintenance role is an existing admin role the application never connects as; declare a separate role",
        )?;
    }
    Ok(())
}

/// Refuses a role declared for another purpose (`what`: maintenance, bypass)
/// that is also under `roles:`, where the application connects as it.
fn not_an_application_role(
    what: &str,
    name: &str,
    origin: &Origin,
    roles: &[RoleSpec],
    why: &str,
) -> Result<(), SpecError> {
    let Some(role) = roles.iter().find(|r| r.name == name) else {
        return Ok(());
    };
    let kind = if role.cross_tenant.is_some() {
        "a cross_tenant role"
    } else {
        "a runtime role"
    };
    Err(SpecError::at(
        origin,
        format!(
            "{what} role `{name}` is also declared under `roles:` (at {}) as {kind}: {why}",
            role.origin
        ),
    ))
}

fn backup_role_from(at: &Locator, doc: Spanned<BackupRoleDoc>) -> Result<BackupRole, SpecError> {
    let entry = at.at(&doc);
    let doc = doc.value;
    let role = at.identifier(&doc.role, "the backup role")?;
    let reason = doc.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(SpecError::at(
            &entry,
            format!("backup role `{role}`: say what it backs up with `reason:`"),
        ));
    }
    Ok(BackupRole {
        role,
        reason,
        origin: at.at(&doc.role),
    })
}

fn bypass_role_from(at: &Locator, doc: Spanned<BypassRoleDoc>) -> Result<BypassRole, SpecError> {
    let entry = at.at(&doc);
    let doc = doc.value;
    let role = at.identifier(&doc.role, "the bypass role")?;
    let reason = doc.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(SpecError::at(
            &entry,
            format!(
                "bypass role `{role}` reads every tenant's rows past every policy: say why with `reason:` so the exception is on record"
            ),
        ));
    }
    Ok(BypassRole {
        role,
        reason,
        origin: at.at(&doc.role),
    })
}

/// A bypass role ignores every policy: were it also a runtime or cross-tenant
/// role, the application itself would read every tenant's rows.
fn check_bypass_roles(
    bypass: &[BypassRole],
    roles: &[RoleSpec],
    none: &[NoTenantAccess],
) -> Result<(), SpecError> {
    for entry in bypass {
        if let Some(no_access) = none.iter().find(|n| n.role == entry.role) {
            return Err(SpecError::at(
                &entry.origin,
                format!(
                    "bypass role `{}` is also listed under `no_tenant_access:` (at {}): a role that bypasses every policy cannot be one that must reach no tenant's rows",
                    entry.role, no_access.origin
                ),
            ));
        }
        not_an_application_role(
            "bypass",
            &entry.role,
            &entry.origin,
            roles,
            "a role the application connects as must be subject to the policies; declare a separate role for the bypass",
        )?;
    }
    Ok(())
}

fn grant_from(at: &Locator, doc: Spanned<GrantDoc>) -> Result<GrantSpec, SpecError> {
    let entry = at.at(&doc);
    let doc = doc.value;
    let named: Vec<(GrantKind, &Spanned<String>)> = [
        (GrantKind::Table, &doc.table),
        (GrantKind::Sequence, &doc.sequence),
        (GrantKind::Function, &doc.function),
        (GrantKind::Schema, &doc.schema),
    ]
    .into_iter()
    .filter_map(|(kind, name)| Some((kind, name.as_ref()?)))
    .collect();
    let (kind, name) = match named[..] {
        [one] => one,
        [] => {
            return Err(SpecError::at(
                &entry,
                "a grant names its object with one of `table`, `sequence`, `function`, `schema`",
            ));
        }
        [(first, _), (second, name), ..] => {
            return Err(SpecError::at(
                &at.at(name),
                format!(
                    "a grant names one object, and this entry has both `{}` and `{}`: write one entry per object",
                    first.name(),
                    second.name()
                ),
            ));
        }
    };
    let origin = at.at(name);
    let target = match kind {
        GrantKind::Schema => GrantTarget::schema(&at.identifier(name, "the schema")?),
        GrantKind::Function => function_target(at, name)?,
        GrantKind::Table | GrantKind::Sequence => {
            let (schema, object) =
                split_qualified(&name.value, "public").map_err(|m| SpecError::at(&origin, m))?;
            for part in [&schema, &object] {
                check_identifier(part, &format!("the {} name", kind.name()))
                    .map_err(|m| SpecError::at(&origin, m))?;
            }
            GrantTarget {
                kind,
                name: QualifiedName::new(schema, object),
                arguments: Vec::new(),
            }
        }
    };
    if doc.roles.is_empty() {
        return Err(SpecError::at(
            &entry,
            format!("grant on {target}: name the roles that get it with `roles:`"),
        ));
    }
    let mut roles = Vec::new();
    let mut role_origins = Vec::new();
    for role in &doc.roles {
        roles.push(at.identifier(role, "the grant's role")?);
        role_origins.push(at.at(role));
    }
    if doc.privileges.is_empty() {
        return Err(SpecError::at(
            &entry,
            format!("grant on {target}: list what it grants with `privileges:`"),
        ));
    }
    let known: Vec<String> = kind
        .privileges()
        .iter()
        .map(|p| p.spec_name())
        .chain(["all".to_string()])
        .collect();
    let mut privileges = BTreeSet::new();
    for word in &doc.privileges {
        let text = word.value.trim();
        if text.eq_ignore_ascii_case("all") {
            privileges.extend(kind.privileges().iter().copied());
            continue;
        }
        match ObjectPrivilege::from_keyword(text).filter(|p| kind.privileges().contains(p)) {
            Some(privilege) => {
                privileges.insert(privilege);
            }
            None => {
                return Err(SpecError::at(
                    &at.at(word),
                    format!(
                        "`{text}` is not a privilege on a {}: {}{}",
                        kind.name(),
                        known.join(", "),
                        crate::suggest::did_you_mean(text, &known)
                    ),
                ));
            }
        }
    }
    Ok(GrantSpec {
        target,
        roles,
        privileges,
        origin,
        role_origins,
    })
}

/// `schema.name(type, …)`: the name as written, and the argument types,
/// which the server resolves (bound as values, never spliced into SQL).
/// Types are limited to what type names are made of, so each one reaches
/// the server's type lookup as exactly one name.
fn function_target(at: &Locator, name: &Spanned<String>) -> Result<GrantTarget, SpecError> {
    let text = name.value.trim();
    let origin = at.at(name);
    let Some((function, arguments)) = text.strip_suffix(')').and_then(|rest| rest.split_once('('))
    else {
        return Err(SpecError::at(
            &origin,
            format!(
                "function `{text}`: write it with its argument types, e.g. `{0}()` or `{0}(text)`",
                text.split('(').next().unwrap_or(text)
            ),
        ));
    };
    let (schema, function) =
        split_qualified(function.trim(), "public").map_err(|m| SpecError::at(&origin, m))?;
    for part in [&schema, &function] {
        check_identifier(part, "the function name").map_err(|m| SpecError::at(&origin, m))?;
    }
    let mut types = Vec::new();
    if !arguments.trim().is_empty() {
        for argument in arguments.split(',') {
            let argument = argument.trim();
            let plain = |c: char| c.is_alphanumeric() || "_ .[]\"".contains(c);
            if argument.is_empty() || !argument.chars().all(plain) {
                return Err(SpecError::at(
                    &origin,
                    format!(
                        "function `{text}`: `{argument}` is not a type name (write argument types only, e.g. `text`, `integer`, `uuid[]`)"
                    ),
                ));
            }
            types.push(argument.to_string());
        }
    }
    Ok(GrantTarget {
        kind: GrantKind::Function,
        name: QualifiedName::new(schema, function),
        arguments: types,
    })
}

/// A tenant table's grants come from `roles:` and its `commands`: a second
/// source would fight the first on every apply.
fn check_grants_leave_tenant_tables(
    grants: &[GrantSpec],
    tables: &[TableSpec],
) -> Result<(), SpecError> {
    for grant in grants.iter().filter(|g| g.target.kind == GrantKind::Table) {
        if let Some(table) = tables.iter().find(|t| t.name == grant.target.name) {
            return Err(SpecError::at(
                &grant.origin,
                format!(
                    "table {} is a tenant table (declared at {}): its grants come from `roles:` and the table's `commands`, not from `grants:`",
                    table.name, table.origin
                ),
            ));
        }
    }
    Ok(())
}

fn maintenance_from(
    at: &Locator,
    doc: Spanned<MaintenanceDoc>,
) -> Result<MaintenanceAccess, SpecError> {
    let entry = at.at(&doc);
    let doc = doc.value;
    let role = at.identifier(&doc.role, "the maintenance role")?;
    let origin = at.at(&doc.role);
    let policy = format!("{MAINTENANCE_PREFIX}{role}");
    if policy.len() > MAX_IDENTIFIER_BYTES {
        return Err(SpecError::at(
            &origin,
            format!(
                "the maintenance policy of role `{role}` would be named `{policy}`, {} bytes long; PostgreSQL names are at most {MAX_IDENTIFIER_BYTES} bytes",
                policy.len()
            ),
        ));
    }
    let reason = doc.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(SpecError::at(
            &entry,
            format!(
                "maintenance role `{role}` reads every tenant's rows: say why with `reason:` so the exception is on record"
            ),
        ));
    }
    Ok(MaintenanceAccess {
        role,
        access: doc.access,
        reason,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Access;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        load_str(Path::new("policies/app.yaml"), text)
    }

    const MINIMAL: &str = "roles:\n  - name: app_user\ntables:\n  - projects\n";

    #[test]
    fn a_minimal_spec_gets_the_documented_defaults() {
        let spec = parse(MINIMAL).unwrap();
        assert_eq!(spec.tenancy.column, "tenant_id");
        assert_eq!(
            spec.tenancy.function,
            QualifiedName::new("rls", "current_tenant_id")
        );
        assert_eq!(
            spec.tenancy.source,
            TenantSource::Setting("app.current_tenant_id".into())
        );
        assert_eq!(
            spec.tables[0].name,
            QualifiedName::new("public", "projects")
        );
        assert_eq!(spec.tables[0].index_columns, vec!["tenant_id"]);
        assert_eq!(spec.tables[0].commands.len(), 4);
    }

    #[test]
    fn inline_and_function_exclude_each_other_and_inline_is_one_expression() {
        let err = parse(
            "tenancy:\n  function: app.tenant\n  inline: \"current_setting('a.b', true)\"\nroles:\n  - name: a\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("app.yaml:3:"), "{err}");
        assert!(err.contains("exclude each other"), "{err}");
        let err = parse("tenancy:\n  inline: \"1; DROP TABLE x\"\nroles:\n  - name: a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.yaml:2:"), "{err}");
        let spec = parse("tenancy:\n  inline: \"current_setting('a.b', true)::uuid\"\n  policy_to: public\nroles:\n  - name: a\n").unwrap();
        assert_eq!(
            spec.tenancy.inline.unwrap().as_str(),
            "current_setting('a.b', true)::uuid"
        );
        assert_eq!(spec.tenancy.policy_to, PolicyTo::Public);
    }

    #[test]
    fn a_tenancy_keyed_on_current_user_compares_the_column_with_the_role_inline() {
        let spec = parse(
            "tenancy:\n  column: owner\n  type: name\n  source: current_user\nroles:\n  - name: a\n",
        )
        .unwrap();
        assert_eq!(
            spec.tenancy.source,
            TenantSource::Role(SessionRole::CurrentUser)
        );
        assert_eq!(spec.tenancy.inline.unwrap().as_str(), "current_user");
        assert_eq!(spec.tenancy.column_type, TenantType::Name);
        let spec = parse("tenancy:\n  source: current_role\nroles:\n  - name: a\n").unwrap();
        assert_eq!(
            spec.tenancy.source,
            TenantSource::Role(SessionRole::CurrentUser)
        );
        let spec = parse("tenancy:\n  source: session_user\nroles:\n  - name: a\n").unwrap();
        assert_eq!(spec.tenancy.inline.unwrap().as_str(), "session_user");
    }

    #[test]
    fn a_tenancy_keyed_on_the_role_refuses_a_context_function_and_other_words() {
        for (extra, key) in [
            ("  function: app.tenant\n", "`function`"),
            ("  inline: owner_name()\n", "`inline`"),
            ("  default_from_context: true\n", "`default_from_context`"),
        ] {
            let err = parse(&format!(
                "tenancy:\n  source: current_user\n{extra}roles:\n  - name: a\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("app.yaml:2:11"), "{err}");
            assert!(err.contains(&format!("excludes {key}")), "{err}");
        }
        let err = parse("tenancy:\n  source: tenant_id\nroles:\n  - name: a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.yaml:2:11"), "{err}");
        assert!(err.contains("`source: tenant_id`"), "{err}");
    }

    #[test]
    fn probe_values_keep_their_text_and_the_position_of_each_column() {
        let spec = parse(
            "roles:\n  - name: app\ntables:\n  - name: vouchers\n    probe_values:\n      code: ABC-1234\n      amount: 12.50\n      active: true\n",
        )
        .unwrap();
        let values: Vec<(String, String, u64, u64)> = spec.tables[0]
            .probe_values
            .iter()
            .map(|v| {
                (
                    v.column.clone(),
                    v.value.clone(),
                    v.origin.line,
                    v.origin.column,
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("active".into(), "true".into(), 8, 7),
                ("amount".into(), "12.50".into(), 7, 7),
                ("code".into(), "ABC-1234".into(), 6, 7),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_errors_at_their_position() {
        let err = parse("tenancy:\n  colum: tenant_id\nroles:\n  - name: a\n").unwrap_err();
        let origin = err.origin.clone().expect("located");
        assert_eq!((origin.line, origin.column), (2, 3), "{err}");
        assert!(err.message.contains("colum"), "{err}");
        assert!(err.to_string().contains("policies/app.yaml:2:3"), "{err}");
        assert!(err.to_string().contains("  colum: tenant_id"), "{err}");
    }

    #[test]
    fn an_unknown_key_names_the_closest_known_one_and_its_position_once() {
        let err = parse("tenancy:\n  colum: tenant_id\n").unwrap_err();
        assert!(
            err.message
                .starts_with("unknown field `colum`: did you mean `column`?"),
            "{err}"
        );
        let shown = err.to_string();
        assert!(!shown.contains("error"), "{shown}");
        assert!(!shown.contains("line 2 column 3"), "{shown}");
        assert_eq!(shown.matches("app.yaml:2:3").count(), 1, "{shown}");
        let err = parse("roles:\n  - name: a\n    logn: true\n").unwrap_err();
        assert!(err.message.contains("did you mean `login`?"), "{err}");
        let err = parse("roles:\n  - name: a\n    colour: blue\n").unwrap_err();
        assert!(!err.message.contains("did you mean"), "{err}");
        let err = parse("tenancy:\n  type: uuidv7\n").unwrap_err();
        assert!(
            err.message
                .starts_with("unknown value `uuidv7`: did you mean `uuid`?"),
            "{err}"
        );
    }

    #[test]
    fn a_duplicate_key_is_explained_to_the_author() {
        let err = parse("tables:\n  - x\ntables:\n  - y\n").unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(3), "{err}");
        assert!(err.message.starts_with("duplicate key `tables`"), "{err}");
        assert!(!err.message.contains("DuplicateKeyPolicy"), "{err}");
    }

    #[test]
    fn a_policy_on_a_misspelt_table_names_the_declared_one() {
        let err = parse(&format!(
            "{MINIMAL}policies:\n  - name: p\n    tables: [projetcs]\n    using: \"true\"\n"
        ))
        .unwrap_err();
        assert!(
            err.message.contains("did you mean `public.projects`?"),
            "{err}"
        );
    }

    #[test]
    fn an_expression_error_points_at_the_offending_character() {
        for (using, column) in [
            ("\"a = 1 )\"", 19),
            ("a = 1 ) ", 18),
            ("|-\n      name = 'x' ; select 1", 18),
            // Escapes make the written text differ: the value's start.
            ("\"a = '\\x41' )\"", 12),
        ] {
            let text = format!(
                "{MINIMAL}policies:\n  - name: p\n    tables: [projects]\n    using: {using}\n"
            );
            let err = parse(&text).unwrap_err();
            let origin = err.origin.clone().expect("located");
            assert_eq!(origin.column, column, "{using}: {err}");
        }
    }

    #[test]
    fn wrong_types_are_errors_at_their_position() {
        let err = parse("roles:\n  - name: a\n    login: maybe\n").unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(3), "{err}");
    }

    #[test]
    fn duplicate_tables_name_both_places() {
        let err =
            parse("roles:\n  - name: a\ntables:\n  - projects\n  - public.projects\n").unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(5), "{err}");
        assert!(err.message.contains("policies/app.yaml:4"), "{err}");
    }

    #[test]
    fn a_policy_on_an_undeclared_table_is_refused_where_it_names_it() {
        let text = "roles:\n  - name: a\ntables:\n  - projects\npolicies:\n  - name: p\n    tables: [projects, invoices]\n    using: \"true\"\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(7), "{err}");
        assert!(err.message.contains("invoices"), "{err}");
    }

    #[test]
    fn a_spec_past_the_yaml_parsers_default_node_budget_loads() {
        // 130,000 tables, listed again by one policy: 260,000 YAML nodes.
        let names: Vec<String> = (0..130_000).map(|i| format!("t{i}")).collect();
        let mut text = String::from("roles:\n  - name: a\ntables:\n");
        for name in &names {
            text.push_str(&format!("  - {name}\n"));
        }
        text.push_str(&format!(
            "policies:\n  - name: p\n    tables: [{}]\n    using: \"true\"\n",
            names.join(", ")
        ));
        let spec = parse(&text).unwrap();
        assert_eq!(spec.tables.len(), 130_000);
        assert_eq!(spec.policies[0].tables.len(), 130_000);
    }

    #[test]
    fn invalid_identifiers_are_refused() {
        let long = "x".repeat(64);
        let err = parse(&format!("roles:\n  - name: a\ntables:\n  - {long}\n")).unwrap_err();
        assert!(err.message.contains("63 bytes"), "{err}");
        let err = parse("roles:\n  - name: pg_app\n").unwrap_err();
        assert!(err.message.contains("reserved"), "{err}");
    }

    #[test]
    fn an_expression_that_could_break_out_is_refused() {
        let text = "roles:\n  - name: a\ntables:\n  - projects\npolicies:\n  - name: p\n    tables: [projects]\n    using: \"true); DROP TABLE projects; --\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.message.contains("invalid `using`"), "{err}");
    }

    #[test]
    fn cross_tenant_exceptions_need_a_reason() {
        let err = parse("roles:\n  - name: a\n  - name: bi\n    cross_tenant: read\n").unwrap_err();
        assert!(err.message.contains("reason"), "{err}");
    }

    #[test]
    fn a_maintenance_role_is_declared_with_its_access_and_reason() {
        let spec = parse(
            "roles:\n  - name: app\nmaintenance:\n  - role: cloud_admin\n    access: read_write\n    reason: backfills\n",
        )
        .unwrap();
        let m = &spec.maintenance[0];
        assert_eq!(
            (m.role.as_str(), m.access),
            ("cloud_admin", Access::ReadWrite)
        );
        assert_eq!(m.policy(), "maintenance_cloud_admin");
        assert_eq!(m.origin.to_string(), "policies/app.yaml:4:11");
    }

    #[test]
    fn a_backup_role_is_declared_with_a_reason_once() {
        let spec = parse(
            "roles:\n  - name: app\nbackup_roles:\n  - role: dumper\n    reason: nightly pg_dump\n",
        )
        .unwrap();
        assert_eq!(spec.backup_roles[0].role, "dumper");
        assert_eq!(spec.backup_roles[0].reason, "nightly pg_dump");
        let err = parse("roles:\n  - name: app\nbackup_roles:\n  - role: dumper\n").unwrap_err();
        assert!(err.message.contains("`reason:`"), "{err}");
        let err = parse(
            "roles:\n  - name: app\nbackup_roles:\n  - role: d\n    reason: r\n  - role: d\n    reason: r\n",
        )
        .unwrap_err();
        assert!(err.message.contains("duplicate backup role"), "{err}");
        let err = parse(
            "roles:\n  - name: app\nbackup_roles:\n  - role: d\n    reason: r\n    bypass: yes\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bypass"), "{err}");
    }

    #[test]
    fn a_maintenance_role_needs_a_reason_and_an_access() {
        let err = parse("roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: read\n")
            .unwrap_err();
        assert!(
            err.to_string().starts_with("policies/app.yaml:4:5: "),
            "{err}"
        );
        assert!(err.message.contains("reason"), "{err}");
        let err = parse("roles:\n  - name: app\nmaintenance:\n  - role: admin\n    reason: x\n")
            .unwrap_err();
        assert!(err.message.contains("access"), "{err}");
        let err = parse(
            "roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: write\n    reason: x\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("policies/app.yaml:5:"), "{err}");
    }

    #[test]
    fn a_maintenance_role_cannot_be_a_runtime_or_cross_tenant_role() {
        for role in ["app", "bi"] {
            let err = parse(&format!(
                "roles:\n  - name: app\n  - name: bi\n    cross_tenant: read\n    reason: r\nmaintenance:\n  - role: {role}\n    access: read\n    reason: r\n"
            ))
            .unwrap_err();
            assert!(
                err.to_string().starts_with("policies/app.yaml:7:11: ")
                    && err.message.contains("also declared under `roles:`"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_maintenance_entry_rejects_unknown_keys_and_duplicates() {
        let err = parse(
            "roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: read\n    reason: r\n    grant: all\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("policies/app.yaml:7:"), "{err}");
        let err = parse(
            "roles:\n  - name: app\nmaintenance:\n  - role: admin\n    access: read\n    reason: r\n  - role: admin\n    access: read_write\n    reason: r\n",
        )
        .unwrap_err();
        assert!(err.message.contains("duplicate maintenance role"), "{err}");
    }

    #[test]
    fn the_tenant_policy_is_named_by_the_tenancy_pattern_or_the_tables_own_name() {
        let spec = parse(
            "tenancy:\n  policy_name: \"{table}_tenant_policy\"\nroles:\n  - name: a\ntables:\n  - projects\n  - { name: tasks, policy_name: tasks_isolation }\n  - { name: notes, policy_name: \"rls_{table}\" }\n",
        )
        .unwrap();
        let names: Vec<String> = spec.tables.iter().map(TableSpec::tenant_policy).collect();
        assert_eq!(
            names,
            ["projects_tenant_policy", "tasks_isolation", "rls_notes"]
        );
        assert_eq!(
            parse(MINIMAL).unwrap().tables[0].tenant_policy(),
            TENANT_POLICY
        );
    }

    #[test]
    fn a_tenant_policy_name_past_63_bytes_is_refused_where_it_is_written() {
        let long = "t".repeat(50);
        // The tenancy pattern is in another file than the table in real
        // specs too: the error points at the pattern, naming the table.
        let err = parse(&format!(
            "tenancy:\n  policy_name: \"{{table}}_tenant_policy\"\nroles:\n  - name: a\ntables:\n  - {long}\n"
        ))
        .unwrap_err();
        let origin = err.origin.clone().expect("located");
        assert_eq!((origin.line, origin.column), (2, 16), "{err}");
        assert!(err.message.contains("63 bytes"), "{err}");
        assert!(err.message.contains(&long), "{err}");

        let err = parse(&format!(
            "roles:\n  - name: a\ntables:\n  - {{ name: {long}, policy_name: \"{{table}}_isolation_policy\" }}\n"
        ))
        .unwrap_err();
        let origin = err.origin.clone().expect("located");
        assert_eq!(origin.line, 4, "{err}");
        assert!(origin.column > 60, "{err}");
        assert!(err.message.contains("63 bytes"), "{err}");
    }

    #[test]
    fn a_policy_name_pattern_takes_no_other_placeholder() {
        let err =
            parse("tenancy:\n  policy_name: \"{tabel}_p\"\nroles:\n  - name: a\n").unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(2), "{err}");
        assert!(err.message.contains("{table}"), "{err}");
    }

    #[test]
    fn an_extra_policy_cannot_take_its_tables_tenant_policy_name() {
        let text = "tenancy:\n  policy_name: \"{table}_rls\"\nroles:\n  - name: a\ntables:\n  - projects\npolicies:\n  - name: projects_rls\n    tables: [projects]\n    using: \"true\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.message.contains("one rlsctl generates"), "{err}");
        // The default name is free where a table's tenant policy is named otherwise.
        let text = text.replace("name: projects_rls", "name: tenant_isolation");
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn an_adopted_context_function_is_written_as_a_map_with_managed_false() {
        let spec = parse(
            "tenancy:\n  function: { name: app.current_tenant, managed: false }\nroles:\n  - name: a\n",
        )
        .unwrap();
        assert_eq!(
            spec.tenancy.function,
            QualifiedName::new("app", "current_tenant")
        );
        assert!(!spec.tenancy.function_managed);
        assert!(parse(MINIMAL).unwrap().tenancy.function_managed);
        let err = parse(
            "tenancy:\n  function:\n    name: app.current_tenant\n    manage: false\nroles:\n  - name: a\n",
        )
        .unwrap_err();
        assert_eq!(err.origin.as_ref().map(|o| o.line), Some(4), "{err}");
        let err = parse("tenancy:\n  function: { name: current_tenant }\nroles:\n  - name: a\n")
            .unwrap_err();
        assert!(err.message.contains("needs a schema"), "{err}");
    }

    #[test]
    fn hostile_names_are_kept_exactly() {
        let spec = parse(
            "roles:\n  - name: \"app\\\"; DROP ROLE x\"\ntables:\n  - { schema: \"Weird Schema\", name: \"tá.ble;--\" }\n",
        )
        .unwrap();
        assert_eq!(spec.roles[0].name, "app\"; DROP ROLE x");
        assert_eq!(
            spec.tables[0].name,
            QualifiedName::new("Weird Schema", "tá.ble;--")
        );
    }

    #[test]
    fn a_bypass_role_needs_a_reason_and_cannot_be_a_role_the_application_uses() {
        let spec = parse(
            "roles:\n  - name: app\nbypass_roles:\n  - role: service_role\n    reason: backend only\n",
        )
        .unwrap();
        assert_eq!(spec.bypass_roles[0].role, "service_role");
        let err =
            parse("roles:\n  - name: app\nbypass_roles:\n  - role: service_role\n").unwrap_err();
        assert!(err.message.contains("`reason:`"), "{err}");
        let err = parse(
            "roles:\n  - name: app\n  - name: bi\n    cross_tenant: read\n    reason: r\nbypass_roles:\n  - role: bi\n    reason: r\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("p.yaml:7:11"), "{err}");
        assert!(err.message.contains("as a cross_tenant role"), "{err}");
        let err = parse(
            "roles:\n  - name: app\nno_tenant_access: [anon]\nbypass_roles:\n  - role: anon\n    reason: r\n",
        )
        .unwrap_err();
        assert!(err.message.contains("`no_tenant_access:`"), "{err}");
    }

    #[test]
    fn a_grant_names_one_object_of_a_known_kind_with_privileges_that_kind_has() {
        let spec = parse(
            "roles:\n  - name: app\ngrants:\n  - function: ingest.f(text, uuid[])\n    roles: [app]\n    privileges: [execute]\n  - schema: ingest\n    roles: [app]\n    privileges: [all]\n",
        )
        .unwrap();
        let function = &spec.grants[0].target;
        assert_eq!(function.name, QualifiedName::new("ingest", "f"));
        assert_eq!(function.arguments, ["text", "uuid[]"]);
        assert_eq!(spec.grants[1].privileges.len(), 2);

        let refused =
            |yaml: &str| parse(&format!("roles:\n  - name: app\ngrants:\n{yaml}")).unwrap_err();
        let err = refused("  - sequence: s\n    roles: [app]\n    privileges: [execute]\n");
        assert!(
            err.message
                .contains("`execute` is not a privilege on a sequence: usage, select, update, all"),
            "{err}"
        );
        assert!(err.to_string().contains("p.yaml:6:18"), "{err}");
        let err = refused("  - tabel: t\n    roles: [app]\n    privileges: [select]\n");
        assert!(err.to_string().contains("did you mean `table`"), "{err}");
        let err =
            refused("  - table: t\n    schema: s\n    roles: [app]\n    privileges: [select]\n");
        assert!(err.message.contains("both `table` and `schema`"), "{err}");
        let err = refused("  - function: f\n    roles: [app]\n    privileges: [execute]\n");
        assert!(err.message.contains("`f()` or `f(text)`"), "{err}");
        let err = refused(
            "  - function: f(text); DROP TABLE x; --)\n    roles: [app]\n    privileges: [execute]\n",
        );
        assert!(err.message.contains("is not a type name"), "{err}");
        let err = refused("  - table: t\n    privileges: [select]\n");
        assert!(err.message.contains("`roles`"), "{err}");
    }

    #[test]
    fn a_grant_on_a_tenant_table_is_refused_where_it_names_it() {
        let err = parse(
            "roles:\n  - name: app\ntables:\n  - projects\ngrants:\n  - table: public.projects\n    roles: [app]\n    privileges: [truncate]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("p.yaml:6:12"), "{err}");
        assert!(err.message.contains("is a tenant table"), "{err}");
    }
}
