//! Table 1 (the % of test images decomposed, by number of circles) beside the paper's, as Markdown and JSON,
//! and the learning curve as CSV.

use super::metrics::Decomposition;
use super::profile::{Profile, Settings};
use super::train::CurvePoint;
use crate::Result;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The paper's Table 1, circles 1 to 5: (baseline, SRN).
pub const PAPER: [(f64, f64); 5] = [(45.1, 95.8), (16.5, 88.7), (7.8, 79.9), (3.2, 72.7), (1.9, 65.2)];

#[derive(Serialize)]
pub struct ModelResult {
    pub name: String,
    pub steps: usize,
    pub seconds: f64,
    pub stats: Decomposition,
}

#[derive(Serialize)]
pub struct Table1 {
    pub profile: Profile,
    pub seed: u64,
    pub settings: Settings,
    pub models: Vec<ModelResult>,
}

impl Table1 {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Table 1: % of test images decomposed, by number of circles (profile {:?}, seed {})\n",
            self.profile, self.seed
        );
        let mut header = String::from("| model | steps | time | sq. error / image |");
        let mut rule = String::from("|---|---|---|---|");
        for c in 0..=10 {
            let _ = write!(header, " {c} |");
            rule.push_str("---|");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        for m in &self.models {
            let _ = write!(s, "| {} | {} | {:.0} s | {:.1} |", m.name, m.steps, m.seconds, m.stats.error_per_image());
            for c in 0..=10 {
                match m.stats.rate(c) {
                    Some(r) => {
                        let _ = write!(s, " {r:.1} |");
                    }
                    None => s.push_str(" - |"),
                }
            }
            s.push('\n');
        }
        for (name, pick) in [("paper: baseline", 0), ("paper: SRN", 1)] {
            let _ = write!(s, "| {name} | | | |  |");
            for c in 1..=10 {
                match PAPER.get(c - 1) {
                    Some(p) => {
                        let _ = write!(s, " {:.1} |", if pick == 0 { p.0 } else { p.1 });
                    }
                    None => s.push_str("  |"),
                }
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "\nTest images per count: {:?}",
            self.models.first().map(|m| m.stats.images).unwrap_or_default()
        );
        s
    }
}

/// The learning curve as CSV: one row per evaluation.
pub fn write_curve(path: &Path, curve: &[CurvePoint]) -> Result<()> {
    let mut s = String::from("step,seconds,train_error,test_error,decomposed_all,inner_first,inner_last");
    for c in 0..=10 {
        let _ = write!(s, ",decomposed_{c}");
    }
    s.push('\n');
    for p in curve {
        let _ = write!(
            s,
            "{},{:.1},{:.3},{:.3},{:.2},{:.4},{:.4}",
            p.step, p.seconds, p.train_error, p.test_error, p.decomposed_all, p.inner_first, p.inner_last
        );
        for d in &p.decomposed {
            let _ = write!(s, ",{d:.2}");
        }
        s.push('\n');
    }
    crate::files::write_atomic(path, s).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
