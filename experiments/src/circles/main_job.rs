//! The main job's closing lines. Its short run is too early in training to show the paper's effect, so it says
//! so, names the command that trains to the released code's budget, and evaluates that run's committed
//! checkpoints, so that a user sees the trained Table 1 as well.

use super::metrics::Decomposition;
use super::table::Table1;
use super::{train, Args, Experiment};
use crate::harness::{self, report::Report};
use crate::Result;
use std::path::PathBuf;

/// The `small` profile's run to the released code's 100,000 steps, seed 0, as committed in the repository.
pub const COMMITTED: &str = "results/circles-small-seed0";

/// The circle counts the comparison covers (the paper's Table 1 reports 1 to 5; `small` has at most 5).
const COUNTS: std::ops::RangeInclusive<usize> = 1..=5;

/// Print what the run in `quick` showed and the committed `small` run's Table 1 at `threshold`.
pub(super) fn closing_lines(quick: &Table1, threshold: f32) -> Result<()> {
    let steps = quick.models.first().map_or(0, |m| m.steps);
    println!(
        "What you just saw: {steps} steps of each model on 32 x 32 images of 0 to 5 circles (the `small` profile's \
         scene, data and widths), {:.0} % of the 100,000 steps the released code trains for.",
        100.0 * steps as f64 / 100_000.0
    );
    if let Some(line) = compare(quick) {
        println!("At this budget {line}.");
    }
    println!(
        "\nThe paper's claim is about trained models. `cargo run --release -p experiments -- circles --profile small` \
         trains both to 100,000 steps (hours on 2 cores, resumable with --resume; RESULTS.md gives the wall time \
         and the learning curves). That run's checkpoints are committed in {COMMITTED}/; evaluated now on its \
         {} test images (`circles --profile small --evaluate {COMMITTED}` also draws its figures):\n",
        super::profile::Profile::Small.settings().test_images
    );
    match evaluate_committed(threshold) {
        Ok(table) => {
            println!("{}", table.markdown());
            if let Some(line) = compare(&table) {
                println!("After {} steps {line}.", table.models.first().map_or(0, |m| m.steps));
            }
        }
        Err(e) => println!("(the committed checkpoints could not be evaluated: {e})"),
    }
    Ok(())
}

/// Where the committed run is: beside this crate in the workspace, else under the working directory.
fn committed_dir() -> PathBuf {
    let in_workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(COMMITTED);
    if in_workspace.exists() {
        in_workspace
    } else {
        PathBuf::from(COMMITTED)
    }
}

/// Table 1 of the committed `small` run's two models, computed on this process alone and written nowhere.
fn evaluate_committed(threshold: f32) -> Result<Table1> {
    let dir = committed_dir().display().to_string();
    let args: Args = harness::args::parse(&["--profile", "small", "--evaluate", &dir])?;
    let exp = Experiment::new(&args)?;
    let all: Vec<usize> = (0..exp.test.len()).collect();
    let mut models = Vec::new();
    for task in &exp.tasks(&args) {
        let outcome = harness::load(task)?;
        let (stats, _) = train::evaluate(&outcome.model, &exp.test, &all, exp.settings.batch, threshold, false);
        models.push(super::table::ModelResult {
            name: task.run.name.clone(),
            steps: outcome.steps,
            seconds: outcome.seconds,
            stats,
        });
    }
    Ok(Table1 { profile: args.run.profile, seed: args.run.seed, settings: exp.settings, threshold, models })
}

/// "the baseline decomposes ... and the SRN ...: the SRN ahead at k of 5 circle counts", from a table holding
/// a `baseline` and an `srn` row (`None` without both).
fn compare(table: &Table1) -> Option<String> {
    let find = |name: &str| table.models.iter().find(|m| m.name == name).map(|m| &m.stats);
    let (baseline, srn) = (find("baseline")?, find("srn")?);
    let rates = |d: &Decomposition| {
        COUNTS.map(|c| d.rate(c).map_or("-".to_string(), |r| format!("{r:.0}"))).collect::<Vec<_>>().join(" / ")
    };
    let ahead = COUNTS.filter(|&c| matches!((srn.rate(c), baseline.rate(c)), (Some(s), Some(b)) if s > b)).count();
    let verdict = match ahead {
        0 => "the baseline is ahead or level at every count".to_string(),
        n if n == COUNTS.count() => "the SRN is ahead at every count".to_string(),
        n => format!("the SRN is ahead at {n} of {} counts", COUNTS.count()),
    };
    Some(format!(
        "the baseline decomposes {} % of the test images with 1 / 2 / 3 / 4 / 5 circles and the SRN {} %: {verdict}",
        rates(baseline),
        rates(srn)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circles::profile::Profile;
    use crate::circles::table::ModelResult;

    fn result(name: &str, decomposed: [usize; 6]) -> ModelResult {
        let mut stats = Decomposition::default();
        for (c, &d) in decomposed.iter().enumerate() {
            for i in 0..10 {
                stats.add(c, if i < d { c } else { c + 1 }, 0.0);
            }
        }
        ModelResult { name: name.to_string(), steps: 100, seconds: 1.0, stats }
    }

    fn table(models: Vec<ModelResult>) -> Table1 {
        let settings = Profile::Small.settings();
        Table1 { profile: Profile::Small, seed: 0, settings, threshold: 0.1, models }
    }

    #[test]
    fn the_comparison_counts_where_the_srn_is_ahead() {
        let t = table(vec![result("baseline", [10, 5, 3, 2, 1, 0]), result("srn", [10, 8, 3, 1, 2, 0])]);
        let line = compare(&t).expect("both models");
        assert!(line.contains("50 / 30 / 20 / 10 / 0 % of the test images"), "{line}");
        assert!(line.contains("the SRN 80 / 30 / 10 / 20 / 0 %"), "{line}");
        assert!(line.ends_with("the SRN is ahead at 2 of 5 counts"), "{line}");
        let t = table(vec![result("baseline", [10, 1, 1, 1, 1, 1]), result("srn", [10, 2, 2, 2, 2, 2])]);
        assert!(compare(&t).unwrap().ends_with("the SRN is ahead at every count"));
        let t = table(vec![result("baseline", [10, 2, 2, 2, 2, 2]), result("srn", [10, 2, 2, 1, 1, 1])]);
        assert!(compare(&t).unwrap().ends_with("the baseline is ahead or level at every count"));
        assert!(compare(&table(vec![result("srn", [0; 6])])).is_none(), "one model: nothing to compare");
    }
}
