//! `--key pkcs11:<URI>`: keys in a PKCS#11 token (backend-pkcs11).
//!
//! The PIN comes from the URI (`pin-source=file:PATH`, or `pin-value`), or from the
//! `KEYHOLD_PKCS11_PIN` environment variable, which wins when set. Never from a flag.

use std::sync::Arc;

use backend_pkcs11::{
    Error, ImportOptions, OpenOptions, Pkcs11RootKey, Pkcs11Uri, PreparedImport, Step,
    prepare_import,
};
use secrecy::SecretString;
use sigv4_core::RootSecret;

use super::OpenedKey;
use crate::args::{ImportArgs, KeyArgs};
use crate::error::CliError;
use crate::key_ref::KeyRef;
use crate::report::{Link, chain};

/// The environment variable a PIN may come from.
pub const PIN_ENV: &str = "KEYHOLD_PKCS11_PIN";

fn pin_from_env() -> Option<SecretString> {
    std::env::var(PIN_ENV).ok().map(SecretString::from)
}

fn open_options(args: &KeyArgs, uri: &Pkcs11Uri) -> OpenOptions {
    let mut options = OpenOptions::new();
    if let Some(pin) = pin_from_env().or_else(|| uri.pin_value.clone()) {
        options = options.pin(pin);
    }
    if let Some(id) = &args.access_key_id {
        options = options.access_key_id(id.clone());
    }
    options
}

fn open_key(uri: &Pkcs11Uri, args: &KeyArgs) -> Result<Pkcs11RootKey, Error> {
    tracing::info!(key = %uri, "opening the PKCS#11 key");
    Pkcs11RootKey::open_with(uri, open_options(args, uri))
}

pub fn open(uri: &Pkcs11Uri, args: &KeyArgs) -> Result<OpenedKey, CliError> {
    let key = open_key(uri, args).map_err(|e| CliError::open(args.key(), e))?;
    let access_key_id = key.access_key_id().to_owned();
    Ok(OpenedKey {
        root_key: Arc::new(key),
        access_key_id,
    })
}

/// The key to create and how: the URI with --label and --id applied, the PIN from the
/// environment, --replace.
fn import_target(uri: &Pkcs11Uri, args: &ImportArgs) -> (Pkcs11Uri, ImportOptions) {
    let mut target = uri.clone();
    if let Some(label) = &args.label {
        target.object = Some(label.clone());
    }
    if let Some(id) = &args.id {
        target.id = Some(id.0.clone());
    }
    let mut options = ImportOptions::new();
    if let Some(pin) = pin_from_env() {
        options = options.pin(pin);
    }
    if args.replace {
        options = options.replace();
    }
    (target, options)
}

/// An import checked as far as it can be before the secret is read.
pub struct Prepared {
    /// The key to create (the URI with --label and --id applied).
    target: Pkcs11Uri,
    import: PreparedImport,
}

/// What can be refused before the secret is read: the token, the PIN, a label or id in use
/// without --replace. The session it logged in with goes on to the import.
pub fn preflight_import(
    uri: &Pkcs11Uri,
    args: &ImportArgs,
    akid: &str,
) -> Result<Prepared, CliError> {
    let (target, options) = import_target(uri, args);
    let import = prepare_import(&target, akid, options).map_err(import_error)?;
    Ok(Prepared { target, import })
}

/// A label or id in use without --replace is a problem with the command line (exit 2), as
/// for the other backends; anything else is a failed import.
fn import_error(error: Error) -> CliError {
    match error {
        Error::AlreadyExists { .. } | Error::InvalidImport { .. } => {
            CliError::Usage(error.to_string())
        }
        error => CliError::Import {
            backend: "PKCS#11 token",
            source: error.into(),
        },
    }
}

pub fn import(
    prepared: Prepared,
    args: &ImportArgs,
    secret: &RootSecret,
) -> Result<KeyRef, CliError> {
    let Prepared { target, import } = prepared;
    tracing::info!(key = %target, "importing into the PKCS#11 token");
    let key_uri = import.import(secret).map_err(import_error)?;
    // Open it as later commands will (PIN as given, access key id as stored) and prove it,
    // still holding the import's turn (`import` lives to the end).
    let mut reopen = key_uri.clone();
    reopen.pin_value = target.pin_value.clone();
    let key = Pkcs11RootKey::open_with(&reopen, open_options(&args.key, &reopen))
        .map_err(|e| CliError::open(&KeyRef::Pkcs11(Box::new(key_uri.clone())), e))?;
    let shown = KeyRef::Pkcs11(Box::new(key.uri().clone()));
    let proved = super::prove_import(&key, secret).map_err(|e| CliError::open(&shown, e))?;
    if !proved {
        return Err(CliError::ImportCheckFailed {
            key: shown.to_string(),
            cleanup: "delete the key from the token (pkcs11-tool --delete-object) and import again"
                .into(),
        });
    }
    if key.uri().pin_source.is_none() && pin_from_env().is_none() {
        eprintln!(
            "note: the key reference has no pin-source; add pin-source=file:/path/to/pin to it \
             or set {PIN_ENV} when using it"
        );
    }
    Ok(shown)
}

/// Which doctor link an opening error belongs to.
fn link_of(error: &Error) -> usize {
    match error {
        Error::InvalidUri { .. }
        | Error::NoModule { .. }
        | Error::ModuleNotFound { .. }
        | Error::ModuleMissing { .. }
        | Error::ModuleLoad { .. } => 0,
        Error::TokenNotFound { .. } | Error::AmbiguousToken { .. } | Error::Module { .. } => 1,
        Error::PinRequired { .. }
        | Error::PinSource { .. }
        | Error::PinIncorrect { .. }
        | Error::PinLocked { .. } => 2,
        Error::Token {
            step: Step::Login, ..
        } => 2,
        Error::Token {
            step: Step::OpenSession,
            ..
        } => 1,
        _ => 3,
    }
}

const LINKS: [(&str, &str); 5] = [
    (
        "PKCS#11 module loads",
        "install the module (Debian: apt-get install softhsm2) and name it with module-path= in the URI",
    ),
    (
        "token found",
        "check token= in the URI against `pkcs11-tool --module MODULE --list-tokens`",
    ),
    (
        "login with the user PIN",
        "put the user PIN in the file named by pin-source=file:PATH, or set KEYHOLD_PKCS11_PIN",
    ),
    (
        "key found, non-extractable, with its access key id",
        "check object=/id= against `pkcs11-tool --list-objects --login`; import the key with `keyhold import`",
    ),
    (
        "one HMAC in the device",
        "the token refuses to sign with this key; re-import it with `keyhold import --replace`",
    ),
];

pub fn doctor(uri: &Pkcs11Uri, args: &KeyArgs) -> (Vec<Link>, Option<OpenedKey>) {
    let mut details = vec![uri.module_path.clone().unwrap_or_default()];
    let key = match open_key(uri, args) {
        Ok(key) => key,
        Err(e) => return (chain(&LINKS, &details, Some((link_of(&e), &e))), None),
    };
    details.push(format!("'{}'", uri.token.clone().unwrap_or_default()));
    details.push(String::new());
    details.push(key.uri().to_string());
    if let Err(e) = super::one_hmac(&key) {
        return (chain(&LINKS, &details, Some((4, &e))), None);
    }
    details.push("CKM_SHA256_HMAC".into());
    let access_key_id = key.access_key_id().to_owned();
    let opened = OpenedKey {
        root_key: Arc::new(key),
        access_key_id,
    };
    (chain(&LINKS, &details, None), Some(opened))
}

/// The PIN for a key on `uri`'s token: `KEYHOLD_PKCS11_PIN`, else the URI's `pin-value`
/// (else the backend reads `pin-source`).
pub fn pin(uri: &Pkcs11Uri) -> Option<SecretString> {
    pin_from_env().or_else(|| uri.pin_value.clone())
}

/// The PIN typed on the terminal, asked for once per process.
static TYPED_PIN: std::sync::Mutex<Option<SecretString>> = std::sync::Mutex::new(None);

/// The PIN typed on the terminal for `token` (asked once per process), or `None` without
/// a terminal.
fn typed_pin(token: &str) -> Result<Option<SecretString>, CliError> {
    let mut typed = TYPED_PIN.lock().unwrap_or_else(|p| p.into_inner());
    if typed.is_none() {
        let prompt = format!("PIN for token '{token}' (not shown): ");
        *typed = crate::secret_input::prompt_on_terminal(&prompt)?
            .map(|bytes| SecretString::from(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(typed.clone())
}

/// Opens a Roles Anywhere private key (`--private-key pkcs11:...`, or the key of
/// `--certificate pkcs11:...;type=cert`), with the PIN as for HMAC keys; when the URI gives
/// no PIN and a terminal is attached, the PIN is asked for on it (`/dev/tty`), once.
pub fn open_x509(uri: &Pkcs11Uri) -> Result<backend_pkcs11::Pkcs11X509Key, CliError> {
    tracing::info!(key = %uri, "opening the PKCS#11 private key");
    match backend_pkcs11::Pkcs11X509Key::open(uri, pin(uri)) {
        Err(Error::PinRequired { token }) => match typed_pin(&token)? {
            Some(typed) => backend_pkcs11::Pkcs11X509Key::open(uri, Some(typed)),
            None => Err(Error::PinRequired { token }),
        },
        other => other,
    }
    .map_err(|e| CliError::open(uri, e))
}
