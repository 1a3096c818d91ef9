//! Choosing the one token a URI names, getting its PIN, and logging in.
//!
//! A URI must select exactly one initialised token; if it matches several, that is an error
//! naming them rather than a guess. A Roles Anywhere key is the exception
//! ([`find_token_holding`]): a URI that names no token (`pkcs11:type=cert`, as AWS writes it
//! for a YubiKey behind p11-kit's proxy) picks the one token that holds what it names. The PIN comes from the caller, else `pin-value`, else
//! `pin-source` (a file; programs named with `|` are not run).

use std::path::PathBuf;

use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::Error;
use crate::error::{Step, rv};
use crate::module::Module;
use crate::uri::Pkcs11Uri;

/// One token in one slot of a loaded module.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) slot: Slot,
    pub(crate) label: String,
    pub(crate) serial: String,
    pub(crate) login_required: bool,
    protected_path: bool,
}

/// The URI's library, slot and token attributes as a URI, for messages.
fn token_selector(uri: &Pkcs11Uri) -> String {
    Pkcs11Uri {
        token: uri.token.clone(),
        manufacturer: uri.manufacturer.clone(),
        serial: uri.serial.clone(),
        model: uri.model.clone(),
        library_manufacturer: uri.library_manufacturer.clone(),
        library_description: uri.library_description.clone(),
        library_version: uri.library_version,
        slot_description: uri.slot_description.clone(),
        slot_manufacturer: uri.slot_manufacturer.clone(),
        slot_id: uri.slot_id,
        ..Pkcs11Uri::default()
    }
    .to_string()
}

/// A URI that selects exactly `token` again, e.g. after it was removed and re-inserted
/// (possibly into another slot): its label and serial, and the module's attributes.
pub(crate) fn reselect_uri(uri: &Pkcs11Uri, token: &Token) -> Pkcs11Uri {
    Pkcs11Uri {
        token: Some(token.label.clone()),
        serial: Some(token.serial.clone()),
        library_manufacturer: uri.library_manufacturer.clone(),
        library_description: uri.library_description.clone(),
        library_version: uri.library_version,
        ..Pkcs11Uri::default()
    }
}

fn same(wanted: &Option<String>, found: &str) -> bool {
    wanted.as_deref().is_none_or(|w| w == found)
}

/// The one initialised token the URI's path attributes select.
pub(crate) fn find_token(module: &Module, uri: &Pkcs11Uri) -> Result<Token, Error> {
    let mut matches = find_tokens(module, uri)?;
    match matches.len() {
        1 => Ok(matches.remove(0).0),
        _ => Err(Error::AmbiguousToken {
            module: module.path.clone(),
            selector: token_selector(uri),
            matches: shown(&matches),
        }),
    }
}

/// Whether the URI names a token (or its slot): by label, serial, manufacturer, model or
/// slot. The library attributes name the module, not a token behind it.
fn names_a_token(uri: &Pkcs11Uri) -> bool {
    uri.token.is_some()
        || uri.serial.is_some()
        || uri.manufacturer.is_some()
        || uri.model.is_some()
        || uri.slot_id.is_some()
        || uri.slot_description.is_some()
        || uri.slot_manufacturer.is_some()
}

/// The one token, among those the URI's path attributes select, for which `holds` says yes
/// (it looks without logging in: a PIN is never tried on a token it was not meant for);
/// `what` names what is looked for in errors ("certificate pkcs11:type=cert"). A URI that
/// names a token and selects one gets it unasked; one that names no token gets a token
/// only if it holds the object, even when it is the only token there (the lone token may
/// be another one than the PIN is for).
pub(crate) fn find_token_holding(
    module: &Module,
    uri: &Pkcs11Uri,
    what: &str,
    holds: impl Fn(&Token) -> Result<bool, Error>,
) -> Result<Token, Error> {
    let mut matches = find_tokens(module, uri)?;
    if matches.len() == 1 && names_a_token(uri) {
        return Ok(matches.remove(0).0);
    }
    let present = shown(&matches);
    let selector = match token_selector(uri) {
        tokens if tokens == "pkcs11:" => what.to_owned(),
        tokens => format!("{what} ({tokens})"),
    };
    let mut holders = Vec::new();
    for (token, shown) in matches {
        // A token that cannot be looked into (being rewritten by another process, removed)
        // is not the one: it is listed among those present.
        match holds(&token) {
            Ok(true) => holders.push((token, shown)),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(token = %token.label, error = %e, "could not look into a token")
            }
        }
    }
    match holders.len() {
        1 => Ok(holders.remove(0).0),
        0 => Err(Error::TokenNotFound {
            module: module.path.clone(),
            selector,
            present: format!("{present}, none of which holds it"),
        }),
        _ => Err(Error::AmbiguousToken {
            module: module.path.clone(),
            selector,
            matches: shown(&holders),
        }),
    }
}

fn shown(tokens: &[(Token, String)]) -> String {
    let shown: Vec<&str> = tokens.iter().map(|(_, shown)| shown.as_str()).collect();
    shown.join(", ")
}

/// Every initialised token the URI's path attributes select (at least one).
fn find_tokens(module: &Module, uri: &Pkcs11Uri) -> Result<Vec<(Token, String)>, Error> {
    if let Some(name) = uri.unsupported_path_attribute() {
        return Err(Error::InvalidUri {
            reason: format!(
                "path attribute '{name}' is not one keyhold can match, and RFC 7512 says a URI \
                 with an attribute its reader does not understand matches nothing"
            ),
        });
    }
    // A token another process is rewriting (SoftHSM rewrites the token file at every login)
    // is briefly unreadable: when nothing matched and a token could not be read, look again.
    for pause_ms in [20, 50, 100] {
        let mut unreadable = 0;
        match select(module, uri, &mut unreadable) {
            Err(Error::TokenNotFound { .. }) if unreadable > 0 => {
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            }
            result => return result,
        }
    }
    select(module, uri, &mut 0)
}

/// One listing of the module's tokens, selecting by the URI; counts the tokens that could
/// not be read in `unreadable`.
fn select(
    module: &Module,
    uri: &Pkcs11Uri,
    unreadable: &mut usize,
) -> Result<Vec<(Token, String)>, Error> {
    let module_error = |source| Error::module(&module.path, Step::ListTokens, source);
    let _listing = module.slots_lock();
    let info = module.ctx.get_library_info().map_err(module_error)?;
    let library_matches = same(&uri.library_manufacturer, info.manufacturer_id())
        && same(&uri.library_description, info.library_description())
        && uri.library_version.is_none_or(|v| {
            let found = info.library_version();
            (v.major, v.minor) == (found.major(), found.minor())
        });
    let mut present = Vec::new();
    let mut matches = Vec::new();
    // Slots with a token, then each token's info: a token can vanish between the two, or be
    // half-written by another process creating it (SoftHSM then answers CKR_GENERAL_ERROR for
    // that one token). Such a slot is skipped rather than failing the whole listing, which
    // cryptoki's `get_slots_with_initialized_token` would do.
    for slot in module.ctx.get_slots_with_token().map_err(module_error)? {
        let (Ok(slot_info), Ok(token_info)) = (
            module.ctx.get_slot_info(slot),
            module.ctx.get_token_info(slot),
        ) else {
            *unreadable += 1;
            continue;
        };
        if !token_info.token_initialized() {
            continue;
        }
        let token = Token {
            slot,
            label: token_info.label().to_owned(),
            serial: token_info.serial_number().to_owned(),
            login_required: token_info.login_required(),
            protected_path: token_info.protected_authentication_path(),
        };
        let shown = format!(
            "'{}' (serial {}, slot {})",
            token.label,
            token.serial,
            slot.id()
        );
        let selected = library_matches
            && uri.slot_id.is_none_or(|id| id == slot.id())
            && same(&uri.slot_description, slot_info.slot_description())
            && same(&uri.slot_manufacturer, slot_info.manufacturer_id())
            && same(&uri.token, token_info.label())
            && same(&uri.manufacturer, token_info.manufacturer_id())
            && same(&uri.model, token_info.model())
            && same(&uri.serial, token_info.serial_number());
        if selected {
            matches.push((token, shown));
        } else {
            present.push(shown);
        }
    }
    match matches.len() {
        0 => {
            let mut present = if present.is_empty() {
                "none".to_owned()
            } else {
                present.join(", ")
            };
            if !library_matches {
                present.push_str(&format!(
                    " (and the library itself is '{}' by '{}', version {}, which the URI rules out)",
                    info.library_description(),
                    info.manufacturer_id(),
                    info.library_version()
                ));
            }
            Err(Error::TokenNotFound {
                module: module.path.clone(),
                selector: token_selector(uri),
                present,
            })
        }
        _ => Ok(matches),
    }
}

/// The PIN to log in with: the caller's, else `pin-value`, else read from `pin-source`.
pub(crate) fn pin_for(
    uri: &Pkcs11Uri,
    given: Option<SecretString>,
    token: &str,
) -> Result<Option<SecretString>, Error> {
    if uri.pin_value.is_some() && uri.pin_source.is_some() {
        return Err(Error::InvalidUri {
            reason: "the URI has both pin-value and pin-source; keep one".into(),
        });
    }
    if given.is_some() {
        return Ok(given);
    }
    if let Some(pin) = &uri.pin_value {
        return Ok(Some(pin.clone()));
    }
    let Some(source) = &uri.pin_source else {
        return Ok(None);
    };
    let source_error = |source: std::io::Error| Error::PinSource {
        token: token.to_owned(),
        source_path: uri.pin_source.clone().unwrap_or_default(),
        source,
    };
    let path = pin_source_path(source).map_err(|reason| Error::InvalidUri { reason })?;
    let bytes = Zeroizing::new(std::fs::read(&path).map_err(source_error)?);
    // One trailing newline is how files end, not part of the PIN.
    let pin = bytes
        .strip_suffix(b"\n")
        .map(|p| p.strip_suffix(b"\r").unwrap_or(p))
        .unwrap_or(&bytes);
    let pin = std::str::from_utf8(pin).map_err(|_| {
        source_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the PIN file is not UTF-8",
        ))
    })?;
    Ok(Some(SecretString::from(pin)))
}

/// The file a `pin-source` names: `file:` URIs (`file:/p`, `file:///p`, `file://localhost/p`)
/// and plain paths.
pub(crate) fn pin_source_path(source: &str) -> Result<PathBuf, String> {
    if source.starts_with('|') {
        return Err(
            "pin-source names a program ('|...'); keyhold only reads PINs from files".into(),
        );
    }
    let Some(rest) = source.strip_prefix("file:") else {
        return Ok(PathBuf::from(source));
    };
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            let slash = authority_and_path
                .find('/')
                .unwrap_or(authority_and_path.len());
            let (host, path) = authority_and_path.split_at(slash);
            if !(host.is_empty() || host == "localhost") {
                return Err(format!("pin-source names a file on host '{host}'"));
            }
            path
        }
        None => rest,
    };
    if path.is_empty() {
        return Err("pin-source is a file: URI without a path".into());
    }
    Ok(PathBuf::from(path))
}

/// `C_Login` as the user, unless the token needs no login. Already logged in (by another
/// session of this process: login state is per application, not per session) is success;
/// the token does not check the PIN then, so a wrong one shows only at the next real login.
pub(crate) fn login(
    session: &Session,
    token: &Token,
    pin: Option<&SecretString>,
) -> Result<(), Error> {
    let result = match pin {
        // SoftHSM rewrites the token file at every login, and a login in another process
        // at the same moment fails with CKR_GENERAL_ERROR: a transient error, worth two
        // more tries.
        Some(pin) => {
            let mut result = session.login(UserType::User, Some(pin));
            for pause_ms in [30, 100] {
                if result.as_ref().err().and_then(rv) != Some(RvError::GeneralError) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                result = session.login(UserType::User, Some(pin));
            }
            result
        }
        None if !token.login_required => return Ok(()),
        None if token.protected_path => session.login(UserType::User, None),
        None => {
            return Err(Error::PinRequired {
                token: token.label.clone(),
            });
        }
    };
    let Err(error) = result else {
        return Ok(());
    };
    let label = token.label.clone();
    match rv(&error) {
        Some(RvError::UserAlreadyLoggedIn) => Ok(()),
        Some(RvError::PinIncorrect) => Err(Error::PinIncorrect {
            token: label,
            code: "CKR_PIN_INCORRECT",
        }),
        Some(RvError::PinLenRange) => Err(Error::PinIncorrect {
            token: label,
            code: "CKR_PIN_LEN_RANGE",
        }),
        Some(RvError::PinLocked) => Err(Error::PinLocked {
            token: label,
            code: "CKR_PIN_LOCKED",
        }),
        Some(RvError::PinExpired) => Err(Error::PinLocked {
            token: label,
            code: "CKR_PIN_EXPIRED",
        }),
        _ => Err(Error::token(&token.label, Step::Login, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_source_accepts_file_uris_and_paths() {
        let ok = |s| pin_source_path(s).map(|p| p.display().to_string());
        assert_eq!(ok("file:/etc/pin").as_deref(), Ok("/etc/pin"));
        assert_eq!(ok("file:///etc/pin").as_deref(), Ok("/etc/pin"));
        assert_eq!(ok("file://localhost/etc/pin").as_deref(), Ok("/etc/pin"));
        assert_eq!(ok("/etc/pin").as_deref(), Ok("/etc/pin"));
        assert_eq!(ok("pin.txt").as_deref(), Ok("pin.txt"));
        assert!(ok("|/usr/bin/get-pin").unwrap_err().contains("program"));
        assert!(ok("file://elsewhere/etc/pin").unwrap_err().contains("host"));
        assert!(ok("file:").unwrap_err().contains("without a path"));
    }

    #[test]
    fn pin_comes_from_caller_then_value_then_file() {
        use secrecy::ExposeSecret;
        let dir = std::env::temp_dir().join(format!("keyhold-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pin");
        std::fs::write(&file, "from-file\r\n").unwrap();
        let pin = |uri: &str, given: Option<&str>| {
            let uri = Pkcs11Uri::parse(uri).unwrap();
            pin_for(&uri, given.map(SecretString::from), "t")
                .map(|p| p.map(|p| p.expose_secret().to_owned()))
        };
        let with_file = format!("pkcs11:?pin-source=file:{}", file.display());
        assert_eq!(pin(&with_file, None).unwrap().as_deref(), Some("from-file"));
        assert_eq!(
            pin(&with_file, Some("given")).unwrap().as_deref(),
            Some("given")
        );
        assert_eq!(
            pin("pkcs11:?pin-value=v", None).unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(pin("pkcs11:", None).unwrap(), None);
        let both = format!("{with_file}&pin-value=v");
        assert!(pin(&both, None).unwrap_err().to_string().contains("both"));
        let missing = format!("pkcs11:?pin-source={}", dir.join("nope").display());
        let err = pin(&missing, None).unwrap_err().to_string();
        assert!(
            err.contains("could not read the PIN") && err.contains("nope"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
