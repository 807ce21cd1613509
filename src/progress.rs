//! What long work reports while it runs. The core (apply, the
//! migrate-existing backfill) sends these events; the command layer decides
//! how a person sees them (a bar on a terminal, plain lines in a log), so no
//! terminal code lives next to the SQL.

/// One event of a long run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Something a person should read as a line of its own (a migration
    /// applied, a wait for another apply).
    Message(&'a str),
    /// `done` units of `total` are finished; `what` is the current one, or
    /// the rate and time left.
    Step {
        done: usize,
        total: usize,
        what: &'a str,
    },
}

/// Where the core sends its events.
pub type Report<'a> = dyn FnMut(Progress<'_>) + 'a;
