//! rlsctl: declare PostgreSQL row-level tenant isolation once, make the
//! database match it, and prove it.
//!
//! Data flows one way:
//! `spec` (config) → `desired` state; `catalog` → live state;
//! `diff` (pure) → changes; `plan` → statements; `apply` executes or `render`s.

pub mod adopt;
pub mod adopted_function;
pub mod apply;
pub mod audit;
pub mod catalog;
pub mod children;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod desired;
pub mod diff;
pub mod ephemeral;
pub mod errors;
pub mod evidence;
pub mod fleet;
pub mod grants;
pub mod history;
pub mod lock_slots;
pub mod maintenance_guard;
pub mod migrate;
pub mod migrations;
pub mod model;
pub mod normalize;
pub mod plan;
pub mod progress;
pub mod quote;
pub mod references;
pub mod resolver;
pub mod role_guard;
pub mod role_rights;
pub mod sarif;
pub mod scram;
pub mod spec;
pub mod sql_tree;
pub mod suggest;
pub mod verify;
