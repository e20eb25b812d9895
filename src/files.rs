//! Reading the files a user names (configuration, snapshot, credentials): only regular files,
//! so that a FIFO or a device given by mistake fails at once instead of blocking forever.

use std::io;
use std::path::Path;

/// Fails with `InvalidInput` unless `metadata` (symlinks followed) is a regular file.
pub fn ensure_regular(metadata: &std::fs::Metadata) -> io::Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    let what = if metadata.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, socket or device)"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}"),
    ))
}

/// The text of the regular file at `path`.
pub fn read_regular_to_string(path: &Path) -> io::Result<String> {
    ensure_regular(&std::fs::metadata(path)?)?;
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_refused_by_name_and_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular_to_string(dir.path()).unwrap_err();
        assert_eq!(err.to_string(), "it is a directory");
        let file = dir.path().join("f");
        std::fs::write(&file, "text").unwrap();
        assert_eq!(read_regular_to_string(&file).unwrap(), "text");
    }
}
