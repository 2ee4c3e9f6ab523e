//! Circles runs that must stop or refuse rather than train garbage, and checkpoints from before the run
//! configuration and checksums were stored, which must still resume.

mod common;

use experiments::circles::{run, Args};
use experiments::harness::{Which, INTERRUPTED};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// The interrupt flag is global: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn args(out: &Path, resume: bool, lr: Option<f64>) -> Args {
    let mut args = common::circles_smoke_args(out, 1, resume);
    (args.run.model, args.run.lr) = (Which::Baseline, lr);
    args
}

/// Run interrupted after its first step: a checkpoint at step 1.
fn interrupted_run(a: &Args) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(a).expect_err("interrupted");
    INTERRUPTED.store(false, Ordering::SeqCst);
    assert!(err.to_string().contains("interrupted"), "{err}");
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("resume", "nan");
    // A learning rate no parser would accept: the weights overflow after the first update.
    let a = args(&dir, true, Some(1e30));
    interrupted_run(&a);
    let checkpoint = dir.join("baseline").join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();
    let err = run(&a).expect_err("a non-finite loss stops the run").to_string();
    assert!(err.contains("baseline") && err.contains("training loss is") && err.contains("at step"), "{err}");
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before, "the last good checkpoint is left as it was");
    assert!(!dir.join("baseline").join("curve.csv").exists() && !dir.join("table1.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrite a checkpoint as the code before checksums, run configurations and loss windows wrote it.
fn make_old_format(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
    for new in ["checksum", "config", "window"] {
        assert!(meta.remove(new).is_some(), "the new format stores {new}");
    }
    let old = safetensors::serialize(tensors.tensors(), &Some(meta)).unwrap();
    std::fs::write(path, old).unwrap();
}

#[test]
fn an_old_format_checkpoint_still_resumes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("resume", "old");
    let a = args(&dir, true, None);
    interrupted_run(&a);
    make_old_format(&dir.join("baseline").join("checkpoint.safetensors"));
    run(&a).expect("an old-format checkpoint resumes (unchecked, with a note)");
    assert!(dir.join("table1.json").exists());
    // The checkpoint is in the new format from its next save on: a resume with another seed is refused.
    let mut other = args(&dir, true, None);
    other.run.seed = 2;
    let err = run(&other).expect_err("another seed").to_string();
    assert!(err.contains("seed was 1 and is now 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dangling_link_in_place_of_the_checkpoint_is_an_error_not_a_fresh_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("resume", "dangling");
    let run_dir = dir.join("baseline");
    std::fs::create_dir_all(&run_dir).unwrap();
    let link = run_dir.join("checkpoint.safetensors");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("moved-away.safetensors"), &link).unwrap();
    #[cfg(unix)]
    {
        let err = run(&args(&dir, true, None)).expect_err("a dangling checkpoint link").to_string();
        assert!(err.contains("checkpoint.safetensors") && err.contains("cannot read"), "{err}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is left alone");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_output_folder_is_found_before_training() {
    let dir = common::scratch("resume", "unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let started = std::time::Instant::now();
    let err = run(&args(&file.join("out"), false, None)).expect_err("an output folder inside a file").to_string();
    assert!(err.contains("not-a-folder") && err.contains("output folder"), "{err}");
    assert!(started.elapsed().as_secs_f64() < 5.0, "found before any training");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ctrl_c_after_training_stops_the_report() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("resume", "late-ctrl-c");
    let a = args(&dir, true, None);
    run(&a).expect("a complete run");
    let table = dir.join("table1.json");
    std::fs::remove_file(&table).unwrap();
    // Resumed with nothing left to train, then Ctrl-C: the report is not written, and the message says so.
    INTERRUPTED.store(true, Ordering::SeqCst);
    let err = run(&a).expect_err("stopped before the report");
    INTERRUPTED.store(false, Ordering::SeqCst);
    let msg = err.to_string();
    assert!(msg.contains("interrupted after baseline finished training") && msg.contains("--resume"), "{msg}");
    assert!(!table.exists(), "no report after the Ctrl-C");
    run(&a).expect("the report on the next --resume");
    assert!(table.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
