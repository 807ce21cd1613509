//! The lines of a spec file, for the snippet every located error shows.
//! Every declared object records its line, so finding it must not rescan
//! the file from the start (quadratic in the number of tables), and objects
//! on one line share one copy of it: a policy listing 100,000 tables in a
//! flow sequence has 100,000 origins on a single line of megabytes.

use std::cell::OnceCell;
use std::sync::Arc;

pub struct Lines<'a> {
    text: &'a str,
    /// The byte offset where each line starts.
    starts: Vec<usize>,
    /// Each line's text, made when an origin first needs it.
    shared: Vec<OnceCell<Arc<str>>>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .filter(|&start| start < text.len())
            .collect();
        let shared = starts.iter().map(|_| OnceCell::new()).collect();
        Lines {
            text,
            starts,
            shared,
        }
    }

    /// Line `number` (1-based; 0 is taken as 1, as a parser may report it)
    /// without its line ending, or "" past the end: what `str::lines` gives.
    pub fn line(&self, number: u64) -> Arc<str> {
        let index = usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX);
        let (Some(&start), Some(cell)) = (self.starts.get(index), self.shared.get(index)) else {
            return Arc::from("");
        };
        cell.get_or_init(|| {
            let rest = &self.text[start..];
            let line = match rest.find('\n') {
                Some(end) => rest[..end].strip_suffix('\r').unwrap_or(&rest[..end]),
                None => rest,
            };
            Arc::from(line)
        })
        .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;
    use std::sync::Arc;

    #[test]
    fn every_line_is_what_str_lines_gives() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "\n\nc\n",
            "tables:\n  - é\n  - t2\r\n",
        ] {
            let lines = Lines::new(text);
            let expected: Vec<&str> = text.lines().collect();
            for number in 0..expected.len() as u64 + 3 {
                let want = expected
                    .get(number.saturating_sub(1) as usize)
                    .copied()
                    .unwrap_or("");
                assert_eq!(&*lines.line(number), want, "line {number} of {text:?}");
            }
        }
    }

    #[test]
    fn origins_on_one_line_share_its_text() {
        let lines = Lines::new("tables: [a, b, c]\n");
        assert!(Arc::ptr_eq(&lines.line(1), &lines.line(1)));
    }
}
