//! Integration tests: rlsctl against a real PostgreSQL, through its CLI.
//! One test binary, so the whole suite shares one throwaway cluster.

mod harness;
mod replica;

mod a_managed_admin_declares_its_own_data_access;
mod adopted_context_function;
mod apply_bad_input;
mod apply_builds_indexes_without_blocking;
mod apply_converges;
mod apply_fits_the_lock_table;
mod apply_is_atomic;
mod apply_runs_migrations;
mod audit_checks;
mod audit_report;
mod catalog_reads;
mod check_refuses_uncovered_tenant_tables;
mod concurrent_applies_share_roles;
mod config_folder_is_read_safely;
mod connect_timeout;
mod context_function;
mod ephemeral_server;
mod fleet_runs_every_target;
mod migrate_existing;
mod migrations_cannot_commit_on_their_own;
mod migrations_filtered_by_rls_are_refused;
mod one_apply_converges_with_default_privileges;
mod partitions_are_covered_by_their_parent;
mod plan_and_audit_on_a_read_only_server;
mod privileged_roles_are_refused;
mod prune_of_an_empty_spec_needs_allow_empty;
mod read_only_commands_change_nothing;
mod roles_exist_before_migrations;
mod roles_for_a_managed_cloud_admin;
mod secrets_are_never_printed;
mod shared_expressions_normalise_once;
mod spec_expressions_cannot_inject;
mod tenant_policies_named_by_the_spec;
mod verify;
mod verify_as_a_managed_admin;
mod verify_warns_when_it_proves_little;
