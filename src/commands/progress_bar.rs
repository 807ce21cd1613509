//! Progress of long work on stderr. On a terminal, a bar (indicatif) that
//! redraws in place and is cleared when the work is done, coloured unless
//! NO_COLOR is set; messages of the run print above it rather than through
//! it. Anywhere else (a CI log, a file) a plain line each time another tenth
//! of the work is done: the log shows the run is alive without a line per
//! object, and without the escape codes a bar would leave in it.

use crate::progress::Progress;

/// Runs shorter than this finish before a progress display would help.
const WORTH_SHOWING: usize = 20;

pub(super) struct ProgressBar {
    task: &'static str,
    display: Display,
    /// Whether a plain line carries the step's `what` (a rate and time left
    /// is worth a log line; the name of the current table is not).
    what_in_lines: bool,
}

enum Display {
    /// Made on the first call that is worth showing; gone once the work is done.
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
        ProgressBar {
            task,
            display,
            what_in_lines: false,
        }
    }

    /// Plain lines also say what the step reported (e.g. rows/s and ETA).
    pub(super) fn with_what_in_lines(mut self) -> Self {
        self.what_in_lines = true;
        self
    }

    /// Renders one event of the core.
    pub(super) fn report(&mut self, event: Progress<'_>) {
        match event {
            Progress::Message(text) => self.say(text),
            Progress::Step { done, total, what } => self.show(done, total, what),
        }
    }

    /// A line of its own: above a bar that is showing, else on stderr.
    pub(super) fn say(&mut self, text: &str) {
        match &self.display {
            Display::Bar(Some(bar)) => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    pub(super) fn show(&mut self, done: usize, total: usize, what: &str) {
        if total < WORTH_SHOWING {
            return;
        }
        match &mut self.display {
            Display::Bar(slot) => {
                let bar = slot.get_or_insert_with(|| terminal_bar(self.task, total));
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(what.to_string());
                if done >= total {
                    bar.finish_and_clear();
                    *slot = None;
                }
            }
            Display::Lines { next_tenth } => {
                if let Some(line) = plain_line(
                    next_tenth,
                    self.task,
                    done,
                    total,
                    what.trim(),
                    self.what_in_lines,
                ) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Drop for ProgressBar {
    /// Work that stopped early (an error) leaves no half-drawn bar behind.
    fn drop(&mut self) {
        if let Display::Bar(Some(bar)) = &self.display {
            bar.finish_and_clear();
        }
    }
}

/// The line for a log, when this step reaches another tenth of the work.
fn plain_line(
    next_tenth: &mut usize,
    task: &str,
    done: usize,
    total: usize,
    what: &str,
    what_in_lines: bool,
) -> Option<String> {
    let reached = done * 10 / total;
    if reached < *next_tenth {
        return None;
    }
    *next_tenth = reached + 1;
    Some(if what_in_lines && !what.is_empty() {
        format!("{task} progress: {done}/{total}, {what}")
    } else {
        format!("{task} progress: {done}/{total}")
    })
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

    fn lines_for(steps: &[(usize, usize)], what_in_lines: bool) -> Vec<String> {
        let mut next_tenth = 1;
        steps
            .iter()
            .filter_map(|&(done, total)| {
                plain_line(&mut next_tenth, "t", done, total, "9 rows/s", what_in_lines)
            })
            .collect()
    }

    #[test]
    fn plain_lines_come_once_per_tenth_of_the_work() {
        let steps: Vec<(usize, usize)> = (0..=25).map(|done| (done, 25)).collect();
        let printed: Vec<String> = lines_for(&steps, false);
        let dones: Vec<&str> = printed
            .iter()
            .map(|l| l.trim_start_matches("t progress: ").trim_end_matches("/25"))
            .collect();
        assert_eq!(
            dones,
            ["3", "5", "8", "10", "13", "15", "18", "20", "23", "25"]
        );
    }

    #[test]
    fn a_total_that_grows_with_the_work_ends_on_one_complete_line() {
        // The backfill's estimate was 100 rows; 180 are there. While it runs
        // the total stays ahead of the work; at the end it is exact.
        let mut steps: Vec<(usize, usize)> =
            (1..=18).map(|b| (b * 10, (b * 10 + 1).max(100))).collect();
        steps.push((180, 180));
        let printed = lines_for(&steps, false);
        assert!(printed.len() <= 10, "{printed:?}");
        assert_eq!(
            printed.last().map(String::as_str),
            Some("t progress: 180/180")
        );
        assert_eq!(printed.iter().filter(|l| l.ends_with("180/180")).count(), 1);
    }

    #[test]
    fn only_lines_that_ask_for_it_carry_the_rate() {
        assert_eq!(lines_for(&[(5, 20)], true), ["t progress: 5/20, 9 rows/s"]);
        assert_eq!(lines_for(&[(5, 20)], false), ["t progress: 5/20"]);
    }

    #[test]
    fn short_work_shows_nothing_and_finished_work_leaves_no_bar() {
        let mut bar = ProgressBar {
            task: "apply",
            display: Display::Bar(None),
            what_in_lines: false,
        };
        bar.show(3, 5, "t");
        assert!(matches!(bar.display, Display::Bar(None)), "short: no bar");
        bar.show(10, 40, "t");
        assert!(matches!(bar.display, Display::Bar(Some(_))), "long: a bar");
        bar.show(40, 40, "t");
        // Messages after the work print as plain lines again.
        assert!(matches!(bar.display, Display::Bar(None)), "done: cleared");
    }
}
