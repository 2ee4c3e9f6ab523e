//! The C-SWM experiment end to end on its smoke profile (2-D shapes, two seeds, both models): Table 3 and
//! every run's learning curve are written, and a run interrupted after its first step then resumed gives
//! exactly the results of an uninterrupted run.

mod common;

use experiments::cswm::run::{run, Args};
use experiments::harness::INTERRUPTED;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

fn args(out: &Path, resume: bool) -> Args {
    let out = out.display().to_string();
    let mut argv = vec!["--profile", "smoke", "--seed", "3", "--data-seed", "1", "--s0", "learned", "--out", &out];
    if resume {
        argv.push("--resume");
    }
    experiments::harness::args::parse(&argv).expect("valid arguments")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-cswm-smoke-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Table 3's JSON without its wall-clock fields.
fn results_without_times(dir: &Path, stem: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("table JSON");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for m in v["models"].as_array_mut().expect("models") {
        for r in m["results"].as_array_mut().expect("results") {
            let r = r.as_object_mut().expect("result");
            r.remove("train_seconds");
            r.remove("seconds_per_step");
        }
    }
    v
}

#[test]
fn cswm_smoke_run_writes_everything_and_resumes_exactly() {
    let stem = "table3-cswm-srn-learn-s0";
    let straight = scratch("straight");
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
        }
    }
    let json = results_without_times(&straight, stem);
    let metrics = &json["models"][1]["results"][0]["metrics"];
    assert_eq!(metrics.as_array().unwrap().len(), 3, "1, 5 and 10 steps");
    assert_eq!(metrics[2]["steps"], 10);

    // Interrupt after the first step of the first run, then resume: the same results.
    let resumed = scratch("resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("--resume"), "{err}");
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(results_without_times(&straight, stem), results_without_times(&resumed, stem));
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
