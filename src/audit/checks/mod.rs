//! Every audit check. A check reads the [`Context`] and returns findings;
//! its `CheckInfo` says what it means for `rlsctl explain`.

pub mod backup;
pub mod bypass;
pub mod context_function;
pub mod drift;
pub mod functions;
pub mod maintenance;
pub mod paths;
pub mod policies;
pub mod policy_inputs;
pub mod reach;
pub mod roles;
pub mod server;
pub mod session_binding;
pub mod shape;
pub mod side_channels;
pub mod tables;

use super::{CheckInfo, Context, Finding};

pub struct Check {
    pub info: CheckInfo,
    pub run: fn(&Context) -> Vec<Finding>,
}

/// The posture checks, which need no spec.
pub const ALL: &[Check] = &[
    roles::SUPERUSER,
    roles::BYPASSRLS,
    roles::OWNS_TENANT_TABLE,
    roles::CAN_BECOME_PRIVILEGED,
    bypass::UNDECLARED,
    tables::WITHOUT_RLS,
    tables::CHILD_WITHOUT_RLS,
    tables::NOT_FORCED,
    tables::RLS_WITHOUT_POLICY,
    tables::NULLABLE_TENANT_COLUMN,
    tables::TENANT_INDEX_MISSING,
    policies::WITHOUT_TENANT_FILTER,
    policies::WRITE_WITHOUT_TENANT_CHECK,
    policies::OPEN_WHEN_UNBOUND,
    policies::BROADER_THAN_TENANT,
    policies::TO_PUBLIC,
    policies::VOLATILE_FUNCTION,
    policies::PARALLEL_UNSAFE_FUNCTION,
    policies::TENANT_COLUMN_WRAPPED,
    policy_inputs::FUNCTION_WRITABLE,
    policy_inputs::LOOKUP_WRITABLE,
    context_function::UNSAFE_DEFINITION,
    context_function::CALLED_PER_ROW,
    context_function::WRITABLE_BY_RUNTIME,
    context_function::TENANT_DEFAULT_SETTING,
    session_binding::BOUND_AT_SESSION_LEVEL,
    paths::VIEW_BYPASSES_RLS,
    paths::MATERIALIZED_VIEW,
    paths::SECURITY_DEFINER_FUNCTION,
    paths::TRIGGER_AS_OWNER,
    paths::RULE_ON_TENANT_TABLE,
    paths::FOREIGN_TABLE,
    functions::LEAKPROOF_USER_FUNCTION,
    functions::SECURITY_DEFINER_SEARCH_PATH,
    functions::SCHEMA_CREATE_FOR_RUNTIME,
    shape::UNIQUE_NOT_SCOPED,
    shape::FOREIGN_KEY_NOT_SCOPED,
    shape::TRUNCATE_GRANTED,
    shape::EXCESS_PRIVILEGE,
    shape::DEFAULT_PRIVILEGES_TO_PUBLIC,
    reach::NO_TENANT_ACCESS_GRANTED,
    side_channels::SHARED_SEQUENCE,
    side_channels::ACTIVITY_READABLE,
    side_channels::SETTING_SETTABLE,
    server::PAST_END_OF_LIFE,
];
