//! A checkpoint's integrity: the checksum stored in its metadata, and a readable name for a mis-sized tensor.
//!
//! The checksum is FNV-1a (64 bits) over every tensor in name order (name, dtype, shape, data) and every
//! metadata entry but the checksum itself, so a changed byte anywhere in the tensor data or the metadata is
//! caught on loading. It guards against damage and stray edits, not against a forger.

use super::Entry;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

/// The metadata key that holds the checksum.
pub(super) const KEY: &str = "checksum";
const PREFIX: &str = "fnv1a64:";

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// A field followed by its length, so that no two sequences of fields hash the same bytes.
    fn field(&mut self, bytes: &[u8]) {
        self.bytes(bytes);
        self.bytes(&(bytes.len() as u64).to_le_bytes());
    }
}

/// The checksum of `entries` and `metadata` (whose own checksum entry, if any, is left out), as stored.
pub(super) fn checksum(entries: &BTreeMap<String, Entry>, metadata: &BTreeMap<String, String>) -> String {
    let mut h = Fnv::new();
    for (name, e) in entries {
        h.field(name.as_bytes());
        h.field(format!("{:?}", e.dtype).as_bytes());
        let shape: Vec<u8> = e.shape.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect();
        h.field(&shape);
        h.field(&e.data);
    }
    for (k, v) in metadata.iter().filter(|(k, _)| k.as_str() != KEY) {
        h.field(k.as_bytes());
        h.field(v.as_bytes());
    }
    format!("{PREFIX}{:016x}", h.0)
}

/// Say once per process that a checkpoint without a checksum (written before checksums existed) was loaded
/// unverified.
pub(super) fn note_unverified(file: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "note: checkpoint {} has no checksum (written before checksums were stored): its data cannot be \
             verified; the next save adds one",
            file.display()
        )
    });
}

/// For a header that safetensors rejected as "a tensor's size does not match its shape and dtype": which
/// tensor, and both sizes.
pub(super) fn mis_sized_tensor(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    for (name, info) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype")?.as_str()?;
        let shape: Vec<u64> = info.get("shape")?.as_array()?.iter().map(|d| d.as_u64()).collect::<Option<_>>()?;
        let offsets: Vec<u64> =
            info.get("data_offsets")?.as_array()?.iter().map(|d| d.as_u64()).collect::<Option<_>>()?;
        let size = match dtype {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            _ => 8,
        };
        let needed = shape.iter().try_fold(size, |a: u64, &d| a.checked_mul(d));
        let held = offsets.get(1)?.checked_sub(*offsets.first()?);
        if needed != held {
            let needed = needed.map_or("more than 2^64".to_string(), |b| b.to_string());
            let held = held.map_or("a negative number of".to_string(), |b| b.to_string());
            return Some(format!(
                "tensor \"{name}\" holds {held} bytes, but its shape {shape:?} of dtype {dtype} needs {needed}"
            ));
        }
    }
    None
}
