//! The PyTorch generator as a peer process timed in the same interleaved rounds as ours.
//!
//! Comparing two processes run one after the other carries any change in the machine's load
//! between them into the ratio. The peer (`benches/baseline.py --peer`) loads the same weights
//! file once and answers one timed whole-scene forward per request, so that each round runs
//! ours and theirs back to back and a load change touches both alike. It runs with the
//! allocator setting this binary gives itself ([`super::baseline::ALLOCATOR_ENV`]), the fairer
//! of the two ways to run PyTorch.

use super::baseline::{ALLOCATOR_ENV, SCRIPT, python};
use super::models::BenchModel;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running peer process holding one generator.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The peer's PyTorch version.
    pub torch: String,
}

impl Peer {
    /// Starts the peer on `model`'s weights file with `threads` intra-op threads and waits
    /// until it has loaded them.
    pub fn start(model: &BenchModel, threads: i64) -> Result<Self> {
        let script = crate::zoo::source_dir().join(SCRIPT);
        if !script.exists() {
            bail!("the baseline script {} is missing", script.display());
        }
        let python = python()?;
        let sizes = serde_json::to_string(model.generator.sizes())?;
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .arg("--peer")
            .arg(&model.weights)
            .arg(&sizes)
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (key, value) in ALLOCATOR_ENV {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", python.display()))?;
        let stdin = child.stdin.take().context("the peer has no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("the peer has no stdout")?);
        let mut peer = Self {
            child,
            stdin,
            stdout,
            torch: String::new(),
        };
        let line = peer.read_line()?;
        match line.strip_prefix("ready ") {
            Some(version) => peer.torch = version.trim().to_string(),
            None => bail!("the PyTorch peer did not start: it said {line:?}"),
        }
        Ok(peer)
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("cannot read from the PyTorch peer")?;
        if n == 0 {
            let status = self.child.try_wait().ok().flatten();
            bail!(
                "the PyTorch peer ended ({}); run {} --peer by hand to see why",
                status.map_or("still running".to_string(), |s| s.to_string()),
                SCRIPT
            );
        }
        Ok(line.trim_end().to_string())
    }

    /// One whole-scene forward at `batch` in the peer, from its fixed latents; the forward's
    /// own duration in seconds as the peer measured it.
    pub fn generate(&mut self, batch: i64) -> Result<f64> {
        writeln!(self.stdin, "generate {batch}").context("cannot write to the PyTorch peer")?;
        self.stdin.flush()?;
        let line = self.read_line()?;
        line.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .with_context(|| format!("the PyTorch peer answered {line:?}, not a duration"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        if self.child.wait().is_err() {
            let _ = self.child.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_peer_times_forwards_on_request_and_a_broken_one_is_named() {
        let work = std::env::temp_dir().join(format!("gandissect-peer-{}", std::process::id()));
        let mut model = super::super::models::load("world", &work, Device::Cpu).unwrap();
        let mut peer = Peer::start(&model, 1).unwrap();
        assert!(peer.torch.starts_with("2."), "{}", peer.torch);
        for batch in [1, 2, 1] {
            let secs = peer.generate(batch).unwrap();
            assert!(secs > 0.0 && secs < 60.0, "{secs}");
        }
        drop(peer);
        // weights it cannot read: the peer ends before it is ready, and the error says so
        model.weights = work.join("missing.safetensors");
        let err = Peer::start(&model, 1).err().unwrap().to_string();
        assert!(err.contains("the PyTorch peer ended"), "{err}");
        let _ = std::fs::remove_dir_all(&work);
    }
}
