//! `--key tink:PATH --kek-uri URI`: the secret in a KMS-encrypted Tink keyset file
//! (backend-tink).
//!
//! Opening the keyset asks KMS to decrypt it with this machine's own credentials: for AWS
//! the standard chain (environment, `~/.aws` profiles, instance or task role) and the
//! endpoint the AWS CLI would use (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, or the
//! profile's `endpoint_url`), checked before use; for Google Cloud, Application Default Credentials. From then on the HMAC
//! key is in this process's memory until keyhold exits: the trade-off against PKCS#11 and
//! TPM keys, which never let it out.
//!
//! The standard keyset JSON has no place for the access key id (Go and Python Tink reject
//! unknown fields), so import writes it next to the keyset, in `<keyset>.access-key-id`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend_tink::{Error, MasterKey, TinkRootKey, TinkStep, create_keyset};
use sigv4_core::RootSecret;

use super::OpenedKey;
use crate::args::{ImportArgs, KeyArgs};
use crate::atomic_file::{StagedFile, refuse_unwritable};
use crate::error::{CliError, one_line};
use crate::key_ref::KeyRef;
use crate::report::{Link, chain};

/// Appended to the keyset's path to name the file holding its access key id.
const ACCESS_KEY_ID_SUFFIX: &str = ".access-key-id";

const NO_AKID_HINT: &str =
    " (keyhold import writes it next to the keyset, in <keyset path>.access-key-id)";

/// `<keyset>.access-key-id`.
pub fn access_key_id_path(keyset: &Path) -> PathBuf {
    let mut name = OsString::from(keyset.as_os_str());
    name.push(ACCESS_KEY_ID_SUFFIX);
    PathBuf::from(name)
}

/// `--kek-uri` (or KEYHOLD_KEK_URI); a tink: key without it is a usage error.
fn kek_uri(args: &KeyArgs) -> Result<&str, CliError> {
    args.tink
        .kek_uri
        .as_deref()
        .filter(|uri| !uri.is_empty())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "the Tink key {} needs the KMS key its keyset is encrypted under: add --kek-uri \
                 aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID (or \
                 gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K), or set KEYHOLD_KEK_URI",
                args.key()
            ))
        })
}

/// The KMS client for `--kek-uri` (no network call yet). A malformed URI is a usage error.
fn master_key(args: &KeyArgs) -> Result<MasterKey, CliError> {
    let uri = kek_uri(args)?;
    tracing::info!(kek_uri = uri, "setting up the KMS client");
    MasterKey::from_uri_with(uri, args.allow_insecure_http).map_err(|e| match e {
        Error::InvalidKeyUri { .. } => CliError::Usage(format!("--kek-uri: {e}")),
        Error::KmsEndpointRefused { .. } => CliError::Usage(e.to_string()),
        e => CliError::open(args.key(), e),
    })
}

fn read_keyset(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        operation: "read",
        path: path.to_owned(),
        source,
    })
}

/// Decrypts the keyset `json`, read from `path`, through KMS.
fn open_key(path: &Path, json: &[u8], master_key: &MasterKey) -> Result<TinkRootKey, Error> {
    tracing::info!(keyset = %path.display(), "opening the Tink keyset (KMS Decrypt)");
    let key = TinkRootKey::open(json, master_key)?;
    tracing::debug!(
        key_id = key.key_id(),
        "keyset decrypted: its HMAC key is in this process's memory until keyhold exits"
    );
    Ok(key)
}

/// The line of the `.access-key-id` file that binds it to its keyset: the keyset's primary
/// key id (public, in the keyset's `keysetInfo`). A crash of `import --replace` between
/// the two renames would otherwise pair the new access key id with the old keyset, and every
/// signature would fail with SignatureDoesNotMatch.
const BINDING_PREFIX: &str = "keyset-primary-key-id=";

/// The access key id import stored next to the keyset, if the file is there; refused when
/// the file names another keyset than `primary`, the primary key id of the keyset bytes
/// the caller read (`None`: unreadable, which the caller reports).
fn stored_access_key_id(keyset: &Path, primary: Option<u64>) -> Result<Option<String>, CliError> {
    let path = access_key_id_path(keyset);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Io {
                op: "read the access key id from",
                path,
                source,
            });
        }
    };
    let mut lines = text.lines().map(str::trim);
    let akid = lines.next().unwrap_or_default().to_owned();
    let bound = lines.find_map(|l| l.strip_prefix(BINDING_PREFIX)?.parse::<u64>().ok());
    if let (Some(bound), Some(primary)) = (bound, primary)
        && primary != bound
    {
        return Err(CliError::Usage(format!(
            "{} belongs to another keyset than {} (primary key {bound}, not {primary}): an \
             `import --replace` was interrupted; run it again to finish it",
            path.display(),
            keyset.display()
        )));
    }
    Ok(Some(akid).filter(|id| !id.is_empty()))
}

/// The flag (or AWS_ACCESS_KEY_ID), else the one stored at import for the keyset whose
/// primary key id is `primary`.
fn access_key_id(path: &Path, primary: Option<u64>, args: &KeyArgs) -> Result<String, CliError> {
    let stored = stored_access_key_id(path, primary)?;
    super::access_key_id(args, stored.as_deref(), NO_AKID_HINT)
}

pub fn open(path: &Path, args: &KeyArgs) -> Result<OpenedKey, CliError> {
    // Everything local first, so a missing piece costs no KMS call. The keyset is read
    // once: the access key id is checked against the same bytes that are decrypted.
    kek_uri(args)?;
    let json = read_keyset(path);
    let primary = json
        .as_ref()
        .ok()
        .and_then(|json| encrypted_keyset_primary(json).ok());
    let access_key_id = access_key_id(path, primary, args)?;
    let master_key = master_key(args)?;
    let key = json
        .and_then(|json| open_key(path, &json, &master_key))
        .map_err(|e| CliError::open(args.key(), e))?;
    Ok(OpenedKey {
        root_key: Arc::new(key),
        access_key_id,
    })
}

pub fn preflight_import(path: &Path, args: &ImportArgs) -> Result<(), CliError> {
    #[cfg(feature = "pkcs11")]
    if args.label.is_some() || args.id.is_some() {
        return Err(CliError::Usage(
            "--label and --id are for PKCS#11 keys; a Tink key is named by its keyset file".into(),
        ));
    }
    #[cfg(feature = "tpm")]
    if args.tpm_persist_at.is_some() || args.tpm_pem_out.is_some() {
        return Err(CliError::Usage(
            "--tpm-persist-at and --tpm-pem-out are for TPM keys, not a Tink keyset".into(),
        ));
    }
    master_key(&args.key)?;
    for file in [path.to_owned(), access_key_id_path(path)] {
        refuse_unwritable("--key tink:", &file, args.replace)?;
    }
    Ok(())
}

pub fn import(
    path: &Path,
    args: &ImportArgs,
    secret: &RootSecret,
    akid: &str,
) -> Result<KeyRef, CliError> {
    // Absolute: credential_process runs from another directory.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let reference = KeyRef::Tink(path.clone());
    let master_key = master_key(&args.key)?;
    tracing::info!(keyset = %path.display(), "creating the Tink keyset (KMS Encrypt)");
    let json = create_keyset(secret, &master_key).map_err(|e| CliError::Import {
        backend: "Tink keyset",
        source: e.into(),
    })?;
    let sidecar = access_key_id_path(&path);
    let primary = encrypted_keyset_primary(json.as_bytes()).map_err(|e| CliError::Import {
        backend: "Tink keyset",
        source: e.into(),
    })?;
    let keyset_file = StagedFile::write(&path, json.as_bytes(), 0o600)?;
    let sidecar_file = StagedFile::write(
        &sidecar,
        format!("{akid}\n{BINDING_PREFIX}{primary}\n").as_bytes(),
        0o644,
    )?;

    // Prove it as later commands will open it: a new KMS client decrypts the written file.
    // On any failure the temporary files are removed when they drop; nothing is replaced.
    let proved = self::master_key(&args.key).and_then(|fresh| {
        let written = keyset_file.path();
        let key = read_keyset(written)
            .and_then(|json| open_key(written, &json, &fresh))
            .map_err(|e| CliError::Import {
                backend: "Tink keyset",
                source: format!(
                    "the new keyset could not be opened again ({}); nothing was written",
                    one_line(&e)
                )
                .into(),
            })?;
        super::prove_import(&key, secret).map_err(|e| CliError::open(&reference, e))
    })?;
    if !proved {
        return Err(CliError::ImportCheckFailed {
            key: reference.to_string(),
            cleanup: "nothing was written".into(),
        });
    }
    sidecar_file.commit(args.replace)?;
    keyset_file.commit(args.replace)?;
    tracing::info!(keyset = %path.display(), access_key_id_file = %sidecar.display(), "wrote the keyset");
    eprintln!(
        "note: use it with --kek-uri {} (or KEYHOLD_KEK_URI); its access key id is in {}",
        kek_uri(&args.key)?,
        sidecar.display()
    );
    Ok(reference)
}

/// A keyset file that is not what keyhold can open.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct KeysetFileProblem(String);

const KEYSET: &str = "keyset file readable, an encrypted Tink keyset, with its access key id";
const KEYSET_FIX: &str = "check the path after tink: and that this user may read it; create the keyset with `keyhold import --key tink:PATH --kek-uri URI`";
const AKID_FIX: &str =
    "pass --access-key-id AKID, or put it in <keyset path>.access-key-id (one line)";
const URI: &str = "KMS key URI parses";
const URI_FIX: &str = "give --kek-uri (or KEYHOLD_KEK_URI) as aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID or gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K";
const DECRYPT: &str = "KMS reachable and decrypts the keyset";
const HMAC: &str = "one HMAC (the key decrypted in this process's memory)";
const HMAC_FIX: &str = "Tink could not compute HMAC-SHA256 with this key; import the secret again with `keyhold import --replace`";

/// Which link a backend error belongs to, and its fix.
fn diagnose(error: &Error) -> (usize, &'static str) {
    match error {
        Error::Io { .. } | Error::KeysetJson { .. } => (0, KEYSET_FIX),
        Error::InvalidKeyUri { .. } | Error::KmsNotBuiltIn { .. } => (1, URI_FIX),
        Error::KmsSetup { .. } => (
            2,
            "give this machine credentials for KMS: for AWS the environment, an ~/.aws profile or an instance/task role; for Google Cloud, Application Default Credentials",
        ),
        Error::KmsEndpointRefused { .. } => (
            2,
            "use an https KMS endpoint, or pass --allow-insecure-http if the network is yours",
        ),
        Error::KmsUnavailable { .. } => (
            2,
            "check the network, any proxy, and the KMS endpoint (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, or endpoint_url in the AWS profile)",
        ),
        Error::KmsDenied { .. } => (
            2,
            "allow kms:Decrypt on the key for this machine's credentials (see who they are with `aws sts get-caller-identity`), and check the keyset was encrypted under this key",
        ),
        Error::KmsKeyNotFound { .. } => (
            2,
            "check --kek-uri: the key id, its region and account; the key may have been deleted",
        ),
        Error::KmsKeyUnusable { .. } => (
            2,
            "enable the KMS key or cancel its deletion (a symmetric ENCRYPT_DECRYPT key is needed)",
        ),
        Error::WrongKmsKey { .. } => (2, "pass the --kek-uri the keyset was created with"),
        Error::KeysetCiphertextInvalid { .. } => (
            2,
            "the keyset file is damaged: restore it from a backup, or import the secret again",
        ),
        Error::Tink {
            step: TinkStep::BuildPrimitive | TinkStep::ComputeHmac,
            ..
        } => (3, HMAC_FIX),
        Error::NoPrimaryKey { .. }
        | Error::NotHmac { .. }
        | Error::UnsuitableHmacKey { .. }
        | Error::KeysetDecode { .. }
        | Error::Tink {
            step: TinkStep::LoadKeyset,
            ..
        } => (
            2,
            "this keyset does not hold an AWS secret as keyhold needs it: create one with `keyhold import --key tink:PATH`",
        ),
        _ => (2, "see the message from KMS"),
    }
}

/// The links with `fix` as the fix of link `at`.
fn links(at: usize, fix: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![
        (KEYSET, KEYSET_FIX),
        (URI, URI_FIX),
        (DECRYPT, "see the message from KMS"),
        (HMAC, HMAC_FIX),
    ];
    if let Some(link) = links.get_mut(at) {
        link.1 = fix;
    }
    links
}

fn failed_at(
    at: usize,
    fix: &'static str,
    details: &[String],
    error: &(dyn std::error::Error + 'static),
) -> (Vec<Link>, Option<OpenedKey>) {
    (chain(&links(at, fix), details, Some((at, error))), None)
}

/// The keyset file, the KMS key, KMS decrypting the keyset, one HMAC.
pub fn doctor(path: &Path, args: &KeyArgs) -> (Vec<Link>, Option<OpenedKey>) {
    let mut details = Vec::new();
    let json = match std::fs::read(path) {
        Ok(json) => json,
        Err(source) => {
            let e = CliError::Io {
                op: "read the keyset file",
                path: path.to_owned(),
                source,
            };
            return failed_at(0, KEYSET_FIX, &details, &e);
        }
    };
    let primary_key_id = match encrypted_keyset_primary(&json) {
        Ok(id) => id,
        Err(e) => return failed_at(0, KEYSET_FIX, &details, &e),
    };
    let access_key_id = match access_key_id(path, Some(primary_key_id), args) {
        Ok(id) => id,
        Err(e) => return failed_at(0, AKID_FIX, &details, &e),
    };
    details.push(format!(
        "{} (primary key {primary_key_id}, access key id {access_key_id})",
        path.display()
    ));

    let master_key = match master_key(args) {
        Ok(master_key) => master_key,
        Err(e) => {
            let (at, fix) = match &e {
                CliError::Open { source, .. } => source
                    .downcast_ref::<Error>()
                    .map_or((1, URI_FIX), diagnose),
                _ => (1, URI_FIX),
            };
            return failed_at(at.clamp(1, 2), fix, &details, &e);
        }
    };
    details.push(master_key.name().to_owned());

    let key = match TinkRootKey::open(&json, &master_key) {
        Ok(key) => key,
        Err(e) => {
            let (at, fix) = diagnose(&e);
            return failed_at(at, fix, &details, &e);
        }
    };
    details.push(format!("keyset primary key {}", key.key_id()));
    if let Err(e) = super::one_hmac(&key) {
        return failed_at(3, HMAC_FIX, &details, &e);
    }
    details.push("HMAC-SHA256 (Tink)".to_owned());
    let opened = OpenedKey {
        root_key: Arc::new(key),
        access_key_id,
    };
    (chain(&links(4, ""), &details, None), Some(opened))
}

/// Checks the file is an encrypted JSON keyset (not a cleartext one, not something else)
/// and returns the primary key id it claims.
fn encrypted_keyset_primary(json: &[u8]) -> Result<u64, KeysetFileProblem> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| KeysetFileProblem(format!("the file is not JSON ({e})")))?;
    if value.get("encryptedKeyset").is_none() && value.get("key").is_some() {
        return Err(KeysetFileProblem(
            "this is a cleartext keyset: the secret is readable in the file; import it with \
             `keyhold import --key tink:PATH --kek-uri URI`, then delete this file"
                .into(),
        ));
    }
    match value.get("encryptedKeyset").and_then(|v| v.as_str()) {
        Some(text) if !text.is_empty() => {}
        _ => {
            return Err(KeysetFileProblem(
                "no 'encryptedKeyset' in the file: not an encrypted Tink JSON keyset".into(),
            ));
        }
    }
    Ok(value["keysetInfo"]["primaryKeyId"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tink_failures_land_on_the_link_they_break() {
        let tink = |step| Error::Tink {
            step,
            message: "x".into(),
        };
        assert_eq!(diagnose(&tink(TinkStep::ComputeHmac)), (3, HMAC_FIX));
        assert_eq!(diagnose(&tink(TinkStep::BuildPrimitive)).0, 3);
        assert_eq!(diagnose(&tink(TinkStep::LoadKeyset)).0, 2);
        assert_eq!(links(3, HMAC_FIX)[3], (HMAC, HMAC_FIX));
    }

    #[test]
    fn the_access_key_id_lives_next_to_the_keyset() {
        assert_eq!(
            access_key_id_path(Path::new("/etc/keyhold/aws.keyset.json")),
            Path::new("/etc/keyhold/aws.keyset.json.access-key-id")
        );
    }

    #[test]
    fn only_encrypted_keysets_pass_the_file_check() {
        let encrypted =
            br#"{"encryptedKeyset":"AAAA","keysetInfo":{"primaryKeyId":42,"keyInfo":[]}}"#;
        assert_eq!(encrypted_keyset_primary(encrypted).unwrap(), 42);
        let cleartext = br#"{"primaryKeyId":1,"key":[{"keyData":{}}]}"#;
        let err = encrypted_keyset_primary(cleartext).unwrap_err().to_string();
        assert!(err.contains("cleartext keyset"), "{err}");
        let err = encrypted_keyset_primary(b"not json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not JSON"), "{err}");
        let err = encrypted_keyset_primary(b"{}").unwrap_err().to_string();
        assert!(err.contains("encryptedKeyset"), "{err}");
    }
}
