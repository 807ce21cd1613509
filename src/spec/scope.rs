//! Narrowing a role or a cross-tenant predicate to some tables and commands:
//! a read-only dashboard role next to a writing worker, a compliance reader
//! that may read the audit log and nothing else. No scope means every
//! declared table and every command the table allows.

use std::collections::BTreeSet;

use super::{Command, Origin};
use crate::quote::QualifiedName;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Only these tables, each with where the spec names it.
    pub tables: Option<Vec<(QualifiedName, Origin)>>,
    /// Only these commands (never `All`: it is expanded when read).
    pub commands: Option<BTreeSet<Command>>,
}

impl Scope {
    pub fn covers(&self, table: &QualifiedName) -> bool {
        self.tables
            .as_ref()
            .is_none_or(|tables| tables.iter().any(|(t, _)| t == table))
    }

    /// The commands of `allowed` this scope keeps.
    pub fn narrow(&self, allowed: &BTreeSet<Command>) -> BTreeSet<Command> {
        match &self.commands {
            None => allowed.clone(),
            Some(mine) => allowed.intersection(mine).copied().collect(),
        }
    }
}

/// `[all]` or a list with `all` in it means every command.
pub fn expand_commands(list: Vec<Command>) -> BTreeSet<Command> {
    if list.contains(&Command::All) {
        every_command()
    } else {
        list.into_iter().collect()
    }
}

pub fn every_command() -> BTreeSet<Command> {
    [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_scope_keeps_everything_and_a_scope_keeps_its_part() {
        let all = every_command();
        assert_eq!(Scope::default().narrow(&all), all);
        let read_only = Scope {
            commands: Some([Command::Select].into()),
            ..Scope::default()
        };
        assert_eq!(read_only.narrow(&all), [Command::Select].into());
        let append_only: BTreeSet<Command> = [Command::Select, Command::Insert].into();
        assert_eq!(read_only.narrow(&append_only), [Command::Select].into());
    }
}
