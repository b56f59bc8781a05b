//! The zip checkpoint format of `torch.save` (PyTorch ≥ 1.6): an archive with one top folder
//! holding `data.pkl` (the pickled object), `data/<key>` (one record of raw little-endian
//! elements per storage), `byteorder` and `version`.

use super::pickle::{self, Value};
use super::{StorageSource, corrupted, pickle_error};
use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use zip::ZipArchive;

/// An open zip checkpoint: its pickled object and the archive its storages are read from.
pub(super) struct ZipCheckpoint {
    /// The object `data.pkl` holds.
    pub root: Value,
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    /// The folder every record lives in, with its trailing '/'.
    prefix: String,
    loaded: HashMap<String, Vec<u8>>,
}

impl ZipCheckpoint {
    /// Opens the archive, refuses TorchScript and big-endian files, and reads `data.pkl`.
    pub fn open(path: &Path) -> Result<ZipCheckpoint> {
        let file = File::open(path)
            .map_err(|err| anyhow!("cannot open checkpoint {}: {err}", path.display()))?;
        let archive = ZipArchive::new(BufReader::new(file)).map_err(|err| corrupted(path, err))?;
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
            root: Value::None,
            path: path.to_path_buf(),
            archive,
            prefix,
            loaded: HashMap::new(),
        };
        let byteorder_name = format!("{}byteorder", checkpoint.prefix);
        if names.contains(&byteorder_name) {
            let order = checkpoint.record(&byteorder_name)?;
            if order.trim_ascii() != b"little" {
                bail!(
                    "{} stores its tensors big-endian ({}), which is not read here; save it again \
                     on a little-endian machine",
                    path.display(),
                    String::from_utf8_lossy(order.trim_ascii())
                );
            }
        }
        let data = checkpoint.record(&format!("{}data.pkl", checkpoint.prefix))?;
        checkpoint.root = pickle::load(&data, 0)
            .map_err(|err| pickle_error(path, err))?
            .value;
        Ok(checkpoint)
    }

    /// Reads one whole record of the archive, checking its CRC.
    fn record(&mut self, name: &str) -> Result<Vec<u8>> {
        let path = &self.path;
        let mut entry = self.archive.by_name(name).map_err(|err| match err {
            zip::result::ZipError::FileNotFound => {
                corrupted(path, format!("the record {name} is missing"))
            }
            other => corrupted(path, format!("record {name}: {other}")),
        })?;
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 30) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|err| corrupted(path, format!("record {name}: {err}")))?;
        Ok(bytes)
    }
}

impl StorageSource for ZipCheckpoint {
    fn storage(&mut self, key: &str) -> Result<&[u8]> {
        if !self.loaded.contains_key(key) {
            let bytes = self.record(&format!("{}data/{key}", self.prefix))?;
            self.loaded.insert(key.to_string(), bytes);
        }
        Ok(&self.loaded[key])
    }

    fn release(&mut self, key: &str) {
        self.loaded.remove(key);
    }
}
