//! The evidence document as Markdown (GitHub-flavoured tables).

use std::fmt::Write;

use super::document::{Block, Document};

pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", doc.title);
    for block in &doc.blocks {
        let _ = match block {
            Block::Heading(level, text) => {
                writeln!(out, "{} {}\n", "#".repeat(*level as usize), text)
            }
            Block::Paragraph(text) => writeln!(out, "{text}\n"),
            Block::Alert(text) => writeln!(out, "> **{text}**\n"),
            Block::Facts(facts) => {
                let _ = writeln!(out, "| | |\n|---|---|");
                for (k, v) in facts {
                    let _ = writeln!(out, "| {} | {} |", cell(k), cell(v));
                }
                writeln!(out)
            }
            Block::Table { headers, rows } => {
                let _ = writeln!(out, "| {} |", headers.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                writeln!(out)
            }
        };
    }
    out
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_in_a_value_does_not_split_the_cell() {
        let mut doc = Document::new("t");
        doc.table(&["a", "b"], vec![vec!["x | y".into(), "z".into()]], "");
        let md = render(&doc);
        assert!(md.contains("| x \\| y | z |"), "{md}");
    }
}
