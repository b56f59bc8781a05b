//! The zip checkpoint format of `torch.save` (PyTorch ≥ 1.6): an archive with one top folder
//! holding `data.pkl` (the pickled object), `data/<key>` (one record of raw little-endian
//! elements per storage), `byteorder` and `version`.
//!
//! Records are read only as far as asked: a storage record is inflated up to the last byte a
//! tensor reads, never further, and a compressed record that claims to inflate far more than
//! real weights do is refused from its sizes alone.

use super::pickle;
use super::{Opened, StorageSource, corrupted, pickle_error};
use anyhow::{Result, bail};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use zip::{CompressionMethod, ZipArchive};

/// A compressed record may inflate to this many times its compressed size (real weights
/// barely compress; only crafted data such as long runs of zeros inflates further)…
const MAX_INFLATION: u64 = 64;
/// …or to this many bytes, whichever is more (small all-zero tensors compress very well).
const INFLATION_FLOOR: u64 = 16 << 20;
/// `data.pkl` may inflate to the archive's size plus this many bytes.
const PICKLE_SLACK: u64 = 16 << 20;

/// An open zip checkpoint: the archive its storages are read from.
pub(super) struct ZipCheckpoint<R: Read + Seek> {
    path: PathBuf,
    archive: ZipArchive<R>,
    /// The folder every record lives in, with its trailing '/'.
    prefix: String,
    /// The bytes each storage record (`data/<key>`) says it holds, by key.
    storage_sizes: HashMap<String, usize>,
}

impl<R: Read + Seek> ZipCheckpoint<R> {
    /// Opens the archive, refuses TorchScript and big-endian files, and reads `data.pkl`.
    pub fn open(path: &Path, mut reader: R) -> Result<Opened<ZipCheckpoint<R>>> {
        let archive_len = reader.seek(SeekFrom::End(0))?;
        reader.seek(SeekFrom::Start(0))?;
        let archive = ZipArchive::new(reader).map_err(|err| corrupted(path, err))?;
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        let prefix = names
            .iter()
            .filter_map(|name| name.strip_suffix("data.pkl"))
            .find(|folder| {
                folder.is_empty() || (folder.ends_with('/') && folder.matches('/').count() == 1)
            })
            .map(str::to_string);
        let Some(prefix) = prefix else {
            bail!(
                "{} is a zip archive but not a PyTorch checkpoint (it has no data.pkl); expected a \
                 file written by `torch.save`",
                path.display()
            );
        };
        let is_script = names.iter().any(|name| {
            *name == format!("{prefix}constants.pkl") || name.starts_with(&format!("{prefix}code/"))
        });
        if is_script {
            bail!(
                "{} is a TorchScript module, not a state dict; save `model.state_dict()` with \
                 `torch.save` instead",
                path.display()
            );
        }
        let mut checkpoint = ZipCheckpoint {
            path: path.to_path_buf(),
            archive,
            prefix,
            storage_sizes: HashMap::new(),
        };
        let data_folder = format!("{}data/", checkpoint.prefix);
        for i in 0..checkpoint.archive.len() {
            let entry = checkpoint
                .archive
                .by_index_raw(i)
                .map_err(|err| corrupted(path, err))?;
            if let Some(key) = entry.name().strip_prefix(&data_folder) {
                let size = usize::try_from(entry.size()).map_err(|_| {
                    corrupted(
                        path,
                        format!("record {} claims {} bytes", entry.name(), entry.size()),
                    )
                })?;
                checkpoint.storage_sizes.insert(key.to_string(), size);
            }
        }
        let byteorder_name = format!("{}byteorder", checkpoint.prefix);
        if names.contains(&byteorder_name) {
            let order = checkpoint.record(&byteorder_name, 64)?;
            if order.trim_ascii() != b"little" {
                bail!(
                    "{} stores its tensors big-endian ({}), which is not read here; save it again \
                     on a little-endian machine",
                    path.display(),
                    String::from_utf8_lossy(order.trim_ascii())
                );
            }
        }
        let pickle_name = format!("{}data.pkl", checkpoint.prefix);
        let data = checkpoint.record(&pickle_name, archive_len.saturating_add(PICKLE_SLACK))?;
        let loaded = pickle::load(&data, 0).map_err(|err| pickle_error(path, err))?;
        Ok(Opened {
            root: loaded.value,
            created: loaded.created,
            source: checkpoint,
        })
    }

    /// Reads the first `len` bytes of the record `name` (all of it, CRC checked, when `len` is
    /// its whole size). A record shorter than `len` is an error, and so is a compressed record
    /// whose sizes claim more inflation than real data has.
    fn read_prefix(&mut self, name: &str, len: usize) -> Result<Vec<u8>> {
        let path = &self.path;
        let entry = self.archive.by_name(name).map_err(|err| match err {
            zip::result::ZipError::FileNotFound => {
                corrupted(path, format!("the record {name} is missing"))
            }
            other => corrupted(path, format!("record {name}: {other}")),
        })?;
        let (size, packed) = (entry.size(), entry.compressed_size());
        if entry.compression() != CompressionMethod::Stored
            && size > (packed.saturating_mul(MAX_INFLATION)).max(INFLATION_FLOOR)
        {
            bail!(
                "{} has a record {name} of {packed} compressed bytes that claims to inflate to \
                 {size} bytes, more than {MAX_INFLATION} times its size; real weights never \
                 compress like that, so the file is crafted or corrupted",
                path.display()
            );
        }
        if size < len as u64 {
            return Err(corrupted(
                path,
                format!("record {name} holds {size} bytes but its tensors need {len}"),
            ));
        }
        let mut entry = entry;
        let mut bytes = Vec::with_capacity(len);
        Read::by_ref(&mut entry)
            .take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(|err| corrupted(path, format!("record {name}: {err}")))?;
        if bytes.len() < len {
            return Err(corrupted(
                path,
                format!(
                    "record {name} ends after {} of its {len} bytes",
                    bytes.len()
                ),
            ));
        }
        if len as u64 == size {
            // one more read reaches the record's end, where its CRC is checked
            let mut probe = [0u8; 1];
            match entry.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => {
                    return Err(corrupted(
                        path,
                        format!("record {name} holds more than the {size} bytes it declares"),
                    ));
                }
                Err(err) => return Err(corrupted(path, format!("record {name}: {err}"))),
            }
        }
        Ok(bytes)
    }

    /// Reads one whole record of at most `limit` bytes, checking its CRC.
    fn record(&mut self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let size = self
            .archive
            .by_name(name)
            .map_err(|err| corrupted(&self.path, format!("record {name}: {err}")))?
            .size();
        if size > limit {
            bail!(
                "{} has a record {name} of {size} bytes, more than the {limit} it can need; the \
                 file is crafted or corrupted",
                self.path.display()
            );
        }
        self.read_prefix(name, size as usize)
    }
}

impl<R: Read + Seek> StorageSource for ZipCheckpoint<R> {
    fn storage_len(&self, key: &str) -> Option<usize> {
        self.storage_sizes.get(key).copied()
    }

    fn storage_prefix(&mut self, key: &str, len: usize) -> Result<Cow<'_, [u8]>> {
        let name = format!("{}data/{key}", self.prefix);
        Ok(Cow::Owned(self.read_prefix(&name, len)?))
    }
}
