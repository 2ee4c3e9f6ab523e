//! Checkpoints: named tensors (parameters, buffers, optimiser state) in the safetensors format.
//!
//! A [`Checkpoint`] is an in-memory map from names to typed tensors plus string metadata. Build one with
//! [`Checkpoint::put_module`] / [`Checkpoint::put_optimizer`] and [`Checkpoint::save`] it (atomically: a
//! temporary file in the same folder, synced, then renamed over the target, so an interruption leaves either
//! the old checkpoint or the new one, never half of one). To resume, [`Checkpoint::load`] a file and take
//! its tensors back out with [`Checkpoint::load_module`] / [`Checkpoint::load_optimizer`], then call
//! [`Checkpoint::finish`], which fails if the file held tensors nobody asked for.
//!
//! Every save stores a checksum of the tensors and metadata (see `integrity`); loading verifies it, so a
//! changed byte is an error naming the file ([`CheckpointError::Checksum`]). A file written before checksums
//! existed loads with a one-time note that it could not be verified. Loading a module or an optimiser also
//! refuses NaN and infinities ([`CheckpointError::NonFinite`]).
//!
//! Floats are stored bit for bit as `F32` or `F64`, counters as `U64`. Loading never converts: a tensor of
//! the wrong dtype or shape is an error naming the file, the tensor and both dtypes or shapes.

mod error;
mod integrity;

use crate::module::{join, Module};
use autograd::Float;
pub use error::CheckpointError;
use ndarray::ArrayD;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One stored tensor: raw little-endian bytes with their dtype and shape.
#[derive(Clone, Debug)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of<T: Float>() -> Dtype {
    match T::NAME {
        "f32" => Dtype::F32,
        "f64" => Dtype::F64,
        other => panic!("checkpoint: no safetensors dtype for float type {other}"),
    }
}

fn dtype_name(d: Dtype) -> String {
    format!("{d:?}").to_lowercase()
}

fn to_bytes<T: Float>(a: &ArrayD<T>) -> Vec<u8> {
    match dtype_of::<T>() {
        // `T` is f32 here, so the round trip through f64 is exact.
        Dtype::F32 => a.iter().flat_map(|x| (<T as Float>::to_f64(*x) as f32).to_le_bytes()).collect(),
        _ => a.iter().flat_map(|x| <T as Float>::to_f64(*x).to_le_bytes()).collect(),
    }
}

fn from_bytes<T: Float>(dtype: Dtype, data: &[u8]) -> Vec<T> {
    match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| T::of(f32::from_le_bytes(c.try_into().unwrap()) as f64)).collect(),
        _ => data.chunks_exact(8).map(|c| T::of(f64::from_le_bytes(c.try_into().unwrap()))).collect(),
    }
}

/// Named tensors and string metadata, in memory; see the module documentation.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    file: PathBuf,
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Checkpoint {
    /// An empty checkpoint (its errors name it "<in memory>" until it is saved or loaded).
    pub fn new() -> Self {
        Checkpoint { file: PathBuf::from("<in memory>"), entries: BTreeMap::new(), metadata: BTreeMap::new() }
    }

    /// The file this checkpoint was loaded from or last saved to.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Names of the tensors still held, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Number of tensors still held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Store a float tensor (replacing any tensor of that name).
    pub fn put<T: Float>(&mut self, name: &str, value: &ArrayD<T>) {
        let entry = Entry { dtype: dtype_of::<T>(), shape: value.shape().to_vec(), data: to_bytes(value) };
        self.entries.insert(name.to_string(), entry);
    }

    /// Store a counter (a `U64` scalar).
    pub fn put_count(&mut self, name: &str, n: u64) {
        self.entries
            .insert(name.to_string(), Entry { dtype: Dtype::U64, shape: vec![], data: n.to_le_bytes().to_vec() });
    }

    /// A string of metadata (epoch, configuration, ..), stored in the safetensors header.
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.metadata.insert(key.to_string(), value.to_string());
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(|s| s.as_str())
    }

    /// A metadata field parsed with `FromStr` (None when absent); a field that does not parse is an error
    /// naming the file, the field and the reason.
    pub fn meta_parsed<V: std::str::FromStr>(&self, key: &str) -> Result<Option<V>, CheckpointError>
    where
        V::Err: fmt::Display,
    {
        self.meta(key)
            .map(|text| text.parse::<V>().map_err(|e| self.meta_error(key, format!("{e} (in {text:?})"))))
            .transpose()
    }

    /// An error about metadata field `key` of this checkpoint (for callers that parse fields themselves).
    pub fn meta_error(&self, key: &str, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::Metadata { file: self.file.clone(), field: key.to_string(), reason: reason.into() }
    }

    fn entry(&self, name: &str, dtype: Dtype) -> Result<&Entry, CheckpointError> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| CheckpointError::Missing { file: self.file.clone(), tensor: name.to_string() })?;
        if e.dtype != dtype {
            return Err(CheckpointError::Dtype {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: dtype_name(dtype),
                found: dtype_name(e.dtype),
            });
        }
        Ok(e)
    }

    /// A float tensor of element type `T`, whatever its shape (the tensor stays in the checkpoint).
    pub fn get<T: Float>(&self, name: &str) -> Result<ArrayD<T>, CheckpointError> {
        let e = self.entry(name, dtype_of::<T>())?;
        Ok(ArrayD::from_shape_vec(e.shape.clone(), from_bytes(e.dtype, &e.data)).expect("validated tensor size"))
    }

    /// Remove and return a float tensor, checking its element type, its shape against `shape`, and that every
    /// value is finite.
    pub fn take<T: Float>(&mut self, name: &str, shape: &[usize]) -> Result<ArrayD<T>, CheckpointError> {
        let value = self.get_finite::<T>(name)?;
        if value.shape() != shape {
            return Err(CheckpointError::Shape {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: value.shape().to_vec(),
            });
        }
        self.entries.remove(name);
        Ok(value)
    }

    /// Remove and return a counter stored with [`Checkpoint::put_count`].
    pub fn take_count(&mut self, name: &str) -> Result<u64, CheckpointError> {
        let e = self.entry(name, Dtype::U64)?;
        if !e.shape.is_empty() {
            return Err(CheckpointError::Shape {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: vec![],
                found: e.shape.clone(),
            });
        }
        let n = u64::from_le_bytes(e.data[..8].try_into().expect("8 bytes"));
        self.entries.remove(name);
        Ok(n)
    }

    /// Store a module's parameters and buffers under `prefix` ("model" gives "model.0.weight", ..).
    pub fn put_module<T: Float, M: Module<T> + ?Sized>(&mut self, prefix: &str, module: &M) {
        for (name, p) in module.state() {
            self.put(&join(prefix, &name), &p.value());
        }
    }

    /// Set a module's parameters and buffers from the tensors under `prefix`, removing them from the
    /// checkpoint. Nothing is changed unless every tensor is present with the right dtype and shape. With a
    /// non-empty prefix, any other tensor under `prefix.` is an unexpected tensor; tensors under other
    /// prefixes are left for [`Checkpoint::finish`].
    pub fn load_module<T: Float, M: Module<T> + ?Sized>(
        &mut self,
        prefix: &str,
        module: &M,
    ) -> Result<(), CheckpointError> {
        let state = module.state();
        let mut values = Vec::with_capacity(state.len());
        for (name, p) in &state {
            values.push(self.get_shaped::<T>(&join(prefix, name), &p.shape())?);
        }
        if !prefix.is_empty() {
            let taken: Vec<String> = state.iter().map(|(n, _)| join(prefix, n)).collect();
            let under = format!("{prefix}.");
            let extra: Vec<String> =
                self.entries.keys().filter(|k| k.starts_with(&under) && !taken.contains(k)).cloned().collect();
            if !extra.is_empty() {
                return Err(CheckpointError::Unexpected { file: self.file.clone(), tensors: extra });
            }
        }
        for ((name, p), v) in state.iter().zip(values) {
            self.entries.remove(&join(prefix, name));
            p.set(v);
        }
        Ok(())
    }

    fn get_shaped<T: Float>(&self, name: &str, shape: &[usize]) -> Result<ArrayD<T>, CheckpointError> {
        let e = self.entry(name, dtype_of::<T>())?;
        if e.shape != shape {
            return Err(CheckpointError::Shape {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: e.shape.clone(),
            });
        }
        self.get_finite(name)
    }

    /// A float tensor like [`Checkpoint::get`], refusing NaN and infinities (model and optimiser state).
    pub fn get_finite<T: Float>(&self, name: &str) -> Result<ArrayD<T>, CheckpointError> {
        let value = self.get::<T>(name)?;
        if let Some((index, v)) = value.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CheckpointError::NonFinite {
                file: self.file.clone(),
                tensor: name.to_string(),
                index,
                value: <T as Float>::to_f64(*v),
            });
        }
        Ok(value)
    }

    /// Succeed only if every tensor has been taken out: anything left is an unexpected tensor.
    pub fn finish(self) -> Result<(), CheckpointError> {
        if self.entries.is_empty() {
            Ok(())
        } else {
            Err(CheckpointError::Unexpected { file: self.file, tensors: self.entries.into_keys().collect() })
        }
    }

    /// The checkpoint as safetensors bytes, with its checksum in the metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SafeTensorError> {
        let mut meta: HashMap<String, String> = self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        meta.insert(integrity::KEY.to_string(), integrity::checksum(&self.entries, &self.metadata));
        safetensors::serialize(self.entries.iter().map(|(k, e)| (k.as_str(), e)), &Some(meta))
    }

    /// Parse safetensors bytes and verify their checksum; `file` names the source in errors.
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |e: SafeTensorError| {
            let reason = match e {
                SafeTensorError::TensorInvalidInfo => {
                    integrity::mis_sized_tensor(bytes).unwrap_or_else(|| describe(&e))
                }
                _ => describe(&e),
            };
            CheckpointError::Corrupt { file: file.to_path_buf(), reason }
        };
        let (n, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        let data = &bytes[8 + n..];
        let mut entries = BTreeMap::new();
        for (name, info) in header.tensors() {
            let (start, end) = info.data_offsets;
            let entry = Entry { dtype: info.dtype, shape: info.shape.clone(), data: data[start..end].to_vec() };
            entries.insert(name, entry);
        }
        let mut metadata: BTreeMap<String, String> =
            header.metadata().clone().unwrap_or_default().into_iter().collect();
        match metadata.remove(integrity::KEY) {
            Some(stored) => {
                let computed = integrity::checksum(&entries, &metadata);
                if stored != computed {
                    return Err(CheckpointError::Checksum { file: file.to_path_buf(), stored, computed });
                }
            }
            None => integrity::note_unverified(file),
        }
        Ok(Checkpoint { file: file.to_path_buf(), entries, metadata })
    }

    /// Read a checkpoint file.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
            file: path.to_path_buf(),
            action: "read the file",
            source,
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// Write the checkpoint to `path` atomically: into a temporary file beside it, synced to disk, then
    /// renamed over `path`. On failure the temporary file is removed and `path` is untouched.
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let io = |action: &'static str| move |source| CheckpointError::Io { file: path.to_path_buf(), action, source };
        let bytes =
            self.to_bytes().map_err(|e| CheckpointError::Corrupt { file: path.to_path_buf(), reason: describe(&e) })?;
        let name = path.file_name().ok_or_else(|| {
            io("name the file")(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path has no file name"))
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let write = || -> Result<(), CheckpointError> {
            let mut f = fs::File::create(&tmp).map_err(io("create a temporary file"))?;
            f.write_all(&bytes).map_err(io("write"))?;
            f.sync_all().map_err(io("sync to disk"))?;
            fs::rename(&tmp, path).map_err(io("rename the temporary file into place"))
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Make the rename itself durable (best effort: not every platform can sync a folder).
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        self.file = path.to_path_buf();
        Ok(())
    }
}

/// A readable reason for a safetensors parse error.
fn describe(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooSmall => "shorter than the 8-byte header length".into(),
        SafeTensorError::InvalidHeaderLength => "the header length runs past the end of the file (truncated?)".into(),
        SafeTensorError::HeaderTooLarge => "the header length is implausibly large".into(),
        SafeTensorError::InvalidHeader => "the header is not UTF-8".into(),
        SafeTensorError::InvalidHeaderStart => "the header does not start with '{'".into(),
        SafeTensorError::InvalidHeaderDeserialization => "the header is not valid JSON".into(),
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensor data does not match the file size (truncated or padded)".into()
        }
        SafeTensorError::InvalidOffset(t) => format!("tensor \"{t}\" has invalid data offsets"),
        SafeTensorError::TensorInvalidInfo => "a tensor's byte size does not match its shape and dtype".into(),
        other => other.to_string(),
    }
}

/// Save a module's parameters and buffers (no prefix) to `path`.
pub fn save_module<T: Float, M: Module<T> + ?Sized>(path: impl AsRef<Path>, module: &M) -> Result<(), CheckpointError> {
    let mut ck = Checkpoint::new();
    ck.put_module("", module);
    ck.save(path)
}

/// Load a module's parameters and buffers from a file written by [`save_module`], strictly: every tensor
/// must be present with its shape and dtype, and nothing else may be in the file.
pub fn load_module<T: Float, M: Module<T> + ?Sized>(path: impl AsRef<Path>, module: &M) -> Result<(), CheckpointError> {
    let mut ck = Checkpoint::load(path)?;
    // Check for extras before touching the module, so a failed load changes nothing.
    let expected: Vec<String> = module.state().into_iter().map(|(n, _)| n).collect();
    let extra: Vec<String> = ck.names().into_iter().filter(|n| !expected.contains(n)).collect();
    if !extra.is_empty() {
        return Err(CheckpointError::Unexpected { file: ck.file().to_path_buf(), tensors: extra });
    }
    ck.load_module("", module)?;
    ck.finish()
}
