//! Writing an output file atomically: into a temporary sibling, then renamed into place.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary sibling renamed into place, so a failed run
/// never leaves a half-written file. Refuses a path that is a directory.
///
/// # Errors
/// [`Error::Io`] when the directory is missing or the file cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        return Err(Error::io(path, std::io::Error::other("is a directory")));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_nothing_on_failure() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let out = tmp.path().join("a.html");
        write_atomic(&out, b"hello")?;
        assert_eq!(std::fs::read(&out).map_err(|e| Error::io(&out, e))?, b"hello");
        let bad = tmp.path().join("missing").join("b.html");
        assert!(write_atomic(&bad, b"x").is_err());
        assert!(write_atomic(tmp.path(), b"x").is_err());
        let left: Vec<_> = std::fs::read_dir(tmp.path()).map_err(|e| Error::io("tmp", e))?.collect();
        assert_eq!(left.len(), 1, "only a.html remains");
        Ok(())
    }
}
