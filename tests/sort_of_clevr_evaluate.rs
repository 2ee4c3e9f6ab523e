//! `sort-of-clevr --evaluate DIR`: Table 2 recomputed from a finished run's checkpoints, without training, is the
//! table the run wrote (every row, the Synthetic configuration chosen again on the loaded models, the ablation,
//! the early check, Figure 4 from the saved decoder fits); without a saved fit Figure 4 is left out with a note;
//! with one model the configuration is chosen on it alone; a folder without checkpoints names the missing file.

mod common;

use experiments::harness::Which;
use experiments::sort_of_clevr::{run, Args};
use std::path::Path;

/// Both models on the smoke profile, one seed (5), data seed 1.
fn args(out: &Path) -> Args {
    common::smoke_args(&["--seed", "5", "--seeds", "1", "--data-seed", "1"], out, false)
}

fn evaluate(dir: &Path) -> Args {
    let mut a = args(dir);
    (a.evaluate, a.run.out) = (Some(dir.to_path_buf()), None);
    a
}

#[test]
fn evaluating_saved_checkpoints_reproduces_table_2_exactly() {
    let dir = common::scratch("soc-evaluate", "table");
    run(&args(&dir)).expect("smoke run");
    let trained_md = std::fs::read_to_string(dir.join("table2.md")).unwrap();
    let trained = common::table_without_times(&dir, "table2.json");
    // The configuration is recorded: candidate, objects, both models' lowest unrotated confidence, threshold.
    let synthetic = &trained["synthetic"];
    assert_eq!(synthetic["threshold"].as_f64(), Some(0.99), "{synthetic}");
    let choice = &synthetic["choices"][0];
    assert_eq!(choice["seed"].as_u64(), Some(5));
    assert!(choice["candidate"].as_u64().is_some() && choice["passed"].is_boolean(), "{choice}");
    let objects = choice["configuration"]["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 6);
    assert!(objects.iter().all(|o| o["shape"].is_string() && o["dx"].is_i64() && o["colour"].is_u64()), "{objects:?}");
    let confidences = choice["min_confidence"].as_array().expect("per model");
    let names: Vec<&str> = confidences.iter().map(|c| c["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["rn", "rn-srn"]);
    assert!(confidences.iter().all(|c| (0.0..=1.0).contains(&c["confidence"].as_f64().unwrap())));
    assert_eq!(choice["positions"].as_array().map(Vec::len), Some(2), "the smoke profile's 2 positions");
    assert!(trained_md.contains("Robustness (Synthetic): the configuration of every seed, chosen on rn and rn-srn"));

    for f in ["table2.md", "table2.json", "table2.csv", "figure4-rn.png", "figure4-rn-srn.png", "curve-loss.png"] {
        std::fs::remove_file(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    run(&evaluate(&dir)).expect("evaluation");
    assert_eq!(common::table_without_times(&dir, "table2.json"), trained);
    assert_eq!(std::fs::read_to_string(dir.join("table2.md")).unwrap(), trained_md);
    for f in ["figure4-rn.png", "figure4-rn-srn.png", "curve-loss.png"] {
        assert!(dir.join(f).exists(), "{f} is drawn again");
    }

    // Without a saved decoder fit, Figure 4's error is left out with a note, and nothing is trained.
    std::fs::remove_dir_all(dir.join("figure4-rn-srn")).unwrap();
    run(&evaluate(&dir)).expect("evaluation without one fit");
    let json = common::table_without_times(&dir, "table2.json");
    assert!(json["models"][1]["results"][0]["figure4_error"].is_null());
    assert_eq!(json["models"][0]["results"][0]["figure4_error"], trained["models"][0]["results"][0]["figure4_error"]);
    assert!(!dir.join("figure4-rn-srn").exists(), "--evaluate fits no decoder");
    let md = std::fs::read_to_string(dir.join("table2.md")).unwrap();
    assert!(md.contains("Figure 4 of rn-srn is left out"), "{md}");
    assert_eq!(json["models"][1]["results"][0]["test"], trained["models"][1]["results"][0]["test"]);

    // One model: the configuration is chosen on it alone, and said so.
    let mut srn = evaluate(&dir);
    srn.run.model = Which::Srn;
    run(&srn).expect("evaluation of RN + SRN alone");
    let json = common::table_without_times(&dir, "table2.json");
    let confidences = json["synthetic"]["choices"][0]["min_confidence"].as_array().unwrap().clone();
    assert_eq!(confidences.len(), 1);
    assert_eq!(confidences[0]["model"], "rn-srn");
    let md = std::fs::read_to_string(dir.join("table2.md")).unwrap();
    assert!(md.contains("chosen on rn-srn alone (the only model trained)"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn evaluating_a_folder_without_checkpoints_names_the_missing_file() {
    let dir = common::scratch("soc-evaluate", "empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = run(&evaluate(&dir)).expect_err("nothing to evaluate");
    let message = err.to_string();
    assert!(message.contains("checkpoint.safetensors") && message.contains("rn-seed5"), "{message}");
    assert!(!dir.join("rn").join("seed5").join("checkpoint.safetensors").exists(), "nothing is trained");
    let _ = std::fs::remove_dir_all(&dir);
}
