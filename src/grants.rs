//! Privileges on objects that are not tenant tables (a staging table for
//! raw webhooks, a lookup table, a function, a sequence, a schema), declared
//! under `grants:` and converged like the rest: desired and live state hold
//! them in the same types, so `diff` compares them without a database.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::quote::QualifiedName;

/// What kind of object a grant is on: the keyword of `GRANT … ON <kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantKind {
    Table,
    Sequence,
    Function,
    Schema,
}

impl GrantKind {
    pub const ALL: [GrantKind; 4] = [
        GrantKind::Table,
        GrantKind::Sequence,
        GrantKind::Function,
        GrantKind::Schema,
    ];

    /// The spec key and the word in messages.
    pub fn name(self) -> &'static str {
        match self {
            GrantKind::Table => "table",
            GrantKind::Sequence => "sequence",
            GrantKind::Function => "function",
            GrantKind::Schema => "schema",
        }
    }

    /// `ON TABLE `, `ON SEQUENCE `…, for statements.
    pub fn on_clause(self) -> &'static str {
        match self {
            GrantKind::Table => " ON TABLE ",
            GrantKind::Sequence => " ON SEQUENCE ",
            GrantKind::Function => " ON FUNCTION ",
            GrantKind::Schema => " ON SCHEMA ",
        }
    }

    /// The privileges PostgreSQL knows for this kind of object (MAINTAIN, on
    /// 17+ only, is left out: a spec that names it would fail on older servers).
    pub fn privileges(self) -> &'static [ObjectPrivilege] {
        use ObjectPrivilege::*;
        match self {
            GrantKind::Table => &[
                Select, Insert, Update, Delete, Truncate, References, Trigger,
            ],
            GrantKind::Sequence => &[Usage, Select, Update],
            GrantKind::Function => &[Execute],
            GrantKind::Schema => &[Usage, Create],
        }
    }
}

/// A privilege on a table, sequence, function or schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectPrivilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    References,
    Trigger,
    Usage,
    Create,
    Execute,
}

impl ObjectPrivilege {
    pub const ALL: [ObjectPrivilege; 10] = [
        ObjectPrivilege::Select,
        ObjectPrivilege::Insert,
        ObjectPrivilege::Update,
        ObjectPrivilege::Delete,
        ObjectPrivilege::Truncate,
        ObjectPrivilege::References,
        ObjectPrivilege::Trigger,
        ObjectPrivilege::Usage,
        ObjectPrivilege::Create,
        ObjectPrivilege::Execute,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            ObjectPrivilege::Select => "SELECT",
            ObjectPrivilege::Insert => "INSERT",
            ObjectPrivilege::Update => "UPDATE",
            ObjectPrivilege::Delete => "DELETE",
            ObjectPrivilege::Truncate => "TRUNCATE",
            ObjectPrivilege::References => "REFERENCES",
            ObjectPrivilege::Trigger => "TRIGGER",
            ObjectPrivilege::Usage => "USAGE",
            ObjectPrivilege::Create => "CREATE",
            ObjectPrivilege::Execute => "EXECUTE",
        }
    }

    /// From `aclexplode`'s `privilege_type` (or a spec's word, upper-cased).
    pub fn from_keyword(word: &str) -> Option<ObjectPrivilege> {
        ObjectPrivilege::ALL
            .into_iter()
            .find(|p| p.keyword().eq_ignore_ascii_case(word))
    }

    /// The spec's word for it: `select`, `usage`, …
    pub fn spec_name(self) -> String {
        self.keyword().to_lowercase()
    }
}

/// A declared object, as the spec names it: the key desired and live share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantTarget {
    pub kind: GrantKind,
    /// For a schema, `schema` is empty and `name` is the schema's name.
    pub name: QualifiedName,
    /// A function's argument types as written (`text`, `integer`); the
    /// server resolves them, so `int4` and `integer` name the same function.
    pub arguments: Vec<String>,
}

impl GrantTarget {
    pub fn schema(name: &str) -> GrantTarget {
        GrantTarget {
            kind: GrantKind::Schema,
            name: QualifiedName::new("", name),
            arguments: Vec::new(),
        }
    }
}

impl fmt::Display for GrantTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            GrantKind::Schema => write!(f, "schema {}", self.name.name),
            GrantKind::Function => {
                write!(f, "function {}({})", self.name, self.arguments.join(", "))
            }
            kind => write!(f, "{} {}", kind.name(), self.name),
        }
    }
}

/// The privileges of the declared roles on one declared object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectGrants {
    /// Live only: a function's argument types as the catalog has them
    /// (`pg_catalog.text`), so statements name it exactly.
    pub argument_types: Vec<QualifiedName>,
    /// Live only: the owner, who holds every privilege without a grant, so
    /// rlsctl neither grants it anything nor revokes anything from it.
    pub owner: Option<String>,
    /// Role → privileges. Desired: every role the spec declares or names
    /// in `grants:`, an empty set for those that should hold nothing here.
    /// Live: those roles' direct grants (the owner's own left out).
    pub privileges: BTreeMap<String, BTreeSet<ObjectPrivilege>>,
    /// Live only: the privileges each role holds WITH GRANT OPTION, so may
    /// grant on to anyone; the spec never declares a grant option.
    pub grantable: BTreeMap<String, BTreeSet<ObjectPrivilege>>,
}

/// The roles whose privileges on declared objects rlsctl converges: every
/// role under `roles:` and every role a `grants:` entry names.
pub fn declared_roles(spec: &crate::spec::Spec) -> BTreeSet<String> {
    spec.roles
        .iter()
        .map(|r| r.name.clone())
        .chain(spec.grants.iter().flat_map(|g| g.roles.iter().cloned()))
        .collect()
}

/// The live side of the spec's `grants:` (see `catalog::read_object_grants`).
pub async fn read_live(
    conn: &mut sqlx::PgConnection,
    spec: &crate::spec::Spec,
) -> Result<BTreeMap<GrantTarget, ObjectGrants>, sqlx::Error> {
    if spec.grants.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut targets: Vec<&GrantTarget> = spec.grants.iter().map(|g| &g.target).collect();
    targets.sort();
    targets.dedup();
    crate::catalog::read_object_grants(conn, &targets, &declared_roles(spec)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_names_only_privileges_postgresql_accepts_for_it() {
        assert_eq!(
            GrantKind::Function.privileges(),
            &[ObjectPrivilege::Execute]
        );
        assert!(
            !GrantKind::Table
                .privileges()
                .contains(&ObjectPrivilege::Usage)
        );
        for p in ObjectPrivilege::ALL {
            assert_eq!(ObjectPrivilege::from_keyword(&p.spec_name()), Some(p));
        }
    }

    #[test]
    fn a_function_target_shows_its_arguments() {
        let target = GrantTarget {
            kind: GrantKind::Function,
            name: QualifiedName::new("app", "normalize_phone"),
            arguments: vec!["text".into(), "integer".into()],
        };
        assert_eq!(
            target.to_string(),
            "function app.normalize_phone(text, integer)"
        );
        assert_eq!(GrantTarget::schema("staging").to_string(), "schema staging");
    }
}
