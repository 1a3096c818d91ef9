//! The CLI's one error type, its exit codes, and the one-line form printed on stderr.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 the command line was wrong. Every
//! message says what failed and what to do; none contains a secret (the backends' and
//! sts-client's errors promise the same for theirs).

use std::error::Error as StdError;
use std::path::PathBuf;

/// A boxed cause from a backend or library.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// Everything `keyhold` reports as a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),

    /// The secret access key could not be read.
    #[error("could not read the secret access key from {from}")]
    SecretRead {
        /// Where it was read from.
        from: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The secret access key read is not usable.
    #[error("the secret access key from {from} is not usable: {reason}")]
    Secret {
        /// Where it was read from.
        from: String,
        /// What is wrong with it (never the value).
        reason: String,
    },

    /// A key could not be opened (module, token, TPM, key file, keyset, login).
    #[error("could not open the key {key}")]
    Open {
        /// The `--key` value (no PIN).
        key: String,
        /// The backend's error.
        #[source]
        source: Cause,
    },

    /// Importing into the device failed.
    #[error("importing into the {backend} failed")]
    Import {
        /// The backend's name.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Cause,
    },

    /// The imported key's HMAC differs from the software HMAC of the secret.
    #[error(
        "the imported key {key} computed a different HMAC than the secret given: the device \
         did not store the secret as given; {cleanup}"
    )]
    ImportCheckFailed {
        /// The key reference.
        key: String,
        /// What was done about it.
        cleanup: String,
    },

    /// The key works but no access key id was found for it.
    #[cfg_attr(not(any(feature = "tpm", feature = "tink")), allow(dead_code))]
    #[error(
        "no access key id for {key}: pass --access-key-id AKID (or set AWS_ACCESS_KEY_ID){hint}"
    )]
    NoAccessKeyId {
        /// The key reference.
        key: String,
        /// Where keyhold would have found one.
        hint: &'static str,
    },

    /// The device failed to compute kDate while signing.
    #[error("signing failed")]
    Sign(#[source] sigv4_core::SignError),

    /// A file could not be read or written.
    #[error("could not {op} {}", path.display())]
    Io {
        /// "read", "write", "create".
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A file to be written exists, and replacing it was not asked for.
    #[error("{} exists: pass --replace to replace it, or choose another path", path.display())]
    FileExists {
        /// The file.
        path: PathBuf,
    },

    /// An STS call failed (its message says which, and what to do).
    #[error(transparent)]
    Sts(sts_client::StsError),

    /// IAM Roles Anywhere gave no credentials (its message says which step failed).
    #[error(transparent)]
    RolesAnywhere(rolesanywhere::RolesAnywhereError),

    /// A credential source failed in another way.
    #[error("getting temporary credentials failed")]
    Credentials(#[source] Cause),

    /// The credential server could not listen or serve.
    #[error("the credential server {what}")]
    Serve {
        /// What failed ("could not listen on 127.0.0.1:9911").
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// `exec`: the command could not be started.
    #[error("could not run {command}")]
    Exec {
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// STS did not accept the access key id or its signature.
    #[error("access key id {access_key_id} ({from}) was rejected by STS")]
    Rejected {
        /// The access key id used.
        access_key_id: String,
        /// Where it came from.
        from: &'static str,
        /// STS's error.
        #[source]
        source: Box<sts_client::StsError>,
    },

    /// `import --verify`: the key was imported but STS did not accept its signature.
    #[error(
        "the secret was imported as {key}, but the check with STS failed; the key stays in \
         place: fix the access key id or the secret and import again with --replace"
    )]
    VerifyFailed {
        /// The imported key.
        key: String,
        /// Why the check failed.
        #[source]
        source: Box<CliError>,
    },

    /// Sending a signed request (`sign --send`) failed.
    #[error("sending the request to {url} failed")]
    Http {
        /// Where it went.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },

    /// `sign --send --fail` got an HTTP error status.
    #[error("the server answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },

    /// Writing to stdout failed (a closed pipe).
    #[error("could not write the output")]
    Output(#[source] std::io::Error),

    /// The async runtime the network calls run on could not start.
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),

    /// Some `keyhold doctor` checks failed (each was printed with its fix).
    #[error("{failed} of {total} checks failed (see above for the fix)")]
    DoctorFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Wraps a backend's error met while opening `key`.
    pub fn open(key: &impl std::fmt::Display, source: impl Into<Cause>) -> Self {
        CliError::Open {
            key: key.to_string(),
            source: source.into(),
        }
    }
}

/// The error and its causes on one line (the one joiner of the workspace).
pub use sigv4_core::error_chain as one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_each_link_once() {
        let io = std::io::Error::other("disk on fire");
        let error = CliError::Io {
            op: "read",
            path: "/x".into(),
            source: io,
        };
        assert_eq!(
            error.to_string(),
            "could not read /x",
            "the step, not the cause"
        );
        assert_eq!(one_line(&error), "could not read /x: disk on fire");
        // A foreign error that prints its own source: the source is not repeated.
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper: {0}")]
        struct Echoing(#[source] std::io::Error);
        let echoing = CliError::Open {
            key: "k".into(),
            source: Box::new(Echoing(std::io::Error::other("inner"))),
        };
        assert_eq!(
            one_line(&echoing),
            "could not open the key k: wrapper: inner"
        );
        let unquoted = CliError::SecretRead {
            from: "standard input".into(),
            source: std::io::Error::other("closed\nearly"),
        };
        assert_eq!(
            one_line(&unquoted),
            "could not read the secret access key from standard input: closed early"
        );
    }

    #[test]
    fn usage_errors_exit_2_and_failures_1() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let failed = CliError::DoctorFailed {
            failed: 1,
            total: 8,
        };
        assert_eq!(failed.exit_code(), 1);
    }
}
