//! Checkpoints: bit-identical round trips (parameters, buffers, optimiser state), identical training after
//! resume, atomic saves, and every error naming the file and the tensor.

use autograd::check::uniform;
use autograd::Tape;
use models::{
    load_module, prefixed, save_module, Adam, AdamConfig, Buffer, Checkpoint, CheckpointError, Linear, Mlp, Module,
    Optimizer, Param, Scope, Sgd, SgdConfig,
};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};
use std::fs;
use std::path::PathBuf;

/// A fresh folder for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn dir(test: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("models-checkpoint-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// An Mlp plus a buffer (standing in for batch-norm running statistics).
struct Net {
    mlp: Mlp<f32>,
    running_mean: Buffer<f32>,
}

impl Net {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mlp = Mlp::new(&[3, 5, 2], &mut rng);
        Net { mlp, running_mean: Buffer::new(models::init::uniform(&[5], -1.0, 1.0, &mut rng)) }
    }
}

impl Module<f32> for Net {
    fn params(&self) -> Vec<(String, Param<f32>)> {
        prefixed("mlp", self.mlp.params())
    }
    fn buffers(&self) -> Vec<(String, Param<f32>)> {
        vec![("running_mean".into(), self.running_mean.clone())]
    }
}

fn values(m: &impl Module<f32>) -> Vec<(String, Vec<u32>)> {
    m.state().into_iter().map(|(n, p)| (n, p.value().iter().map(|x| x.to_bits()).collect())).collect()
}

/// One training step on fixed data; the buffer moves too (as running statistics would).
fn train_step(net: &Net, opt: &mut impl Optimizer<f32>, step: u64) {
    let tape = Tape::new();
    let s = Scope::new(&tape);
    let x = tape.constant(uniform(&[4, 3], -1.0, 1.0, step).mapv(|v| v as f32));
    let loss = net.mlp.forward(&s, x).square().mean();
    opt.step(&s.grads(&[loss]));
    net.running_mean.update(|b| b.mapv_inplace(|v| 0.9 * v + 0.1 * step as f32));
}

#[test]
fn resume_is_bit_identical() {
    let d = dir("resume");
    let path = d.join("ck.safetensors");
    let config = AdamConfig { lr: 0.01, weight_decay: 1e-3, ..Default::default() };
    let net = Net::new(1);
    let mut opt = Adam::new(net.params(), config);
    for step in 0..3 {
        train_step(&net, &mut opt, step);
    }
    let mut ck = Checkpoint::new();
    ck.put_module("model", &net);
    ck.put_optimizer("optim", &opt);
    ck.set_meta("epoch", "3");
    ck.save(&path).unwrap();
    let saved = values(&net);
    for step in 3..6 {
        train_step(&net, &mut opt, step);
    }

    let resumed = Net::new(2);
    let mut opt2 = Adam::new(resumed.params(), config);
    assert_ne!(values(&resumed), saved);
    let mut ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.meta("epoch"), Some("3"));
    ck.load_module("model", &resumed).unwrap();
    ck.load_optimizer("optim", &mut opt2).unwrap();
    ck.finish().unwrap();
    assert_eq!(values(&resumed), saved, "parameters and buffers bit-identical");
    assert_eq!(opt2.steps(), 3);
    for step in 3..6 {
        train_step(&resumed, &mut opt2, step);
    }
    assert_eq!(values(&resumed), values(&net), "the same next steps after resume");
}

#[test]
fn sgd_state_and_f64_round_trip() {
    let d = dir("sgd");
    let path = d.join("sgd.safetensors");
    let make = |seed| Mlp::<f64>::new(&[2, 3, 1], &mut StdRng::seed_from_u64(seed));
    let config = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };
    let step = |m: &Mlp<f64>, opt: &mut Sgd<f64>| {
        let tape = Tape::new();
        let s = Scope::new(&tape);
        let l = m.forward(&s, tape.constant(uniform(&[3, 2], -1.0, 1.0, 5))).square().sum();
        opt.step(&s.grads(&[l]));
    };
    let (a, b) = (make(1), make(2));
    let (mut oa, mut ob) = (Sgd::new(a.params(), config), Sgd::new(b.params(), config));
    step(&a, &mut oa);
    step(&a, &mut oa);
    let mut ck = Checkpoint::new();
    ck.put_module("", &a);
    ck.put_optimizer("sgd", &oa);
    ck.save(&path).unwrap();
    let mut ck = Checkpoint::load(&path).unwrap();
    ck.load_optimizer("sgd", &mut ob).unwrap();
    ck.load_module("", &b).unwrap();
    ck.finish().unwrap();
    step(&a, &mut oa);
    step(&b, &mut ob);
    for ((n, p), (_, q)) in a.params().iter().zip(b.params()) {
        assert_eq!(*p.value(), *q.value(), "{n}");
    }
}

#[test]
fn save_replaces_atomically_and_leaves_no_temporary_file() {
    let d = dir("atomic");
    let path = d.join("m.safetensors");
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    save_module(&path, &m).unwrap();
    let m2 = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(2));
    save_module(&path, &m2).unwrap();
    let names: Vec<_> = fs::read_dir(&d.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["m.safetensors"], "only the checkpoint itself");
    let m3 = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(3));
    load_module(&path, &m3).unwrap();
    assert_eq!(*m3.weight.value(), *m2.weight.value());

    // A save that cannot complete (the target is a non-empty folder) fails, naming the file, and leaves
    // neither the target nor a temporary file changed.
    let blocked = d.join("blocked");
    fs::create_dir_all(blocked.join("inside")).unwrap();
    let err = save_module(&blocked, &m).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(blocked.join("inside").is_dir());
    assert_eq!(fs::read_dir(&d.0).unwrap().count(), 2, "no temporary file left behind");
}

fn expect_err(r: Result<(), CheckpointError>, parts: &[&str]) -> CheckpointError {
    let err = r.expect_err("the load should fail");
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "message {msg:?} does not name {part:?}");
    }
    err
}

#[test]
fn a_missing_tensor_is_named() {
    let d = dir("missing");
    let path = d.join("no-bias.safetensors");
    save_module(&path, &Linear::<f32>::with_bias(3, 2, false, &mut StdRng::seed_from_u64(1))).unwrap();
    let target = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(2));
    let before = target.weight.value();
    let err = expect_err(load_module(&path, &target), &["no-bias.safetensors", "\"bias\"", "missing"]);
    assert!(matches!(err, CheckpointError::Missing { ref tensor, .. } if tensor == "bias"));
    assert_eq!(*target.weight.value(), *before, "a failed load changes nothing");
}

#[test]
fn an_unexpected_tensor_is_named() {
    let d = dir("extra");
    let path = d.join("deep.safetensors");
    save_module(&path, &Mlp::<f32>::new(&[2, 2, 2, 2], &mut StdRng::seed_from_u64(1))).unwrap();
    let shallow = Mlp::<f32>::new(&[2, 2, 2], &mut StdRng::seed_from_u64(2));
    let before = shallow.layers[0].weight.value();
    let err =
        expect_err(load_module(&path, &shallow), &["deep.safetensors", "\"2.weight\"", "\"2.bias\"", "unexpected"]);
    assert!(matches!(err, CheckpointError::Unexpected { .. }));
    assert_eq!(*shallow.layers[0].weight.value(), *before, "a failed load changes nothing");

    // Under a prefix, extras under that prefix are caught by load_module, others by finish.
    let mut ck = Checkpoint::new();
    ck.put_module("model", &Mlp::<f32>::new(&[2, 2, 2, 2], &mut StdRng::seed_from_u64(1)));
    expect_err(ck.clone().load_module("model", &shallow), &["\"model.2.weight\""]);
    ck.put_count("stray", 1);
    let mut ck2 = Checkpoint::new();
    ck2.put_module("model", &shallow);
    ck2.put_count("stray", 1);
    ck2.load_module("model", &shallow).unwrap();
    expect_err(ck2.finish(), &["\"stray\"", "<in memory>"]);
}

#[test]
fn a_mis_shaped_tensor_names_both_shapes() {
    let d = dir("shape");
    let path = d.join("narrow.safetensors");
    save_module(&path, &Linear::<f32>::new(3, 4, &mut StdRng::seed_from_u64(1))).unwrap();
    let err = expect_err(
        load_module(&path, &Linear::<f32>::new(3, 5, &mut StdRng::seed_from_u64(2))),
        &["narrow.safetensors", "\"weight\"", "[4, 3]", "[5, 3]"],
    );
    assert!(
        matches!(err, CheckpointError::Shape { ref expected, ref found, .. } if expected == &[5, 3] && found == &[4, 3])
    );
}

#[test]
fn a_wrong_dtype_names_both_dtypes() {
    let d = dir("dtype");
    let path = d.join("double.safetensors");
    save_module(&path, &Linear::<f64>::new(3, 2, &mut StdRng::seed_from_u64(1))).unwrap();
    let err = expect_err(
        load_module(&path, &Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(2))),
        &["double.safetensors", "\"weight\"", "f64", "f32"],
    );
    assert!(matches!(err, CheckpointError::Dtype { .. }));
}

#[test]
fn truncated_and_garbage_files_are_corrupt() {
    let d = dir("corrupt");
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    let good = d.join("good.safetensors");
    save_module(&good, &m).unwrap();
    let bytes = fs::read(&good).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated.safetensors", bytes[..bytes.len() - 10].to_vec(), "truncated"),
        ("header-cut.safetensors", bytes[..20].to_vec(), "header length"),
        ("empty.safetensors", Vec::new(), "shorter than"),
        (
            "garbage.safetensors",
            [16u8, 0, 0, 0, 0, 0, 0, 0].iter().chain(b"not json at all!").copied().collect(),
            "JSON",
        ),
    ];
    for (name, content, why) in cases {
        let path = d.join(name);
        fs::write(&path, content).unwrap();
        let err = expect_err(load_module(&path, &m), &[name, "corrupt", why]);
        assert!(matches!(err, CheckpointError::Corrupt { .. }));
    }
}

#[test]
fn a_nonexistent_file_is_named() {
    let d = dir("nonexistent");
    let path = d.join("nowhere.safetensors");
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    let err = expect_err(load_module(&path, &m), &["nowhere.safetensors", "cannot read"]);
    assert!(matches!(err, CheckpointError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn optimizer_state_errors_are_named() {
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    let mut opt = Adam::new(m.params(), AdamConfig::default());
    opt.step(&models::Grads::new());
    // A checkpoint without optimiser state.
    let mut ck = Checkpoint::new();
    ck.put_module("model", &m);
    expect_err(ck.load_optimizer("optim", &mut opt), &["\"optim.steps\"", "missing"]);
    // Adam moments of the wrong shape.
    let mut ck = Checkpoint::new();
    ck.put_count("optim.steps", 1);
    ck.put_count("optim.weight.step", 1);
    ck.put("optim.weight.exp_avg", &ArrayD::<f32>::zeros(vec![3, 2]));
    ck.put("optim.weight.exp_avg_sq", &ArrayD::<f32>::zeros(vec![2, 3]));
    expect_err(ck.clone().load_optimizer("optim", &mut opt), &["\"optim.weight.exp_avg\"", "[3, 2]", "[2, 3]"]);
    // A step count stored as a float.
    ck.put("optim.steps", &ArrayD::<f32>::zeros(vec![]));
    expect_err(ck.load_optimizer("optim", &mut opt), &["\"optim.steps\"", "f32", "u64"]);
    assert_eq!(opt.steps(), 1, "a failed load leaves the optimiser as it was");
}
