//! `circles --evaluate DIR`: Table 1 recomputed from a finished run's checkpoints, without training, is the
//! table the run printed; and the implicit inner-gradient mode trains end to end.

mod common;

use experiments::circles::{run, Args};
use experiments::harness::{GradientMode, Which};
use std::path::Path;

fn args(out: &Path) -> Args {
    common::circles_smoke_args(out, 5, false)
}

#[test]
fn evaluating_saved_checkpoints_reproduces_the_table_exactly() {
    let dir = common::scratch("evaluate", "table");
    run(&args(&dir)).expect("smoke run");
    let trained = std::fs::read_to_string(dir.join("table1.md")).unwrap();
    let trained_json = std::fs::read_to_string(dir.join("table1.json")).unwrap();
    for f in ["table1.md", "table1.json", "srn/decomposition.png", "baseline/tsne-x.png"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let mut evaluate = args(&dir);
    (evaluate.evaluate, evaluate.run.out) = (Some(dir.clone()), None);
    run(&evaluate).expect("evaluation");
    assert_eq!(std::fs::read_to_string(dir.join("table1.md")).unwrap(), trained);
    assert_eq!(std::fs::read_to_string(dir.join("table1.json")).unwrap(), trained_json);
    assert!(dir.join("srn/decomposition.png").exists() && dir.join("baseline/tsne-x.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn evaluating_a_folder_without_checkpoints_names_the_missing_file() {
    let dir = common::scratch("evaluate", "empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = run(&Args { evaluate: Some(dir.clone()), ..args(&dir) }).expect_err("nothing to evaluate");
    assert!(err.to_string().contains("checkpoint.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_implicit_mode_trains_end_to_end() {
    let dir = common::scratch("evaluate", "implicit");
    let mut implicit = args(&dir);
    (implicit.run.model, implicit.run.srn.inner_gradient) = (Which::Srn, GradientMode::Implicit);
    run(&implicit).expect("smoke run");
    let csv = std::fs::read_to_string(dir.join("srn-implicit").join("curve.csv")).expect("the run is named");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    for column in ["train_error", "test_error", "inner_first", "inner_last"] {
        let i = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no {column} in {header:?}"));
        let v: f64 = last[i].parse().unwrap();
        assert!(v.is_finite() && v > 0.0, "{column} = {v}");
    }
    assert!(dir.join("table1-srn-implicit.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_threshold_names_its_table_and_a_nonsense_one_is_refused() {
    let dir = common::scratch("evaluate", "threshold");
    run(&args(&dir)).expect("smoke run");
    let mut evaluate = args(&dir);
    (evaluate.evaluate, evaluate.run.out, evaluate.threshold) = (Some(dir.clone()), None, 0.3);
    run(&evaluate).expect("evaluation at 0.3");
    let table = std::fs::read_to_string(dir.join("table1-threshold0.3.md")).expect("named after its threshold");
    assert!(table.contains("an element holding an object above 0.3"), "{table}");
    let default = std::fs::read_to_string(dir.join("table1.md")).unwrap();
    assert!(!default.contains("holding an object above"), "{default}");
    for bad in ["0", "1", "-0.1", "abc"] {
        let parsed = experiments::harness::args::parse::<Args>(&[&format!("--threshold={bad}")]);
        let err = parsed.expect_err("refused at parsing").to_string();
        assert!(err.contains("not a threshold"), "{bad}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
