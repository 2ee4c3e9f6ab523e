//! The CLUTRR table: per model, the best mean test accuracy over k = 2, 3, 4 across epochs (mean ± std over
//! seeds) beside the paper's, and the accuracy for every k = 2..10 at that epoch; the learning curves as PNG.

use super::model::Variant;
use super::profile::{Profile, Settings};
use super::run::{mean, CurvePoint, TEST_KS};
use crate::harness::report::Report;
use crate::report::csv::Cell;
use crate::report::plot::LineChart;
use crate::report::table::Table;
use crate::sort_of_clevr::table::mean_std;
use crate::Result;
use serde::Serialize;
use std::path::Path;

/// The paper's best average accuracy across epochs over k = 2, 3, 4 (%), mean of 5 runs.
pub fn paper(variant: Variant) -> f64 {
    match variant {
        Variant::Rn => 49.7,
        Variant::Srn => 55.0,
        Variant::Grn => 56.1,
    }
}

/// One model and seed at its best epoch.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub steps: usize,
    pub best_step: usize,
    pub best_epoch: f64,
    pub train_seconds: f64,
    pub seconds_per_step: f64,
    /// Test accuracy (%) for k = 2..10 at the best epoch (NaN, JSON null, without a split).
    pub test: Vec<f64>,
    /// Their mean over k = 2, 3, 4: the best across epochs.
    pub mean_234: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub variant: Variant,
    /// The paper's number for this model.
    pub paper: f64,
    pub results: Vec<SeedResult>,
}

#[derive(Serialize)]
pub struct ClutrrReport {
    pub profile: Profile,
    pub data: String,
    pub settings: Settings,
    pub models: Vec<ModelResult>,
}

impl ModelResult {
    fn column(&self, f: impl Fn(&SeedResult) -> f64) -> String {
        mean_std(&self.results.iter().map(f).collect::<Vec<_>>())
    }
}

fn at(r: &SeedResult, k: usize) -> f64 {
    r.test.get(k - TEST_KS[0]).copied().unwrap_or(f64::NAN)
}

impl Report for ClutrrReport {
    fn markdown(&self) -> String {
        let seeds = self.models.first().map_or(0, |m| m.results.len());
        let mut out = format!(
            "CLUTRR: the best mean test accuracy (%) over k = 2, 3, 4 across epochs, and the accuracy for each k at \
             that epoch; profile {:?}, data {}, {seeds} seed(s), mean ± std over seeds (paper: 5 runs, 50 epochs, \
             all released data)\n\n",
            self.profile, self.data
        );
        let mut header = vec!["model".to_string(), "k = 2, 3, 4".to_string(), "paper".to_string()];
        header.extend(TEST_KS.iter().map(|k| format!("k = {k}")));
        let mut t = Table::new(&header);
        for m in &self.models {
            let mut row = vec![m.name.clone(), m.column(|r| r.mean_234), format!("{:.1}", m.paper)];
            row.extend(TEST_KS.iter().map(|&k| m.column(|r| at(r, k))));
            t.row(row);
        }
        out.push_str(&t.to_markdown());
        out.push_str("\nRuns: steps, the best epoch (the step of the best k = 2, 3, 4 mean), training time\n\n");
        let mut t = Table::new(&["model", "seed", "steps", "best step", "best epoch", "s / step", "train time"]);
        for m in &self.models {
            for r in &m.results {
                t.row([
                    m.name.clone(),
                    r.seed.to_string(),
                    r.steps.to_string(),
                    r.best_step.to_string(),
                    format!("{:.2}", r.best_epoch),
                    format!("{:.3}", r.seconds_per_step),
                    format!("{:.0} s", r.train_seconds),
                ]);
            }
        }
        out.push_str(&t.to_markdown());
        out
    }

    /// One row per model and seed.
    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut header: Vec<String> =
            ["model", "seed", "steps", "best_step", "best_epoch", "seconds_per_step", "test_mean_k234", "paper"]
                .map(String::from)
                .to_vec();
        header.extend(TEST_KS.iter().map(|k| format!("test_k{k}")));
        let rows = self
            .models
            .iter()
            .flat_map(|m| {
                m.results.iter().map(move |r| {
                    let mut row: Vec<Cell> = vec![
                        m.name.as_str().into(),
                        (r.seed as usize).into(),
                        r.steps.into(),
                        r.best_step.into(),
                        r.best_epoch.into(),
                        r.seconds_per_step.into(),
                        r.mean_234.into(),
                        m.paper.into(),
                    ];
                    row.extend(TEST_KS.iter().map(|&k| Cell::from(at(r, k))));
                    row
                })
            })
            .collect();
        (header, rows)
    }
}

/// Test accuracy against epochs for every model (its first seed): the mean over the training ks 2, 3, 4 and over
/// the longer k = 5..10 (`curve-accuracy.png`), and the training loss (`curve-loss.png`).
pub fn learning_curves(curves: &[(String, Vec<CurvePoint>)], dir: &Path) -> Result<()> {
    let mut acc = LineChart::new("CLUTRR: test accuracy").labels("epoch", "% right").size(960, 540);
    let mut loss = LineChart::new("CLUTRR: training cross-entropy").labels("epoch", "loss").size(960, 540);
    for (name, curve) in curves {
        acc.add_series(&format!("{name}, k = 2, 3, 4"), curve.iter().map(|p| (p.epoch, p.mean_234)));
        acc.add_series(
            &format!("{name}, k = 5..10"),
            curve.iter().map(|p| (p.epoch, mean(TEST_KS[3..].iter().map(|&k| p.at(k))))),
        );
        loss.add_series(name, curve.iter().map(|p| (p.epoch, p.train_loss)));
    }
    acc.save(dir.join("curve-accuracy.png"))?;
    loss.save(dir.join("curve-loss.png"))?;
    Ok(())
}
