//! Crash-safe files (TPM key files, Tink keysets and their access-key-id files): a file is
//! written to a temporary file beside its target, fsynced, and only then renamed (or, when
//! it must not replace anything, hard-linked) into place, and the directory is fsynced. A
//! reader, or the next run after a SIGKILL, sees the old complete file or the new complete
//! file, never a truncated one.
//!
//! Temporary files are named `.<target name>.keyhold-tmp.<pid>.<n>`; one left behind by a
//! killed process (its pid no longer running) is removed by the next write to the same
//! target. Files get exactly the mode asked for, whatever the umask.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::CliError;

const TEMP_MARK: &str = ".keyhold-tmp.";
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A complete, fsynced file beside `target`, not yet in place. Dropping it removes it;
/// [`StagedFile::commit`] puts it in place.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes `contents` to a new temporary file in `target`'s directory and fsyncs it.
    /// Stale temporary files of dead processes for the same target are removed first.
    /// The file gets permissions `mode` (0o600 for anything a secret could be learnt from).
    pub fn write(target: impl AsRef<Path>, contents: &[u8], mode: u32) -> Result<Self, CliError> {
        let target = target.as_ref().to_owned();
        remove_stale_temps(&target);
        let (temp, mut file) = create_temp(&target, mode)?;
        let staged = StagedFile {
            temp,
            target,
            committed: false,
        };
        let io = |source| io_error("write", &staged.temp, source);
        file.write_all(contents).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(staged)
    }

    /// The file this will become.
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))] // the TPM import logs it
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file, complete but not yet in place (to check it before committing).
    #[cfg_attr(not(feature = "tink"), allow(dead_code))] // the Tink import opens it
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Puts the file in place: with `replace`, atomically over whatever is there; without,
    /// only if nothing is there ([`CliError::FileExists`] otherwise). Then fsyncs the
    /// directory so the rename survives a power cut.
    pub fn commit(mut self, replace: bool) -> Result<(), CliError> {
        let io = |source| io_error("write", &self.target, source);
        if replace {
            std::fs::rename(&self.temp, &self.target).map_err(io)?;
        } else {
            // link(2) fails if the target exists: no window in which a file could be lost.
            match std::fs::hard_link(&self.temp, &self.target) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(CliError::FileExists {
                        path: self.target.clone(),
                    });
                }
                // A file system without hard links: check, then rename (a narrow race
                // with another writer of the same path, not with a crash).
                Err(_) if !self.target.exists() => {
                    std::fs::rename(&self.temp, &self.target).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
            let _ = std::fs::remove_file(&self.temp);
        }
        self.committed = true;
        sync_dir(&self.target).map_err(io)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Checks, before anything is done, that a file could be written at `target`: it does not
/// exist unless `replace` ([`CliError::FileExists`]), is not a directory, and a file can be
/// created in its directory (which catches missing, read-only and non-directories).
#[cfg_attr(not(any(feature = "tpm", feature = "tink")), allow(dead_code))] // their imports
pub fn check_writable(target: impl AsRef<Path>, replace: bool) -> Result<(), CliError> {
    let target = target.as_ref();
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            return Err(io_error(
                "write",
                target,
                std::io::Error::new(ErrorKind::IsADirectory, "it is a directory"),
            ));
        }
        Ok(_) if !replace => {
            return Err(CliError::FileExists {
                path: target.to_owned(),
            });
        }
        _ => {}
    }
    let (temp, file) = create_temp(target, 0o600)?;
    drop(file);
    let _ = std::fs::remove_file(temp);
    Ok(())
}

/// [`check_writable`] as a command-line check: `flag` names where the path came from, and
/// every refusal is a usage error (exit 2), found before the secret is read.
#[cfg_attr(not(any(feature = "tpm", feature = "tink")), allow(dead_code))] // their imports
pub fn refuse_unwritable(flag: &str, target: &Path, replace: bool) -> Result<(), CliError> {
    check_writable(target, replace).map_err(|e| match e {
        CliError::FileExists { .. } => CliError::Usage(e.to_string()),
        other => CliError::Usage(format!(
            "{flag}{}: {}: choose a path in a writable directory",
            target.display(),
            crate::error::one_line(&other)
        )),
    })
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> CliError {
    CliError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn directory_of(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}{TEMP_MARK}")
}

/// Creates a fresh temporary file with permissions `mode` beside `target`.
fn create_temp(target: &Path, mode: u32) -> Result<(PathBuf, File), CliError> {
    let dir = directory_of(target);
    let prefix = temp_prefix(target);
    loop {
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!("{prefix}{}.{n}", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        match options.open(&temp) {
            Ok(file) => {
                // Exactly `mode` whatever the umask (it can only have removed bits).
                #[cfg(unix)]
                if let Err(e) =
                    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                {
                    let _ = std::fs::remove_file(&temp);
                    return Err(io_error("write", target, e));
                }
                return Ok((temp, file));
            }
            // Left by an earlier process with our pid: try the next number.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("write", target, e)),
        }
    }
}

/// Removes `.<name>.keyhold-tmp.<pid>.<n>` files of `target` whose process is gone (Linux:
/// no `/proc/<pid>`). Elsewhere, stale temporary files are left alone (they are never read).
fn remove_stale_temps(target: &Path) {
    let prefix = temp_prefix(target);
    let Ok(entries) = std::fs::read_dir(directory_of(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = cfg!(target_os = "linux")
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists();
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Fsyncs the directory holding `target`, so a rename or link in it is durable.
fn sync_dir(target: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(directory_of(target))?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = target;
        Ok(())
    }
}

/// Opens (or makes, 0600) the lock file `path` and waits at most `wait` for an exclusive
/// `flock` on it, polling: the lock is held while the returned file is open. An error when
/// the file can't be opened, or (`TimedOut`) another process held the lock all along.
pub fn lock_exclusive(path: &Path, wait: std::time::Duration) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    let start = std::time::Instant::now();
    while rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        if start.elapsed() > wait {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("another keyhold held it for {} seconds", wait.as_secs()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keyhold-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_without_replace_never_overwrites_and_leaves_no_temp() {
        let dir = scratch("noreplace");
        let target = dir.join("k.pem");
        StagedFile::write(&target, b"first", 0o600)
            .unwrap()
            .commit(false)
            .unwrap();
        let err = StagedFile::write(&target, b"second", 0o600)
            .unwrap()
            .commit(false)
            .unwrap_err();
        assert!(matches!(err, CliError::FileExists { .. }), "{err:?}");
        assert!(err.to_string().contains("--replace"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        assert_eq!(names(&dir), ["k.pem"]);
    }

    #[test]
    fn replace_swaps_the_whole_file_with_mode_0600() {
        let dir = scratch("replace");
        let target = dir.join("k.pem");
        std::fs::write(&target, b"old, and readable by all").unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let staged = StagedFile::write(&target, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"old, and readable by all");
        staged.commit(true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        assert_eq!(names(&dir), ["k.pem"]);
    }

    #[test]
    fn a_dropped_stage_is_removed_and_stale_temps_of_dead_processes_too() {
        let dir = scratch("stale");
        let target = dir.join("k.pem");
        drop(StagedFile::write(&target, b"never", 0o600).unwrap());
        assert!(names(&dir).is_empty());
        // pid 0x7fffffff is above Linux's pid_max: never a running process.
        let stale = dir.join(".k.pem.keyhold-tmp.2147483647.0");
        let other = dir.join(".other.pem.keyhold-tmp.2147483647.0");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&other, b"not ours").unwrap();
        StagedFile::write(&target, b"new", 0o600)
            .unwrap()
            .commit(false)
            .unwrap();
        let expected: &[&str] = if cfg!(target_os = "linux") {
            &[".other.pem.keyhold-tmp.2147483647.0", "k.pem"]
        } else {
            &[
                ".k.pem.keyhold-tmp.2147483647.0",
                ".other.pem.keyhold-tmp.2147483647.0",
                "k.pem",
            ]
        };
        assert_eq!(names(&dir), expected);
    }

    #[test]
    fn check_writable_refuses_existing_files_and_unwritable_places() {
        let dir = scratch("check");
        let target = dir.join("k.pem");
        check_writable(&target, false).unwrap();
        assert!(names(&dir).is_empty(), "the probe is removed");
        std::fs::write(&target, b"x").unwrap();
        assert!(matches!(
            check_writable(&target, false),
            Err(CliError::FileExists { .. })
        ));
        check_writable(&target, true).unwrap();
        // A parent that is a file (fails for root too, unlike a chmod'ed directory).
        let err = check_writable(target.join("under-a-file.pem"), true).unwrap_err();
        assert!(matches!(err, CliError::Io { .. }), "{err:?}");
        assert!(
            check_writable(&dir, true).is_err(),
            "a directory is not a key file"
        );
    }
}
