//! The Circles experiment end to end on its smoke profile: every output is written, and a run interrupted
//! after its first step then resumed gives exactly the table of an uninterrupted run.

use experiments::circles::{profile::Profile, run, Args, GradientMode, Which};
use experiments::training::INTERRUPTED;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

fn args(out: &Path, resume: bool) -> Args {
    Args {
        profile: Profile::Smoke,
        model: Which::Both,
        seed: 3,
        out: Some(out.to_path_buf()),
        resume,
        learn_s0: false,
        alpha: None,
        inner_steps: None,
        lr: None,
        epochs: None,
        inner_gradient: GradientMode::Unrolled,
        evaluate: None,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-smoke-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The table without its wall-clock columns.
fn table_without_times(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("table1.json")).expect("table1.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for m in v["models"].as_array_mut().expect("models") {
        m.as_object_mut().expect("model").remove("seconds");
    }
    v
}

#[test]
fn smoke_run_writes_everything_and_resumes_exactly() {
    let straight = scratch("straight");
    run(&args(&straight, false)).expect("smoke run");
    for f in ["table1.md", "table1.json", "curve-error.png", "curve-decomposed.png"] {
        assert!(straight.join(f).exists(), "missing {f}");
    }
    for model in ["baseline", "srn"] {
        for f in [
            "checkpoint.safetensors",
            "curve.csv",
            "decomposition.png",
            "interpolation.png",
            "tsne-x.png",
            "tsne-y.png",
            "tsne-colour.png",
        ] {
            assert!(straight.join(model).join(f).exists(), "missing {model}/{f}");
        }
        let csv = std::fs::read_to_string(straight.join(model).join("curve.csv")).unwrap();
        assert!(csv.lines().count() >= 3, "a header and at least two evaluations");
    }
    let table = table_without_times(&straight);
    assert_eq!(table["models"].as_array().unwrap().len(), 2);

    // Interrupt after the first step, then resume: the same table as the straight run.
    let resumed = scratch("resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    assert!(err.to_string().contains("interrupted"), "{err}");
    INTERRUPTED.store(false, Ordering::SeqCst);
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(table_without_times(&resumed), table);
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&resumed);
}
