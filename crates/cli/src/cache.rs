//! The `credential-process` cache: temporary credentials reused across invocations until a
//! margin before they expire, so that every `aws` command does not pay an STS (or Roles
//! Anywhere) round trip and a device call.
//!
//! - Where: `$KEYHOLD_CACHE_DIR`, else `$XDG_RUNTIME_DIR/keyhold` (a per-user tmpfs: nothing
//!   reaches the disk), else `$XDG_CACHE_HOME/keyhold`, else `~/.cache/keyhold`. The
//!   directory is made 0700; one that is not the user's own or that others can open is not
//!   used (a warning says why, and the credentials are fetched as without a cache).
//! - What: one file per set of flags that determine the credentials, named by the SHA-256 of
//!   them (the key reference without any PIN, the access key id, the certificate's bytes,
//!   role, session name, external id, duration, region, endpoint, working directory); it
//!   holds the `credential_process` JSON (0600), written atomically.
//! - Concurrency: a miss takes an exclusive lock (`flock`) on the entry's `.lock` file and
//!   looks again before fetching, so concurrent invocations wait for one refresh.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::args::SourceArgs;
use crate::atomic_file::StagedFile;
use crate::bytes::hex;
use crate::commands::credential_process::Document;

/// How long a miss waits for another invocation's refresh before fetching on its own.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A cache entry: where it is, and its lock.
#[derive(Debug)]
pub struct Entry {
    path: PathBuf,
    lock_path: PathBuf,
    /// Credentials expiring within this are not used.
    margin: Duration,
}

/// Held while this invocation refreshes the entry; dropping it unlocks.
pub struct Locked {
    _file: Option<File>,
}

impl Entry {
    /// The entry for `args`, or `None` (with a warning) when there is no usable directory.
    pub fn for_args(args: &SourceArgs, margin: Duration) -> Option<Self> {
        let dir = match directory() {
            Ok(dir) => dir,
            Err(why) => {
                tracing::warn!("not caching credentials: {why}");
                return None;
            }
        };
        let name = hex(&Sha256::digest(description(args).as_bytes()));
        let name = name.as_str();
        Some(Self {
            path: dir.join(format!("{name}.json")),
            lock_path: dir.join(format!("{name}.lock")),
            margin,
        })
    }

    /// The cached document if it is there, well formed and good for longer than the margin.
    pub fn read(&self) -> Option<Document> {
        let bytes = Zeroizing::new(std::fs::read(&self.path).ok()?);
        let document: Document = match serde_json::from_slice(&bytes) {
            Ok(document) => document,
            Err(_) => {
                tracing::warn!(path = %self.path.display(), "ignoring a malformed cache entry");
                return None;
            }
        };
        let expires = OffsetDateTime::parse(&document.expiration, &Rfc3339).ok()?;
        let left = expires - OffsetDateTime::now_utc();
        if document.version != 1 || left <= self.margin {
            return None;
        }
        tracing::info!(path = %self.path.display(), expires = %document.expiration, "credentials from the cache");
        Some(document)
    }

    /// Waits (at most a minute) for the entry's lock: whoever holds it is refreshing.
    pub fn lock(&self) -> Locked {
        match crate::atomic_file::lock_exclusive(&self.lock_path, LOCK_WAIT) {
            Ok(file) => Locked { _file: Some(file) },
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::warn!(path = %self.lock_path.display(), "the cache entry stayed locked for a minute; fetching without it");
                Locked { _file: None }
            }
            Err(_) => Locked { _file: None },
        }
    }

    /// Stores `document` (atomically, 0600). A failure is a warning: the credentials were
    /// fetched and are printed anyway.
    pub fn write(&self, document: &Document) {
        let result = serde_json::to_vec(document)
            .map_err(|e| e.to_string())
            .map(Zeroizing::new)
            .and_then(|bytes| {
                StagedFile::write(&self.path, &bytes, 0o600)
                    .and_then(|staged| staged.commit(true))
                    .map_err(|e| crate::error::one_line(&e))
            });
        if let Err(why) = result {
            tracing::warn!(path = %self.path.display(), "could not cache the credentials: {why}");
        }
    }
}

/// The cache directory, made 0700 if missing; refused unless it is the user's own and
/// closed to others.
fn directory() -> Result<PathBuf, String> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = if let Some(dir) = var("KEYHOLD_CACHE_DIR") {
        dir
    } else if let Some(runtime) = var("XDG_RUNTIME_DIR") {
        runtime.join("keyhold")
    } else if let Some(cache) = var("XDG_CACHE_HOME") {
        cache.join("keyhold")
    } else if let Some(home) = var("HOME") {
        home.join(".cache").join("keyhold")
    } else {
        return Err("no KEYHOLD_CACHE_DIR, XDG_RUNTIME_DIR, XDG_CACHE_HOME or HOME".into());
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check_private(&dir)?;
    Ok(dir)
}

/// Refuses a directory that is a symbolic link, not the user's, or open to others.
fn check_private(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let uid = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a directory of user {uid} that only it can open (mode 0700); fix it \
             or set KEYHOLD_CACHE_DIR",
            dir.display()
        ));
    }
    Ok(())
}

/// Everything that determines the credentials, one `name=value` per line.
fn description(args: &SourceArgs) -> String {
    let ra = &args.roles_anywhere;
    let file_digest = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| hex(&Sha256::digest(bytes)).as_str().to_owned())
            .unwrap_or_default()
    };
    let env = |name| std::env::var(name).unwrap_or_default();
    let mut lines = vec![
        "keyhold credential-process cache 1".to_owned(),
        format!("cwd={:?}", std::env::current_dir().unwrap_or_default()),
        format!(
            "key={}",
            args.key
                .key
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        format!(
            "access_key_id={}",
            args.key.access_key_id.clone().unwrap_or_default()
        ),
        format!("role_arn={}", args.role_arn.clone().unwrap_or_default()),
        format!(
            "role_session_name={}",
            args.role_session_name.clone().unwrap_or_default()
        ),
        format!(
            "external_id={}",
            args.external_id.clone().unwrap_or_default()
        ),
        format!("get_session_token={}", args.get_session_token),
        format!("duration={}", args.duration.as_secs()),
        format!("region={}", args.sts.region.clone().unwrap_or_default()),
        format!(
            "endpoint_url={}",
            args.sts.endpoint_url.clone().unwrap_or_default()
        ),
        format!(
            "env_region={}/{}",
            env("AWS_REGION"),
            env("AWS_DEFAULT_REGION")
        ),
        format!(
            "env_endpoint={}/{}/{}",
            env("AWS_ENDPOINT_URL"),
            env("AWS_ENDPOINT_URL_STS"),
            env("AWS_ENDPOINT_URL_ROLESANYWHERE")
        ),
    ];
    if let Some(certificate) = &ra.certificate {
        lines.push(format!("certificate={certificate}"));
        lines.push(format!(
            "certificate_sha256={}",
            file_digest(Path::new(certificate))
        ));
        lines.push(format!(
            "private_key={}",
            ra.private_key.clone().unwrap_or_default()
        ));
        if let Some(lib) = &ra.pkcs11_lib {
            lines.push(format!("pkcs11_lib={}", lib.display()));
        }
        if let Some(intermediates) = &ra.intermediates {
            lines.push(format!(
                "intermediates_sha256={}",
                file_digest(intermediates)
            ));
        }
        lines.push(format!(
            "trust_anchor_arn={}",
            ra.trust_anchor_arn.clone().unwrap_or_default()
        ));
        lines.push(format!(
            "profile_arn={}",
            ra.profile_arn.clone().unwrap_or_default()
        ));
    }
    lines.join("\n")
}
