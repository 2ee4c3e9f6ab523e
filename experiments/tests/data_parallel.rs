//! Data parallelism over MPI (experiments/src/distributed.rs, docs/mpi.md), run for real under `mpirun`: the
//! `data_parallel` example trained on N ranks gives the 1-process gradients and parameters up to the order
//! of a float sum, and a rank that panics ends the whole job with a message naming it instead of hanging.
//!
//! Built only with the feature `mpi` (a `required-features` test target); `.ci/run` runs it as
//! `cargo test -p experiments --features mpi --test data_parallel`. Needs Open MPI's `mpirun` on the path.
//!
//! # Tolerance: 1e-5, absolute, on the first step's summed gradients and on the parameters after the steps
//!
//! Each gradient entry is a sum over the global batch (8 examples) of per-example terms. One process sums
//! them in one pass (the GEMM's order); N ranks sum their shards and MPI adds the partial sums, a
//! re-association of the same f32 sum. Its error is bounded by about (batch) * 2^-24 * sum|terms|, here
//! about 5e-7 for terms of size up to 1 (the gradients are below 1 in size); the parameters then move by
//! Adam's lr * m / (sqrt(v) + eps), whose change under such a relative perturbation of the gradients is of
//! order lr * 1e-6 per step (lr = 1e-2, 5 to 8 steps). Observed: at most 6e-8 (one ulp at 0.5). 1e-5 is
//! over 100 times that, while every real fault is orders of magnitude larger: a missing, doubled or misweighted
//! shard changes gradient entries by their own size (1e-3 to 1), and an unsynchronised start or step
//! moves parameters by about lr = 1e-2. (The gradients are compared as well as the parameters because Adam is
//! invariant to a constant scale of the gradients: a loss summed instead of averaged would not show in the
//! parameters.)

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TOLERANCE: f64 = 1e-5;

/// The example, built once by cargo into this test's target directory and profile.
fn example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        // This test runs as <target>/<profile dir>/deps/data_parallel-<hash>.
        let exe = std::env::current_exe().expect("the test's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>/deps").to_path_buf();
        let target = profile_dir.parent().expect("<target>/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(name) => name.to_string(),
            None => panic!("no profile directory in {}", exe.display()),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--features", "mpi", "--example", "data_parallel", "--profile", &profile])
            .arg("--manifest-path")
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the data_parallel example failed");
        profile_dir.join("examples").join("data_parallel")
    })
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-data-parallel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// `mpirun` with the flags a container needs (root, fewer cores than ranks) and one rayon thread per rank.
fn mpirun(ranks: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", &ranks.to_string()])
        .env("RAYON_NUM_THREADS", "1")
        .env("RUST_BACKTRACE", "0");
    c
}

/// The example's JSON from a run on `ranks` processes (0: one process without mpirun).
fn train(ranks: usize, args: &[&str], dir: &Path) -> Value {
    let out = dir.join(format!("ranks{ranks}.json"));
    let mut command = if ranks == 0 {
        let mut c = Command::new(example());
        c.env("RAYON_NUM_THREADS", "1");
        c
    } else {
        let mut c = mpirun(ranks);
        c.arg(example());
        c
    };
    let output = command.arg(&out).args(args).output().expect("mpirun runs (is Open MPI installed?)");
    assert!(
        output.status.success(),
        "{ranks} ranks, {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("rank 0 wrote its output"))
        .expect("the example's JSON");
    assert_eq!(json["ranks"], ranks.max(1), "the run's world size");
    json
}

fn numbers(v: &Value, key: &str) -> Vec<f64> {
    v[key].as_array().unwrap_or_else(|| panic!("no {key}")).iter().map(|x| x.as_f64().expect("a number")).collect()
}

/// The largest difference between the runs' `key`, checked against the tolerance; also that the values moved
/// the way a training run does (not all zero).
fn compare(reference: &Value, other: &Value, key: &str, what: &str) -> f64 {
    let (a, b) = (numbers(reference, key), numbers(other, key));
    assert_eq!(a.len(), b.len(), "{what}: {key} lengths");
    assert!(a.iter().any(|&x| x.abs() > 1e-3), "{what}: {key} are all (nearly) zero");
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst <= TOLERANCE, "{what}: {key} differ by up to {worst:e}, above {TOLERANCE:e}");
    worst
}

#[test]
fn n_ranks_train_as_one_process_does() {
    let dir = scratch("exact");
    // (ranks, global batch): even shards; uneven ones (7 = 4 + 3, 8 = 3 + 3 + 2); more ranks than a
    // batch of 1 (the second rank's shard is empty and contributes zero gradients).
    for (ranks, batch) in [(1, 8), (2, 8), (2, 7), (3, 8), (2, 1)] {
        let args = ["--batch", &batch.to_string(), "--steps", "6"];
        let alone = train(0, &args, &dir);
        let parallel = train(ranks, &args, &dir);
        let what = format!("{ranks} ranks, global batch {batch}");
        let g = compare(&alone, &parallel, "grads", &what);
        let p = compare(&alone, &parallel, "params", &what);
        eprintln!("{what}: gradients within {g:e}, parameters within {p:e}");
        if ranks == 1 {
            // One rank under mpirun is one process: bit for bit.
            assert_eq!((g, p), (0.0, 0.0), "{what}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panicking_rank_ends_the_job_with_its_rank_named() {
    let dir = scratch("panic");
    for rank in [1, 0] {
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let mut child = mpirun(2)
            .arg(example())
            .arg(dir.join("never.json"))
            .args(["--panic-on-rank", &rank.to_string()])
            .stdout(Stdio::from(std::fs::File::create(&out).expect("stdout file")))
            .stderr(Stdio::from(std::fs::File::create(&err).expect("stderr file")))
            .spawn()
            .expect("mpirun runs");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("mpirun's status") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rank {rank} panicked and mpirun was still running after 60 s: the job hangs");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text =
            std::fs::read_to_string(&err).unwrap_or_default() + &std::fs::read_to_string(&out).unwrap_or_default();
        assert!(!status.success(), "rank {rank} panicked, yet mpirun exited with {status}: {text}");
        let named = format!("rank {rank} of 2: a deliberate failure");
        assert!(text.contains(&named), "no {named:?} in the output: {text}");
        assert!(!dir.join("never.json").exists(), "rank 0 finished despite the failure");
        eprintln!("rank {rank} panicked: mpirun exited with {status} after {:.1} s", start.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_multi_rank_run_continues_exactly() {
    let dir = scratch("resume");
    let ck = dir.join("ck.safetensors");
    let ck = ck.to_str().expect("a UTF-8 path");
    let whole = train(2, &["--steps", "6"], &dir);
    train(2, &["--steps", "6", "--checkpoint", ck, "--stop-after", "3"], &dir);
    let resumed = train(2, &["--steps", "6", "--resume", ck], &dir);
    // The same operations on the same values in the same order: bit for bit.
    assert_eq!(numbers(&whole, "params"), numbers(&resumed, "params"), "a resumed 2-rank run");
    // And a 3-rank run resumed from the 2-rank checkpoint still trains as one process does.
    let alone = train(0, &["--steps", "6"], &dir);
    let three = train(3, &["--steps", "6", "--resume", ck], &dir);
    compare(&alone, &three, "params", "3 ranks resumed from 2");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The experiments' binary (built with this test's features, so with MPI).
fn experiments() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_experiments"));
    c.env("RAYON_NUM_THREADS", "1");
    c
}

/// Run `command` with `args`, which must succeed.
fn succeed(mut command: Command, args: &[&str]) {
    let out = command.args(args).output().expect("the command runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A run's table (`file` in `dir`) without its wall-clock fields.
fn table(dir: &Path, file: &str) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.contains("seconds"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    strip(&mut v);
    v
}

#[test]
fn an_experiment_on_one_rank_under_mpirun_is_the_plain_run() {
    let dir = scratch("circles-one-rank");
    let (plain, one) = (dir.join("plain").display().to_string(), dir.join("one").display().to_string());
    succeed(experiments(), &["circles", "--profile", "smoke", "--out", &plain]);
    succeed(mpirun(1), &[env!("CARGO_BIN_EXE_experiments"), "circles", "--profile", "smoke", "--out", &one]);
    assert_eq!(table(&dir.join("plain"), "table1.json"), table(&dir.join("one"), "table1.json"));
}

/// Two ranks train Circles (a summed loss) and Sort-of-CLEVR (a mean loss) to the end, rank 0 alone writing
/// the tables, and a two-rank run stopped after its first epoch and resumed ends exactly as the straight one;
/// the two-rank Sort-of-CLEVR table is the one a single process computes from its checkpoints.
#[test]
fn experiments_train_on_two_ranks_and_resume_exactly() {
    let dir = scratch("two-ranks");
    let exe = env!("CARGO_BIN_EXE_experiments");
    let out = |name: &str| dir.join(name).display().to_string();
    let (straight, resumed, soc) = (out("straight"), out("resumed"), out("soc"));
    succeed(mpirun(2), &[exe, "circles", "--profile", "smoke", "--epochs", "2", "--out", &straight]);
    succeed(mpirun(2), &[exe, "circles", "--profile", "smoke", "--epochs", "1", "--out", &resumed]);
    succeed(mpirun(2), &[exe, "circles", "--profile", "smoke", "--epochs", "2", "--resume", "--out", &resumed]);
    assert_eq!(table(&dir.join("straight"), "table1.json"), table(&dir.join("resumed"), "table1.json"));
    succeed(mpirun(2), &[exe, "sort-of-clevr", "--profile", "smoke", "--seeds", "1", "--out", &soc]);
    let t = table(&dir.join("soc"), "table2.json");
    assert_eq!(t["models"].as_array().map(Vec::len), Some(2), "both models are reported: {t}");
    // Every rank tested the best validation point (rank 0's): one process evaluating the checkpoints agrees,
    // the Synthetic configuration (chosen on probabilities scored across the ranks) included.
    succeed(experiments(), &["sort-of-clevr", "--profile", "smoke", "--seeds", "1", "--evaluate", &soc]);
    assert_eq!(table(&dir.join("soc"), "table2.json"), t);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--evaluate` on two ranks, each testing its shard of the images, gives the one-process Table 1: the same
/// counts, and the summed squared error up to the order of its float sum.
#[test]
fn an_evaluation_split_across_two_ranks_is_the_one_process_table() {
    let dir = scratch("split-evaluation");
    let run = dir.display().to_string();
    succeed(experiments(), &["circles", "--profile", "smoke", "--out", &run]);
    let one = table(&dir, "table1.json");
    std::fs::remove_file(dir.join("table1.json")).unwrap();
    succeed(mpirun(2), &[env!("CARGO_BIN_EXE_experiments"), "circles", "--profile", "smoke", "--evaluate", &run]);
    let two = table(&dir, "table1.json");
    let models = |t: &Value| t["models"].as_array().expect("models").clone();
    assert_eq!(models(&one).len(), 2);
    for (a, b) in models(&one).iter().zip(&models(&two)) {
        assert_eq!(
            (&a["stats"]["images"], &a["stats"]["decomposed"]),
            (&b["stats"]["images"], &b["stats"]["decomposed"])
        );
        let (ea, eb) = (a["stats"]["squared_error"].as_f64().unwrap(), b["stats"]["squared_error"].as_f64().unwrap());
        assert!((ea - eb).abs() <= 1e-9 * ea.abs(), "squared error {ea} on one process, {eb} on two ranks");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The processes running `exe` with `marker` among their arguments, as (pid, MPI rank).
fn ranks_running(marker: &str) -> Vec<(u32, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if !args.first().is_some_and(|a| a.ends_with(b"experiments")) || !args.contains(&marker.as_bytes()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let rank = environ
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"OMPI_COMM_WORLD_RANK="))
            .and_then(|r| std::str::from_utf8(r).ok()?.parse().ok());
        if let Some(rank) = rank {
            found.push((pid, rank));
        }
    }
    found
}

/// A rank killed mid-run (SIGKILL, as the out-of-memory killer would) ends the whole job with a message naming
/// it, instead of leaving rank 0 waiting in its next all-reduce; `--resume` then continues from the last
/// checkpoint and finishes.
#[test]
fn a_rank_killed_mid_run_ends_the_job_and_resume_continues() {
    let dir = scratch("killed");
    let run = dir.display().to_string();
    let exe = env!("CARGO_BIN_EXE_experiments");
    // The smoke scene, long enough to be killed in the middle: 400 epochs of 6 steps.
    let args = ["circles", "--profile", "smoke", "--model", "baseline", "--epochs", "400", "--out", &run];
    let mut job = mpirun(2).arg(exe).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let checkpoint = dir.join("baseline").join("checkpoint.safetensors");
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after 2 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (pid, _) = ranks_running(&run).into_iter().find(|&(_, rank)| rank == 1).expect("rank 1 is running");
    let killed = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let killed_at = Instant::now();
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(60), "the job hangs after rank 1 was killed");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = job.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "the job must fail");
    // Open MPI's report: "mpirun noticed that process rank 1 with PID .. exited on signal 9 (Killed)".
    assert!(text.contains("process rank 1") && text.contains("signal 9"), "the failed rank is named: {text}");

    // Resumed with a shorter run (the number of epochs may change on a resume): 10 epochs of 6 steps.
    let mut resumed: Vec<&str> = args.to_vec();
    resumed[6] = "10";
    resumed.push("--resume");
    let out = mpirun(2).arg(exe).args(&resumed).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let from: usize = text
        .split("resumed from ")
        .nth(1)
        .and_then(|t| t.split(" at step ").nth(1))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the run says where it resumed: {text}"));
    assert!(from > 0 && from < 60, "resumed at step {from}, killed soon after the first checkpoint");
    assert!(dir.join("table1.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
