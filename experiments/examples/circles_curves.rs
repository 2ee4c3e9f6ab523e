//! Circles learning curves side by side: for each listed run of a folder, the test error and the % of images
//! decomposed at 1 to 5 circles (on the run's fixed test subset), at every N-th step the runs share. The
//! tables in RESULTS.md that compare runs at equal steps come from this.
//!
//! `cargo run --release -p experiments --example circles_curves -- DIR EVERY RUN [RUN ...]`
//! e.g. `... -- results/circles-small-seed0 8000 baseline srn`: reads `DIR/RUN/curve.csv` (written at a
//! run's end, or by `circles --evaluate`).

use std::collections::BTreeMap;
use std::path::Path;

/// One curve point: test error and % decomposed at 1 to 5 circles.
type Point = (f64, [f64; 5]);

/// A run's curve by step, read from its `curve.csv`.
fn curve(path: &Path) -> Result<BTreeMap<usize, Point>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = reader.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| format!("{}: no column `{name}`", path.display()))
    };
    let step = column("step")?;
    let error = column("test_error")?;
    let rates: Vec<usize> = (1..=5).map(|c| column(&format!("decomposed_{c}"))).collect::<Result<_, _>>()?;
    let mut points = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let number = |i: usize| {
            record[i].parse::<f64>().map_err(|e| format!("{} row {}: `{}`: {e}", path.display(), line + 2, &record[i]))
        };
        let mut r = [0.0; 5];
        for (slot, &i) in r.iter_mut().zip(&rates) {
            *slot = number(i)?;
        }
        points.insert(number(step)? as usize, (number(error)?, r));
    }
    Ok(points)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: circles_curves DIR EVERY RUN [RUN ...]".into());
    }
    let dir = Path::new(&args[0]);
    let every: usize = args[1].parse().map_err(|_| format!("EVERY: `{}` is not a number of steps", args[1]))?;
    let runs = &args[2..];
    let curves: Vec<BTreeMap<usize, Point>> =
        runs.iter().map(|r| curve(&dir.join(r).join("curve.csv"))).collect::<Result<_, _>>()?;
    let mut header = String::from("| step |");
    let mut rule = String::from("|---:|");
    for r in runs {
        header.push_str(&format!(" {r}: test error | {r}: % decomposed, 1 / 2 / 3 / 4 / 5 circles |"));
        rule.push_str("---:|---|");
    }
    println!("{header}\n{rule}");
    let steps = curves[0].keys().filter(|&&s| every > 0 && s % every == 0);
    for step in steps.filter(|s| curves.iter().all(|c| c.contains_key(s))) {
        let mut row = format!("| {step} |");
        for c in &curves {
            let (error, rates) = c[step];
            let rates: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            row.push_str(&format!(" {error:.1} | {} |", rates.join(" / ")));
        }
        println!("{row}");
    }
    Ok(())
}
