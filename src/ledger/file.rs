//! A ledger in a local file (for local runs and PersistentVolumes), replaced atomically:
//! written to a temporary file in the same directory, flushed to disk, renamed over the old
//! one, and the directory flushed, so a crash leaves either the old or the new ledger.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Ledger, LedgerError, Loaded, decode, encode};

/// A ledger stored in one file.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    /// The file the ledger lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.display().to_string(),
            action,
            source,
        }
    }

    /// Reads the ledger without changing anything on disk, for `plan`: a corrupt or
    /// incompatible file is an empty ledger with `discarded` saying why (a tick would move it
    /// aside and start from empty, which plans the same).
    pub fn peek(&self) -> Result<Loaded, LedgerError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    ledger: Ledger::new(),
                    discarded: None,
                    bytes: None,
                });
            }
            Err(e) => return Err(self.io("cannot read", e)),
        };
        Ok(match decode(&bytes, &self.path.display().to_string()) {
            Ok(ledger) => Loaded {
                ledger,
                discarded: None,
                bytes: Some(bytes.len()),
            },
            Err(problem) => Loaded {
                ledger: Ledger::new(),
                discarded: Some(format!(
                    "{problem}; planning against an empty ledger, as the next tick would"
                )),
                bytes: None,
            },
        })
    }

    /// Reads the ledger. A missing file is an empty ledger. A corrupt or incompatible file is
    /// moved aside (to `<file>.corrupt-<unix seconds>`) and a fresh ledger started, so the
    /// exporter never crash-loops on it; the caller logs `discarded`.
    pub fn load(&self) -> Result<Loaded, LedgerError> {
        self.remove_leftover_temporaries();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    ledger: Ledger::new(),
                    discarded: None,
                    bytes: None,
                });
            }
            Err(e) => return Err(self.io("cannot read", e)),
        };
        match decode(&bytes, &self.path.display().to_string()) {
            Ok(ledger) => Ok(Loaded {
                ledger,
                discarded: None,
                bytes: Some(bytes.len()),
            }),
            Err(problem) => {
                // `<file>.corrupt-<unix seconds>`, as the README says: the whole name is kept.
                let mut aside = self.path.clone().into_os_string();
                aside.push(format!(".corrupt-{}", jiff::Timestamp::now().as_second()));
                let aside = std::path::PathBuf::from(aside);
                std::fs::rename(&self.path, &aside)
                    .map_err(|e| self.io("cannot move the unreadable ledger aside", e))?;
                Ok(Loaded {
                    ledger: Ledger::new(),
                    discarded: Some(format!(
                        "{problem}; moved to {} and starting fresh",
                        aside.display()
                    )),
                    bytes: None,
                })
            }
        }
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn temporary_prefix(&self) -> String {
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(".{file_name}.tmp-")
    }

    /// Deletes the temporary files a killed process left mid-save (best effort: they hold no
    /// more than the ledger they were about to replace).
    fn remove_leftover_temporaries(&self) {
        let prefix = self.temporary_prefix();
        let ours = format!("{prefix}{}", std::process::id());
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name != ours {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Writes the ledger atomically and marks it saved.
    pub fn save(&self, ledger: &mut Ledger) -> Result<(), LedgerError> {
        let bytes = encode(ledger);
        let dir = self.dir();
        let temp = dir.join(format!("{}{}", self.temporary_prefix(), std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            // The rename is durable only once the directory entry is on disk.
            std::fs::File::open(&dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&temp);
            return Err(self.io("cannot write", e));
        }
        ledger.mark_saved();
        Ok(())
    }
}
