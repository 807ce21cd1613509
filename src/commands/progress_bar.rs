//! Progress of long work on stderr. On a terminal, a bar (indicatif) that
//! redraws in place and is cleared when the work is done, coloured unless
//! NO_COLOR is set. Anywhere else (a CI log, a file) a plain line each time
//! another tenth of the work is done: the log shows the run is alive without
//! a line per object, and without the escape codes a bar would leave in it.

/// Runs shorter than this finish before a progress display would help.
const WORTH_SHOWING: usize = 20;

pub(super) struct ProgressBar {
    task: &'static str,
    display: Display,
}

enum Display {
    /// Made on the first call that is worth showing.
    Bar(Option<indicatif::ProgressBar>),
    /// The next tenth of the work (1 to 10) to print a line for.
    Lines { next_tenth: usize },
}

impl ProgressBar {
    pub(super) fn new(task: &'static str) -> Self {
        use std::io::IsTerminal;
        let display = if std::io::stderr().is_terminal() {
            Display::Bar(None)
        } else {
            Display::Lines { next_tenth: 1 }
        };
        ProgressBar { task, display }
    }

    pub(super) fn show(&mut self, done: usize, total: usize, object: &str) {
        if total < WORTH_SHOWING {
            return;
        }
        match &mut self.display {
            Display::Bar(bar) => {
                let bar = bar.get_or_insert_with(|| terminal_bar(self.task, total));
                bar.set_position(done as u64);
                bar.set_message(object.to_string());
                if done >= total {
                    bar.finish_and_clear();
                }
            }
            Display::Lines { next_tenth } => {
                let reached = done * 10 / total;
                if reached >= *next_tenth {
                    eprintln!("{} progress: {done}/{total}", self.task);
                    *next_tenth = reached + 1;
                }
            }
        }
    }
}

fn terminal_bar(task: &'static str, total: usize) -> indicatif::ProgressBar {
    let template = if std::env::var_os("NO_COLOR").is_some() {
        "{prefix} [{bar:30}] {pos}/{len} {wide_msg}"
    } else {
        "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {wide_msg}"
    };
    let style = indicatif::ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("#>-");
    let bar = indicatif::ProgressBar::new(total as u64).with_style(style);
    bar.set_prefix(task);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_once_per_tenth_of_the_work() {
        let mut bar = ProgressBar {
            task: "verify",
            display: Display::Lines { next_tenth: 1 },
        };
        let mut printed = Vec::new();
        for done in 0..=25 {
            let before = match bar.display {
                Display::Lines { next_tenth } => next_tenth,
                Display::Bar(_) => unreachable!(),
            };
            bar.show(done, 25, "t");
            if let Display::Lines { next_tenth } = bar.display
                && next_tenth != before
            {
                printed.push(done);
            }
        }
        assert_eq!(printed, [3, 5, 8, 10, 13, 15, 18, 20, 23, 25]);
    }
}
