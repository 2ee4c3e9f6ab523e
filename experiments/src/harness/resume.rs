//! What a resume checks: the checkpoint to continue from (none is said, a dangling link is an error), that it
//! was made by the same run (its configuration is stored in the checkpoint's metadata and compared field by
//! field), and readable metadata fields; and what a step checks: a finite training loss.

use crate::Result;
use models::{Checkpoint, CheckpointError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::Once;

/// The metadata key of the stored configuration.
const KEY: &str = "config";

/// The settings that define a run, as field -> value text (what a resume must match), and the fields a resume
/// may change (`epochs`, when given explicitly).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunConfig {
    fields: BTreeMap<String, String>,
    may_change: Vec<String>,
}

impl RunConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a field.
    pub fn with(mut self, field: &str, value: impl Display) -> Self {
        self.fields.insert(field.to_string(), value.to_string());
        self
    }

    /// Add every scalar of `value`'s JSON form, nested names joined by dots under `prefix`.
    pub fn with_all(mut self, prefix: &str, value: &impl Serialize) -> Self {
        fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
            match v {
                serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| flatten(&format!("{prefix}.{k}"), v, out)),
                serde_json::Value::String(s) => {
                    out.insert(prefix.to_string(), s.clone());
                }
                other => {
                    out.insert(prefix.to_string(), other.to_string());
                }
            }
        }
        let json = serde_json::to_value(value).expect("settings serialise to JSON");
        flatten(prefix, &json, &mut self.fields);
        self
    }

    /// Drop a field that does not define the run (e.g. how many seeds the whole command trains).
    pub fn without(mut self, field: &str) -> Self {
        self.fields.remove(field);
        self
    }

    /// Let a resume change `field` (e.g. the number of epochs, when given on the command line).
    pub fn may_change(mut self, field: &str) -> Self {
        self.may_change.push(field.to_string());
        self
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(|s| s.as_str())
    }

    /// Store the configuration in a checkpoint's metadata.
    pub fn store(&self, ck: &mut Checkpoint) {
        ck.set_meta(KEY, &serde_json::to_string(&self.fields).expect("strings serialise"));
    }

    /// Check that `ck` was made by a run with this configuration: an error naming every differing field with
    /// both values. A checkpoint without a stored configuration (written before it was stored) passes, with a
    /// one-time note that it could not be checked.
    pub fn check(&self, ck: &Checkpoint) -> Result<()> {
        let Some(stored) = meta_json::<BTreeMap<String, String>>(ck, KEY)? else {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                eprintln!(
                    "note: checkpoint {} stores no run configuration (written before it was stored): cannot check \
                     that it was made with the same seed, learning rate, profile and settings as this run",
                    ck.file().display()
                )
            });
            return Ok(());
        };
        let mut differences = Vec::new();
        for (field, now) in &self.fields {
            match stored.get(field) {
                Some(then) if then != now && !self.may_change.contains(field) => {
                    differences.push(format!("{field} was {then} and is now {now}"))
                }
                _ => {}
            }
        }
        if differences.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot resume from {}: it was made by another run configuration: {}. Rerun with the checkpoint's \
             settings, or start afresh without --resume (or in another --out folder); the number of epochs may \
             change on a resume when --epochs is given",
            ck.file().display(),
            differences.join("; ")
        )
        .into())
    }
}

/// A metadata field holding JSON, parsed (None when absent); errors name the file and the field.
pub fn meta_json<T: DeserializeOwned>(ck: &Checkpoint, field: &str) -> std::result::Result<Option<T>, CheckpointError> {
    ck.meta(field).map(|text| serde_json::from_str(text).map_err(|e| ck.meta_error(field, e.to_string()))).transpose()
}

/// The checkpoint to continue from at `path`, if `resume` and there is one. With `resume` and nothing at
/// `path` it says that `name` starts afresh. Anything at `path` that cannot be read (a dangling link, a
/// folder, a corrupt file) is an error naming it, never mistaken for "no checkpoint".
pub fn checkpoint_to_resume(path: &Path, resume: bool, name: &str) -> Result<Option<Checkpoint>> {
    if !resume {
        return Ok(None);
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("{name}: --resume: no checkpoint at {}: starting afresh", path.display());
            Ok(None)
        }
        Err(e) => Err(format!("cannot inspect checkpoint {}: {e}", path.display()).into()),
        Ok(_) => Ok(Some(Checkpoint::load(path)?)),
    }
}

/// Stop a run whose training loss is not a number: an error naming the run, the step and the loss, with the
/// last checkpoint (`checkpoint`) left as it was.
pub fn check_loss(loss: f64, name: &str, step: usize, checkpoint: &Path) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(format!(
        "{name}: the training loss is {loss} at step {step}: stopped before the update; nothing of this step was \
         saved, the last checkpoint {} is as it was (try a lower learning rate, or resume from it)",
        checkpoint.display()
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(config: &RunConfig) -> Checkpoint {
        let mut ck = Checkpoint::new();
        config.store(&mut ck);
        let bytes = ck.to_bytes().unwrap();
        Checkpoint::from_bytes(&bytes, Path::new("runs/x/checkpoint.safetensors")).unwrap()
    }

    #[test]
    fn a_resume_with_another_configuration_names_the_field_and_both_values() {
        #[derive(Serialize)]
        struct Settings {
            lr: f64,
            epochs: usize,
            scene: (usize, usize),
        }
        let run = |lr: f64, epochs| {
            RunConfig::new().with("seed", 3).with_all("settings", &Settings { lr, epochs, scene: (64, 2) })
        };
        let ck = saved(&run(3e-4, 10));
        run(3e-4, 10).check(&ck).unwrap();
        let msg = run(1e-3, 10).check(&ck).unwrap_err().to_string();
        assert!(msg.contains("settings.lr was 0.0003 and is now 0.001"), "{msg}");
        assert!(msg.contains("runs/x/checkpoint.safetensors"), "{msg}");
        let msg = run(3e-4, 20).check(&ck).unwrap_err().to_string();
        assert!(msg.contains("settings.epochs was 10 and is now 20") && msg.contains("--epochs"), "{msg}");
        run(3e-4, 20).may_change("settings.epochs").check(&ck).unwrap();
        let msg = run(3e-4, 10).with("seed", 4).check(&ck).unwrap_err().to_string();
        assert!(msg.contains("seed was 3 and is now 4"), "{msg}");
    }

    #[test]
    fn a_checkpoint_without_a_configuration_passes_and_bad_json_is_named() {
        RunConfig::new().with("seed", 1).check(&Checkpoint::new()).unwrap();
        let mut ck = Checkpoint::new();
        ck.set_meta(KEY, "{not json");
        let ck = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), Path::new("c.safetensors")).unwrap();
        let msg = RunConfig::new().check(&ck).unwrap_err().to_string();
        assert!(msg.contains("c.safetensors") && msg.contains("\"config\""), "{msg}");
    }

    #[test]
    fn nothing_to_resume_starts_afresh_and_a_dangling_link_is_an_error() {
        let d = std::env::temp_dir().join(format!("srn-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("checkpoint.safetensors");
        assert!(checkpoint_to_resume(&path, true, "srn").unwrap().is_none());
        assert!(checkpoint_to_resume(&path, false, "srn").unwrap().is_none());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("gone.safetensors"), &path).unwrap();
            let msg = checkpoint_to_resume(&path, true, "srn").unwrap_err().to_string();
            assert!(msg.contains("checkpoint.safetensors") && msg.contains("cannot read"), "{msg}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_non_finite_loss_names_the_run_and_the_step() {
        check_loss(1.5, "srn", 3, Path::new("ck")).unwrap();
        for loss in [f64::NAN, f64::INFINITY] {
            let msg = check_loss(loss, "srn-seed2", 17, Path::new("runs/ck.safetensors")).unwrap_err().to_string();
            assert!(msg.contains("srn-seed2") && msg.contains("step 17") && msg.contains("runs/ck.safetensors"));
        }
    }
}
