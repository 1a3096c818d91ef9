//! The crate's one error type, and how each failure maps onto sigv4-core's coarse
//! [`KeyErrorKind`] at the seam.
//!
//! Messages name what failed and what to do next, with the PKCS#11 return code in its
//! `CKR_*` spelling. No message ever contains a PIN or key material.

use std::path::{Path, PathBuf};

use cryptoki::error::{Error as CryptokiError, RvError};
use sigv4_core::{KeyError, KeyErrorKind};

/// Everything that can go wrong finding, importing or using a key in a PKCS#11 token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URI does not follow RFC 7512, or asks for something this crate cannot honour.
    #[error("invalid PKCS#11 URI: {reason}")]
    InvalidUri {
        /// What is wrong with it.
        reason: String,
    },

    /// The URI names no module and p11-kit's proxy module is not installed.
    #[error(
        "the PKCS#11 URI names no module and p11-kit's proxy module is not installed \
         (looked for {searched}): add module-path=/path/to/module.so to the URI, \
         or install p11-kit's proxy (Debian: apt-get install p11-kit-modules)"
    )]
    NoModule {
        /// The proxy paths that were tried.
        searched: String,
    },

    /// `module-name` named no module p11-kit knows and no library in the module directories.
    #[error(
        "PKCS#11 module '{name}' not found (looked in {searched}): \
         check the name, or use module-path=/path/to/module.so"
    )]
    ModuleNotFound {
        /// The `module-name` value.
        name: String,
        /// Where it was looked for.
        searched: String,
    },

    /// The module file is not there.
    #[error(
        "PKCS#11 module {} is not there: check module-path, or install the module",
        path.display()
    )]
    ModuleMissing {
        /// The module path.
        path: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: std::io::Error,
    },

    /// The module file could not be loaded or initialised.
    #[error(
        "could not load PKCS#11 module {}: check that the file exists and is a PKCS#11 \
         library for this machine", path.display()
    )]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// What the loader said.
        #[source]
        source: CryptokiError,
    },

    /// No token (in a slot with a token present) matches the URI's path attributes.
    #[error("no token in module {} matches {selector}; tokens present: {present}", module.display())]
    TokenNotFound {
        /// The module that was searched.
        module: PathBuf,
        /// The URI's token, slot and library attributes.
        selector: String,
        /// The tokens that were there, to pick from.
        present: String,
    },

    /// More than one token matches; keyhold does not guess.
    #[error(
        "{selector} matches more than one token in module {}: {matches}; \
         add token= or serial= to the URI to choose one", module.display()
    )]
    AmbiguousToken {
        /// The module that was searched.
        module: PathBuf,
        /// The URI's token, slot and library attributes.
        selector: String,
        /// The matching tokens.
        matches: String,
    },

    /// The token needs a login and no PIN was given.
    #[error(
        "token '{token}' needs a PIN: add pin-source=file:/path/to/pin-file to the URI, \
         or set KEYHOLD_PKCS11_PIN"
    )]
    PinRequired {
        /// The token label.
        token: String,
    },

    /// The PIN could not be read from `pin-source`.
    #[error("could not read the PIN for token '{token}' from pin-source '{source_path}'")]
    PinSource {
        /// The token label.
        token: String,
        /// The `pin-source` value.
        source_path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },

    /// The token refused the PIN.
    #[error("PIN incorrect for token '{token}' ({code}): check the PIN or its pin-source")]
    PinIncorrect {
        /// The token label.
        token: String,
        /// `CKR_PIN_INCORRECT` or `CKR_PIN_LEN_RANGE`.
        code: &'static str,
    },

    /// The token's user PIN is locked or expired.
    #[error("PIN for token '{token}' is unusable ({code}): unlock or reset it with the SO PIN")]
    PinLocked {
        /// The token label.
        token: String,
        /// The return code.
        code: &'static str,
    },

    /// No secret key on the token matches the URI's object attributes.
    #[error("no secret key on token '{token}' matches {selector}")]
    KeyNotFound {
        /// The token label.
        token: String,
        /// The URI's object attributes.
        selector: String,
    },

    /// More than one secret key matches; keyhold does not guess.
    #[error(
        "{selector} matches {count} secret keys on token '{token}': {matches}; \
         add object= or id= to the URI to choose one"
    )]
    AmbiguousKey {
        /// The token label.
        token: String,
        /// The URI's object attributes.
        selector: String,
        /// How many matched.
        count: usize,
        /// The matching keys (label and id).
        matches: String,
    },

    /// The key cannot sign as asked (not an HMAC-capable secret key, or a private key of
    /// another kind or without the mechanism it needs).
    #[error("key {key} on token '{token}' is not usable for signing: {reason}")]
    KeyUnsuitable {
        /// The token label.
        token: String,
        /// The key's label and id.
        key: String,
        /// What is wrong, e.g. "CKA_SIGN is false".
        reason: String,
    },

    /// The key can be read out of the token, so it does not protect the secret.
    #[error(
        "key {key} on token '{token}' could be read out of the token ({reason}): re-import the \
         secret with keyhold (`keyhold import --replace`), which makes it sensitive, \
         non-extractable and unchangeable; to use it anyway, open it with \
         insecure_allow_extractable_key"
    )]
    KeyExtractable {
        /// The token label.
        token: String,
        /// The key's label and id.
        key: String,
        /// Which attribute is unsafe.
        reason: &'static str,
    },

    /// No access key id is stored next to the key.
    #[error(
        "no AWS access key id is stored next to key {key} on token '{token}' (keyhold keeps it in \
         a CKO_DATA object with the key's label and CKA_APPLICATION \"{application}\"): if \
         `keyhold import` was interrupted, run it again with --replace; for a key made by \
         another tool, give the access key id (--access-key-id)"
    )]
    AccessKeyIdMissing {
        /// The token label.
        token: String,
        /// The key's label and id.
        key: String,
        /// The CKA_APPLICATION value looked for.
        application: &'static str,
    },

    /// The keys and access-key-id records with one label do not pair up one to one.
    #[error(
        "token '{token}' holds {keys} secret key(s) and {records} access-key-id record(s) \
         labelled '{label}', and no one key is the one its record names: an import or replace \
         of '{label}' was interrupted, or another program changed them; import the secret \
         again with `keyhold import --replace` to leave exactly one key"
    )]
    Unpaired {
        /// The token label.
        token: String,
        /// The key label.
        label: String,
        /// How many secret keys have the label.
        keys: usize,
        /// How many records have the label.
        records: usize,
    },

    /// This process could not take its turn to write through the module.
    #[error(
        "could not lock PKCS#11 module {} for the import (imports on this machine take turns \
         by an advisory lock on the module file)", module.display()
    )]
    WriteTurn {
        /// The module path.
        module: PathBuf,
        /// The open or flock error.
        #[source]
        source: std::io::Error,
    },

    /// The import request itself is unusable (no label, bad access key id, ...).
    #[error("cannot import: {reason}")]
    InvalidImport {
        /// What is wrong with it.
        reason: String,
    },

    /// The access key id given is not one (it is not echoed: it might be the secret).
    #[error(
        "the access key id given is not one: AWS access key ids are 1 to 128 letters, digits \
         or '_', like AKIAIOSFODNN7EXAMPLE (is it the secret access key?)"
    )]
    InvalidAccessKeyId,

    /// Objects with the label or id asked for already exist.
    #[error(
        "token '{token}' already holds {existing}: choose another label and id, or replace them (`keyhold import --replace`)"
    )]
    AlreadyExists {
        /// The token label.
        token: String,
        /// The objects in the way.
        existing: String,
    },

    /// A key pair or certificate of that label or id is already on the token.
    #[error(
        "token '{token}' already holds {existing}: choose another object= label (keyhold never \
         overwrites a private key or certificate)"
    )]
    ObjectExists {
        /// The token label.
        token: String,
        /// The objects in the way.
        existing: String,
    },

    /// Replace was asked for but an object in the way is not one keyhold may delete.
    #[error(
        "token '{token}' holds {object} with that label or id, which keyhold will not delete: \
         only secret keys and keyhold's access-key-id objects are replaced"
    )]
    ReplaceRefused {
        /// The token label.
        token: String,
        /// The object in the way.
        object: String,
    },

    /// The token computed something other than HMAC-SHA256 of the imported secret.
    #[error(
        "token '{token}' computed a different HMAC-SHA256 than the imported secret gives; \
         the import was rolled back"
    )]
    ImportCheckFailed {
        /// The token label.
        token: String,
    },

    /// An import failed part-way and its partial objects could not all be removed.
    #[error(
        "import into token '{token}' failed ({cause}) and cleaning up failed too ({cleanup}): \
         delete {leftover} by hand"
    )]
    ImportCleanupFailed {
        /// The token label.
        token: String,
        /// The first failure.
        cause: String,
        /// The failure while removing objects.
        cleanup: String,
        /// What was left on the token.
        leftover: String,
    },

    /// The token's state kept changing (logouts, resets) faster than it could be repaired.
    #[error(
        "token '{token}' kept changing under the signer ({attempts} attempts were overtaken by \
         repairs): something in this process is logging out or resetting the module in a loop"
    )]
    Unstable {
        /// The token label.
        token: String,
        /// How many attempts were made.
        attempts: usize,
    },

    /// A call to the module itself (not to one token) failed.
    #[error("{step} in PKCS#11 module {} failed ({code})", module.display())]
    Module {
        /// The module path.
        module: PathBuf,
        /// What keyhold was doing.
        step: Step,
        /// The return code, `CKR_*`.
        code: String,
        /// The cryptoki error.
        #[source]
        source: CryptokiError,
    },

    /// Any other PKCS#11 call failed.
    #[error("{step} on token '{token}' failed ({code}){hint}")]
    Token {
        /// The token label.
        token: String,
        /// What keyhold was doing.
        step: Step,
        /// The return code, `CKR_*`.
        code: String,
        /// What to do next, if there is something to say (starts with "; ").
        hint: &'static str,
        /// The cryptoki error.
        #[source]
        source: CryptokiError,
    },
}

impl Error {
    /// A failed PKCS#11 call during `step` on `token`.
    pub(crate) fn token(token: &str, step: Step, source: CryptokiError) -> Self {
        let hint = match rv(&source) {
            Some(RvError::TokenNotPresent | RvError::DeviceRemoved) => "; insert the token",
            Some(RvError::TokenWriteProtected) => "; the token is read-only",
            Some(RvError::DeviceMemory) => "; the token is full",
            Some(RvError::SessionCount) => "; the token has no free sessions",
            Some(RvError::UserNotLoggedIn) => "; log in with the user PIN",
            Some(RvError::KeySizeRange) => {
                "; the token refuses an HMAC key of this length (AWS secret access keys are 40 characters)"
            }
            _ => "",
        };
        Self::Token {
            token: token.to_owned(),
            step,
            code: ckr_name(&source),
            hint,
            source,
        }
    }

    /// A failed PKCS#11 call during `step` on the module at `module`.
    pub(crate) fn module(module: &Path, step: Step, source: CryptokiError) -> Self {
        Self::Module {
            module: module.to_owned(),
            step,
            code: ckr_name(&source),
            source,
        }
    }

    /// The coarse kind sigv4-core's callers decide on.
    pub fn kind(&self) -> KeyErrorKind {
        match self {
            Self::InvalidUri { .. }
            | Self::NoModule { .. }
            | Self::ModuleNotFound { .. }
            | Self::ModuleMissing { .. }
            | Self::AccessKeyIdMissing { .. } => KeyErrorKind::NotFound,
            Self::InvalidImport { .. } | Self::InvalidAccessKeyId => KeyErrorKind::Unsuitable,
            Self::ModuleLoad { .. } | Self::Unstable { .. } | Self::Module { .. } => {
                KeyErrorKind::Unavailable
            }
            Self::TokenNotFound { .. } | Self::AmbiguousToken { .. } => KeyErrorKind::NotFound,
            Self::KeyNotFound { .. } | Self::AmbiguousKey { .. } | Self::Unpaired { .. } => {
                KeyErrorKind::NotFound
            }
            Self::WriteTurn { .. } => KeyErrorKind::Unavailable,
            Self::PinRequired { .. }
            | Self::PinSource { .. }
            | Self::PinIncorrect { .. }
            | Self::PinLocked { .. } => KeyErrorKind::Denied,
            Self::KeyUnsuitable { .. } | Self::KeyExtractable { .. } => KeyErrorKind::Unsuitable,
            Self::AlreadyExists { .. }
            | Self::ObjectExists { .. }
            | Self::ReplaceRefused { .. } => KeyErrorKind::Denied,
            Self::ImportCheckFailed { .. } | Self::ImportCleanupFailed { .. } => {
                KeyErrorKind::Device
            }
            Self::Token { source, .. } => match rv(source) {
                Some(
                    RvError::TokenNotPresent
                    | RvError::DeviceRemoved
                    | RvError::SessionCount
                    | RvError::CryptokiNotInitialized
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed,
                ) => KeyErrorKind::Unavailable,
                Some(RvError::UserNotLoggedIn | RvError::KeyFunctionNotPermitted) => {
                    KeyErrorKind::Denied
                }
                _ => KeyErrorKind::Device,
            },
        }
    }
}

impl From<Error> for KeyError {
    fn from(error: Error) -> Self {
        KeyError::with_source(
            error.kind(),
            "the PKCS#11 token could not compute kDate",
            error,
        )
    }
}

/// The step of a PKCS#11 call that failed, typed so that callers can act on it (a failed
/// login is the PIN's fault; a failed session, the token's) as cryptoki types its own
/// `Function`. `Display` is the PKCS#11 function, and why keyhold called it when that is
/// not plain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `C_Initialize` of the module.
    Initialize,
    /// Listing the module's slots and tokens.
    ListTokens,
    /// `C_OpenSession`.
    OpenSession,
    /// `C_GetMechanismList`: what the token can do.
    ListMechanisms,
    /// `C_Login` with the user PIN.
    Login,
    /// `C_FindObjects`.
    FindObjects,
    /// `C_GetAttributeValue`.
    GetAttributeValue,
    /// `C_Sign` of a date: kDate.
    Sign,
    /// `C_Sign` of the fixed text whose HMAC is a key's check value.
    SignKeyCheckValue,
    /// `C_Sign` proving a new key against the software HMAC.
    SignImportCheck,
    /// `C_CreateObject` of the secret key.
    CreateKey,
    /// `C_CreateObject` of the record naming the key and its access key id.
    CreateRecord,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Initialize => "C_Initialize",
            Self::ListTokens => "listing tokens",
            Self::OpenSession => "C_OpenSession",
            Self::ListMechanisms => "C_GetMechanismList",
            Self::Login => "C_Login",
            Self::FindObjects => "C_FindObjects",
            Self::GetAttributeValue => "C_GetAttributeValue",
            Self::Sign => "C_Sign",
            Self::SignKeyCheckValue => "C_Sign (key check value)",
            Self::SignImportCheck => "C_Sign (checking the import)",
            Self::CreateKey => "C_CreateObject (key)",
            Self::CreateRecord => "C_CreateObject (access key id)",
        })
    }
}

/// The PKCS#11 return value inside a cryptoki error, if it is one.
pub(crate) fn rv(error: &CryptokiError) -> Option<RvError> {
    match error {
        CryptokiError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// `CKR_PIN_INCORRECT` for [`RvError::PinIncorrect`]: cryptoki's variant names are the
/// spec's names in CamelCase, and its `Display` is a paragraph, not a name.
pub(crate) fn ckr_name(error: &CryptokiError) -> String {
    match error {
        CryptokiError::Pkcs11(RvError::VendorDefined(code), _) => {
            format!("vendor-defined CK_RV {code:#x}")
        }
        CryptokiError::Pkcs11(RvError::UnknownErrorCode(code), _) => {
            format!("unknown CK_RV {code:#x}")
        }
        CryptokiError::Pkcs11(rv, _) => {
            let camel = format!("{rv:?}");
            let mut name = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    #[test]
    fn return_codes_print_as_the_spec_names_them() {
        let name = |rv| ckr_name(&CryptokiError::Pkcs11(rv, Function::Login));
        assert_eq!(name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            name(RvError::CryptokiNotInitialized),
            "CKR_CRYPTOKI_NOT_INITIALIZED"
        );
        assert_eq!(
            name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        assert_eq!(
            name(RvError::VendorDefined(0x8000_0001)),
            "vendor-defined CK_RV 0x80000001"
        );
    }

    #[test]
    fn token_errors_carry_code_and_hint() {
        let err = Error::token(
            "sigv4",
            Step::Sign,
            CryptokiError::Pkcs11(RvError::TokenNotPresent, Function::Sign),
        );
        assert_eq!(
            err.to_string(),
            "C_Sign on token 'sigv4' failed (CKR_TOKEN_NOT_PRESENT); insert the token"
        );
        assert_eq!(err.kind(), KeyErrorKind::Unavailable);
        let key_error = KeyError::from(err);
        assert!(std::error::Error::source(&key_error).is_some());
    }

    #[test]
    fn messages_name_the_step_and_leave_the_cause_to_source() {
        let sentinel = || std::io::Error::other("SENTINEL");
        let errors = [
            Error::ModuleMissing {
                path: "/m.so".into(),
                source: sentinel(),
            },
            Error::PinSource {
                token: "t".into(),
                source_path: "/pin".into(),
                source: sentinel(),
            },
            Error::WriteTurn {
                module: "/m.so".into(),
                source: sentinel(),
            },
        ];
        for error in errors {
            assert!(!error.to_string().contains("SENTINEL"), "{error}");
            assert!(std::error::Error::source(&error).is_some());
        }
        let key_error = KeyError::from(Error::PinSource {
            token: "t".into(),
            source_path: "/pin".into(),
            source: sentinel(),
        });
        assert!(!key_error.to_string().contains("SENTINEL"), "{key_error}");
    }
}
