//! Table 1 (the % of test images decomposed, by number of circles) beside the paper's.

use super::metrics::{Decomposition, OBJECT_THRESHOLD};
use super::profile::{Profile, Settings};
use crate::harness::report::Report;
use crate::report::csv::Cell;
use serde::Serialize;
use std::fmt::Write as _;

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
    /// An element holds an object when its L-infinity norm is above this.
    pub threshold: f32,
    pub models: Vec<ModelResult>,
}

impl Report for Table1 {
    fn markdown(&self) -> String {
        let mut s = String::new();
        // The paper's threshold goes unsaid, as in every table before the flag existed.
        let threshold = if self.threshold == OBJECT_THRESHOLD {
            String::new()
        } else {
            format!(", an element holding an object above {}", self.threshold)
        };
        let _ = writeln!(
            s,
            "Table 1: % of test images decomposed, by number of circles (profile {:?}, seed {}{threshold})\n",
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

    /// One row per model: steps, seconds, the squared error and the % decomposed at 0 to 10 circles.
    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut header: Vec<String> = ["model", "steps", "seconds", "error_per_image"].map(String::from).to_vec();
        header.extend((0..=10).map(|c| format!("decomposed_{c}")));
        let rows = self
            .models
            .iter()
            .map(|m| {
                let mut row: Vec<Cell> =
                    vec![m.name.as_str().into(), m.steps.into(), m.seconds.into(), m.stats.error_per_image().into()];
                row.extend((0..=10).map(|c| Cell::from(m.stats.rate(c).unwrap_or(f64::NAN))));
                row
            })
            .collect();
        (header, rows)
    }
}
