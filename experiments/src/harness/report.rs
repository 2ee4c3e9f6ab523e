//! Writing what a run found: a results table as Markdown (to read), JSON (for programs) and CSV (for
//! spreadsheets), and learning curves as CSV, each file written atomically.

use crate::report::csv::{to_csv_string, Cell};
use crate::Result;
use serde::Serialize;
use std::path::Path;

/// A results table.
pub trait Report: Serialize {
    /// The table (and its notes) as Markdown, as printed at the end of a run.
    fn markdown(&self) -> String;
    /// One CSV row per model (and seed), under `header`.
    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>);
}

/// A learning-curve point's columns.
pub trait CurveRow {
    fn header() -> Vec<String>;
    fn cells(&self) -> Vec<Cell>;
}

/// Write `report` as `<stem>.md`, `<stem>.json` and `<stem>.csv` into `dir`, and say so.
pub fn write_report(dir: &Path, stem: &str, report: &impl Report) -> Result<()> {
    let write = |ext: &str, text: String| -> Result<()> {
        let path = dir.join(format!("{stem}.{ext}"));
        crate::files::write_atomic(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
    };
    write("md", report.markdown())?;
    write("json", serde_json::to_string_pretty(report)?)?;
    let (header, rows) = report.csv();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write("csv", to_csv_string(&header, &rows))?;
    eprintln!("wrote {}/{stem}.md, {stem}.json and {stem}.csv", dir.display());
    Ok(())
}

/// Write a learning curve as CSV: one row per validation.
pub fn write_curve<P: CurveRow>(path: &Path, curve: &[P]) -> Result<()> {
    let header = P::header();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<Cell>> = curve.iter().map(CurveRow::cells).collect();
    crate::files::write_atomic(path, to_csv_string(&header, &rows))
        .map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Scores(Vec<(String, f64)>);

    impl Report for Scores {
        fn markdown(&self) -> String {
            self.0.iter().map(|(n, s)| format!("| {n} | {s} |\n")).collect()
        }
        fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
            (
                vec!["model".into(), "score".into()],
                self.0.iter().map(|(n, s)| vec![n.as_str().into(), (*s).into()]).collect(),
            )
        }
    }

    #[test]
    fn a_report_is_written_in_three_forms() {
        let dir = std::env::temp_dir().join(format!("srn-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scores = Scores(vec![("rn".into(), 0.5), ("srn, r=5".into(), f64::NAN)]);
        write_report(&dir, "table", &scores).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("table.md")).unwrap(), "| rn | 0.5 |\n| srn, r=5 | NaN |\n");
        assert_eq!(std::fs::read_to_string(dir.join("table.csv")).unwrap(), "model,score\nrn,0.5\n\"srn, r=5\",NaN\n");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("table.json")).unwrap()).unwrap();
        assert_eq!(json[0][1], 0.5);
        assert!(json[1][1].is_null(), "NaN is null in JSON");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
