//! Writing an output file atomically: into a temporary sibling, then renamed into place.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary sibling renamed into place, so a failed run
/// never leaves a half-written file.
///
/// The temporary file is created exclusively with an unpredictable name (`tempfile`), so a
/// planted symlink cannot redirect the write. An existing `path` must be a regular file: a
/// directory, a symlink, a FIFO or a device node is refused, not replaced.
///
/// # Errors
/// [`Error::Io`] when the directory is missing, the target is not a regular file, or the file
/// cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let staged = stage(path, bytes)?;
    staged.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Checks that `path` may be replaced by a file we write: it does not exist or is a regular file.
///
/// # Errors
/// [`Error::Io`] naming what is there.
pub fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => {
            let what = if m.is_dir() {
                "is a directory"
            } else if m.file_type().is_symlink() {
                "is a symbolic link"
            } else {
                "is not a regular file"
            };
            Err(Error::io(path, std::io::Error::other(format!("{what}; refusing to replace it"))))
        }
    }
}

/// Writes `bytes` to a fresh temporary file beside `path`, to be persisted (renamed) onto `path`
/// later; dropped unpersisted, it is removed. Lets a command write several outputs all or none.
///
/// # Errors
/// As [`write_atomic`].
pub fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    check_replaceable(path)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let mut file = tempfile::Builder::new().prefix(&format!(".{name}.tmp-")).tempfile_in(&parent).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).and_then(|()| file.as_file().sync_data()).map_err(|e| Error::io(path, e))?;
    // `tempfile` creates files readable by their owner only; an output file gets the usual mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(path, e))?;
    }
    Ok(file)
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
        #[cfg(unix)]
        {
            // A planted symlink at the target is refused, and its target keeps its bytes.
            let victim = tmp.path().join("victim");
            std::fs::write(&victim, b"keep").map_err(|e| Error::io("v", e))?;
            let link = tmp.path().join("link.html");
            std::os::unix::fs::symlink(&victim, &link).map_err(|e| Error::io("l", e))?;
            assert!(write_atomic(&link, b"x").is_err());
            assert_eq!(std::fs::read(&victim).map_err(|e| Error::io("v", e))?, b"keep");
            std::fs::remove_file(&link).map_err(|e| Error::io("l", e))?;
            std::fs::remove_file(&victim).map_err(|e| Error::io("v", e))?;
        }
        let left: Vec<_> = std::fs::read_dir(tmp.path()).map_err(|e| Error::io("tmp", e))?.collect();
        assert_eq!(left.len(), 1, "only a.html remains");
        Ok(())
    }
}
