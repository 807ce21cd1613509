//! Standard output that knows when its reader has gone: `rlsctl sql | head`
//! closes the pipe after ten lines, and that is the reader's choice, not a
//! failure. Writes to a closed pipe fail with a marked error, which `main`
//! turns into a quiet exit 0; every other error (a full disk, a lost
//! database connection) stays an error.

use std::io::{self, Write};

/// The marker inside the `BrokenPipe` error of a write to a closed stdout.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct ClosedStdout;

pub struct Stdout(io::StdoutLock<'static>);

pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

fn mark(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, ClosedStdout)
    } else {
        error
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Whether `error` is (or was caused by) a write to a stdout whose reader left.
pub fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<ClosedStdout>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<ClosedStdout>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_recognised() {
        let closed = anyhow::Error::new(mark(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(is_closed_stdout(&closed.context("writing the plan")));
        // A broken pipe elsewhere (a database socket) is a real failure.
        let socket = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed_stdout(&socket));
        let full = anyhow::Error::new(mark(io::Error::from(io::ErrorKind::StorageFull)));
        assert!(!is_closed_stdout(&full));
    }
}
