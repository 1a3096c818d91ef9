//! `keyhold update`: keeps one profile's temporary credentials in the shared credentials
//! file (`$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) for tools that read only
//! that file.
//!
//! Each write keeps every other line of the file byte for byte ([`crate::credentials_file`]),
//! and is atomic: the new file is written beside the old one, fsynced and renamed over it
//! (the AWS CLI never sees a torn file), under an exclusive lock on a `.lock` file beside it
//! (concurrent `keyhold update`s take turns and none loses another's profile). Mode 0600.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use zeroize::Zeroizing;

use crate::args::UpdateArgs;
use crate::atomic_file::StagedFile;
use crate::commands::credential_process::{Document, fetch};
use crate::credentials_file;
use crate::error::CliError;
use crate::serve;

/// How long a writer waits for another's lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The credentials file: `$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
fn credentials_path() -> Result<PathBuf, CliError> {
    if let Some(path) = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".aws").join("credentials"))
        .ok_or_else(|| {
            CliError::Usage("neither AWS_SHARED_CREDENTIALS_FILE nor HOME is set".into())
        })
}

/// Writes `document` as `profile` into the file at `path`, atomically, under the lock.
pub fn write(path: &Path, profile: &str, document: &Document) -> Result<(), CliError> {
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io { op, path, source }
    };
    // Through a symbolic link to the file it names, which is the one replaced.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let lock_path = dir.join(format!(".{name}.keyhold-lock"));
    let lock = crate::atomic_file::lock_exclusive(&lock_path, LOCK_WAIT).map_err(|source| {
        CliError::Io {
            op: "lock",
            path: lock_path.clone(),
            source,
        }
    })?;
    let old = match std::fs::read(&target) {
        Ok(bytes) => Zeroizing::new(String::from_utf8(bytes).map_err(|_| CliError::Io {
            op: "read",
            path: target.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Zeroizing::new(String::new()),
        Err(e) => return Err(io("read", &target)(e)),
    };
    let new = Zeroizing::new(credentials_file::set_profile(
        &old,
        profile,
        &[
            ("aws_access_key_id", &document.access_key_id),
            ("aws_secret_access_key", &document.secret_access_key),
            ("aws_session_token", &document.session_token),
        ],
    ));
    StagedFile::write(&target, new.as_bytes(), 0o600)?.commit(true)?;
    tracing::info!(path = %target.display(), profile, access_key_id = %document.access_key_id, expiration = %document.expiration, "credentials written");
    drop(lock);
    Ok(())
}

/// Writes the credentials, then (without `--once`) keeps them fresh until SIGTERM or SIGINT.
pub fn run(args: &UpdateArgs, signals: crate::Signals) -> Result<(), CliError> {
    let path = credentials_path()?;
    let refresh = serve::refresh(&args.source, &args.refresh)?;
    if args.once {
        return write(&path, &args.profile, &fetch(&args.source)?);
    }
    let runtime = crate::server_runtime()?;
    runtime.block_on(async {
        let provider = serve::first_credentials(&args.source, &refresh).await?;
        let mut signals = signals;
        // The access key id in the file; new credentials are written, a failed write is
        // tried again after the provider's back-off.
        let mut written: Option<String> = None;
        let mut write_new = |current: &sdk_credentials::Expiring| {
            let id = current.credentials.access_key_id();
            if written.as_deref() == Some(id) {
                return true;
            }
            let result = Document::new(current).and_then(|d| write(&path, &args.profile, &d));
            match result {
                Ok(()) => written = Some(id.to_owned()),
                Err(e) => tracing::warn!(error = %crate::error::one_line(&e), "could not write the credentials; trying again"),
            }
            written.as_deref() == Some(id)
        };
        loop {
            tokio::select! {
                () = provider.keep_fresh_with(&mut write_new) => return Ok(()),
                signal = crate::signals::next(&mut signals) => match signal {
                    // A new keep_fresh loop refreshes through the new source at once.
                    Some(SIGHUP) => match crate::credential_source::open(&args.source) {
                        Ok(opened) => provider.replace_source(opened.source),
                        Err(e) => tracing::warn!(error = %crate::error::one_line(&e), "SIGHUP: keeping the old key"),
                    },
                    Some(SIGTERM | SIGINT) | None => return Ok(()),
                    Some(_) => {}
                },
            }
        }
    })
}
