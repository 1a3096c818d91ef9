//! Where `keyhold import` reads the secret access key from: stdin (the default), a file, or
//! an environment variable the user names. Never from a flag, so it is never on argv, in
//! shell history or in `ps`.
//!
//! Every buffer that held the secret is zeroized on drop; the result is a
//! [`RootSecret`] (`"AWS4" + secret`), the form every backend's import takes.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use sigv4_core::RootSecret;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Where the secret comes from.
#[derive(Clone, Debug)]
pub enum SecretSource {
    /// Standard input: everything up to EOF, or one line when it is a terminal.
    Stdin,
    /// A file's contents.
    File(PathBuf),
    /// The value of an environment variable (the name is given, not the value).
    Env(String),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Stdin => f.write_str("standard input"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

impl SecretSource {
    /// Reads the secret and turns it into `"AWS4" + secret`.
    pub fn read(&self) -> Result<RootSecret, CliError> {
        let text = self.read_raw()?;
        RootSecret::from_secret_text(text).map_err(|e| CliError::Secret {
            from: self.to_string(),
            reason: e.to_string(),
        })
    }

    fn read_raw(&self) -> Result<Zeroizing<Vec<u8>>, CliError> {
        let io = |source| CliError::SecretRead {
            from: self.to_string(),
            source,
        };
        // Reserve up front so that reading does not reallocate and leave copies behind.
        let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
        match self {
            SecretSource::Stdin => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    eprint!("Secret access key (input is shown; end with Enter): ");
                    let mut line = Zeroizing::new(String::with_capacity(4096));
                    stdin.read_line(&mut line).map_err(io)?;
                    buffer.extend_from_slice(line.as_bytes());
                } else {
                    stdin.lock().read_to_end(&mut buffer).map_err(io)?;
                }
            }
            SecretSource::File(path) => {
                std::fs::File::open(path)
                    .and_then(|mut f| f.read_to_end(&mut buffer))
                    .map_err(io)?;
            }
            SecretSource::Env(name) => match std::env::var_os(name) {
                Some(value) => {
                    let value = Zeroizing::new(value.into_encoded_bytes());
                    buffer.extend_from_slice(&value);
                }
                None => {
                    return Err(CliError::Secret {
                        from: self.to_string(),
                        reason: "it is not set".into(),
                    });
                }
            },
        }
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_is_trimmed_and_prefixed() {
        let dir = std::env::temp_dir().join(format!("keyhold-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "abc/DEF+123\n").unwrap();
        let secret = SecretSource::File(path.clone()).read().unwrap();
        assert_eq!(secret.expose(), b"AWS4abc/DEF+123");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path).read().unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_source_names_itself_but_not_a_value() {
        let err = SecretSource::Env("KEYHOLD_TEST_SURELY_UNSET_VARIABLE".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment variable KEYHOLD_TEST_SURELY_UNSET_VARIABLE"),
            "{err}"
        );
        let err = SecretSource::File("/nonexistent/keyhold/secret".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/keyhold/secret"), "{err}");
    }
}
