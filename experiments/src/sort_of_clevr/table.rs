//! Table 2 (test accuracy by question type, robustness) beside the paper's, the inner-step ablation, the
//! early-epoch check, Figure 4's errors and the speed; the learning curves as PNG.

use super::data::Kind;
use super::evaluate::{Accuracy, Robustness};
use super::profile::Profile;
use super::profile::Settings;
use super::synthetic::Configuration;
use super::train::CurvePoint;
use crate::harness::report::Report;
use crate::report::csv::Cell;
use crate::report::plot::LineChart;
use crate::report::table::Table;
use crate::Result;
use serde::Serialize;
use std::path::Path;

/// The paper's Table 2: (row, RN, RN + SRN), mean and standard deviation over 5 runs.
/// A mean and a standard deviation.
pub type MeanStd = (f64, f64);

pub const PAPER: [(&str, MeanStd, MeanStd); 6] = [
    ("Relational", (95.1, 0.4), (96.9, 0.3)),
    ("Furthest", (91.4, 0.5), (95.9, 0.4)),
    ("Closest", (93.9, 0.9), (94.8, 0.5)),
    ("Count", (100.0, 0.0), (100.0, 0.0)),
    ("Robustness (Synthetic)", (1.5, 1.2), (96.7, 2.3)),
    ("Robustness (Dataset)", (61.3, 6.2), (93.2, 3.6)),
];

/// The early-epoch check: an RN + SRN snapshot whose validation relational accuracy is below the RN's final
/// test relational accuracy, and its robustness.
#[derive(Clone, Debug, Serialize)]
pub struct EarlyCheck {
    pub step: usize,
    pub val_relational: f64,
    pub rn_relational: f64,
    pub synthetic: Robustness,
    pub dataset: Robustness,
}

/// One model trained with one seed, evaluated at its best validation point.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub steps: usize,
    pub best_step: usize,
    pub train_seconds: f64,
    pub seconds_per_step: f64,
    pub test: Accuracy,
    pub synthetic: Robustness,
    pub dataset: Robustness,
    /// RN + SRN only: the same model evaluated with 0 inner steps.
    pub zero_steps: Option<Accuracy>,
    pub early: Option<EarlyCheck>,
    /// Figure 4's reconstruction error per image (first seed only).
    pub figure4_error: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    pub name: String,
    pub results: Vec<SeedResult>,
}

/// The Robustness (Synthetic) configuration chosen for one seed (see [`super::synthetic::choose`]).
#[derive(Clone, Debug, Serialize)]
pub struct SyntheticChoice {
    pub seed: u64,
    /// Its index in the seeded stream of candidates (from 0), and how many candidates were scored.
    pub candidate: usize,
    pub searched: usize,
    /// Every model reached the threshold at every position; false: none of the candidates scored did, and this
    /// is the one whose lowest probability was highest.
    pub passed: bool,
    pub configuration: Configuration,
    /// The positions (x, y) of the query object it is used at.
    pub positions: Vec<(i32, i32)>,
    /// The models it was chosen on, each with its lowest probability of the right answer, unrotated, over the
    /// positions.
    pub min_confidence: Vec<ModelConfidence>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelConfidence {
    pub model: String,
    pub confidence: f64,
}

/// How the Synthetic configurations were chosen, and the choice of every seed.
#[derive(Clone, Debug, Serialize)]
pub struct SyntheticReport {
    /// The probability of the right answer every model must give at every position, unrotated.
    pub threshold: f64,
    /// The most candidates scored per seed.
    pub max_candidates: usize,
    pub choices: Vec<SyntheticChoice>,
}

#[derive(Serialize)]
pub struct Table2 {
    pub profile: Profile,
    pub settings: Settings,
    pub inner_steps: usize,
    pub models: Vec<ModelReport>,
    pub synthetic: SyntheticReport,
    /// What the table leaves out, and why (e.g. Figure 4 under `--evaluate` without a saved fit).
    pub notes: Vec<String>,
}

/// `mean ± std` (sample standard deviation) of the finite values; a single value alone.
pub fn mean_std(values: &[f64]) -> String {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    match v.len() {
        0 => "-".into(),
        1 => format!("{:.1}", v[0]),
        n => {
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            format!("{mean:.1} ± {:.1}", var.sqrt())
        }
    }
}

impl ModelReport {
    fn column(&self, f: impl Fn(&SeedResult) -> f64) -> String {
        mean_std(&self.results.iter().map(f).collect::<Vec<_>>())
    }
}

type Row = (&'static str, fn(&SeedResult) -> f64);

const ROWS: [Row; 7] = [
    ("Non-relational", |r| r.test.non_relational()),
    ("Relational", |r| r.test.relational()),
    ("Furthest", |r| r.test.kind(Kind::Furthest)),
    ("Closest", |r| r.test.kind(Kind::Closest)),
    ("Count", |r| r.test.kind(Kind::Count)),
    ("Robustness (Synthetic)", |r| r.synthetic.percent()),
    ("Robustness (Dataset)", |r| r.dataset.percent()),
];

impl Report for Table2 {
    fn markdown(&self) -> String {
        let seeds = self.models.first().map_or(0, |m| m.results.len());
        let mut out = format!(
            "Table 2: Sort-of-CLEVR test accuracy (%), profile {:?}, {seeds} seed(s), mean ± std over seeds\n\n",
            self.profile
        );
        let mut header = vec!["task".to_string()];
        header.extend(self.models.iter().map(|m| m.name.clone()));
        header.extend(["paper: RN".to_string(), "paper: RN + SRN".to_string()]);
        let mut t = Table::new(&header);
        for (name, f) in ROWS {
            let mut row = vec![name.to_string()];
            row.extend(self.models.iter().map(|m| m.column(f)));
            match PAPER.iter().find(|p| p.0 == name) {
                Some((_, rn, srn)) => {
                    row.push(format!("{:.1} ± {:.1}", rn.0, rn.1));
                    row.push(format!("{:.1} ± {:.1}", srn.0, srn.1));
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
            t.row(row);
        }
        out.push_str(&t.to_markdown());

        out.push_str("\nRuns: steps, the best validation step (the model tested), training time\n\n");
        let mut t = Table::new(&[
            "model",
            "seed",
            "steps",
            "best step",
            "s / step",
            "train time",
            "unrotated right: synthetic / dataset",
            "rotations evaluated / skipped",
        ]);
        for m in &self.models {
            for r in &m.results {
                t.row([
                    m.name.clone(),
                    r.seed.to_string(),
                    r.steps.to_string(),
                    r.best_step.to_string(),
                    format!("{:.3}", r.seconds_per_step),
                    format!("{:.0} s", r.train_seconds),
                    format!(
                        "{:.1} / {:.1} %",
                        r.synthetic.percent_right_unrotated(),
                        r.dataset.percent_right_unrotated()
                    ),
                    format!(
                        "{} / {}",
                        r.synthetic.rotations_evaluated + r.dataset.rotations_evaluated,
                        r.synthetic.rotations_skipped + r.dataset.rotations_skipped
                    ),
                ]);
            }
        }
        out.push_str(&t.to_markdown());
        self.synthetic_choices(&mut out);
        self.ablation(&mut out);
        for note in &self.notes {
            out.push_str(&format!("\nNote: {note}\n"));
        }
        out
    }

    /// One row per model and seed: the test accuracies, the robustness tasks and the speed.
    fn csv(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut header: Vec<String> =
            ["model", "seed", "steps", "best_step", "seconds_per_step"].map(String::from).to_vec();
        header.extend(ROWS.iter().map(|(name, _)| name.to_string()));
        header.push("Relational, 0 inner steps".into());
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
                        r.seconds_per_step.into(),
                    ];
                    row.extend(ROWS.iter().map(|(_, f)| Cell::from(f(r))));
                    row.push(r.zero_steps.map_or(f64::NAN, |a| a.relational()).into());
                    row
                })
            })
            .collect();
        (header, rows)
    }
}

impl Table2 {
    /// Which configuration Robustness (Synthetic) used for every seed, and how it was chosen.
    fn synthetic_choices(&self, out: &mut String) {
        let Some(first) = self.synthetic.choices.first() else { return };
        let models: Vec<&str> = first.min_confidence.iter().map(|m| m.model.as_str()).collect();
        let on = match models.as_slice() {
            [one] => format!("{one} alone (the only model trained)"),
            many => many.join(" and "),
        };
        out.push_str(&format!(
            "\nRobustness (Synthetic): the configuration of every seed, chosen on {on} before any rotation: the first of a seeded stream of easy scenes of the generator, each at its {} rotation-safe positions, that every model answers right unrotated with probability >= {} at every position (at most {} candidates scored, else the one with the highest minimum). Offsets in pixels from the query object.\n\n",
            first.positions.len(),
            self.synthetic.threshold,
            self.synthetic.max_candidates
        ));
        let mut header = vec!["seed".to_string(), "candidate".to_string(), "configuration".to_string()];
        header.extend(models.iter().map(|m| format!("min p(right), {m}")));
        header.push("chosen".to_string());
        let mut t = Table::new(&header);
        for c in &self.synthetic.choices {
            let mut row = vec![c.seed.to_string(), c.candidate.to_string(), c.configuration.describe()];
            row.extend(c.min_confidence.iter().map(|m| format!("{:.4}", m.confidence)));
            row.push(if c.passed {
                "passed".to_string()
            } else {
                format!("none of {} passed: the highest minimum", c.searched)
            });
            t.row(row);
        }
        out.push_str(&t.to_markdown());
    }

    /// The inner-step ablation, the early-epoch check and Figure 4's errors, where measured.
    fn ablation(&self, out: &mut String) {
        for m in &self.models {
            let zero: Vec<&Accuracy> = m.results.iter().filter_map(|r| r.zero_steps.as_ref()).collect();
            if !zero.is_empty() {
                out.push_str(&format!(
                    "\nAblation: {} trained with {} inner steps, tested with 0 (paper: Furthest 96 -> 63, Closest 95 -> 87, Count 100 -> 100)\n\n",
                    m.name, self.inner_steps
                ));
                let mut t = Table::new(&["task", "tested with r steps", "tested with 0 steps"]);
                for kind in [Kind::Furthest, Kind::Closest, Kind::Count] {
                    let with: Vec<f64> = m.results.iter().map(|r| r.test.kind(kind)).collect();
                    let without: Vec<f64> = zero.iter().map(|a| a.kind(kind)).collect();
                    t.row([kind.name().to_string(), mean_std(&with), mean_std(&without)]);
                }
                out.push_str(&t.to_markdown());
            }
            let early: Vec<&EarlyCheck> = m.results.iter().filter_map(|r| r.early.as_ref()).collect();
            if !early.is_empty() {
                out.push_str(&format!(
                    "\nEarly-epoch check: {} at an early snapshot whose validation relational accuracy is below the RN's final test relational accuracy (paper, epoch 6: 93.7 vs 95.1; robust 55 % synthetic, 84 % dataset)\n\n",
                    m.name
                ));
                let mut t = Table::new(&["step", "val relational", "RN final relational", "synthetic", "dataset"]);
                for e in early {
                    t.row([
                        e.step.to_string(),
                        format!("{:.1}", e.val_relational),
                        format!("{:.1}", e.rn_relational),
                        format!("{:.1}", e.synthetic.percent()),
                        format!("{:.1}", e.dataset.percent()),
                    ]);
                }
                out.push_str(&t.to_markdown());
            }
        }
        let fig4: Vec<(String, f64)> = self
            .models
            .iter()
            .filter_map(|m| m.results.first().and_then(|r| r.figure4_error).map(|e| (m.name.clone(), e)))
            .collect();
        if !fig4.is_empty() {
            out.push_str(
                "\nFigure 4: the decoder fitted on the frozen perceptual sets, squared error per image (paper, after 50 epochs: RN 5000, RN + SRN 773)\n\n",
            );
            let mut t = Table::new(&["model", "squared error / image"]);
            for (name, e) in fig4 {
                t.row([name, format!("{e:.1}")]);
            }
            out.push_str(&t.to_markdown());
        }
    }
}

/// Validation accuracy against steps for every model: relational kinds in one chart, non-relational in another.
pub fn learning_curves(curves: &[(String, Vec<CurvePoint>)], dir: &Path) -> Result<()> {
    let groups: [(&str, &str, [Kind; 3]); 2] = [
        ("relational", "relational", [Kind::Furthest, Kind::Closest, Kind::Count]),
        ("non-relational", "non-relational", [Kind::Shape, Kind::Left, Kind::Top]),
    ];
    for (file, title, kinds) in groups {
        let mut chart =
            LineChart::new(&format!("validation accuracy, {title}")).labels("training step", "% right").size(960, 540);
        for (name, curve) in curves {
            let all = |p: &CurvePoint| if kinds[0].relational() { p.val.relational() } else { p.val.non_relational() };
            chart.add_series(&format!("{name}, all {title}"), curve.iter().map(|p| (p.step as f64, all(p))));
            for k in kinds {
                chart
                    .add_series(&format!("{name}, {}", k.name()), curve.iter().map(|p| (p.step as f64, p.val.kind(k))));
            }
        }
        chart.save(dir.join(format!("curve-{file}.png")))?;
    }
    let mut loss = LineChart::new("training cross-entropy").labels("training step", "loss").size(960, 540);
    for (name, curve) in curves {
        loss.add_series(name, curve.iter().map(|p| (p.step as f64, p.train_loss)));
    }
    loss.save(dir.join("curve-loss.png"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_uses_the_sample_deviation_and_skips_nan() {
        assert_eq!(mean_std(&[1.0, 3.0]), "2.0 ± 1.4");
        assert_eq!(mean_std(&[5.0, f64::NAN]), "5.0");
        assert_eq!(mean_std(&[]), "-");
    }
}
