//! The legacy checkpoint format of `torch.save` (before PyTorch 1.6, and later with
//! `_use_new_zipfile_serialization=False`): five pickles one after the other — the magic
//! number, the protocol version, system information, the object, and the list of storage
//! keys — then, for each key in that list, an 8-byte little-endian element count followed by
//! the storage's raw elements.

use super::pickle::{self, PickleError, Value};
use super::{Opened, StorageSource, corrupted, pickle_error};
use anyhow::{Result, anyhow, bail};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use tch::Kind;

/// The number every legacy checkpoint starts with.
const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
/// The only legacy protocol version there is.
const PROTOCOL_VERSION: i64 = 1001;

/// A legacy checkpoint read into memory: its bytes and where each storage's bytes are.
pub(super) struct LegacyCheckpoint {
    data: Vec<u8>,
    storages: HashMap<String, Range<usize>>,
}

impl LegacyCheckpoint {
    /// Reads the (opened, regular) file and checks its header, object and storage records.
    pub fn open(path: &Path, mut file: std::fs::File) -> Result<Opened<LegacyCheckpoint>> {
        use std::io::Seek;
        file.rewind()?;
        let mut data = Vec::with_capacity(file.metadata()?.len() as usize);
        file.read_to_end(&mut data)
            .map_err(|err| anyhow!("cannot read checkpoint {}: {err}", path.display()))?;
        Self::from_bytes(path, data)
    }

    /// Checks the header, object and storage records of a checkpoint held in memory.
    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Result<Opened<LegacyCheckpoint>> {
        let not_torch = || {
            anyhow!(
                "{} is a Python pickle but not a PyTorch checkpoint (it lacks the torch.save magic \
                 number); expected a file written by `torch.save`",
                path.display()
            )
        };
        let magic = match pickle::load(&data, 0) {
            Ok(loaded) => loaded,
            Err(err @ PickleError::Truncated(_)) => return Err(corrupted(path, err)),
            Err(_) => return Err(not_torch()),
        };
        if !matches!(magic.value, Value::BigInt(MAGIC_NUMBER)) {
            return Err(not_torch());
        }
        let version = pickle::load(&data, magic.end).map_err(|err| pickle_error(path, err))?;
        if !matches!(version.value, Value::Int(PROTOCOL_VERSION)) {
            bail!(
                "{} has legacy protocol version {:?}, but only {PROTOCOL_VERSION} exists; the file \
                 is damaged or not from torch.save",
                path.display(),
                version.value
            );
        }
        let sys_info = pickle::load(&data, version.end).map_err(|err| pickle_error(path, err))?;
        check_little_endian(path, &sys_info.value)?;
        let object = pickle::load(&data, sys_info.end).map_err(|err| pickle_error(path, err))?;
        let key_list = pickle::load(&data, object.end).map_err(|err| pickle_error(path, err))?;
        let keys = storage_keys(&key_list.value)
            .ok_or_else(|| corrupted(path, "the storage key list is not a list of strings"))?;

        let mut kinds: HashMap<&str, Kind> = HashMap::new();
        for storage in &object.storages {
            let kind = *kinds.entry(storage.key.as_str()).or_insert(storage.kind);
            if kind != storage.kind {
                return Err(corrupted(
                    path,
                    format!(
                        "storage {} is used as both {kind:?} and {:?}",
                        storage.key, storage.kind
                    ),
                ));
            }
        }
        let mut storages = HashMap::new();
        let mut pos = key_list.end;
        for key in &keys {
            let kind = *kinds.get(key.as_str()).ok_or_else(|| {
                corrupted(
                    path,
                    format!("storage {key} is listed but no tensor uses it"),
                )
            })?;
            let header = data
                .get(pos..pos.saturating_add(8))
                .ok_or_else(|| corrupted(path, format!("the data of storage {key} is cut off")))?;
            let count = u64::from_le_bytes(header.try_into().expect("8 bytes"));
            let len = usize::try_from(count)
                .ok()
                .and_then(|count| count.checked_mul(kind.elt_size_in_bytes()))
                .ok_or_else(|| corrupted(path, format!("storage {key} claims {count} elements")))?;
            let start = pos + 8;
            let end = start
                .checked_add(len)
                .filter(|&end| end <= data.len())
                .ok_or_else(|| corrupted(path, format!("the data of storage {key} is cut off")))?;
            storages.insert(key.clone(), start..end);
            pos = end;
        }
        for storage in &object.storages {
            if !storages.contains_key(&storage.key) {
                return Err(corrupted(
                    path,
                    format!("storage {} has no data", storage.key),
                ));
            }
        }
        Ok(Opened {
            root: object.value,
            created: object.created,
            source: LegacyCheckpoint { data, storages },
        })
    }
}

fn storage_keys(value: &Value) -> Option<Vec<String>> {
    let Value::List(items) = value else {
        return None;
    };
    items
        .borrow()
        .0
        .iter()
        .map(|item| match item {
            Value::Str(key) => Some(key.clone()),
            Value::Bytes(key) => String::from_utf8(key.clone()).ok(),
            _ => None,
        })
        .collect()
}

/// Refuses files whose system information says they were written big-endian.
fn check_little_endian(path: &Path, sys_info: &Value) -> Result<()> {
    if let Value::Dict(entries) = sys_info {
        let big_endian = entries.borrow().0.iter().any(
            |(k, v)| matches!((k, v), (Value::Str(k), Value::Bool(false)) if k == "little_endian"),
        );
        if big_endian {
            bail!(
                "{} was written on a big-endian machine, which is not read here; save it again on \
                 a little-endian machine",
                path.display()
            );
        }
    }
    Ok(())
}

impl StorageSource for LegacyCheckpoint {
    fn storage_len(&self, key: &str) -> Option<usize> {
        self.storages.get(key).map(|r| r.len())
    }

    fn storage_prefix(&mut self, key: &str, len: usize) -> Result<Cow<'_, [u8]>> {
        let range = self
            .storages
            .get(key)
            .ok_or_else(|| anyhow!("storage {key} has no data"))?;
        let bytes = &self.data[range.clone()];
        let prefix = bytes
            .get(..len)
            .ok_or_else(|| anyhow!("storage {key} holds {} bytes, not {len}", bytes.len()))?;
        Ok(Cow::Borrowed(prefix))
    }
}
