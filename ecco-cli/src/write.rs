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

/// Fails before any work when an output file's directory does not exist.
pub fn check_writable(path: Option<&Path>, flag: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        anyhow::bail!("{flag} {}: the directory {} does not exist", path.display(), parent.display());
    }
    if path.is_dir() {
        anyhow::bail!("{flag} {}: is a directory", path.display());
    }
    Ok(())
}
