//! Where `keyhold import` reads the secret access key from: stdin (the default), a file, or
//! an environment variable the user names. Never from a flag, so it is never on argv, in
//! shell history or in `ps`.
//!
//! Every buffer that held the secret is zeroized on drop; the result is a
//! [`RootSecret`] (`"AWS4" + secret`), the form every backend's import takes.

use std::io::IsTerminal;
use std::path::PathBuf;

use sigv4_core::RootSecret;
use zeroize::Zeroizing;

use crate::error::CliError;

/// The first line of a file holding a secret (a key password, a Vault token, an AppRole
/// secret id), without its line ending; `op` names the read in the error.
pub fn first_line_of_file(
    op: &'static str,
    path: &std::path::Path,
) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| CliError::Io {
        op,
        path: path.to_owned(),
        source,
    })?);
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

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

/// The most bytes read from any source: far more than a 40-character secret and a newline,
/// and small enough that the buffer, reserved once, never moves (and leaves no copy).
const MAX_INPUT: usize = 4096;

impl SecretSource {
    /// Reads the secret, checks that it looks like an AWS secret access key, and turns it
    /// into `"AWS4" + secret`.
    pub fn read(&self) -> Result<RootSecret, CliError> {
        let text = self.read_raw()?;
        let unusable = |reason: String| CliError::Secret {
            from: self.to_string(),
            reason,
        };
        check_secret_access_key(text.trim_ascii()).map_err(unusable)?;
        RootSecret::from_secret_text(text).map_err(|e| unusable(e.to_string()))
    }

    fn read_raw(&self) -> Result<Zeroizing<Vec<u8>>, CliError> {
        let io = |source| CliError::SecretRead {
            from: self.to_string(),
            source,
        };
        let mut buffer = Zeroizing::new(Vec::with_capacity(MAX_INPUT));
        match self {
            SecretSource::Stdin => {
                // Read from the file descriptor itself: std's stdin buffer would keep a copy
                // of the secret for the life of the process.
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    // Echo off first: what is typed after the prompt must not show.
                    let echo = terminal::EchoOff::new(&stdin).map_err(io)?;
                    eprint!("Secret access key (not shown; end with Enter): ");
                    let read = read_fd(&stdin, &mut buffer, true);
                    drop(echo);
                    eprintln!();
                    read.map_err(io)?;
                } else {
                    read_fd(&stdin, &mut buffer, false).map_err(io)?;
                }
            }
            SecretSource::File(path) => {
                let file = std::fs::File::open(path).map_err(io)?;
                read_fd(&file, &mut buffer, false).map_err(io)?;
            }
            SecretSource::Env(name) => match std::env::var_os(name) {
                Some(value) => {
                    let value = Zeroizing::new(value.into_encoded_bytes());
                    buffer.extend_from_slice(&value[..value.len().min(MAX_INPUT)]);
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

/// Reads `fd` to its end (or, with `one_line`, to the first newline) into `buffer`, at most
/// [`MAX_INPUT`] bytes, through a small buffer of its own that is zeroized.
fn read_fd(
    fd: &impl std::os::fd::AsFd,
    buffer: &mut Zeroizing<Vec<u8>>,
    one_line: bool,
) -> std::io::Result<()> {
    let mut chunk = Zeroizing::new([0u8; 256]);
    loop {
        let n = match rustix::io::read(fd, &mut chunk[..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        if buffer.len() + n > MAX_INPUT {
            return Err(std::io::Error::other(format!(
                "more than {MAX_INPUT} bytes: that is not a secret access key"
            )));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if one_line && chunk[..n].contains(&b'\n') {
            return Ok(());
        }
    }
}

/// Checks the shape of an AWS secret access key: 40 characters of `A-Z a-z 0-9 + /`. The
/// reason names what is wrong, never the value.
pub fn check_secret_access_key(secret: &[u8]) -> Result<(), String> {
    const LENGTH: usize = 40;
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    if secret.is_empty() {
        return Err("it is empty: give the 40-character secret access key".into());
    }
    let quoted = |q: u8| secret.first() == Some(&q) || secret.last() == Some(&q);
    if quoted(b'"') || quoted(b'\'') {
        return Err("it is in quotes: give the secret access key without them".into());
    }
    let looks_like_key_id = secret.len() == 20
        && (secret.starts_with(b"AKIA") || secret.starts_with(b"ASIA"))
        && secret
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if looks_like_key_id {
        return Err(
            "it looks like an access key id (AKIA.../ASIA...), not the secret access key".into(),
        );
    }
    if secret.iter().any(u8::is_ascii_whitespace) {
        return Err("it contains spaces or line breaks: give the secret access key alone".into());
    }
    if let Some(at) = secret.iter().position(|b| !allowed(b)) {
        return Err(format!(
            "character {} is not one of A-Z a-z 0-9 + / that a secret access key is made of",
            at + 1
        ));
    }
    if secret.len() != LENGTH {
        return Err(format!(
            "it is {} characters long; an AWS secret access key has {LENGTH}",
            secret.len()
        ));
    }
    Ok(())
}

/// Turning the terminal's echo off while the secret is typed, and back on whatever happens
/// (Ctrl-C included: the signal thread restores it before the process ends).
mod terminal {
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::{Mutex, PoisonError};

    use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

    /// The settings to restore, and the terminal they belong to, while echo is off.
    static SAVED: Mutex<Option<(Termios, OwnedFd)>> = Mutex::new(None);

    /// Echo is off until this drops.
    pub struct EchoOff;

    impl EchoOff {
        /// Turns echo off on the terminal `fd` is (stdin, or /dev/tty).
        pub fn new(fd: impl AsFd) -> std::io::Result<Self> {
            let terminal = fd.as_fd().try_clone_to_owned()?;
            let saved = tcgetattr(&terminal)?;
            let mut quiet = saved.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            // Keep the newline echoed, so the cursor moves on after Enter.
            quiet.local_modes.insert(LocalModes::ECHONL);
            tcsetattr(&terminal, OptionalActions::Flush, &quiet)?;
            *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some((saved, terminal));
            crate::signals::before_exit(restore);
            Ok(EchoOff)
        }
    }

    impl Drop for EchoOff {
        fn drop(&mut self) {
            restore();
        }
    }

    /// Puts the saved settings back, once.
    fn restore() {
        if let Some((saved, terminal)) = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            let _ = tcsetattr(&terminal, OptionalActions::Now, &saved);
        }
    }
}

/// Asks on the controlling terminal (`/dev/tty`, never stdin, which a `credential_process`
/// caller owns) for a line typed without echo; `None` when the process has no terminal.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))] // asked for PKCS#11 PINs only
pub fn prompt_on_terminal(prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CliError> {
    let io = |source| CliError::SecretRead {
        from: "the terminal".into(),
        source,
    };
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let echo = terminal::EchoOff::new(&tty).map_err(io)?;
    std::io::Write::write_all(&mut tty, prompt.as_bytes()).map_err(io)?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(256));
    let read = read_fd(&tty, &mut buffer, true);
    drop(echo);
    read.map_err(io)?;
    while buffer.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buffer.pop();
    }
    Ok(Some(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_is_trimmed_and_prefixed() {
        let dir = std::env::temp_dir().join(format!("keyhold-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n").unwrap();
        let secret = SecretSource::File(path.clone()).read().unwrap();
        assert_eq!(
            secret.expose(),
            b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        );
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

    #[test]
    fn only_the_shape_of_a_secret_access_key_is_accepted() {
        let good = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(check_secret_access_key(good.as_bytes()), Ok(()));
        for (bad, expected) in [
            (format!("\"{good}\""), "quotes"),
            (format!("'{good}'"), "quotes"),
            ("AKIAIOSFODNN7EXAMPLE".to_owned(), "access key id"),
            (format!("{} {}", &good[..20], &good[20..]), "spaces"),
            (good[..39].to_owned(), "39 characters"),
            (format!("{good}A"), "41 characters"),
            (good.replace('/', "-"), "character 14"),
            (String::new(), "empty"),
        ] {
            let err = check_secret_access_key(bad.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
            assert!(
                !err.contains(&good[1..12]),
                "the value is never quoted: {err}"
            );
        }
    }
}
