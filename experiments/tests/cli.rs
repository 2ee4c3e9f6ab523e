//! The experiments binary as a user runs it: out-of-range flags are rejected when parsed, and a run killed
//! during training (SIGKILL, or SIGTERM as a service manager stops it) resumes to exactly the results of an
//! uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn experiments(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_experiments")).args(args).output().expect("the experiments binary runs")
}

#[test]
fn out_of_range_flags_are_rejected_when_parsed() {
    let cases: [(&[&str], &str); 10] = [
        (&["circles", "--alpha", "nan"], "alpha must be a finite number of at least 0"),
        (&["circles", "--alpha", "inf"], "alpha must be"),
        (&["circles", "--alpha", "-5"], "alpha must be"),
        (&["circles", "--lr", "0"], "learning rate must be a finite number above 0"),
        (&["circles", "--lr", "-1e-3"], "learning rate must be"),
        (&["circles", "--lr", "NaN"], "learning rate must be"),
        (&["circles", "--inner-steps", "0"], "at least 1"),
        (&["circles", "--epochs", "99999999999999"], "between 1 and 1000000"),
        (&["sort-of-clevr", "--seeds", "0"], "at least 1"),
        (&["sort-of-clevr", "--alpha", "-1"], "alpha must be"),
    ];
    for (args, why) in cases {
        let out = experiments(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} is a usage error: {stderr}");
        assert!(stderr.contains(why) && stderr.contains(args[1]), "{args:?}: {stderr}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const RUN: [&str; 8] = ["circles", "--profile", "smoke", "--model", "baseline", "--seed", "7", "--epochs"];
const EPOCHS: &str = "15";

fn run_args(out: &Path, resume: bool) -> Vec<String> {
    let mut a: Vec<String> = RUN.iter().chain(&[EPOCHS, "--out"]).map(|s| s.to_string()).collect();
    a.push(out.display().to_string());
    if resume {
        a.push("--resume".into());
    }
    a
}

/// Table 1 without wall-clock fields, and the checkpoint's whole learning curve without them.
fn results(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let mut table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("table1.json")).expect("table1.json")).unwrap();
    for m in table["models"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("seconds");
    }
    let ck = models::Checkpoint::load(dir.join("baseline").join("checkpoint.safetensors")).unwrap();
    let mut curve: serde_json::Value = serde_json::from_str(ck.meta("curve").unwrap()).unwrap();
    for p in curve.as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("seconds");
    }
    (table, curve)
}

/// Start a run, wait for its first checkpoint, stop it with `signal`, then resume it to the end.
fn stopped_and_resumed(out: &Path, signal: &str) {
    let child = Command::new(env!("CARGO_BIN_EXE_experiments"))
        .args(run_args(out, false))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = out.join("baseline").join("checkpoint.safetensors");
    let started = Instant::now();
    while !checkpoint.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out_of_child = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out_of_child.stderr);
    if signal == "-TERM" && !out.join("table1.json").exists() {
        // SIGTERM is Ctrl-C: a checkpoint after the current step and a message, not a silent death.
        assert_eq!(out_of_child.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("interrupted") && stderr.contains("--resume"), "{stderr}");
    }
    let resumed = experiments(&run_args(out, true).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let leftovers: Vec<_> = std::fs::read_dir(out.join("baseline"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_killed_or_terminated_run_resumes_to_the_same_results() {
    let straight = scratch("straight");
    let done = experiments(&run_args(&straight, false).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let expected = results(&straight);
    for (name, signal) in [("killed", "-KILL"), ("terminated", "-TERM")] {
        let out = scratch(name);
        stopped_and_resumed(&out, signal);
        assert_eq!(results(&out), expected, "{name}: the results after a resume");
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(&straight);
}
