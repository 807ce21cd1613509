//! Integration tests: rlsctl against a real PostgreSQL, through its CLI.
//! One test binary, so the whole suite shares one throwaway cluster.

mod harness;
mod replica;

mod apply_bad_input;
mod apply_builds_indexes_without_blocking;
mod apply_converges;
mod apply_is_atomic;
mod apply_runs_migrations;
mod audit_checks;
mod audit_report;
mod catalog_reads;
mod check_refuses_uncovered_tenant_tables;
mod connect_timeout;
mod context_function;
mod ephemeral_server;
mod migrate_existing;
mod migrations_cannot_commit_on_their_own;
mod plan_and_audit_on_a_read_only_server;
mod read_only_commands_change_nothing;
mod secrets_are_never_printed;
mod spec_expressions_cannot_inject;
mod verify;
mod verify_as_a_managed_admin;
mod verify_warns_when_it_proves_little;
