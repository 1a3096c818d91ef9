//! [`VaultError`]: what went wrong talking to Vault or OpenBao. `Display` names the step and
//! what to do; `source()` holds the cause. Nothing here ever holds a token or key material:
//! only the server's own error text, cut short and stripped of control characters.

use sigv4_core::{KeyError, KeyErrorKind};

/// A failure of the Vault backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The configuration is unusable (address, CA certificate, key name, token).
    #[error("{0}")]
    Config(String),

    /// The server could not be reached.
    #[error("could not reach the Vault server at {addr}: check VAULT_ADDR and that it runs")]
    Unreachable {
        /// The server's address.
        addr: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },

    /// The server is sealed.
    #[error("the Vault server at {addr} is sealed: unseal it (bao operator unseal)")]
    Sealed {
        /// The server's address.
        addr: String,
    },

    /// The token is not (or no longer) valid.
    #[error(
        "the Vault token is expired or revoked: log in again (VAULT_TOKEN, ~/.vault-token, or \
         the AppRole's secret id)"
    )]
    TokenInvalid,

    /// The token is valid but its policy lacks a capability.
    #[error(
        "the Vault token may not {capability} on {path}: add `path \"{path}\" {{ capabilities = \
         [\"{capability}\"] }}` to its policy"
    )]
    Denied {
        /// The capability needed (`update`, `read`).
        capability: &'static str,
        /// The API path it is needed on.
        path: String,
    },

    /// No such key, or no transit engine at the mount.
    #[error("{what}")]
    NotFound {
        /// What is missing, and what to do.
        what: String,
    },

    /// The key exists already (import).
    #[error(
        "the transit key {key} exists already, and imported keys cannot be replaced: import \
         under a new name (--key vault:NEW-NAME)"
    )]
    KeyExists {
        /// The key.
        key: String,
    },

    /// The key is not one keyhold should use.
    #[error("the transit key {key} {why}")]
    Unsuitable {
        /// The key.
        key: String,
        /// What is wrong with it.
        why: String,
    },

    /// The server refused a request in another way.
    #[error("Vault answered HTTP {status} to {what}: {message}")]
    Server {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The server's error text (cut, printable).
        message: String,
    },

    /// The server's reply could not be read.
    #[error("Vault's reply to {what} is not what the API documents: {why}")]
    Reply {
        /// What was asked.
        what: String,
        /// What is wrong with it.
        why: String,
    },

    /// Wrapping the secret for import failed.
    #[error("wrapping the secret for import failed: {0}")]
    Wrap(String),
}

impl VaultError {
    /// The kind of key failure this is, for signers.
    pub fn kind(&self) -> KeyErrorKind {
        match self {
            Self::Unreachable { .. } | Self::Sealed { .. } => KeyErrorKind::Unavailable,
            Self::TokenInvalid | Self::Denied { .. } => KeyErrorKind::Denied,
            Self::NotFound { .. } => KeyErrorKind::NotFound,
            Self::Unsuitable { .. } | Self::KeyExists { .. } => KeyErrorKind::Unsuitable,
            Self::Server { status, .. } if *status >= 500 => KeyErrorKind::Unavailable,
            _ => KeyErrorKind::Device,
        }
    }
}

impl From<VaultError> for KeyError {
    fn from(error: VaultError) -> Self {
        KeyError::with_source(error.kind(), "Vault transit HMAC failed", error)
    }
}

/// The text of a Vault error body (`{"errors": [...]}`), printable and at most 300
/// characters; the raw body is never quoted.
pub(crate) fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let Ok(errors) = serde_json::from_slice::<Errors>(body) else {
        return "(no error text)".into();
    };
    let text = errors
        .errors
        .iter()
        .map(|e| {
            // Vault wraps single errors as "1 error occurred:\n\t* TEXT\n\n".
            let e = e.trim();
            e.strip_prefix("1 error occurred:")
                .map_or(e, str::trim)
                .trim_start_matches("* ")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if text.is_empty() {
        "(no error text)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_unwrapped_cut_and_printable() {
        assert_eq!(
            server_message(b"{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}"),
            "permission denied"
        );
        assert_eq!(
            server_message(b"{\"errors\":[\"a\",\"b\\u0007c\"]}"),
            "a; bc"
        );
        assert_eq!(server_message(b"{\"errors\":[]}"), "(no error text)");
        assert_eq!(server_message(b"<html>secret</html>"), "(no error text)");
        let long = format!("{{\"errors\":[\"{}\"]}}", "x".repeat(1000));
        assert_eq!(server_message(long.as_bytes()).len(), 300);
    }
}
