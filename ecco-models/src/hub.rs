//! Finding a checkpoint from a `--model` name, as `from_pretrained` does: a local directory;
//! else the standard Hugging Face cache (`models--org--name/snapshots/<rev>`, the revision read
//! from `refs/main`); else a download from the Hub with the `hf-hub` crate (feature `hub`),
//! unless `HF_HUB_OFFLINE` is set.
//!
//! The cache root follows `huggingface_hub`'s `constants.py`: `$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::weights::{PYTORCH_FILE, PYTORCH_INDEX, SHARD_INDEX, SINGLE_FILE};

/// Files every checkpoint needs besides its weights.
const REQUIRED: [&str; 2] = ["config.json", "tokenizer.json"];

/// Where to look for and put Hub checkpoints, and whether the network may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// The cache root (holding `models--org--name` folders).
    pub cache_dir: PathBuf,
    /// `HF_HUB_OFFLINE`: never download.
    pub offline: bool,
    /// Show a download progress bar (on a terminal).
    pub progress: bool,
}

impl HubSettings {
    /// The settings the environment gives (`HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HOME`,
    /// `HF_HUB_OFFLINE`); a progress bar when stderr is a terminal.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
            .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| is_true(&v));
        Self { cache_dir, offline, progress: std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }
}

/// `huggingface_hub`'s truthy values for boolean environment variables.
fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true")
}

/// A checkpoint found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The directory holding `config.json`, the weights and `tokenizer.json` (or a GGUF file).
    pub dir: PathBuf,
    /// The name traces record: the directory as given, or the Hub id.
    pub name: String,
}

/// Whether `name` reads as a Hub id (`name` or `org/name`) rather than a path.
pub fn is_hub_id(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty() && !p.starts_with(['.', '-']) && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let mut parts = name.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, None) => part(a),
        (Some(a), Some(b), None) => part(a) && part(b),
        _ => false,
    }
}

/// The cache folder of Hub model `id`: `models--org--name`.
pub fn repo_folder(id: &str) -> String {
    format!("models--{}", id.replace('/', "--"))
}

/// Resolves `--model NAME` with `settings`: a directory, a GGUF file, the cache, or a download.
///
/// # Errors
/// [`Error::MissingFile`] for a path that is not a directory; [`Error::NotCached`] when offline
/// and the cache lacks a file; [`Error::HubUnavailable`] or [`Error::Download`] when it must be
/// downloaded and cannot be.
pub fn resolve(name: &str, settings: &HubSettings) -> Result<Resolved> {
    let path = Path::new(name);
    // A single-file checkpoint (`model.gguf`): the loader reads it as it reads a directory.
    if path.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return Ok(Resolved { dir: path.to_path_buf(), name: name.to_owned() });
    }
    if path.is_dir() || !is_hub_id(name) {
        if !path.is_dir() {
            return Err(Error::MissingFile { path: path.to_path_buf(), what: "model directory" });
        }
        return Ok(Resolved { dir: path.to_path_buf(), name: name.to_owned() });
    }
    match cached(name, &settings.cache_dir) {
        Ok(dir) => Ok(Resolved { dir, name: name.to_owned() }),
        Err(missing) if settings.offline => Err(Error::NotCached { id: name.to_owned(), cache: settings.cache_dir.clone(), missing }),
        Err(_) => download(name, settings).map(|dir| Resolved { dir, name: name.to_owned() }),
    }
}

/// The snapshot directory of `id` in the cache at `root` (revision from `refs/main`) when it
/// holds a whole checkpoint; otherwise what is missing, for the error message.
///
/// # Errors
/// A short description of the first thing missing.
pub fn cached(id: &str, root: &Path) -> std::result::Result<PathBuf, String> {
    let repo = root.join(repo_folder(id));
    let refs = repo.join("refs").join("main");
    let revision = std::fs::read_to_string(&refs).map_err(|_| format!("no {}", display_from(root, &refs)))?;
    let snapshot = repo.join("snapshots").join(revision.trim());
    if !snapshot.is_dir() {
        return Err(format!("no {}", display_from(root, &snapshot)));
    }
    missing_file(&snapshot).map_or(Ok(snapshot), |f| Err(format!("no {f} in {}", display_from(root, &repo))))
}

/// The first file of a checkpoint that `dir` lacks (weights: a single file, or an index and all
/// of its shards; safetensors, else `pytorch_model.bin`).
fn missing_file(dir: &Path) -> Option<String> {
    if let Some(f) = REQUIRED.iter().find(|f| !dir.join(f).is_file()) {
        return Some((*f).to_owned());
    }
    if dir.join(SINGLE_FILE).is_file() {
        return None;
    }
    let text = std::fs::read_to_string(dir.join(SHARD_INDEX));
    if text.is_err() && dir.join(PYTORCH_FILE).is_file() {
        return None;
    }
    let text = text.or_else(|_| std::fs::read_to_string(dir.join(PYTORCH_INDEX)));
    let Ok(text) = text else {
        return Some(SINGLE_FILE.to_owned());
    };
    shards(&text).into_iter().find(|s| !dir.join(s).is_file())
}

/// The shard file names a `model.safetensors.index.json` lists (none when it cannot be parsed:
/// the loader reports that).
fn shards(index: &str) -> Vec<String> {
    let parsed: serde_json::Value = serde_json::from_str(index).unwrap_or_default();
    let mut files: Vec<String> = parsed
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| m.values().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    files.sort();
    files.dedup();
    files
}

/// `path` relative to `root`, for short messages.
fn display_from(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Downloads `id`'s checkpoint into the cache with `hf-hub` and returns its snapshot directory.
#[cfg(feature = "hub")]
fn download(id: &str, settings: &HubSettings) -> Result<PathBuf> {
    let failed =
        |file: &str, e: hf_hub::api::sync::ApiError| Error::Download { id: id.to_owned(), file: file.to_owned(), reason: e.to_string() };
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(settings.cache_dir.clone())
        .with_progress(settings.progress)
        .build()
        .map_err(|e| failed("(client)", e))?;
    let repo = api.model(id.to_owned());
    let mut dir = None;
    for file in REQUIRED {
        let path = repo.get(file).map_err(|e| failed(file, e))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    // Safetensors first; a repository without them may hold `pytorch_model.bin` (read with
    // the `pytorch` feature).
    if repo.get(SINGLE_FILE).is_err() {
        let index = match repo.get(SHARD_INDEX) {
            Ok(index) => Some(index),
            Err(e) => match repo.get(PYTORCH_FILE) {
                Ok(_) => None,
                Err(_) => Some(repo.get(PYTORCH_INDEX).map_err(|_| failed(SINGLE_FILE, e))?),
            },
        };
        if let Some(index) = index {
            let text = std::fs::read_to_string(&index).map_err(|e| ecco_core::Error::io(&index, e))?;
            for shard in shards(&text) {
                repo.get(&shard).map_err(|e| failed(&shard, e))?;
            }
        }
    }
    dir.ok_or_else(|| Error::Download { id: id.to_owned(), file: "config.json".to_owned(), reason: "no path".to_owned() })
}

/// Without the `hub` feature there is no download.
#[cfg(not(feature = "hub"))]
fn download(id: &str, settings: &HubSettings) -> Result<PathBuf> {
    Err(Error::HubUnavailable { id: id.to_owned(), cache: settings.cache_dir.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cache at `root` holding `id` at revision `rev` with `files`, `refs/main` → `rev`.
    fn fake_cache(root: &Path, id: &str, rev: &str, files: &[&str]) -> PathBuf {
        let repo = root.join(repo_folder(id));
        let snap = repo.join("snapshots").join(rev);
        std::fs::create_dir_all(&snap).expect("tempdir is writable");
        std::fs::create_dir_all(repo.join("refs")).expect("tempdir is writable");
        std::fs::write(repo.join("refs").join("main"), format!("{rev}\n")).expect("tempdir is writable");
        for f in files {
            std::fs::write(snap.join(f), "{}").expect("tempdir is writable");
        }
        snap
    }

    fn offline(root: &Path) -> HubSettings {
        HubSettings { cache_dir: root.to_path_buf(), offline: true, progress: false }
    }

    const ALL: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        assert!(is_hub_id("distilgpt2"));
        assert!(is_hub_id("openai-community/gpt2"));
        assert!(!is_hub_id("fixtures/gpt2/deep/x"));
        assert!(!is_hub_id("./gpt2"));
        assert!(!is_hub_id("/abs/path"));
        assert!(!is_hub_id("a b"));
        assert_eq!(repo_folder("openai-community/gpt2"), "models--openai-community--gpt2");
    }

    #[test]
    fn a_local_directory_wins() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("distilgpt2");
        std::fs::create_dir(&dir).expect("tempdir is writable");
        let name = dir.display().to_string();
        let r = resolve(&name, &offline(tmp.path())).expect("a directory resolves");
        assert_eq!(r, Resolved { dir, name });
    }

    #[test]
    fn the_cache_snapshot_named_by_refs_main_is_used() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fake_cache(tmp.path(), "org/old", "aaaa", &ALL);
        let snap = fake_cache(tmp.path(), "org/model", "0123abcd", &ALL);
        // A second snapshot that refs/main does not name is ignored.
        std::fs::create_dir_all(tmp.path().join("models--org--model/snapshots/ffff")).expect("writable");
        let r = resolve("org/model", &offline(tmp.path())).expect("cached");
        assert_eq!(r.dir, snap);
        assert_eq!(r.name, "org/model");
    }

    #[test]
    fn sharded_checkpoints_need_every_shard() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let snap = fake_cache(tmp.path(), "big", "r1", &["config.json", "tokenizer.json"]);
        let index = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(snap.join(SHARD_INDEX), index).expect("writable");
        std::fs::write(snap.join("model-00001-of-00002.safetensors"), "").expect("writable");
        let err = cached("big", tmp.path()).expect_err("a shard is missing");
        assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
        std::fs::write(snap.join("model-00002-of-00002.safetensors"), "").expect("writable");
        assert_eq!(cached("big", tmp.path()), Ok(snap));
    }

    #[test]
    fn a_cached_pytorch_checkpoint_without_safetensors_resolves() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let snap = fake_cache(tmp.path(), "old", "r1", &["config.json", "tokenizer.json", "pytorch_model.bin"]);
        assert_eq!(cached("old", tmp.path()), Ok(snap.clone()));
        // A sharded one needs every shard its index lists.
        std::fs::remove_file(snap.join(PYTORCH_FILE)).expect("writable");
        let index = r#"{"weight_map": {"a": "pytorch_model-00001-of-00001.bin"}}"#;
        std::fs::write(snap.join(PYTORCH_INDEX), index).expect("writable");
        let err = cached("old", tmp.path()).expect_err("the shard is missing");
        assert!(err.contains("pytorch_model-00001-of-00001.bin"), "{err}");
        std::fs::write(snap.join("pytorch_model-00001-of-00001.bin"), "").expect("writable");
        assert_eq!(cached("old", tmp.path()), Ok(snap));
    }

    #[test]
    fn offline_with_a_missing_file_is_a_one_line_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fake_cache(tmp.path(), "distilgpt2", "r1", &["config.json", "model.safetensors"]);
        let err = resolve("distilgpt2", &offline(tmp.path())).expect_err("tokenizer.json is missing");
        let msg = err.to_string();
        assert!(matches!(err, Error::NotCached { .. }), "{msg}");
        assert!(msg.contains("distilgpt2") && msg.contains("tokenizer.json") && msg.contains("HF_HUB_OFFLINE"), "{msg}");
        assert!(!msg.contains('\n'));
        let err = resolve("never/seen", &offline(tmp.path())).expect_err("not cached at all");
        assert!(err.to_string().contains("refs/main"), "{err}");
    }

    #[test]
    fn a_missing_path_is_not_looked_up_on_the_hub() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = resolve("./no/such/dir", &offline(tmp.path())).expect_err("missing");
        assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    }

    #[test]
    fn environment_variables_pick_the_cache_root() {
        // Only checks what is set here without changing the process environment.
        let s = HubSettings::from_env();
        if let Some(c) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
            assert_eq!(s.cache_dir, PathBuf::from(c));
        } else {
            assert!(s.cache_dir.ends_with("hub"), "{}", s.cache_dir.display());
        }
        assert!(is_true("1") && is_true("TRUE") && !is_true("0") && !is_true(""));
    }
}
