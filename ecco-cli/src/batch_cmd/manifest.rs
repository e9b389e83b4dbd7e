//! `manifest.json`: what a batch run is (its settings, the model's and the input's hashes) and
//! which shards are done. It is rewritten atomically after each shard, so it is the run's
//! commit point: a shard not listed is recomputed on resume.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The value of `format` in every batch manifest.
pub const FORMAT: &str = "ecco-batch";
/// The manifest's file name in `--out`.
pub const MANIFEST: &str = "manifest.json";
/// Manifests are small; a larger file is not ours.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Everything that decides a run's rows: a resumed run must match it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// SHA-256 over the checkpoint's files (or the embedded demo model's name and version).
    pub model_hash: String,
    /// SHA-256 of the input file.
    pub input_sha256: String,
    /// `--text-field`.
    pub text_field: String,
    /// `--id-field`.
    pub id_field: Option<String>,
    /// `--max-new-tokens` (`null`: a forward pass).
    pub max_new_tokens: Option<usize>,
    /// `--attribution`, as method names.
    pub attribution: Vec<String>,
    /// `--activations`.
    pub activations: bool,
    /// `--capture`, as hook patterns.
    #[serde(default)]
    pub capture: Vec<String>,
    /// `--shard-size`.
    pub shard_size: usize,
    /// The `ecco` version that wrote the run.
    pub ecco_version: String,
}

/// A finished shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Its number (`part-NNNNN`).
    pub index: usize,
    /// Its first input row.
    pub first_row: u64,
    /// Its input rows.
    pub rows: u64,
    /// Rows in `documents`.
    pub documents: u64,
    /// Rows in `skipped`.
    pub skipped: u64,
    /// Rows in `attributions`.
    pub attribution_rows: u64,
}

/// The manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version (1).
    pub version: u32,
    /// The model as given to `--model`.
    pub model: String,
    /// Its architecture family (`gpt2`, …): how its tokens display.
    #[serde(default)]
    pub family: String,
    /// The input as given to `--input`.
    pub input: String,
    /// What the rows depend on.
    pub settings: Settings,
    /// The finished shards, in order.
    pub shards: Vec<ShardEntry>,
    /// Whether every input row is in a finished shard.
    pub complete: bool,
}

impl Manifest {
    /// Input rows in finished shards.
    pub fn rows_done(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }

    /// Reads `DIR/manifest.json`; `None` when it is not an ecco batch manifest.
    pub fn read(dir: &Path) -> Option<Self> {
        let path = dir.join(MANIFEST);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() || meta.len() > MAX_MANIFEST_BYTES {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        serde_json::from_str::<Self>(&text).ok().filter(|m| m.format == FORMAT)
    }

    /// Writes `DIR/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let json = serde_json::to_string_pretty(self)?;
        ecco_viz::write_atomic(&path, json.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Refuses to resume with other settings, naming the first that differs.
    pub fn check_same(&self, settings: &Settings, dir: &Path) -> Result<()> {
        let (old, new) = (serde_json::to_value(&self.settings)?, serde_json::to_value(settings)?);
        if let (Some(old), Some(new)) = (old.as_object(), new.as_object())
            && let Some((key, was)) = old.iter().find(|(k, v)| new.get(*k) != Some(v))
        {
            let now = new.get(key).map_or_else(String::new, ToString::to_string);
            bail!(
                "--out {} holds a batch run with other settings ({key} was {was}, now {now}); rerun that command to finish it, or choose another --out",
                dir.display()
            );
        }
        Ok(())
    }
}

/// SHA-256 of a file, read a block at a time.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// SHA-256 over a checkpoint directory's regular files (each one's name and SHA-256, in name order),
/// so that other weights, config or tokenizer make another hash.
pub fn model_hash(dir: &Path, name: &str) -> Result<String> {
    if !dir.is_dir() {
        // The embedded demo model: its bytes are fixed by the build.
        return Ok(hex(&Sha256::digest(format!("{name}@{}", env!("CARGO_PKG_VERSION")))));
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        // Followed: a Hugging Face cache snapshot's files are symlinks to its blobs.
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update(sha256_file(&path)?.as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_hash_follows_symlinks_and_covers_every_file() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let (blobs, snapshot) = (tmp.path().join("blobs"), tmp.path().join("snapshot"));
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&snapshot)?;
        std::fs::write(blobs.join("a"), b"weights")?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(blobs.join("a"), snapshot.join("model.safetensors"))?;
        #[cfg(not(unix))]
        std::fs::copy(blobs.join("a"), snapshot.join("model.safetensors"))?;
        let first = model_hash(&snapshot, "m")?;
        assert_eq!(model_hash(&snapshot, "m")?, first);
        std::fs::write(blobs.join("a"), b"other weights")?;
        #[cfg(not(unix))]
        std::fs::copy(blobs.join("a"), snapshot.join("model.safetensors"))?;
        let second = model_hash(&snapshot, "m")?;
        assert_ne!(second, first);
        std::fs::write(snapshot.join("config.json"), b"{}")?;
        assert_ne!(model_hash(&snapshot, "m")?, second);
        // The embedded demo model (no directory) hashes its name and version.
        assert_ne!(model_hash(&tmp.path().join("ecco-demo"), "ecco-demo")?, first);
        Ok(())
    }
}
