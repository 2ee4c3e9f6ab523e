//! The Sort-of-CLEVR experiment end to end on its smoke profile (two seeds, both models): every output is
//! written, Table 2 holds every row, and a run interrupted after its first step then resumed gives exactly the
//! results of an uninterrupted run.

mod common;

use experiments::harness::INTERRUPTED;
use experiments::sort_of_clevr::{run, Args};
use std::path::Path;
use std::sync::atomic::Ordering;

/// A checkpoint's learning curve without its wall-clock field, and its tensors (name and bits).
fn checkpoint_contents(path: &Path) -> (serde_json::Value, Vec<(String, Vec<u64>)>) {
    common::checkpoint_contents(path, "train_seconds")
}

/// Both models on the smoke profile (two seeds from 5), data seed 1, every other flag at its default.
fn args(out: &Path, resume: bool) -> Args {
    common::smoke_args(&["--seed", "5", "--data-seed", "1"], out, resume)
}

#[test]
fn smoke_run_writes_everything_and_resumes_exactly() {
    let straight = common::scratch("soc-smoke", "straight");
    run(&args(&straight, false)).expect("smoke run");
    let table = std::fs::read_to_string(straight.join("table2.md")).unwrap();
    for row in [
        "Non-relational",
        "Relational",
        "Furthest",
        "Closest",
        "Count",
        "Robustness (Synthetic)",
        "Robustness (Dataset)",
    ] {
        assert!(table.contains(&format!("| {row} ")), "Table 2 lacks {row}:\n{table}");
    }
    assert!(table.contains("Ablation") && table.contains("Figure 4"), "{table}");
    for f in
        ["curve-relational.png", "curve-non-relational.png", "curve-loss.png", "figure4-rn.png", "figure4-rn-srn.png"]
    {
        assert!(straight.join(f).exists(), "missing {f}");
    }
    for model in ["rn", "rn-srn"] {
        for seed in ["seed5", "seed6"] {
            let d = straight.join(model).join(seed);
            for f in ["checkpoint.safetensors", "best.safetensors", "curve.csv"] {
                assert!(d.join(f).exists(), "missing {model}/{seed}/{f}");
            }
            let csv = std::fs::read_to_string(d.join("curve.csv")).unwrap();
            assert!(csv.lines().count() >= 3, "a header and at least two validations");
        }
    }
    let json = common::table_without_times(&straight, "table2.json");
    let srn = &json["models"][1]["results"][0];
    assert!(srn["zero_steps"].is_object(), "the 0-step ablation is reported");
    assert!(json["models"][0]["results"][0]["zero_steps"].is_null(), "no ablation for the RN");
    assert!(srn["figure4_error"].as_f64().expect("figure 4 error") > 0.0);

    // Interrupt after the first step of the first run, then resume: the same results.
    let resumed = common::scratch("soc-smoke", "resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("--resume"), "{err}");
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(
        common::table_without_times(&straight, "table2.json"),
        common::table_without_times(&resumed, "table2.json")
    );
    // Every run's whole learning curve and every tensor of its checkpoint, bit for bit.
    for model in ["rn", "rn-srn"] {
        for seed in ["seed5", "seed6"] {
            let (curve, tensors) = checkpoint_contents(&straight.join(model).join(seed).join("checkpoint.safetensors"));
            let (curve2, tensors2) =
                checkpoint_contents(&resumed.join(model).join(seed).join("checkpoint.safetensors"));
            assert!(curve.as_array().unwrap().len() >= 2);
            assert_eq!(curve2, curve, "{model}/{seed}: the learning curve after a resume");
            assert_eq!(tensors2, tensors, "{model}/{seed}: the checkpoint's tensors after a resume");
        }
    }
    // A resume with another data seed is refused, naming the field and both values.
    let mut other = args(&resumed, true);
    other.run.data_seed = 2;
    let err = run(&other).expect_err("another data seed").to_string();
    assert!(err.contains("data_seed was 1 and is now 2"), "{err}");
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&resumed);
}
