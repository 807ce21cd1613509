//! Can the connecting role make the role changes a plan needs?
//!
//! Managed clouds (RDS, Cloud SQL, Azure, Supabase…) give no superuser: the
//! admin has CREATEROLE, and from PostgreSQL 16 also needs ADMIN OPTION on a
//! role to alter it. Finding that out from a failed statement halfway through
//! an apply helps nobody; this names, before anything runs, the exact grant a
//! superuser must make. Pure: the rights come from the catalog read.

use std::collections::BTreeSet;
use std::fmt;

use crate::catalog::Connecting;
use crate::diff::Change;
use crate::model::RoleAttribute;
use crate::quote::Sql;

/// PostgreSQL 16 made ADMIN OPTION on a role a condition for altering it.
const ADMIN_OPTION_REQUIRED_FROM: u32 = 160_000;

/// Role changes the connecting role cannot make, and what would let it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRights {
    pub connecting: String,
    /// One line per change it cannot make.
    pub problems: Vec<String>,
    /// What a superuser must run first (empty when only a superuser can do the change itself).
    pub fixes: Vec<Sql>,
}

impl fmt::Display for MissingRights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "role {} cannot make the role changes this plan needs:",
            self.connecting
        )?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        if !self.fixes.is_empty() {
            write!(f, "\nA superuser must run first:")?;
            for fix in &self.fixes {
                write!(f, "\n  {fix};")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for MissingRights {}

pub fn check(changes: &[Change], me: &Connecting) -> Result<(), MissingRights> {
    if me.superuser {
        return Ok(());
    }
    let mut problems = Vec::new();
    let mut fixes: Vec<Sql> = Vec::new();
    for change in changes {
        match change {
            Change::CreateRole { role } if !me.create_role => {
                problems.push(format!("creating role {} needs CREATEROLE", role.name));
                need(create_role(me), &mut fixes);
            }
            Change::SetPassword { role, .. } => {
                // The same rights as a non-privileged ALTER ROLE.
                need_alter_rights(
                    me,
                    &role.name,
                    &format!("setting the password of role {}", role.name),
                    &mut problems,
                    &mut fixes,
                );
            }
            Change::AlterRole { name, attributes } => {
                let privileged: BTreeSet<&str> = attributes
                    .iter()
                    .filter(|a| a.is_privilege())
                    .map(|a| a.keyword())
                    .collect();
                if !privileged.is_empty() {
                    problems.push(format!(
                        "only a superuser may set {} on role {name}",
                        privileged.into_iter().collect::<Vec<_>>().join(" ")
                    ));
                    continue;
                }
                let what = keywords(attributes);
                need_alter_rights(
                    me,
                    name,
                    &format!("altering role {name} ({what})"),
                    &mut problems,
                    &mut fixes,
                );
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MissingRights {
            connecting: me.name.clone(),
            problems,
            fixes,
        })
    }
}

/// What altering an existing role takes from a non-superuser: CREATEROLE,
/// and from PostgreSQL 16 ADMIN OPTION on that role; `doing` says what for.
fn need_alter_rights(
    me: &Connecting,
    name: &str,
    doing: &str,
    problems: &mut Vec<String>,
    fixes: &mut Vec<Sql>,
) {
    let admin_needed = me.server_version_num >= ADMIN_OPTION_REQUIRED_FROM;
    let has_admin = !admin_needed || me.admin_of.contains(name);
    if !me.create_role {
        problems.push(format!("{doing} needs CREATEROLE"));
        need(create_role(me), fixes);
    }
    if !has_admin {
        problems.push(format!(
            "{doing} needs ADMIN OPTION on it (PostgreSQL 16 and later)"
        ));
        need(
            Sql::new("GRANT ")
                .ident(name)
                .push(" TO ")
                .ident(&me.name)
                .push(" WITH ADMIN OPTION"),
            fixes,
        );
    }
}

fn create_role(me: &Connecting) -> Sql {
    Sql::new("ALTER ROLE ").ident(&me.name).push(" CREATEROLE")
}

fn need(fix: Sql, fixes: &mut Vec<Sql>) {
    if !fixes.iter().any(|f| f.shown() == fix.shown()) {
        fixes.push(fix);
    }
}

fn keywords(attributes: &[RoleAttribute]) -> String {
    attributes
        .iter()
        .map(|a| a.keyword())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn admin(create_role: bool, version: u32, admin_of: &[&str]) -> Connecting {
        Connecting {
            name: "cloud_admin".into(),
            superuser: false,
            create_role,
            server_version_num: version,
            admin_of: admin_of.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn create(name: &str) -> Change {
        Change::CreateRole {
            role: Role {
                name: name.into(),
                login: true,
                superuser: false,
                bypass_rls: false,
                password_env: None,
            },
        }
    }

    fn login(name: &str) -> Change {
        Change::AlterRole {
            name: name.into(),
            attributes: vec![RoleAttribute::Login(true)],
        }
    }

    fn fixes(result: Result<(), MissingRights>) -> Vec<String> {
        result
            .unwrap_err()
            .fixes
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn a_superuser_may_do_anything() {
        let me = Connecting {
            superuser: true,
            ..admin(false, 170_000, &[])
        };
        assert_eq!(check(&[create("app"), login("app")], &me), Ok(()));
    }

    #[test]
    fn creating_a_role_without_createrole_names_the_alter_role_a_superuser_must_run() {
        let changes = [create("app"), create("bi")];
        assert_eq!(
            fixes(check(&changes, &admin(false, 150_004, &[]))),
            vec![r#"ALTER ROLE "cloud_admin" CREATEROLE"#]
        );
        assert_eq!(check(&changes, &admin(true, 150_004, &[])), Ok(()));
    }

    #[test]
    fn before_16_createrole_alone_may_alter_a_role() {
        assert_eq!(check(&[login("app")], &admin(true, 150_004, &[])), Ok(()));
    }

    #[test]
    fn from_16_altering_a_role_needs_admin_option_on_it() {
        assert_eq!(
            fixes(check(&[login("app")], &admin(true, 160_000, &[]))),
            vec![r#"GRANT "app" TO "cloud_admin" WITH ADMIN OPTION"#]
        );
        assert_eq!(
            check(&[login("app")], &admin(true, 160_000, &["app"])),
            Ok(())
        );
        let without_anything = check(&[login("app")], &admin(false, 170_002, &[])).unwrap_err();
        assert_eq!(without_anything.problems.len(), 2, "{without_anything}");
    }

    #[test]
    fn superuser_and_bypassrls_changes_need_a_superuser_and_no_grant_helps() {
        let change = Change::AlterRole {
            name: "app".into(),
            attributes: vec![RoleAttribute::Superuser(false)],
        };
        let refused = check(&[change], &admin(true, 150_004, &["app"])).unwrap_err();
        assert!(refused.fixes.is_empty());
        assert!(
            refused
                .to_string()
                .contains("only a superuser may set NOSUPERUSER on role app"),
            "{refused}"
        );
    }
}
