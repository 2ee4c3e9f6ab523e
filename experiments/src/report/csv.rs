//! Comma-separated values with a header row, for numbers to plot elsewhere or to diff between runs.
//!
//! Numbers are written in Rust's shortest exact form (`3`, `0.1`, `1e-7`, `NaN`, `inf`); text is quoted only
//! when it holds a comma, a quote or a line break, quotes doubled (RFC 4180).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// One CSV field.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Num(f64),
    Text(String),
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Num(v)
    }
}

impl From<f32> for Cell {
    fn from(v: f32) -> Self {
        Cell::Num(v.into())
    }
}

impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::Num(v as f64)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.into())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

/// A CSV line (with its newline) of `fields`.
pub fn line<'a>(fields: impl IntoIterator<Item = &'a Cell>) -> String {
    let mut out = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match field {
            Cell::Num(v) if v.fract() == 0.0 && v.abs() < 1e15 => write!(out, "{v}").expect("writing to a String"),
            Cell::Num(v) => write!(out, "{v:?}").expect("writing to a String"),
            Cell::Text(t) if t.contains([',', '"', '\n', '\r']) => {
                write!(out, "\"{}\"", t.replace('"', "\"\"")).expect("writing to a String")
            }
            Cell::Text(t) => out.push_str(t),
        }
    }
    out.push('\n');
    out
}

/// The whole CSV text: the header, then one line per row.
pub fn to_csv_string(header: &[&str], rows: &[Vec<Cell>]) -> String {
    let header: Vec<Cell> = header.iter().map(|&h| h.into()).collect();
    std::iter::once(&header).chain(rows).map(line).collect()
}

/// Writes a CSV file. Rows must have as many fields as the header; errors name the path.
/// The file is written atomically (see [`crate::files::write_atomic`]).
pub fn write_csv(path: impl AsRef<Path>, header: &[&str], rows: &[Vec<Cell>]) -> io::Result<()> {
    let path = path.as_ref();
    if let Some(row) = rows.iter().find(|r| r.len() != header.len()) {
        let msg = format!("row of {} fields under a header of {}", row.len(), header.len());
        return Err(named(path, io::Error::new(io::ErrorKind::InvalidInput, msg)));
    }
    crate::files::write_atomic(path, to_csv_string(header, rows)).map_err(|e| named(path, e))
}

/// Writes a CSV file a row at a time, e.g. a log that grows during training.
pub struct CsvWriter {
    path: PathBuf,
    columns: usize,
    out: BufWriter<File>,
}

impl CsvWriter {
    /// Creates (or truncates) the file and writes the header.
    pub fn create(path: impl AsRef<Path>, header: &[&str]) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| named(&path, e))?;
        let mut writer = CsvWriter { path, columns: header.len(), out: BufWriter::new(file) };
        let header: Vec<Cell> = header.iter().map(|&h| h.into()).collect();
        writer.row(&header)?;
        Ok(writer)
    }

    /// Appends one row; an error if its length differs from the header's.
    pub fn row(&mut self, fields: &[Cell]) -> io::Result<()> {
        if fields.len() != self.columns {
            let msg = format!("row of {} fields under a header of {}", fields.len(), self.columns);
            return Err(named(&self.path, io::Error::new(io::ErrorKind::InvalidInput, msg)));
        }
        self.out.write_all(line(fields).as_bytes()).map_err(|e| named(&self.path, e))
    }

    /// Flushes what is buffered, so a reader sees every row so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| named(&self.path, e))
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("writing CSV {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_quotes_text() {
        let rows = vec![
            vec![Cell::from(1.0), 0.1.into(), "plain".into()],
            vec![Cell::from(f64::NAN), 1e-7.into(), "a, \"b\"".into()],
            vec![Cell::from(3usize), (-2.5f32).into(), String::from("two\nlines").into()],
        ];
        let text = to_csv_string(&["epoch", "loss", "note"], &rows);
        assert_eq!(text, "epoch,loss,note\n1,0.1,plain\nNaN,1e-7,\"a, \"\"b\"\"\"\n3,-2.5,\"two\nlines\"\n");
    }

    #[test]
    fn writes_files_and_checks_row_length() {
        let path = std::env::temp_dir().join(format!("report-csv-{}.csv", std::process::id()));
        write_csv(&path, &["a", "b"], &[vec![1.0.into(), "x".into()]]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,x\n");
        let mut w = CsvWriter::create(&path, &["a", "b"]).unwrap();
        let err = w.row(&[Cell::Num(1.0)]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("report-csv-"), "{err}");
        w.row(&[2.0.into(), 3.0.into()]).unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n2,3\n");
        w.finish().unwrap();
        std::fs::remove_file(&path).unwrap();
        let missing = write_csv("/no/such/dir/x.csv", &["a"], &[]).unwrap_err();
        assert!(missing.to_string().contains("/no/such/dir/x.csv"));
    }
}
