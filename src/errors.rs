//! How database errors are turned into messages a user can act on.

/// PostgreSQL's message with its detail and hint, without sqlx's framing.
pub fn database_message(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(db) => {
            let mut message = db.message().to_string();
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                if let Some(detail) = pg.detail() {
                    message.push_str(&format!(" ({detail})"));
                }
                if let Some(hint) = pg.hint() {
                    message.push_str(&format!(" Hint: {hint}"));
                }
            }
            message
        }
        None => error.to_string(),
    }
}

/// SQLSTATE 55P03: `lock_timeout` expired while waiting for a lock.
pub fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "55P03")
}

/// SQLSTATE 42710 (duplicate_object: "role … already exists") or 23505
/// (unique_violation: a concurrent transaction inserted the same catalog key).
pub fn is_already_exists(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "42710" || code == "23505")
}
