//! The evidence document as one self-contained HTML page: no scripts, no
//! external files, readable offline and printable.

use std::fmt::Write;

use super::document::{Block, Document};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}\
table{border-collapse:collapse;margin:0 0 1.5rem;width:100%}\
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}\
th{background:#eee}td{word-break:break-word}\
.alert{border-left:.3rem solid #b00;background:#fee;padding:.5rem 1rem;font-weight:bold}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}";

pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&doc.title),
        escape(&doc.title)
    );
    for block in &doc.blocks {
        let _ = match block {
            Block::Heading(level, text) => {
                writeln!(out, "<h{level}>{}</h{level}>", escape(text))
            }
            Block::Paragraph(text) => writeln!(out, "<p>{}</p>", escape(text)),
            Block::Alert(text) => writeln!(out, "<p class=\"alert\">{}</p>", escape(text)),
            Block::Facts(facts) => {
                let _ = writeln!(out, "<table>");
                for (k, v) in facts {
                    let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
                }
                writeln!(out, "</table>")
            }
            Block::Table { headers, rows } => {
                let _ = write!(out, "<table>\n<tr>");
                for h in headers {
                    let _ = write!(out, "<th>{}</th>", escape(h));
                }
                let _ = writeln!(out, "</tr>");
                for row in rows {
                    let _ = write!(out, "<tr>");
                    for c in row {
                        let _ = write!(out, "<td>{}</td>", escape(c));
                    }
                    let _ = writeln!(out, "</tr>");
                }
                writeln!(out, "</table>")
            }
        };
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Text as HTML text: every value in a report comes from the database or
/// the spec, so none of it may become markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_database_cannot_inject_markup() {
        let mut doc = Document::new("audit");
        doc.table(
            &["table"],
            vec![vec!["public.\"<script>alert(1)</script>\"".into()]],
            "",
        );
        let html = render(&doc);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
