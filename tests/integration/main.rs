//! Integration tests: rlsctl against a real PostgreSQL, through its CLI.
//! One test binary, so the whole suite shares one throwaway cluster.

mod harness;

mod apply_bad_input;
mod apply_builds_indexes_without_blocking;
mod apply_converges;
mod apply_is_atomic;
mod apply_runs_migrations;
mod audit_checks;
mod audit_report;
mod catalog_reads;
mod config_folder_is_read_safely;
mod context_function;
mod ephemeral_server;
mod migrate_existing;
mod prune_of_an_empty_spec_needs_allow_empty;
mod secrets_are_never_printed;
mod verify;
