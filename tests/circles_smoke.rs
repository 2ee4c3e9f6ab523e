//! The Circles experiment end to end on its smoke profile: every output is written, and a run interrupted
//! after its first step then resumed gives exactly the table of an uninterrupted run.

mod common;

use experiments::circles::{run, Args};
use experiments::harness::INTERRUPTED;
use std::path::Path;
use std::sync::atomic::Ordering;

fn args(out: &Path, resume: bool) -> Args {
    common::circles_smoke_args(out, 3, resume)
}

/// A checkpoint's learning curve without its wall-clock field, and its tensors (name and bits).
fn checkpoint_contents(path: &Path) -> (serde_json::Value, Vec<(String, Vec<u64>)>) {
    common::checkpoint_contents(path, "seconds")
}

#[test]
fn smoke_run_writes_everything_and_resumes_exactly() {
    let straight = common::scratch("smoke", "straight");
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
    let table = common::table_without_times(&straight, "table1.json");
    assert_eq!(table["models"].as_array().unwrap().len(), 2);

    // Interrupt after the first step, then resume: the same table as the straight run.
    let resumed = common::scratch("smoke", "resumed");
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&args(&resumed, false)).expect_err("an interrupted run reports it");
    assert!(err.to_string().contains("interrupted"), "{err}");
    INTERRUPTED.store(false, Ordering::SeqCst);
    run(&args(&resumed, true)).expect("resumed run");
    assert_eq!(common::table_without_times(&resumed, "table1.json"), table);
    // The whole learning curve (every training-loss window included) and every tensor, bit for bit.
    for model in ["baseline", "srn"] {
        let (curve, tensors) = checkpoint_contents(&straight.join(model).join("checkpoint.safetensors"));
        let (curve2, tensors2) = checkpoint_contents(&resumed.join(model).join("checkpoint.safetensors"));
        assert!(curve.as_array().unwrap().len() >= 2);
        assert_eq!(curve2, curve, "{model}: the learning curve after a resume");
        assert_eq!(tensors2.len(), tensors.len());
        for ((n, a), (n2, b)) in tensors.iter().zip(&tensors2) {
            assert!(n == n2 && a == b, "{model}: tensor {n} differs after a resume");
        }
    }
    // A resume with another setting that defines the run is refused, naming the field and both values.
    let mut other = args(&resumed, true);
    other.run.lr = Some(1e-3);
    let err = run(&other).expect_err("another learning rate").to_string();
    assert!(err.contains("settings.lr was 0.0003 and is now 0.001"), "{err}");
    let mut other = args(&resumed, true);
    other.run.seed = 4;
    other.run.out = Some(resumed.clone());
    let err = run(&other).expect_err("another seed").to_string();
    assert!(err.contains("seed was 3 and is now 4"), "{err}");
    // More epochs only when asked for explicitly.
    let mut longer = args(&resumed, true);
    longer.run.epochs = Some(2);
    run(&longer).expect("a finished run extended by --epochs");
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&resumed);
}
