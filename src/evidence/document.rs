//! The report as a short list of blocks, so Markdown and HTML say the same
//! thing: each renderer walks these blocks and nothing else.

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Paragraph(String),
    /// A paragraph that must stand out (a broken chain, a leak).
    Alert(String),
    /// Two columns: what, value.
    Facts(Vec<(String, String)>),
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// Builds blocks in order.
#[derive(Debug, Default)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Document {
    pub fn new(title: impl Into<String>) -> Document {
        Document {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn heading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Heading(2, text.into()));
    }

    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    pub fn alert(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Alert(text.into()));
    }

    pub fn facts(&mut self, facts: Vec<(&str, String)>) {
        self.blocks.push(Block::Facts(
            facts.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ));
    }

    /// A table, or `empty` as a paragraph when there are no rows.
    pub fn table(&mut self, headers: &[&str], rows: Vec<Vec<String>>, empty: &str) {
        if rows.is_empty() {
            self.paragraph(empty);
        } else {
            self.blocks.push(Block::Table {
                headers: headers.iter().map(|h| h.to_string()).collect(),
                rows,
            });
        }
    }
}
