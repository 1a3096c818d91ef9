//! The endpoints' secrets: IMDSv2 session tokens (random, expiring, bounded in number) and
//! the ECS endpoint's authorization token (random, kept in a 0600 file that is read again
//! when it changes, or only in memory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::atomic_file::StagedFile;
use crate::error::CliError;

/// At most this many IMDSv2 tokens are live; a new one beyond it replaces the one closest
/// to expiry.
pub const MAX_IMDS_TOKENS: usize = 10_000;

/// The longest IMDSv2 token lifetime, in seconds (as EC2's).
pub const MAX_IMDS_TTL: u64 = 21_600;

/// A random token: 32 bytes, hex.
pub fn random_token() -> Result<Zeroizing<String>, CliError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *bytes).map_err(|e| {
        CliError::Credentials(format!("the system's random numbers are unavailable: {e}").into())
    })?;
    Ok(crate::bytes::hex(&*bytes))
}

/// The live IMDSv2 tokens, kept as their SHA-256 digests (the map never holds a token).
#[derive(Default)]
pub struct ImdsTokens {
    live: Mutex<HashMap<[u8; 32], Instant>>,
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl ImdsTokens {
    /// A new token good for `ttl`.
    pub fn issue(&self, ttl: Duration) -> Result<Zeroizing<String>, CliError> {
        let token = random_token()?;
        let now = Instant::now();
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if live.len() >= MAX_IMDS_TOKENS {
            live.retain(|_, expires| *expires > now);
        }
        if live.len() >= MAX_IMDS_TOKENS {
            let oldest = live
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(digest, _)| *digest);
            if let Some(oldest) = oldest {
                live.remove(&oldest);
            }
        }
        live.insert(digest(&token), now + ttl);
        Ok(token)
    }

    /// Whether `token` was issued and has not expired.
    pub fn valid(&self, token: &str) -> bool {
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Looked up by digest: how long the lookup takes says nothing about the tokens.
        live.get(&digest(token))
            .is_some_and(|expires| *expires > Instant::now())
    }

    /// How many tokens are held (expired ones included until the next purge).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// The ECS endpoint's token.
pub enum EcsToken {
    /// Only in memory (printed for AWS_CONTAINER_AUTHORIZATION_TOKEN).
    Fixed(Zeroizing<String>),
    /// In a file, read again when its modification time or size changes.
    File {
        /// The file.
        path: PathBuf,
        /// The token last read and the file's state then.
        read: Mutex<Option<(Zeroizing<String>, SystemTime, u64)>>,
    },
}

impl EcsToken {
    /// A new random token, written to `file` (0600, atomically) if one is given.
    pub fn create(file: Option<&Path>) -> Result<Self, CliError> {
        let token = random_token()?;
        let Some(path) = file else {
            return Ok(Self::Fixed(token));
        };
        StagedFile::write(path, token.as_bytes(), 0o600)?.commit(true)?;
        Ok(Self::File {
            path: path.to_owned(),
            read: Mutex::new(None),
        })
    }

    /// The token as the SDKs are told it: the value itself, or `None` for a file.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Fixed(token) => Some(token),
            Self::File { .. } => None,
        }
    }

    /// Whether `given` (an `Authorization` header) is the token. An unreadable or empty
    /// token file matches nothing.
    pub fn matches(&self, given: &[u8]) -> bool {
        match self {
            Self::Fixed(token) => crate::bytes::same(token.as_bytes(), given),
            Self::File { path, read } => {
                let Ok(meta) = std::fs::metadata(path) else {
                    return false;
                };
                let (modified, size) = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                let mut read = read
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let stale = !matches!(&*read, Some((_, m, s)) if *m == modified && *s == size);
                if stale {
                    let Ok(text) = std::fs::read_to_string(path).map(Zeroizing::new) else {
                        return false;
                    };
                    *read = Some((Zeroizing::new(text.trim().to_owned()), modified, size));
                }
                read.as_ref().is_some_and(|(token, _, _)| {
                    !token.is_empty() && crate::bytes::same(token.as_bytes(), given)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_tokens_are_bounded_and_expire() {
        let tokens = ImdsTokens::default();
        let short = tokens.issue(Duration::from_millis(1)).unwrap();
        let long = tokens.issue(Duration::from_secs(60)).unwrap();
        assert_ne!(*short, *long);
        assert_eq!(long.len(), 64);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!tokens.valid(&short), "an expired token is refused");
        assert!(tokens.valid(&long));
        assert!(!tokens.valid("not-a-token"));
        for _ in 0..MAX_IMDS_TOKENS + 5 {
            tokens.issue(Duration::from_secs(60)).unwrap();
        }
        assert_eq!(tokens.len(), MAX_IMDS_TOKENS);
    }

    #[test]
    fn the_ecs_token_file_is_read_again_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("keyhold-ecs-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let token = EcsToken::create(Some(&path)).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(token.matches(first.as_bytes()));
        assert!(!token.matches(b"wrong"));
        assert!(!token.matches(b""));
        std::fs::write(&path, "rotated-token-value-0123456789\n").unwrap();
        assert!(token.matches(b"rotated-token-value-0123456789"));
        assert!(
            !token.matches(first.as_bytes()),
            "the old token no longer works"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(
            !token.matches(b"rotated-token-value-0123456789"),
            "no file, no token"
        );
    }
}
