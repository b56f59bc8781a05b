//! Numbers that leave the tool exactly: float tensors written as `.npy` (one array, for numpy)
//! or `.safetensors` (named tensors, for PyTorch and others), atomically.

use anyhow::{Result, bail};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The file formats a tensor file can have, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorFormat {
    /// numpy's `.npy`: the first tensor only.
    Npy,
    /// `.safetensors`: every tensor by name.
    Safetensors,
}

impl TensorFormat {
    /// The format `path` names by its extension; any other extension is refused.
    pub fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok(Self::Npy),
            Some("safetensors") => Ok(Self::Safetensors),
            _ => bail!(
                "{} must end in .npy (one array) or .safetensors (named tensors)",
                path.display()
            ),
        }
    }
}

/// Writes `tensors` to `path` (moved to the CPU, contiguous): a `.npy` holds the first one,
/// a `.safetensors` file all of them by name. Written atomically.
pub fn write(path: &Path, tensors: &[(&str, Tensor)]) -> Result<()> {
    let format = TensorFormat::of(path)?;
    let Some((_, first)) = tensors.first() else {
        bail!("nothing to write to {}", path.display());
    };
    crate::fsutil::atomic_write_with(path, |tmp| {
        match format {
            TensorFormat::Npy => first.to_device(Device::Cpu).contiguous().write_npy(tmp)?,
            TensorFormat::Safetensors => {
                let cpu: Vec<(&str, Tensor)> = tensors
                    .iter()
                    .map(|(n, t)| (*n, t.to_device(Device::Cpu).contiguous()))
                    .collect();
                Tensor::write_safetensors(&cpu, tmp)?
            }
        }
        Ok(())
    })
}

/// Image ids as an int64 tensor, for the files that record which images the rows are.
pub fn ids_tensor(ids: &[u64]) -> Tensor {
    Tensor::from_slice(&ids.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_kind(Kind::Int64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_safetensors_round_trip_bit_for_bit() {
        let dir = crate::scratch::ScratchDir::new("tensorfile").unwrap();
        let x = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu)) * 1e-3 + 7.25;
        let npy = dir.join("x.npy");
        write(&npy, &[("features", x.shallow_clone())]).unwrap();
        assert!(Tensor::read_npy(&npy).unwrap().equal(&x));
        let st = dir.join("x.safetensors");
        write(
            &st,
            &[
                ("features", x.shallow_clone()),
                ("ids", ids_tensor(&[5, 9])),
            ],
        )
        .unwrap();
        let back = Tensor::read_safetensors(&st).unwrap();
        let get = |n: &str| back.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        assert!(get("features").equal(&x));
        assert_eq!(Vec::<i64>::try_from(get("ids")).unwrap(), vec![5, 9]);
        let err = write(&dir.join("x.pt"), &[("f", x)]).unwrap_err();
        assert!(err.to_string().contains(".npy"), "{err}");
    }
}
