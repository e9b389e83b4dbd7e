//! Writing the views' HTML and SVG files, and checking output paths before any work.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ecco_viz::Report;

/// The files one command writes: all of them or none.
///
/// Each is staged beside its target first (see [`ecco_viz::stage`]: an exclusive temporary
/// file); only when every one is staged are they renamed into place, so a failure while
/// rendering or writing any of them leaves every target as it was.
#[derive(Default)]
pub struct Outputs {
    staged: Vec<(PathBuf, tempfile::NamedTempFile)>,
}

impl Outputs {
    /// Stages `bytes` for `path`.
    pub fn stage(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        if self.staged.iter().any(|(p, _)| p == path) {
            bail!("{} is named as two outputs of this command", path.display());
        }
        let file = ecco_viz::stage(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        self.staged.push((path.to_path_buf(), file));
        Ok(())
    }

    /// Stages a file for `path` that `write` writes at the temporary path it is given (for
    /// writers that take a path, such as `write_safetensors`).
    pub fn stage_with(&mut self, path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        if self.staged.iter().any(|(p, _)| p == path) {
            bail!("{} is named as two outputs of this command", path.display());
        }
        ecco_viz::check_replaceable(path).with_context(|| format!("cannot write {}", path.display()))?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let file = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempfile_in(parent)
            .with_context(|| format!("cannot write {}", path.display()))?;
        write(file.path()).with_context(|| format!("cannot write {}", path.display()))?;
        self.staged.push((path.to_path_buf(), file));
        Ok(())
    }

    /// Stages `report` as a self-contained HTML page for `path`.
    pub fn html(&mut self, path: &Path, report: &Report) -> Result<()> {
        let page = ecco_viz::render_html(report)?;
        self.stage(path, page.as_bytes())
    }

    /// Renames every staged file into place.
    pub fn commit(self) -> Result<()> {
        for (path, file) in self.staged {
            file.persist(&path).map_err(|e| e.error).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Fails before any work when an output file's directory does not exist, or the path holds
/// something other than a regular file (a directory, a symlink, a FIFO, a device).
pub fn check_writable(path: Option<&Path>, flag: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        anyhow::bail!("{flag} {}: the directory {} does not exist", path.display(), parent.display());
    }
    ecco_viz::check_replaceable(path).map_err(|e| anyhow::anyhow!("{flag} {e}"))
}
