//! rlsctl: declare PostgreSQL row-level tenant isolation once, make the
//! database match it, and prove it.
//!
//! Data flows one way:
//! `spec` (config) → `desired` state; `catalog` → live state;
//! `diff` (pure) → changes; `plan` → statements; `apply` executes or `render`s.

pub mod catalog;
pub mod desired;
pub mod diff;
pub mod model;
pub mod plan;
pub mod quote;
pub mod spec;
