//! A one-line progress bar on stderr.

/// A one-line progress bar on stderr, drawn only on a terminal and only for
/// runs long enough to need one.
pub(super) struct ProgressBar {
    task: &'static str,
    terminal: bool,
    drawn: bool,
}

impl ProgressBar {
    pub(super) fn new(task: &'static str) -> Self {
        use std::io::IsTerminal;
        ProgressBar {
            task,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub(super) fn show(&mut self, done: usize, total: usize, object: &str) {
        if !self.terminal || total < 20 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * done / total.max(1);
        eprint!(
            "\r{} [{}{}] {done}/{total} {:<40.40}",
            self.task,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            object
        );
        self.drawn = true;
        if done == total {
            eprintln!();
        }
    }
}
