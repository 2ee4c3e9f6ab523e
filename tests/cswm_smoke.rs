//! The C-SWM experiment end to end on its smoke profile (2-D shapes, two seeds, both models): Table 3 and
//! every run's learning curve and object-mask figure are written, and a run interrupted after its first step
//! then resumed gives exactly the results of an uninterrupted run.

mod common;

use experiments::cswm::figures;
use experiments::cswm::run::{run, Args};
use experiments::harness::INTERRUPTED;
use experiments::report::Canvas;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Both models on the smoke profile (two seeds from 3), data seed 1, S0 learned (the encoder learns through the
/// refinement).
fn args(out: &Path, resume: bool) -> Args {
    common::smoke_args(&["--seed", "3", "--data-seed", "1", "--s0", "learned"], out, resume)
}

#[test]
fn cswm_smoke_run_writes_everything_and_resumes_exactly() {
    let stem = "table3-cswm-srn-learn-s0";
    let straight = common::scratch("cswm-smoke", "straight");
    run(&args(&straight, false)).expect("smoke run");
    let table = std::fs::read_to_string(straight.join(format!("{stem}.md"))).unwrap();
    assert!(table.contains("| cswm | 2 |") && table.contains("| cswm-srn-learn-s0 | 2 |"), "{table}");
    assert!(straight.join(format!("{stem}.csv")).exists());
    for model in ["cswm", "cswm-srn-learn-s0"] {
        for seed in ["seed3", "seed4"] {
            let d = straight.join(model).join(seed);
            assert!(d.join("checkpoint.safetensors").exists(), "missing {model}/{seed} checkpoint");
            let csv = std::fs::read_to_string(d.join("curve.csv")).unwrap();
            assert!(csv.starts_with("step,") && csv.lines().count() >= 3, "{model}/{seed}:\n{csv}");
            // 4 observations of 50 x 50, each with its frame and the K = 5 masks.
            let masks = Canvas::load_png(d.join("masks.png")).expect("masks.png");
            let tile = 50 * figures::SCALE + figures::SPACING;
            assert_eq!((masks.width(), masks.height()), (6 * tile + figures::SPACING, 4 * tile + figures::SPACING));
        }
    }
    let json = common::table_without_times(&straight, &format!("{stem}.json"));
    let metrics = &json["models"][1]["results"][0]["metrics"];
    assert_eq!(metrics.as_array().unwrap().len(), 3, "1, 5 and 10 steps");
    assert_eq!(metrics[2]["steps"], 10);

    // Interrupt after the first step of the first run, then resume: the same results.
    let resumed = common::scratch("cswm-smoke", "resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("--resume"), "{err}");
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(
        common::table_without_times(&straight, &format!("{stem}.json")),
        common::table_without_times(&resumed, &format!("{stem}.json"))
    );
    for model in ["cswm", "cswm-srn-learn-s0"] {
        let path = |d: &Path| d.join(model).join("seed3").join("checkpoint.safetensors");
        assert_eq!(
            common::checkpoint_contents(&path(&resumed), "train_seconds"),
            common::checkpoint_contents(&path(&straight), "train_seconds"),
            "{model}: the learning curve and tensors after a resume"
        );
    }
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&resumed);
}
