//! The CLUTRR experiment end to end on its smoke profile (generated stories, tiny models, the three models, two
//! seeds): the table and the curves are written, and a run interrupted after its first step then resumed gives
//! exactly the results of an uninterrupted run.

mod common;

use experiments::clutrr::run::{run, Args};
use experiments::harness::INTERRUPTED;
use std::path::Path;
use std::sync::atomic::Ordering;

const MODELS: [&str; 3] = ["rn", "srn", "grn"];
const SEEDS: [&str; 2] = ["seed3", "seed4"];

/// The three models on the smoke profile (two seeds from 3), data seed 1.
fn args(out: &Path, resume: bool) -> Args {
    common::smoke_args(&["--seed", "3", "--data-seed", "1"], out, resume)
}

#[test]
fn smoke_run_writes_the_table_and_resumes_exactly() {
    let straight = common::scratch("clutrr-smoke", "straight");
    run(&args(&straight, false)).expect("smoke run");
    let table = std::fs::read_to_string(straight.join("table.md")).unwrap();
    for (model, paper) in [("rn", "49.7"), ("srn", "55.0"), ("grn", "56.1")] {
        let row = table.lines().find(|l| l.starts_with(&format!("| {model} "))).unwrap_or_else(|| panic!("{table}"));
        assert!(row.contains(paper), "{row}");
    }
    assert!(table.contains("k = 10") && table.contains("generated"), "{table}");
    for f in ["table.csv", "curve-accuracy.png", "curve-loss.png"] {
        assert!(straight.join(f).exists(), "missing {f}");
    }
    for model in MODELS {
        for seed in SEEDS {
            let d = straight.join(model).join(seed);
            for f in ["checkpoint.safetensors", "best.safetensors", "curve.csv"] {
                assert!(d.join(f).exists(), "missing {model}/{seed}/{f}");
            }
            let csv = std::fs::read_to_string(d.join("curve.csv")).unwrap();
            assert!(csv.starts_with("step,epoch,") && csv.contains("test_k10"), "{csv}");
            assert!(csv.lines().count() >= 3, "a header and at least two validations:\n{csv}");
        }
    }
    let json = common::table_without_times(&straight, "table.json");
    assert_eq!(json["models"].as_array().unwrap().len(), 3);
    for m in json["models"].as_array().unwrap() {
        for r in m["results"].as_array().unwrap() {
            assert_eq!(r["test"].as_array().unwrap().len(), 9, "k = 2..10");
            let best = r["mean_234"].as_f64().expect("a mean over k = 2, 3, 4");
            assert!((0.0..=100.0).contains(&best), "{r}");
        }
    }

    // Interrupt after the first step of the first run, then resume: the same results.
    let resumed = common::scratch("clutrr-smoke", "resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("--resume"), "{err}");
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(
        common::table_without_times(&straight, "table.json"),
        common::table_without_times(&resumed, "table.json")
    );
    for model in MODELS {
        for seed in SEEDS {
            let path = |d: &Path| d.join(model).join(seed).join("checkpoint.safetensors");
            let (curve, tensors) = common::checkpoint_contents(&path(&straight), "train_seconds");
            let (curve2, tensors2) = common::checkpoint_contents(&path(&resumed), "train_seconds");
            assert_eq!(curve2, curve, "{model}/{seed}: the learning curve after a resume");
            assert_eq!(tensors2, tensors, "{model}/{seed}: the checkpoint's tensors after a resume");
        }
    }
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&resumed);
}
