//! Atomic writes: a temporary file, fsynced and renamed over the target.

use super::PersistError;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers the temporary files of this process's saves.
pub(super) static SAVES: AtomicU64 = AtomicU64::new(0);

/// Writes a file atomically: `write` fills a fresh temporary file next to `path`, which is
/// fsynced and renamed over `path`, and the directory fsynced; on any failure the temporary
/// file is removed and `path` is untouched.
///
/// The temporary file is `<name>.tmp.<process id>.<counter>`, locked (advisory, `flock` on
/// unix) while it is written. A process killed mid-save leaves its temporary file behind,
/// unlocked; every successful save of the same target removes such leftovers (those it can
/// lock), so they never accumulate. A live writer's file is locked and left alone.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), PersistError> {
    let err = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!("{}.tmp.", name.to_string_lossy());
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let n = SAVES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{prefix}{}.{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => break (tmp, file),
            // Left by a killed process that had our (reused) process id: try the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => attempts += 1,
            Err(e) => return Err(err(e)),
        }
    };
    // Where advisory locks are unsupported, saves still work; leftovers are then kept.
    let _ = file.lock();
    let result = write(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    drop(file);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    sync_dir(dir).map_err(err)?;
    remove_leftovers(dir, &prefix);
    Ok(())
}

/// Removes `<prefix><digits>.<digits>` files in `dir` that nobody holds locked: temporary
/// files of saves killed before their rename. Failures are ignored (the next save retries).
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temporary = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(pid, n)| {
                [pid, n]
                    .iter()
                    .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            });
        if !is_temporary {
            continue;
        }
        let leftover = entry.path();
        if let Ok(f) = File::open(&leftover) {
            if f.try_lock().is_ok() {
                let _ = fs::remove_file(&leftover);
            }
        }
    }
}

/// Makes a rename durable by fsyncing the directory (unix only; some file systems refuse
/// to fsync a directory, which is not an error).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() != io::ErrorKind::InvalidInput => return Err(e),
        _ => {}
    }
    let _ = dir;
    Ok(())
}
