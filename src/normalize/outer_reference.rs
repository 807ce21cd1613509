//! A deparse that names the table its policy is on.
//!
//! Inside a sub-select, PostgreSQL qualifies every column it prints, the
//! policy's own table included: `EXISTS (SELECT 1 FROM memberships m WHERE
//! m.tenant_id = projects.tenant_id)`. The temporary table an expression is
//! deparsed on has another name, and serves many real tables, so its name is
//! swapped for a fixed mark when read back (a template, which is also what
//! `recorded` keeps) and the mark for each real table's name, printed as
//! PostgreSQL prints identifiers, when the form is given to that table.

use pg_query::protobuf::KeywordKind;

use crate::quote::QualifiedName;

/// Stands for the policy's table in a template; no temporary table or
/// real table rlsctl makes has this name.
const MARK: &str = "rlsctl_policy_table.";

/// The deparse made on temporary table `temp`, with its name marked.
pub fn template(deparsed: &str, temp: &str) -> String {
    deparsed.replace(&format!("{temp}."), MARK)
}

/// The form `template` takes on `table`.
pub fn on_table(template: &str, table: &QualifiedName) -> String {
    if template.contains(MARK) {
        template.replace(MARK, &format!("{}.", printed(&table.name)))
    } else {
        template.to_string()
    }
}

/// `name` as PostgreSQL's `quote_identifier` prints it: bare when it is a
/// lower-case word that is not a reserved keyword, quoted otherwise.
fn printed(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let keyword = || {
        pg_query::scan_tokens(name).map_or(true, |tokens| {
            tokens.iter().any(|t| {
                t.keyword_kind != KeywordKind::NoKeyword as i32
                    && t.keyword_kind != KeywordKind::UnreservedKeyword as i32
            })
        })
    };
    if plain && !keyword() {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_gives_each_table_its_own_name_as_postgresql_prints_it() {
        let made = "(EXISTS ( SELECT 1 FROM memberships m WHERE (m.tenant_id = rlsctl_normalize_3.tenant_id)))";
        let t = template(made, "rlsctl_normalize_3");
        let on = |name: &str| on_table(&t, &QualifiedName::new("app", name));
        assert_eq!(
            on("projects"),
            "(EXISTS ( SELECT 1 FROM memberships m WHERE (m.tenant_id = projects.tenant_id)))"
        );
        assert!(on("Projects").contains("= \"Projects\".tenant_id"));
        assert!(on("order").contains("= \"order\".tenant_id"), "reserved");
        assert!(on("name").contains("= name.tenant_id"), "unreserved");
        assert!(on("2fa").contains("= \"2fa\".tenant_id"));
    }

    #[test]
    fn a_form_without_the_table_name_is_the_same_on_every_table_and_other_temps_are_kept() {
        let made = "(tenant_id = rlsctl_normalize_10.x)";
        assert_eq!(template(made, "rlsctl_normalize_1"), made);
        let plain = "(NOT archived)";
        assert_eq!(
            on_table(
                &template(plain, "rlsctl_normalize_1"),
                &QualifiedName::new("public", "t")
            ),
            plain
        );
    }
}
