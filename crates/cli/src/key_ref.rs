//! The `--key` string: one value that names a key in any backend and fits on a
//! `credential_process` line.
//!
//! - `pkcs11:<RFC 7512 URI>`, e.g. `pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin`
//! - `tpm:file=<path to a TSS2 PEM key file>` or `tpm:handle=0x81008001`
//! - `tink:<path to an encrypted JSON keyset>` (the KMS key comes from `--kek-uri`)
//!
//! A backend left out of the build is still recognised, so the error can say which feature
//! is missing instead of "unknown key type".

use std::fmt;
#[cfg(any(feature = "tpm", feature = "tink"))]
use std::path::PathBuf;

/// A parsed `--key` value.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyRef {
    /// A secret key in a PKCS#11 token, named by its URI.
    #[cfg(feature = "pkcs11")]
    Pkcs11(Box<backend_pkcs11::Pkcs11Uri>),
    /// A TPM key stored as a TSS2 PEM key file (loaded under its parent at each use).
    #[cfg(feature = "tpm")]
    TpmFile(PathBuf),
    /// A TPM key made persistent at an owner handle (0x81000000..=0x817fffff).
    #[cfg(feature = "tpm")]
    TpmHandle(u32),
    /// A KMS-encrypted Tink JSON keyset file (opened through the KMS key `--kek-uri` names).
    #[cfg(feature = "tink")]
    Tink(PathBuf),
    /// An HMAC key in a Vault or OpenBao transit engine (`vault:NAME`, `vault:MOUNT/NAME`).
    #[cfg(feature = "vault")]
    Vault(backend_vault::KeyPath),
}

/// Why a `--key` value was not understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefError {
    /// No `type:` prefix, or one keyhold does not know.
    #[error(
        "'{prefix}' is not a key type: use pkcs11:<PKCS#11 URI>, tpm:file=<key.pem>, \
         tpm:handle=0x81xxxxxx, tink:<keyset.json> or vault:<transit key>"
    )]
    UnknownType {
        /// What came before the first `:` (or the whole value).
        prefix: String,
    },
    /// A backend this binary was built without.
    #[cfg_attr(
        all(
            feature = "pkcs11",
            feature = "tpm",
            feature = "tink",
            feature = "vault"
        ),
        allow(dead_code)
    )]
    #[error(
        "this keyhold was built without {backend} support: rebuild with `--features {feature}`"
    )]
    NotBuilt {
        /// The backend's name for people.
        backend: &'static str,
        /// The cargo feature.
        feature: &'static str,
    },
    /// The part after the prefix is malformed.
    #[error("invalid {backend} key reference: {reason}")]
    Invalid {
        /// The backend's name for people.
        backend: &'static str,
        /// What is wrong, and the expected form.
        reason: String,
    },
}

impl std::str::FromStr for KeyRef {
    type Err = KeyRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (prefix, rest) = text.split_once(':').unwrap_or((text, ""));
        match prefix {
            "pkcs11" => parse_pkcs11(text),
            "tpm" => parse_tpm(rest),
            "tink" => parse_tink(rest),
            "vault" => parse_vault(rest),
            _ => Err(KeyRefError::UnknownType {
                prefix: prefix.chars().take(40).collect(),
            }),
        }
    }
}

#[cfg(feature = "pkcs11")]
fn parse_pkcs11(text: &str) -> Result<KeyRef, KeyRefError> {
    let uri = backend_pkcs11::Pkcs11Uri::parse(text).map_err(|e| KeyRefError::Invalid {
        backend: "PKCS#11",
        reason: e.to_string(),
    })?;
    // RFC 7512 lets vendors add query attributes; keyhold acts on none, so one it does not
    // know is a typo (of pin-source, say) that would otherwise be ignored silently.
    if let Some((name, _)) = uri.vendor_query.first() {
        return Err(KeyRefError::Invalid {
            backend: "PKCS#11",
            reason: format!(
                "unknown query attribute '{name}': keyhold reads pin-source, pin-value, \
                 module-name and module-path"
            ),
        });
    }
    Ok(KeyRef::Pkcs11(Box::new(uri)))
}

#[cfg(not(feature = "pkcs11"))]
fn parse_pkcs11(_text: &str) -> Result<KeyRef, KeyRefError> {
    Err(KeyRefError::NotBuilt {
        backend: "PKCS#11",
        feature: "pkcs11",
    })
}

#[cfg(feature = "tpm")]
fn parse_tpm(rest: &str) -> Result<KeyRef, KeyRefError> {
    let invalid = |reason: String| KeyRefError::Invalid {
        backend: "TPM",
        reason,
    };
    if let Some(path) = rest.strip_prefix("file=") {
        if path.is_empty() {
            return Err(invalid(
                "tpm:file= needs the path of a TSS2 PEM key file".into(),
            ));
        }
        return Ok(KeyRef::TpmFile(PathBuf::from(path)));
    }
    if let Some(handle) = rest.strip_prefix("handle=") {
        return parse_persistent_handle(handle)
            .map(KeyRef::TpmHandle)
            .map_err(invalid);
    }
    Err(invalid(format!(
        "'tpm:{rest}' names no key: use tpm:file=/path/key.pem or tpm:handle=0x81000001"
    )))
}

/// A persistent owner handle, `0x81000000..=0x817fffff`, in hex.
#[cfg(feature = "tpm")]
pub fn parse_persistent_handle(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let handle = u32::from_str_radix(digits, 16)
        .map_err(|_| format!("'{text}' is not a hexadecimal TPM handle such as 0x81000001"))?;
    if !(0x8100_0000..=0x817f_ffff).contains(&handle) {
        return Err(format!(
            "{handle:#010x} is not a persistent owner handle (0x81000000..=0x817fffff)"
        ));
    }
    Ok(handle)
}

#[cfg(not(feature = "tpm"))]
fn parse_tpm(_rest: &str) -> Result<KeyRef, KeyRefError> {
    Err(KeyRefError::NotBuilt {
        backend: "TPM",
        feature: "tpm",
    })
}

#[cfg(feature = "tink")]
fn parse_tink(rest: &str) -> Result<KeyRef, KeyRefError> {
    if rest.is_empty() {
        return Err(KeyRefError::Invalid {
            backend: "Tink",
            reason: "tink: needs the path of an encrypted JSON keyset, e.g. \
                     tink:/etc/keyhold/aws.keyset.json"
                .into(),
        });
    }
    Ok(KeyRef::Tink(PathBuf::from(rest)))
}

#[cfg(not(feature = "tink"))]
fn parse_tink(_rest: &str) -> Result<KeyRef, KeyRefError> {
    Err(KeyRefError::NotBuilt {
        backend: "Tink",
        feature: "tink",
    })
}

#[cfg(feature = "vault")]
fn parse_vault(rest: &str) -> Result<KeyRef, KeyRefError> {
    rest.parse()
        .map(KeyRef::Vault)
        .map_err(|e| KeyRefError::Invalid {
            backend: "Vault",
            reason: e.to_string(),
        })
}

#[cfg(not(feature = "vault"))]
fn parse_vault(_rest: &str) -> Result<KeyRef, KeyRefError> {
    Err(KeyRefError::NotBuilt {
        backend: "Vault",
        feature: "vault",
    })
}

impl KeyRef {
    /// The backend's name, for messages.
    pub fn backend(&self) -> &'static str {
        match *self {
            #[cfg(feature = "pkcs11")]
            KeyRef::Pkcs11(_) => "PKCS#11",
            #[cfg(feature = "tpm")]
            KeyRef::TpmFile(_) | KeyRef::TpmHandle(_) => "TPM",
            #[cfg(feature = "tink")]
            KeyRef::Tink(_) => "Tink keyset",
            #[cfg(feature = "vault")]
            KeyRef::Vault(_) => "Vault transit engine",
        }
    }
}

impl KeyRef {
    /// Whether this is a TPM key (file or handle).
    pub fn is_tpm(&self) -> bool {
        #[cfg(feature = "tpm")]
        if matches!(self, KeyRef::TpmFile(_) | KeyRef::TpmHandle(_)) {
            return true;
        }
        false
    }

    /// Whether this is a Tink keyset.
    pub fn is_tink(&self) -> bool {
        #[cfg(feature = "tink")]
        if matches!(self, KeyRef::Tink(_)) {
            return true;
        }
        false
    }

    /// Whether the reference holds a secret that others can read in the process list (a
    /// PKCS#11 URI's `pin-value`).
    pub fn has_visible_secret(&self) -> bool {
        match self {
            #[cfg(feature = "pkcs11")]
            KeyRef::Pkcs11(uri) => uri.pin_value.is_some(),
            #[allow(unreachable_patterns)] // a build with only the pkcs11 feature
            _ => false,
        }
    }
}

/// `text` with the value of every `pin-value=` attribute replaced by `***`: for messages
/// (clap's among them) that quote a `--key` value as given.
pub fn redact_pin_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("pin-value=") {
        let (before, from) = rest.split_at(at + "pin-value=".len());
        out.push_str(before);
        out.push_str("***");
        let end = from
            .find(|c: char| matches!(c, '&' | ';' | '\'' | '"' | '\n') || c.is_whitespace())
            .unwrap_or(from.len());
        rest = &from[end..];
    }
    out.push_str(rest);
    out
}

/// The reference as a `--key` value (a PKCS#11 URI never shows a `pin-value`).
impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "pkcs11")]
            KeyRef::Pkcs11(uri) => {
                let mut shown = (**uri).clone();
                shown.pin_value = None;
                write!(f, "{shown}")
            }
            #[cfg(feature = "tpm")]
            KeyRef::TpmFile(path) => write!(f, "tpm:file={}", path.display()),
            #[cfg(feature = "tpm")]
            KeyRef::TpmHandle(handle) => write!(f, "tpm:handle={handle:#010x}"),
            #[cfg(feature = "tink")]
            KeyRef::Tink(path) => write!(f, "tink:{}", path.display()),
            #[cfg(feature = "vault")]
            KeyRef::Vault(key) => write!(f, "vault:{key}"),
        }
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `--key` fuzz target (see `test-support`'s `fuzz`): parsing never panics, and a
    /// reference that parses prints as one that parses to the same text.
    #[test]
    fn fuzz_key_references() {
        let dictionary: &[&[u8]] = &[
            b"pkcs11:",
            b"tpm:",
            b"tink:",
            b"file=",
            b"handle=",
            b"0x",
            b"81000001",
            b"%",
            b";",
            b"?",
            b"&",
            b"=",
            b"pin-value=",
            b"pin-source=file:",
            b"module-path=",
        ];
        let runs = test_support::fuzz::runs(20_000);
        test_support::fuzz::run("key-ref", 0x5eed_0006, runs, dictionary, |input| {
            let text = String::from_utf8_lossy(input);
            let Ok(key) = text.parse::<KeyRef>() else {
                return false;
            };
            let printed = key.to_string();
            let again: KeyRef = printed
                .parse()
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again.to_string(), printed, "{text:?}");
            true
        });
    }

    #[test]
    fn unknown_prefixes_say_what_is_accepted() {
        let err = "aws:foo".parse::<KeyRef>().unwrap_err().to_string();
        assert!(err.contains("'aws' is not a key type"), "{err}");
        assert!(err.contains("tpm:file="), "{err}");
        let err = "no-colon".parse::<KeyRef>().unwrap_err().to_string();
        assert!(err.contains("'no-colon'"), "{err}");
    }

    #[cfg(feature = "pkcs11")]
    #[test]
    fn pkcs11_uris_round_trip_without_the_pin() {
        let key: KeyRef = "pkcs11:token=aws;object=prod?pin-value=1234&module-path=/m.so"
            .parse()
            .unwrap();
        let shown = key.to_string();
        assert!(shown.starts_with("pkcs11:token=aws;object=prod"), "{shown}");
        assert!(shown.contains("module-path=/m.so"), "{shown}");
        assert!(!shown.contains("1234"), "{shown}");
        assert!(!format!("{key:?}").contains("1234"));
        let err = "pkcs11:token=a;token=b".parse::<KeyRef>().unwrap_err();
        assert!(err.to_string().starts_with("invalid PKCS#11 key reference"));
    }

    #[cfg(feature = "tpm")]
    #[test]
    fn tpm_references_name_a_file_or_a_persistent_handle() {
        let key: KeyRef = "tpm:handle=0x81008001".parse().unwrap();
        assert!(matches!(key, KeyRef::TpmHandle(0x8100_8001)));
        assert_eq!(key.to_string(), "tpm:handle=0x81008001");
        let key: KeyRef = "tpm:file=/etc/keyhold/aws.pem".parse().unwrap();
        assert_eq!(key.to_string(), "tpm:file=/etc/keyhold/aws.pem");
        for bad in [
            "tpm:handle=0x80000001",
            "tpm:handle=zz",
            "tpm:file=",
            "tpm:0x81",
        ] {
            let err = bad.parse::<KeyRef>().unwrap_err().to_string();
            assert!(err.starts_with("invalid TPM key reference"), "{bad}: {err}");
        }
    }

    #[cfg(feature = "tink")]
    #[test]
    fn tink_references_name_a_keyset_file() {
        let key: KeyRef = "tink:/etc/keyhold/aws.keyset.json".parse().unwrap();
        assert!(
            matches!(&key, KeyRef::Tink(path) if path == std::path::Path::new("/etc/keyhold/aws.keyset.json"))
        );
        assert_eq!(key.to_string(), "tink:/etc/keyhold/aws.keyset.json");
        let err = "tink:".parse::<KeyRef>().unwrap_err().to_string();
        assert!(err.starts_with("invalid Tink key reference"), "{err}");
    }

    #[cfg(not(feature = "tink"))]
    #[test]
    fn tink_references_say_the_feature_is_missing() {
        let err = "tink:/k.json".parse::<KeyRef>().unwrap_err().to_string();
        assert!(err.contains("--features tink"), "{err}");
    }

    #[test]
    fn pin_values_are_redacted_wherever_they_are_quoted() {
        assert_eq!(
            redact_pin_values(
                "invalid value 'pkcs11:token=a?pin-value=1234&module-path=/m.so' for '--key'"
            ),
            "invalid value 'pkcs11:token=a?pin-value=***&module-path=/m.so' for '--key'"
        );
        assert_eq!(redact_pin_values("x pin-value=secret"), "x pin-value=***");
        assert_eq!(redact_pin_values("no pin here"), "no pin here");
    }
}
