//! `--key tpm:file=PATH` and `--key tpm:handle=0x81xxxxxx`: keys in a TPM 2.0 (backend-tpm).
//!
//! The key's password comes from `--tpm-password-file` or the `KEYHOLD_TPM_PASSWORD`
//! environment variable, never from a flag. Sessions are salted with the endorsement key and
//! encrypted; `--tpm-ek-name` pins which TPM that must be.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend_tpm::{
    EkAlgorithm, ImportOptions, KeyAuth, PcrSelection, SessionEncryption, Tpm, TpmError,
    TpmRootKey, TpmStage, parse_hex,
};
use sigv4_core::{KeyErrorKind, RootSecret};
use zeroize::Zeroizing;

use super::OpenedKey;
use crate::args::{ImportArgs, KeyArgs};
use crate::atomic_file::{StagedFile, refuse_unwritable};
use crate::error::CliError;
use crate::key_ref::KeyRef;
use crate::report::{Link, chain};

/// The environment variable a key password may come from.
pub const PASSWORD_ENV: &str = "KEYHOLD_TPM_PASSWORD";

fn connect(args: &KeyArgs) -> Result<Tpm, TpmError> {
    let encryption = match &args.tpm.tpm_ek_name {
        Some(hex) => SessionEncryption::SaltedWithEk {
            ek: EkAlgorithm::EccP256,
            pinned_name: Some(parse_hex(hex)?),
        },
        None => SessionEncryption::default(),
    };
    let tpm = Tpm::connect_with(args.tpm.tcti.as_deref(), encryption)?;
    tracing::info!(tcti = tpm.tcti(), "connected to the TPM");
    Ok(tpm)
}

fn password(args: &KeyArgs) -> Result<Option<Zeroizing<Vec<u8>>>, CliError> {
    if let Some(path) = &args.tpm.tpm_password_file {
        let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|source| CliError::Io {
            op: "read the TPM key password from",
            path: path.clone(),
            source,
        })?);
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        return Ok(Some(bytes));
    }
    Ok(super::secret_env(PASSWORD_ENV))
}

fn pcrs(args: &KeyArgs) -> Result<Option<PcrSelection>, CliError> {
    if args.tpm.tpm_pcrs.is_empty() {
        return Ok(None);
    }
    PcrSelection::sha256(&args.tpm.tpm_pcrs)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("--tpm-pcrs: {e}")))
}

fn auth(args: &KeyArgs) -> Result<KeyAuth, CliError> {
    Ok(key_auth(password(args)?, pcrs(args)?))
}

fn key_auth(password: Option<Zeroizing<Vec<u8>>>, pcrs: Option<PcrSelection>) -> KeyAuth {
    let auth = match password {
        Some(password) => KeyAuth::password(password),
        None => KeyAuth::none(),
    };
    match pcrs {
        Some(pcrs) => auth.with_pcr_policy(pcrs),
        None => auth,
    }
}

fn load(tpm: &Tpm, args: &KeyArgs, auth: KeyAuth) -> Result<TpmRootKey, TpmError> {
    match args.key() {
        KeyRef::TpmFile(path) => tpm.load_pem_file(path, auth),
        KeyRef::TpmHandle(handle) => tpm.load_persistent(*handle, auth),
        #[allow(unreachable_patterns)] // other backends, when built
        _ => Err(TpmError::InvalidArgument {
            reason: "not a TPM key reference".into(),
        }),
    }
}

const NO_AKID_HINT: &str =
    " (a tpm:handle= key does not record it; a tpm:file= key file made by keyhold import does)";

fn opened(args: &KeyArgs, key: TpmRootKey) -> Result<OpenedKey, CliError> {
    let access_key_id = super::access_key_id(args, key.access_key_id(), NO_AKID_HINT)?;
    Ok(OpenedKey {
        root_key: Arc::new(key),
        access_key_id,
    })
}

pub fn open(args: &KeyArgs) -> Result<OpenedKey, CliError> {
    let auth = auth(args)?;
    let tpm = connect(args).map_err(|e| CliError::open(args.key(), e))?;
    let key = load(&tpm, args, auth).map_err(|e| CliError::open(args.key(), e))?;
    opened(args, key)
}

/// The key file import will write: the `tpm:file=` key itself, or `--tpm-pem-out` for a
/// handle (never both: [`preflight_import`] refuses that).
fn file_to_write(args: &ImportArgs) -> Option<(&'static str, &Path)> {
    match args.key.key() {
        KeyRef::TpmFile(path) => Some(("--key tpm:file=", path.as_path())),
        _ => args
            .tpm_pem_out
            .as_deref()
            .map(|path| ("--tpm-pem-out ", path)),
    }
}

/// The persistent handle import will fill: the `tpm:handle=` key, or `--tpm-persist-at`.
fn handle_to_fill(args: &ImportArgs) -> Option<u32> {
    match args.key.key() {
        KeyRef::TpmHandle(handle) => Some(*handle),
        _ => args.tpm_persist_at,
    }
}

fn import_failed(e: TpmError) -> CliError {
    CliError::Import {
        backend: "TPM",
        source: e.into(),
    }
}

/// A key file that could not be written, as part of the import.
fn file_failed(e: CliError) -> CliError {
    CliError::Import {
        backend: "TPM",
        source: Box::new(e),
    }
}

/// Refuses, before the secret is read and before anything is written to the TPM, what
/// would make the import fail after it: a key file that exists (without `--replace`) or
/// cannot be written, a taken handle (without `--replace`), an unreachable TPM.
pub fn preflight_import(args: &ImportArgs) -> Result<(), CliError> {
    #[cfg(feature = "pkcs11")]
    if args.label.is_some() || args.id.is_some() {
        return Err(CliError::Usage(
            "--label and --id are for PKCS#11 keys; a TPM key is named by its file or handle"
                .into(),
        ));
    }
    match args.key.key() {
        KeyRef::TpmHandle(_) if args.tpm_persist_at.is_some() => {
            return Err(CliError::Usage(
                "--tpm-persist-at is for tpm:file= keys; this key is already a handle".into(),
            ));
        }
        KeyRef::TpmFile(_) if args.tpm_pem_out.is_some() => {
            return Err(CliError::Usage(
                "--tpm-pem-out is for tpm:handle= keys; a tpm:file= key is written to its file"
                    .into(),
            ));
        }
        _ => {}
    }
    if let Some((flag, path)) = file_to_write(args) {
        refuse_unwritable(flag, path, args.replace)?;
    }
    pcrs(&args.key)?;
    let tpm = connect(&args.key).map_err(import_failed)?;
    if let Some(handle) = handle_to_fill(args)
        && !args.replace
        && tpm.persistent_in_use(handle).map_err(import_failed)?
    {
        let taken = TpmError::HandleInUse {
            handle,
            source: None,
        };
        return Err(CliError::Usage(taken.to_string()));
    }
    Ok(())
}

/// Imports, then proves the key with one HMAC, then writes the key file to a temporary file
/// beside its target, then persists the handle, then renames the file into place. Every
/// step that can fail for a reason known in advance runs before the TPM's persistent state
/// changes; if the rename fails after all, the persisted key is evicted again.
pub fn import(args: &ImportArgs, secret: &RootSecret, akid: &str) -> Result<KeyRef, CliError> {
    // Read once: the import and the proof that follows use the same authorization.
    let (password, pcrs) = (password(&args.key)?, pcrs(&args.key)?);
    let mut options = ImportOptions::new(akid);
    if let Some(password) = &password {
        options = options.password(password.clone());
    }
    if let Some(pcrs) = &pcrs {
        options = options.pcr_policy(pcrs.clone());
    }
    let handle = handle_to_fill(args);
    let tpm = connect(&args.key).map_err(import_failed)?;
    tracing::info!(persist_at = ?handle, "importing into the TPM");
    // Only a key file for now (nothing persistent): a failure up to the persisting leaves
    // the TPM as it was.
    let imported = tpm.import(secret, &options).map_err(import_failed)?;
    // A file reference is made absolute: credential_process runs from another directory.
    #[allow(unreachable_patterns)] // other backends' variants, when built
    let reference = match args.key.key() {
        KeyRef::TpmFile(path) => KeyRef::TpmFile(absolute(path)),
        other => other.clone(),
    };
    let untouched = "nothing was persisted or written";
    let proved = tpm
        .load_key_file(&imported.key_file, key_auth(password, pcrs))
        .map_err(|e| crate::error::one_line(&e))
        .and_then(|key| super::prove_import(&key, secret).map_err(|e| crate::error::one_line(&e)));
    match proved {
        Ok(true) => {}
        Ok(false) => {
            return Err(CliError::ImportCheckFailed {
                key: reference.to_string(),
                cleanup: untouched.to_owned(),
            });
        }
        Err(reason) => {
            return Err(CliError::Import {
                backend: "TPM",
                source: format!("the imported key could not be used ({reason}); {untouched}")
                    .into(),
            });
        }
    }
    let pem = imported.key_file.to_pem();
    let staged = file_to_write(args)
        .map(|(_, path)| StagedFile::write(path, pem.as_bytes(), 0o600))
        .transpose()
        .map_err(file_failed)?;
    if let Some(handle) = handle {
        tpm.persist_key_file(&imported.key_file, handle, args.replace)
            .map_err(import_failed)?;
        tracing::info!(handle = format_args!("{handle:#010x}"), "persisted the key");
    }
    if let Some(staged) = staged {
        let path = staged.target().to_owned();
        staged.commit(args.replace).map_err(|e| match handle {
            Some(handle) => CliError::Import {
                backend: "TPM",
                source: format!(
                    "{}; {}",
                    crate::error::one_line(&e),
                    evict_again(&tpm, handle, args.replace)
                )
                .into(),
            },
            None => file_failed(e),
        })?;
        tracing::info!(path = %path.display(), "wrote the TSS2 key file");
    }
    if let Some(handle) = handle
        && !matches!(args.key.key(), KeyRef::TpmHandle(_))
    {
        eprintln!("note: the key is also persistent at tpm:handle={handle:#010x}");
    }
    Ok(reference)
}

/// Undoes the persisting of a key whose file could not be written, and says what was done.
fn evict_again(tpm: &Tpm, handle: u32, replaced: bool) -> String {
    match tpm.evict_persistent(handle) {
        Ok(()) if replaced => format!(
            "the new key was evicted from {handle:#010x} again, which is now empty (the key \
             it held before was replaced): import again with --replace"
        ),
        Ok(()) => format!("the new key was evicted from {handle:#010x} again"),
        Err(e) => format!(
            "evicting the new key from {handle:#010x} failed too ({}): import again with \
             --replace, or evict it with tpm2_evictcontrol -C o -c {handle:#010x}",
            crate::error::one_line(&e)
        ),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Which doctor link a TPM error belongs to: 0 TCTI, 1 TPM, 2 key, 3 authorization.
fn link_of(error: &TpmError) -> usize {
    match error.stage() {
        TpmStage::Tcti => 0,
        TpmStage::Connect => 1,
        TpmStage::Authorize => 3,
        // A failed command while the key is loaded is the key's link.
        _ => 2,
    }
}

const LINKS: [(&str, &str); 5] = [
    (
        "TCTI parses",
        "use --tcti swtpm:host=H,port=P, device:/dev/tpmrm0 or tabrmd (or set TPM2TOOLS_TCTI)",
    ),
    (
        "TPM reachable",
        "start the TPM (swtpm socket ...) or give this user access to /dev/tpmrm0 (group tss)",
    ),
    (
        "key found, cannot leave the TPM, with its access key id",
        "check the key file or handle (tpm2_getcap handles-persistent); import it with `keyhold import`",
    ),
    (
        "authorization (password, PCR policy)",
        "pass the password given at import (--tpm-password-file or KEYHOLD_TPM_PASSWORD) and, for a handle, --tpm-pcrs",
    ),
    (
        "one HMAC in the device",
        "the TPM refused TPM2_HMAC with this key; re-import it with `keyhold import`",
    ),
];

pub fn doctor(args: &KeyArgs) -> (Vec<Link>, Option<OpenedKey>) {
    let mut details = Vec::new();
    let auth = match auth(args) {
        Ok(auth) => auth,
        Err(e) => return (chain(&LINKS, &details, Some((3, &e))), None),
    };
    let tpm = match connect(args) {
        Ok(tpm) => tpm,
        Err(e) => {
            return (
                chain(&LINKS, &details, Some((link_of(&e).min(1), &e))),
                None,
            );
        }
    };
    details.push(tpm.tcti().to_owned());
    details.push("answers, EK-salted encrypted session".to_owned());
    let key = match load(&tpm, args, auth) {
        Ok(key) => key,
        Err(e) => {
            return (
                chain(&LINKS, &details, Some((link_of(&e).max(2), &e))),
                None,
            );
        }
    };
    let opened = match opened(args, key) {
        Ok(opened) => opened,
        Err(e) => return (chain(&LINKS, &details, Some((2, &e))), None),
    };
    details.push(format!("{} ({})", args.key(), opened.access_key_id));
    if let Err(e) = super::one_hmac(opened.root_key.as_ref()) {
        let failed = if e.kind() == KeyErrorKind::Denied {
            3
        } else {
            4
        };
        return (chain(&LINKS, &details, Some((failed, &e))), None);
    }
    details.push(String::new());
    details.push("TPM2_HMAC".to_owned());
    (chain(&LINKS, &details, None), Some(opened))
}

/// Opens a Roles Anywhere signing key (`--private-key tpm:file=PATH|tpm:handle=0x81...`),
/// with the TCTI, password and PCR options as for HMAC keys.
pub fn open_x509(reference: &KeyRef, args: &KeyArgs) -> Result<backend_tpm::TpmX509Key, CliError> {
    let auth = auth(args)?;
    let tpm = connect(args).map_err(|e| CliError::open(reference, e))?;
    let key = match reference {
        KeyRef::TpmFile(path) => tpm.load_signing_pem_file(path, auth),
        KeyRef::TpmHandle(handle) => tpm.load_signing_persistent(*handle, auth),
        #[allow(unreachable_patterns)] // other backends, when built
        _ => Err(TpmError::InvalidArgument {
            reason: "not a TPM key reference".into(),
        }),
    };
    key.map_err(|e| CliError::open(reference, e))
}

/// Makes a Roles Anywhere signing key pair inside the TPM and writes it to `path` as a TSS2
/// key file (0600, never over an existing file), its password from --tpm-password-file or
/// KEYHOLD_TPM_PASSWORD.
pub fn create_signing_key_file(
    path: &Path,
    args: &KeyArgs,
    key_type: sigv4_core::X509KeyType,
) -> Result<(), CliError> {
    refuse_unwritable("--key tpm:file=", path, false)?;
    let password = password(args)?;
    let reference = KeyRef::TpmFile(path.to_owned());
    let failed = |e| CliError::Import {
        backend: "TPM",
        source: Box::new(e),
    };
    let tpm = connect(args).map_err(|e| CliError::open(&reference, e))?;
    let file = tpm
        .create_signing_key(key_type, password.as_ref())
        .map_err(failed)?;
    StagedFile::write(path, file.to_pem().as_bytes(), 0o600)?.commit(false)
}
