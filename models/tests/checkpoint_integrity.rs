//! Checkpoint integrity: a changed byte fails the stored checksum, files written before checksums still load,
//! NaN weights and mis-sized tensors are named, metadata errors name the field, and random corruptions never
//! panic and always name the file.

use models::{load_module, save_module, Adam, AdamConfig, Checkpoint, CheckpointError, Linear, Mlp, Module, Optimizer};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn dir(test: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("models-integrity-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn bits(m: &impl Module<f32>) -> Vec<Vec<u32>> {
    m.state().into_iter().map(|(_, p)| p.value().iter().map(|x| x.to_bits()).collect()).collect()
}

/// The byte offset of the tensor data (after the 8-byte length and the header).
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

fn mlp(seed: u64) -> Mlp<f32> {
    Mlp::new(&[4, 8, 3], &mut StdRng::seed_from_u64(seed))
}

#[test]
fn a_nan_written_into_a_weight_fails_the_checksum() {
    let d = dir("nan");
    let path = d.0.join("model.safetensors");
    save_module(&path, &mlp(1)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let at = data_start(&bytes) + 4 * 3;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let target = mlp(2);
    let before = bits(&target);
    let err = load_module(&path, &target).expect_err("a changed weight must not load");
    assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors") && err.to_string().contains("checksum"), "{err}");
    assert_eq!(bits(&target), before, "a failed load changes nothing");
}

#[test]
fn sixty_four_overwritten_bytes_fail_the_checksum() {
    let d = dir("overwrite");
    let path = d.0.join("ck.safetensors");
    let m = mlp(1);
    let mut opt = Adam::new(m.params(), AdamConfig::default());
    opt.step(&models::Grads::new());
    let mut ck = Checkpoint::new();
    ck.put_module("model", &m);
    ck.put_optimizer("adam", &opt);
    ck.set_meta("curve", "[1.5, 2.5]");
    ck.save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    for start in [data_start(&good), data_start(&good) + 40, good.len() - 64] {
        let mut bytes = good.clone();
        bytes[start..start + 64].iter_mut().for_each(|b| *b = 0x5a);
        fs::write(&path, &bytes).unwrap();
        let err = Checkpoint::load(&path).expect_err("overwritten data must not load");
        assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
    }
    // A changed metadata value (a digit of the curve) is caught too.
    let mut bytes = good.clone();
    let at = bytes.windows(3).position(|w| w == b"1.5").expect("the curve in the header");
    bytes[at] = b'7';
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Checksum { .. })));
}

#[test]
fn a_checkpoint_without_a_checksum_still_loads() {
    // Written as before checksums existed: plain safetensors with metadata but no checksum.
    let d = dir("old");
    let path = d.0.join("old.safetensors");
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    let w: Vec<u8> = m.weight.value().iter().flat_map(|x| x.to_le_bytes()).collect();
    let b: Vec<u8> = m.bias.as_ref().unwrap().value().iter().flat_map(|x| x.to_le_bytes()).collect();
    let views = [
        ("weight", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &w).unwrap()),
        ("bias", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &b).unwrap()),
    ];
    let meta: HashMap<String, String> = [("run".to_string(), "srn".to_string())].into();
    fs::write(&path, safetensors::serialize(views, &Some(meta)).unwrap()).unwrap();
    let ck = Checkpoint::load(&path).expect("an old checkpoint loads");
    assert_eq!(ck.meta("run"), Some("srn"));
    assert_eq!(ck.meta("checksum"), None);
    let target = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(2));
    load_module(&path, &target).unwrap();
    assert_eq!(bits(&target), bits(&m));
}

#[test]
fn a_saved_nan_is_refused_by_name() {
    let d = dir("saved-nan");
    let path = d.0.join("nan.safetensors");
    let m = Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1));
    m.weight.update(|w| w[[1, 2]] = f32::INFINITY);
    save_module(&path, &m).unwrap();
    let err = load_module(&path, &Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(2))).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CheckpointError::NonFinite { index: 5, .. }), "{msg}");
    assert!(msg.contains("nan.safetensors") && msg.contains("\"weight\"") && msg.contains("inf"), "{msg}");
}

#[test]
fn a_mis_sized_tensor_is_named() {
    let d = dir("mis-sized");
    let path = d.0.join("sized.safetensors");
    save_module(&path, &Linear::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1))).unwrap();
    let bytes = fs::read(&path).unwrap();
    let n = data_start(&bytes);
    // Claim the weight is [2, 2] (16 bytes) while its offsets still hold 24: same header length.
    let header = String::from_utf8(bytes[8..n].to_vec()).unwrap();
    assert!(header.contains("\"shape\":[2,3]"), "{header}");
    let changed = header.replacen("\"shape\":[2,3]", "\"shape\":[2,2]", 1);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(changed.as_bytes());
    out.extend_from_slice(&bytes[n..]);
    fs::write(&path, &out).unwrap();
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    for part in ["sized.safetensors", "\"weight\"", "24 bytes", "[2, 2]", "16"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
}

#[test]
fn a_bad_metadata_field_is_named() {
    let d = dir("meta");
    let path = d.0.join("meta.safetensors");
    let mut ck = Checkpoint::new();
    ck.set_meta("seconds", "1.5x");
    ck.save(&path).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let msg = ck.meta_parsed::<f64>("seconds").unwrap_err().to_string();
    assert!(msg.contains("meta.safetensors") && msg.contains("\"seconds\"") && msg.contains("1.5x"), "{msg}");
    assert_eq!(ck.meta_parsed::<f64>("absent").unwrap(), None);
}

/// Load `path` fully into a fresh model and optimiser: what a resume does.
fn resume(path: &Path) -> Result<Vec<Vec<u32>>, CheckpointError> {
    let m = mlp(9);
    let mut opt = Adam::new(m.params(), AdamConfig::default());
    let mut ck = Checkpoint::load(path)?;
    ck.load_module("model", &m)?;
    ck.load_optimizer("adam", &mut opt)?;
    ck.meta_parsed::<u64>("step")?;
    ck.finish()?;
    Ok(bits(&m))
}

#[test]
fn random_corruptions_never_panic_and_always_name_the_file() {
    let d = dir("fuzz");
    let path = d.0.join("fuzzed.safetensors");
    let m = mlp(1);
    let mut opt = Adam::new(m.params(), AdamConfig::default());
    opt.step(&models::Grads::new());
    let mut ck = Checkpoint::new();
    ck.put_module("model", &m);
    ck.put_optimizer("adam", &opt);
    ck.set_meta("step", "12");
    ck.save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    let expected = bits(&m);
    let mut rng = StdRng::seed_from_u64(13);
    let (mut failures, mut trials) = (0, 0);
    for trial in 0..600 {
        let mut bytes = good.clone();
        let kind = trial % 6;
        match kind {
            0 => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => bytes.truncate(rng.gen_range(0..bytes.len())),
            2 => {
                let i = rng.gen_range(0..bytes.len());
                let len = rng.gen_range(1..64).min(bytes.len() - i);
                rng.fill(&mut bytes[i..i + len]);
            }
            3 => {
                let i = rng.gen_range(0..bytes.len());
                bytes.insert(i, rng.gen());
            }
            4 => bytes[..8].copy_from_slice(&rng.gen_range(0u64..2 * good.len() as u64).to_le_bytes()),
            _ => {
                // Inside the header: a random printable character, keeping the JSON's length.
                let i = rng.gen_range(8..data_start(&good));
                bytes[i] = rng.gen_range(b' '..=b'~');
            }
        }
        fs::write(&path, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| resume(&path));
        trials += 1;
        match outcome {
            Err(_) => panic!("trial {trial} (kind {kind}) panicked"),
            Ok(Ok(loaded)) => assert_eq!(loaded, expected, "trial {trial} (kind {kind}) loaded other values"),
            Ok(Err(e)) => {
                failures += 1;
                assert!(e.to_string().contains("fuzzed.safetensors"), "trial {trial}: {e}");
            }
        }
    }
    assert!(failures > trials * 9 / 10, "only {failures} of {trials} corruptions detected");
}
