//! Writing the views' HTML and SVG files, and checking output paths before any work.

use std::path::Path;

use anyhow::{Context, Result};
use ecco_viz::Report;

/// Writes `report` as a self-contained HTML page to `path` (atomically).
pub fn write_html(path: &Path, report: &Report) -> Result<()> {
    let page = ecco_viz::render_html(report)?;
    ecco_viz::write_atomic(path, page.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes an SVG document to `path` (atomically).
pub fn write_svg(path: &Path, svg: &str) -> Result<()> {
    ecco_viz::write_atomic(path, svg.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// Stages `bytes` for `path` (see [`ecco_viz::stage`]): persist it once every output is staged.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    ecco_viz::stage(path, bytes).with_context(|| format!("cannot write {}", path.display()))
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
