//! The discovered spec as `policies/*.yaml` text. Pure: tested without a
//! database, and the output must load with `spec::load_str` unchanged.

use std::fmt::Write;

use super::{Context, Discovered, DiscoveredPolicy, DiscoveredTable};
use crate::quote::QualifiedName;
use crate::spec::{Access, Command, TenantSource, TenantType};

pub fn render(spec: &Discovered) -> String {
    let mut out = String::new();
    out.push_str(
        "# Written by `rlsctl init --from-db` from the live database, to describe it as it is.\n\
         # Review it, then `rlsctl plan`: against the same database it should show no statement\n\
         # beyond those announced in the TODOs below.\n",
    );
    for todo in &spec.todos {
        comment(&mut out, "", todo);
    }
    out.push('\n');

    let t = &spec.tenancy;
    out.push_str("tenancy:\n");
    let _ = writeln!(out, "  column: {}", scalar(&t.column));
    if let Some(ty) = t.column_type {
        let _ = writeln!(out, "  type: {}", type_name(ty));
    }
    match &t.source {
        Some(TenantSource::Setting(setting)) => {
            let _ = writeln!(out, "  source:\n    setting: {}", scalar(setting));
        }
        Some(TenantSource::JwtClaim {
            claims_setting,
            claim,
        }) => {
            let _ = writeln!(
                out,
                "  source:\n    jwt_claim: {}\n    claims_setting: {}",
                scalar(claim),
                scalar(claims_setting)
            );
        }
        Some(TenantSource::Role(role)) => {
            let _ = writeln!(out, "  source: {}", role.sql());
        }
        None => {}
    }
    match &t.context {
        Context::Function(name) => {
            let _ = writeln!(
                out,
                "  function: {{ name: {}, managed: false }}   # the database's own, adopted: checked, never replaced",
                scalar(&format!("{}.{}", name.schema, name.name))
            );
        }
        Context::Generated { name, error } => {
            let _ = writeln!(
                out,
                "  function: {}   # rlsctl's own, as its policies say",
                scalar(&format!("{}.{}", name.schema, name.name))
            );
            if *error {
                out.push_str("  when_unbound: error\n");
            }
        }
        // `source: current_user` says it: the spec refuses `inline` beside it.
        Context::Inline(_) if matches!(t.source, Some(TenantSource::Role(_))) => {}
        Context::Inline(value) => {
            let _ = writeln!(
                out,
                "  inline: {}   # no context function: the policies compare the column with this",
                scalar(value)
            );
        }
    }
    let _ = writeln!(out, "  policy_name: {}", scalar(&t.policy_name));
    if t.policy_to_public {
        out.push_str("  policy_to: public\n");
    }

    out.push_str("\nroles:\n");
    for role in &spec.roles {
        let _ = writeln!(out, "  - name: {}", scalar(&role.name));
        if role.login {
            out.push_str("    login: true\n");
        }
        if let Some(access) = role.cross_tenant {
            let access = match access {
                Access::Read => "read",
                Access::ReadWrite => "read_write",
            };
            let _ = writeln!(out, "    cross_tenant: {access}");
            comment(
                &mut out,
                "    ",
                "say in `reason` why this role sees every tenant",
            );
            let reason = role.reason.clone().unwrap_or_default();
            let _ = writeln!(out, "    reason: {}", scalar(&reason));
        }
    }

    out.push_str("\ntables:\n");
    for table in &spec.tables {
        for todo in &table.todos {
            comment(&mut out, "  ", todo);
        }
        let _ = writeln!(out, "  - {}", table_entry(table));
    }

    if !spec.policies.is_empty() {
        out.push_str("\npolicies:\n");
        for policy in &spec.policies {
            write_policy(&mut out, policy);
        }
    }
    out
}

fn write_policy(out: &mut String, policy: &DiscoveredPolicy) {
    let _ = writeln!(out, "  - name: {}", scalar(&policy.name));
    let tables: Vec<String> = policy.tables.iter().map(short_name).collect();
    let _ = writeln!(out, "    tables: [{}]", tables.join(", "));
    if policy.command != Command::All {
        let _ = writeln!(out, "    command: {}", command_name(policy.command));
    }
    if !policy.permissive {
        out.push_str("    kind: restrictive\n");
    }
    if let Some(roles) = &policy.roles {
        let roles: Vec<String> = roles.iter().map(|r| scalar(r)).collect();
        let _ = writeln!(out, "    roles: [{}]", roles.join(", "));
    }
    if let Some(using) = &policy.using {
        let _ = writeln!(out, "    using: {}", scalar(using));
    }
    if let Some(check) = &policy.with_check {
        let _ = writeln!(out, "    with_check: {}", scalar(check));
    }
}

fn table_entry(table: &DiscoveredTable) -> String {
    let simple = table.column.is_none() && table.commands.is_none() && table.policy_name.is_none();
    if simple && !table.name.schema.contains('.') && !table.name.name.contains('.') {
        return short_name(&table.name);
    }
    let mut fields = Vec::new();
    if table.name.schema != "public" {
        fields.push(format!("schema: {}", scalar(&table.name.schema)));
    }
    fields.push(format!("name: {}", scalar(&table.name.name)));
    if let Some(column) = &table.column {
        fields.push(format!("column: {}", scalar(column)));
    }
    if let Some(commands) = &table.commands {
        let names: Vec<&str> = commands.iter().map(|c| command_name(*c)).collect();
        fields.push(format!("commands: [{}]", names.join(", ")));
    }
    if let Some(name) = &table.policy_name {
        fields.push(format!("policy_name: {}", scalar(name)));
    }
    format!("{{ {} }}", fields.join(", "))
}

/// `orders` for `public.orders`, else `schema.name`.
fn short_name(name: &QualifiedName) -> String {
    if name.schema == "public" {
        scalar(&name.name)
    } else {
        scalar(&format!("{}.{}", name.schema, name.name))
    }
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::All => "all",
        Command::Select => "select",
        Command::Insert => "insert",
        Command::Update => "update",
        Command::Delete => "delete",
    }
}

fn type_name(ty: TenantType) -> &'static str {
    ty.sql_name()
}

/// A `# TODO:` comment, one line per line of `text`. The text holds names
/// from the database, which may hold any character: every character YAML
/// could read as a line break (`\r` alone too, and NEL, LS, PS) starts a new
/// comment line, and other control characters are written escaped, so no name
/// can end the comment and put keys into the spec.
fn comment(out: &mut String, indent: &str, text: &str) {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text
        .trim_end_matches(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'])
        .split(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'])
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let lead = if i == 0 { "TODO: " } else { "      " };
        let shown: String = line
            .chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:04x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = writeln!(out, "{indent}# {lead}{shown}");
    }
}

/// A YAML scalar: plain where YAML reads it back as the same string, else
/// double-quoted (a JSON string is a valid YAML double-quoted scalar).
fn scalar(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::adopt::{DiscoveredRole, DiscoveredTenancy};
    use crate::spec::{PolicyTo, load_str};

    fn discovered() -> Discovered {
        Discovered {
            tenancy: DiscoveredTenancy {
                column: "org_id".into(),
                column_type: Some(TenantType::Uuid),
                source: Some(TenantSource::Setting("app.org".into())),
                context: Context::Inline("(current_setting('app.org'::text, true))::uuid".into()),
                policy_name: "{table}_tenant_isolation".into(),
                policy_to_public: true,
            },
            roles: vec![
                DiscoveredRole {
                    name: "app".into(),
                    login: true,
                    cross_tenant: None,
                    reason: None,
                },
                DiscoveredRole {
                    name: "on".into(),
                    login: false,
                    cross_tenant: Some(Access::Read),
                    reason: Some("Found: \"quoted\" # not a comment".into()),
                },
            ],
            tables: vec![
                DiscoveredTable {
                    name: QualifiedName::new("public", "orders"),
                    column: None,
                    commands: None,
                    policy_name: None,
                    todos: vec!["no index leads with org_id".into()],
                },
                DiscoveredTable {
                    name: QualifiedName::new("Billing", "invoice lines"),
                    column: Some("account_id".into()),
                    commands: Some(BTreeSet::from([Command::Select, Command::Insert])),
                    policy_name: Some("isolation".into()),
                    todos: vec![],
                },
            ],
            policies: vec![DiscoveredPolicy {
                name: "hide_archived".into(),
                tables: vec![QualifiedName::new("public", "orders")],
                command: Command::Select,
                permissive: false,
                roles: Some(vec!["PUBLIC".into()]),
                using: Some("(NOT archived)".into()),
                with_check: None,
            }],
            todos: vec!["table public.legacy is not declared:\nsecond line".into()],
        }
    }

    #[test]
    fn the_rendered_spec_loads_back_as_the_spec_it_describes() {
        let text = render(&discovered());
        let spec = load_str(Path::new("policies/rlsctl.yaml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(spec.tenancy.column, "org_id");
        assert_eq!(spec.tenancy.source, TenantSource::Setting("app.org".into()));
        assert_eq!(
            spec.tenancy.inline.as_ref().map(|e| e.as_str()),
            Some("(current_setting('app.org'::text, true))::uuid")
        );
        assert_eq!(spec.tenancy.policy_to, PolicyTo::Public);
        assert_eq!(spec.tenancy.policy_name, "{table}_tenant_isolation");
        let names: Vec<&str> = spec.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["app", "on"]);
        assert_eq!(spec.roles[1].cross_tenant, Some(Access::Read));
        assert_eq!(
            spec.roles[1].reason.as_deref(),
            Some("Found: \"quoted\" # not a comment")
        );
        let invoices = &spec.tables[1];
        assert_eq!(
            invoices.name,
            QualifiedName::new("Billing", "invoice lines")
        );
        assert_eq!(invoices.column, "account_id");
        assert_eq!(invoices.tenant_policy(), "isolation");
        assert_eq!(invoices.commands.len(), 2);
        assert_eq!(spec.tables[0].tenant_policy(), "orders_tenant_isolation");
        assert_eq!(spec.policies[0].roles, ["PUBLIC"]);
        assert_eq!(spec.policies[0].command, Command::Select);
    }

    #[test]
    fn todos_are_comments_where_they_apply() {
        let text = render(&discovered());
        assert!(
            text.contains("# TODO: table public.legacy is not declared:\n#       second line\n"),
            "{text}"
        );
        assert!(
            text.contains("  # TODO: no index leads with org_id\n  - orders\n"),
            "{text}"
        );
    }

    #[test]
    fn an_adopted_function_is_written_unmanaged() {
        let mut d = discovered();
        d.tenancy.context = Context::Function(QualifiedName::new("app", "current_org"));
        let spec = load_str(Path::new("p.yaml"), &render(&d)).unwrap();
        assert!(!spec.tenancy.function_managed);
        assert_eq!(
            spec.tenancy.function,
            QualifiedName::new("app", "current_org")
        );
        assert!(spec.tenancy.inline.is_none());
    }

    #[test]
    fn a_name_holding_line_breaks_cannot_leave_its_todo_comment() {
        let mut out = String::new();
        comment(
            &mut out,
            "  ",
            "table \"x\rbypass_roles: [{role: eve, reason: r}]\u{2028}y:\u{85}z: 1\u{7}\" is granted",
        );
        for line in out.lines() {
            assert!(line.starts_with("  # "), "{out:?}");
        }
        // Nothing but comments: YAML reads no key from it.
        for line in out.split(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}']) {
            assert!(
                line.is_empty() || line.trim_start().starts_with('#'),
                "{out:?}"
            );
        }
        assert!(out.contains("\\u{0007}"), "{out:?}");
    }
}
