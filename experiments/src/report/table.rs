//! Markdown tables, padded so they also read well as plain text in a terminal.
//!
//! ```
//! use experiments::report::table::{Align, Table};
//! let mut table = Table::new(&["model", "loss"]).align(1, Align::Right);
//! table.row(["SRN", "0.0123"]);
//! table.row(["baseline", "0.0456"]);
//! assert_eq!(
//!     table.to_markdown(),
//!     "| model    |   loss |\n| -------- | -----: |\n| SRN      | 0.0123 |\n| baseline | 0.0456 |\n"
//! );
//! ```

use std::fmt;
use std::io;
use std::path::Path;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Align {
    #[default]
    Left,
    Right,
    Centre,
}

/// A header and rows of text. Rows shorter than the header are padded with empty cells; longer ones are cut.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names, every column left-aligned.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let header: Vec<String> = header.iter().map(|h| h.as_ref().to_string()).collect();
        Table { aligns: vec![Align::Left; header.len()], header, rows: Vec::new() }
    }

    /// Sets column `column`'s alignment. Panics if there is no such column.
    pub fn align(mut self, column: usize, align: Align) -> Self {
        assert!(column < self.header.len(), "Table::align: column {column} of {}", self.header.len());
        self.aligns[column] = align;
        self
    }

    /// Appends a row.
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as Markdown, columns padded to a common width, one line per row, each ending in a newline.
    pub fn to_markdown(&self) -> String {
        let escaped: Vec<Vec<String>> =
            std::iter::once(&self.header).chain(&self.rows).map(|r| r.iter().map(|c| escape(c)).collect()).collect();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| escaped.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(3))
            .collect();
        let rule: Vec<String> = widths
            .iter()
            .zip(&self.aligns)
            .map(|(&w, align)| match align {
                Align::Left => "-".repeat(w),
                Align::Right => format!("{}:", "-".repeat(w - 1)),
                Align::Centre => format!(":{}:", "-".repeat(w - 2)),
            })
            .collect();
        let mut out = line(&escaped[0], &widths, &self.aligns);
        out += &line(&rule, &widths, &self.aligns);
        for row in &escaped[1..] {
            out += &line(row, &widths, &self.aligns);
        }
        out
    }

    /// Writes the Markdown to a file; errors name the path.
    pub fn write_markdown(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        crate::files::write_atomic(path, self.to_markdown())
            .map_err(|e| io::Error::new(e.kind(), format!("writing table {}: {e}", path.display())))
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_markdown())
    }
}

/// One table line: `| a | b |`, each cell padded to its column's width.
fn line(cells: &[String], widths: &[usize], aligns: &[Align]) -> String {
    let padded = cells.iter().zip(widths).zip(aligns).map(|((cell, &w), align)| {
        let gap = w - cell.chars().count();
        let (before, after) = match align {
            Align::Left => (0, gap),
            Align::Right => (gap, 0),
            Align::Centre => (gap / 2, gap - gap / 2),
        };
        format!(" {}{cell}{} |", " ".repeat(before), " ".repeat(after))
    });
    format!("|{}\n", padded.collect::<String>())
}

/// A cell's text made safe inside a table: pipes escaped, line breaks as spaces.
fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_markdown() {
        let mut t = Table::new(&["Model", "F1 (%)", "n"]).align(1, Align::Right).align(2, Align::Centre);
        t.row(["SRN ± refine", "97.3 ± 0.2", "5"]);
        t.row(vec!["a|b".to_string(), "1".into()]);
        let expected = "\
| Model        |     F1 (%) |  n  |
| ------------ | ---------: | :-: |
| SRN ± refine | 97.3 ± 0.2 |  5  |
| a\\|b         |          1 |     |
";
        assert_eq!(t.to_markdown(), expected);
        assert_eq!(t.to_string(), expected);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn empty_table_and_file() {
        let t = Table::new(&["x"]);
        assert_eq!(t.to_markdown(), "| x   |\n| --- |\n");
        let path = std::env::temp_dir().join(format!("report-table-{}.md", std::process::id()));
        t.write_markdown(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), t.to_markdown());
        std::fs::remove_file(path).unwrap();
        let err = t.write_markdown("/no/such/dir/t.md").unwrap_err();
        assert!(err.to_string().contains("/no/such/dir/t.md"));
    }
}
