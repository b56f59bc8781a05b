//! Choosing where tensors live: `--device cpu|cuda|cuda:N|auto`.

use anyhow::{Result, bail};
use tch::Device;

/// Parses a device name. `auto` picks the first CUDA device when one is usable, else the CPU;
/// `cuda` and `cuda:N` fail with a clear message when CUDA is not available.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        _ => {
            let index = match name.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => match rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()) {
                    Some(i) => i,
                    None => bail!("unknown device '{name}': use cpu, cuda, cuda:N or auto"),
                },
                None => bail!("unknown device '{name}': use cpu, cuda, cuda:N or auto"),
            };
            if !tch::Cuda::is_available() {
                bail!(
                    "device '{name}' requested but CUDA is not available here; use --device cpu or auto"
                )
            }
            let count = tch::Cuda::device_count() as usize;
            if index >= count {
                bail!("device '{name}' requested but only {count} CUDA device(s) exist")
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// A short human-readable name for a device, for summaries and benchmark tables.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown_ones() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device(" CPU ").unwrap(), Device::Cpu);
        let auto = parse_device("auto").unwrap();
        assert_eq!(auto == Device::Cpu, !tch::Cuda::is_available());
        let err = parse_device("gpu").unwrap_err().to_string();
        assert!(err.contains("unknown device 'gpu'"), "{err}");
        assert!(parse_device("cuda:x").is_err());
        if !tch::Cuda::is_available() {
            let err = parse_device("cuda").unwrap_err().to_string();
            assert!(err.contains("CUDA is not available"), "{err}");
        }
    }
}
