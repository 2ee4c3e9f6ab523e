//! Helpers shared by the integration tests of the experiments.

#![allow(dead_code)]

use autograd::Tape;
use models::{FSEncoder, Scope, Srn};
use ndarray::ArrayD;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

/// A permutation of `0..n` drawn from `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut StdRng::seed_from_u64(seed));
    p
}

/// Same shape and every entry within `tol`, relative to the larger magnitude (absolute below 1).
pub fn close(a: &ArrayD<f32>, b: &ArrayD<f32>, tol: f32) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())))
}

/// The set `S_r` that `srn` refines `set` to towards `z`, at evaluation (no outer graph).
pub fn refined(srn: &Srn<FSEncoder<f32>>, set: &ArrayD<f32>, z: &ArrayD<f32>) -> ArrayD<f32> {
    let tape = Tape::new();
    let scope = Scope::evaluation(&tape);
    let r = tape.no_grad(|| srn.refine(&scope, tape.constant(set.clone()), tape.constant(z.clone()), None));
    (*r.last().value()).clone()
}

/// An experiment's arguments for a smoke run into `out`: `--profile smoke`, then `flags`, and `--resume` when
/// asked, parsed as the command line would be.
pub fn smoke_args<A: clap::Args>(flags: &[&str], out: &std::path::Path, resume: bool) -> A {
    let out = out.display().to_string();
    let mut argv = vec!["--profile", "smoke"];
    argv.extend_from_slice(flags);
    argv.extend(["--out", &out]);
    if resume {
        argv.push("--resume");
    }
    experiments::harness::args::parse(&argv).expect("valid arguments")
}

/// `circles` arguments for a smoke run of both models into `out`, every other flag at its default.
pub fn circles_smoke_args(out: &std::path::Path, seed: u64, resume: bool) -> experiments::circles::Args {
    smoke_args(&["--seed", &seed.to_string()], out, resume)
}

/// A scratch folder for test `name` of `suite` under the system's temporary folder, emptied (not created).
pub fn scratch(suite: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("srn-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The table `file` in `dir` (JSON) without its wall-clock fields (every key that holds "seconds").
pub fn table_without_times(dir: &std::path::Path, file: &str) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.contains("seconds"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()));
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    strip(&mut v);
    v
}

/// A checkpoint's learning curve without its wall-clock field `time_field`, and its tensors (name and bits),
/// for comparing an interrupted-and-resumed run with an uninterrupted one bit for bit.
pub fn checkpoint_contents(path: &std::path::Path, time_field: &str) -> (serde_json::Value, Vec<(String, Vec<u64>)>) {
    let ck = models::Checkpoint::load(path).expect("checkpoint");
    let mut curve: serde_json::Value = serde_json::from_str(ck.meta("curve").expect("curve")).expect("JSON");
    for p in curve.as_array_mut().expect("points") {
        p.as_object_mut().expect("point").remove(time_field);
    }
    let tensors = ck
        .names()
        .into_iter()
        .map(|n| {
            let bits = match ck.get::<f32>(&n) {
                Ok(a) => a.iter().map(|x| x.to_bits() as u64).collect(),
                Err(_) => vec![ck.clone().take_count(&n).expect("a float tensor or a count")],
            };
            (n, bits)
        })
        .collect();
    (curve, tensors)
}
