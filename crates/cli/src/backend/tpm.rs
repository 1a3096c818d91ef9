//! `--key tpm:file=PATH` and `--key tpm:handle=0x81xxxxxx`: keys in a TPM 2.0 (backend-tpm).
//!
//! The key's password comes from `--tpm-password-file` or the `KEYHOLD_TPM_PASSWORD`
//! environment variable, never from a flag. Sessions are salted with the endorsement key and
//! encrypted; `--tpm-ek-name` pins which TPM that must be.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend_tpm::{
    EkAlgorithm, ImportOptions, KeyAuth, PcrSelection, SessionEncryption, Tpm, TpmError,
    TpmRootKey, parse_hex,
};
use sigv4_core::{KeyErrorKind, RootSecret};
use zeroize::Zeroizing;

use super::OpenedKey;
use crate::args::{ImportArgs, KeyArgs};
use crate::doctor::{Link, chain};
use crate::error::CliError;
use crate::key_ref::KeyRef;

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
    let mut auth = match password(args)? {
        Some(password) => KeyAuth::password(password),
        None => KeyAuth::none(),
    };
    if let Some(pcrs) = pcrs(args)? {
        auth = auth.with_pcr_policy(pcrs);
    }
    Ok(auth)
}

fn load(tpm: &Tpm, args: &KeyArgs, auth: KeyAuth) -> Result<TpmRootKey, TpmError> {
    match &args.key {
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
    let tpm = connect(args).map_err(|e| CliError::open(&args.key, e))?;
    let key = load(&tpm, args, auth).map_err(|e| CliError::open(&args.key, e))?;
    opened(args, key)
}

/// The key files import will write, and whether each may be replaced.
fn files_to_write(args: &ImportArgs) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let KeyRef::TpmFile(path) = &args.key.key {
        files.push(path.clone());
    }
    files.extend(args.tpm_pem_out.clone());
    files
}

pub fn preflight_import(args: &ImportArgs) -> Result<(), CliError> {
    #[cfg(feature = "pkcs11")]
    if args.label.is_some() || args.id.is_some() {
        return Err(CliError::Usage(
            "--label and --id are for PKCS#11 keys; a TPM key is named by its file or handle"
                .into(),
        ));
    }
    match &args.key.key {
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
    for path in files_to_write(args) {
        if path.exists() && !args.replace {
            return Err(CliError::Usage(format!(
                "{} exists: choose another path, or pass --replace to overwrite it",
                path.display()
            )));
        }
    }
    pcrs(&args.key)?;
    Ok(())
}

pub fn import(args: &ImportArgs, secret: &RootSecret, akid: &str) -> Result<KeyRef, CliError> {
    let failed = |e: TpmError| CliError::Import {
        backend: "TPM",
        source: e.into(),
    };
    let mut options = ImportOptions::new(akid);
    if let Some(password) = password(&args.key)? {
        options = options.password(password);
    }
    if let Some(pcrs) = pcrs(&args.key)? {
        options = options.pcr_policy(pcrs);
    }
    let persist_at = match &args.key.key {
        KeyRef::TpmHandle(handle) => Some(*handle),
        _ => args.tpm_persist_at,
    };
    if let Some(handle) = persist_at {
        options = options.persist_at(handle);
    }
    let tpm = connect(&args.key).map_err(failed)?;
    tracing::info!(persist_at = ?persist_at, "importing into the TPM");
    let imported = tpm.import(secret, &options).map_err(failed)?;

    // Prove it through the way later commands will load it, before anything is written.
    let key = match persist_at {
        Some(handle) => tpm.load_persistent(handle, auth(&args.key)?),
        None => tpm.load_key_file(&imported.key_file, auth(&args.key)?),
    };
    let undo = |tpm: &Tpm| match persist_at {
        Some(handle) => match tpm.evict_persistent(handle) {
            Ok(()) => format!("the key at {handle:#010x} was evicted"),
            Err(e) => format!(
                "evicting {handle:#010x} failed too ({e}): tpm2_evictcontrol -C o -c {handle:#010x}"
            ),
        },
        None => "no key file was written".to_owned(),
    };
    let proved = key
        .map_err(|e| e.to_string())
        .and_then(|key| super::prove_import(&key, secret).map_err(|e| e.to_string()));
    // A file reference is made absolute: credential_process runs from another directory.
    #[allow(unreachable_patterns)] // other backends' variants, when built
    let reference = match &args.key.key {
        KeyRef::TpmFile(path) => KeyRef::TpmFile(absolute(path)),
        other => other.clone(),
    };
    match proved {
        Ok(true) => {}
        Ok(false) => {
            return Err(CliError::ImportCheckFailed {
                key: reference.to_string(),
                cleanup: undo(&tpm),
            });
        }
        Err(reason) => {
            return Err(CliError::Import {
                backend: "TPM",
                source: format!(
                    "the imported key could not be used ({reason}); {}",
                    undo(&tpm)
                )
                .into(),
            });
        }
    }
    let pem = imported.key_file.to_pem();
    for path in files_to_write(args) {
        write_key_file(&path, &pem, args.replace)?;
        tracing::info!(path = %path.display(), "wrote the TSS2 key file");
    }
    if let Some(handle) = persist_at
        && !matches!(args.key.key, KeyRef::TpmHandle(_))
    {
        eprintln!("note: the key is also persistent at tpm:handle={handle:#010x}");
    }
    Ok(reference)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Writes a key file readable by its owner only. Without `replace`, never overwrites.
fn write_key_file(path: &Path, pem: &str, replace: bool) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        op: "write the key file",
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(pem.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Which doctor link a TPM error belongs to: 0 TCTI, 1 TPM, 2 key, 3 authorization.
fn link_of(error: &TpmError) -> usize {
    match error {
        TpmError::InvalidTcti { .. } => 0,
        TpmError::Unreachable { .. } | TpmError::EkNameMismatch { .. } => 1,
        TpmError::WrongPassword { .. }
        | TpmError::PcrChanged { .. }
        | TpmError::PolicyFailed { .. }
        | TpmError::PolicyRequired { .. }
        | TpmError::Lockout { .. } => 3,
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
    details.push(format!("{} ({})", args.key, opened.access_key_id));
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
