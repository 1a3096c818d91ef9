//! `--key vault:NAME` (or `vault:MOUNT/NAME`): the secret as a non-exportable HMAC key in a
//! Vault or OpenBao transit engine (backend-vault).
//!
//! The server comes from `--vault-addr` / `VAULT_ADDR` (TLS through rustls, `VAULT_CACERT`
//! for a private CA), the namespace from `VAULT_NAMESPACE`; the token from `VAULT_TOKEN`, a
//! token file (`--vault-token-file`, default `~/.vault-token`), or an AppRole login
//! (`--vault-role-id`, the secret id from `--vault-secret-id-file`) — never from a flag. A
//! transit key holds no metadata of keyhold's, so the access key id comes from
//! `--access-key-id` or `AWS_ACCESS_KEY_ID`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend_vault::{Auth, KeyPath, VaultClient, VaultConfig, VaultError, VaultRootKey};
use secrecy::SecretString;
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

use super::OpenedKey;
use crate::args::{ImportArgs, KeyArgs};
use crate::error::CliError;
use crate::key_ref::KeyRef;
use crate::report::{Link, chain};

const NO_AKID_HINT: &str = " (a Vault transit key does not store its access key id)";

fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| CliError::Io {
            op: what,
            path: path.to_owned(),
            source,
        })
}

/// The first line of a secret file, without surrounding whitespace.
fn secret_line(what: &'static str, path: &Path) -> Result<SecretString, CliError> {
    let bytes = crate::secret_input::first_line_of_file(what, path)?;
    let line = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::Usage(format!("{} is not text", path.display())))?
        .trim();
    if line.is_empty() {
        return Err(CliError::Usage(format!("{} is empty", path.display())));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// The server and the login, from the flags and the environment (no network call).
fn config(args: &KeyArgs) -> Result<VaultConfig, CliError> {
    let vault = &args.vault;
    let addr = vault
        .vault_addr
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            CliError::Usage("no Vault server: set VAULT_ADDR or pass --vault-addr URL".into())
        })?;
    let ca_pem = vault
        .vault_cacert
        .as_deref()
        .map(|path| read_file("read the CA certificate file", path).map(|pem| pem.to_vec()))
        .transpose()?;
    let auth = match &vault.vault_role_id {
        Some(role_id) => {
            let file = vault.vault_secret_id_file.as_deref().ok_or_else(|| {
                CliError::Usage(
                    "--vault-role-id needs --vault-secret-id-file, the file holding the AppRole's \
                     secret id"
                        .into(),
                )
            })?;
            Auth::AppRole {
                mount: vault.vault_approle_mount.clone(),
                role_id: role_id.clone(),
                secret_id: secret_line("read the AppRole secret id file", file)?,
            }
        }
        None => Auth::Token(token(vault.vault_token_file.as_deref())?),
    };
    Ok(VaultConfig {
        addr,
        namespace: vault.vault_namespace.clone(),
        ca_pem,
        allow_insecure_http: args.allow_insecure_http,
        auth,
    })
}

/// `VAULT_TOKEN`, else the token file (the flag's, else `~/.vault-token`).
fn token(file: Option<&Path>) -> Result<SecretString, CliError> {
    if let Some(token) = std::env::var("VAULT_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(SecretString::from(token.trim().to_owned()));
    }
    let default = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".vault-token"));
    match file.map(Path::to_owned).or(default) {
        Some(path) if file.is_some() || path.exists() => {
            secret_line("read the Vault token file", &path)
        }
        _ => Err(CliError::Usage(
            "no Vault token: set VAULT_TOKEN, log in with `bao login` / `vault login` (which \
             writes ~/.vault-token), pass --vault-token-file FILE, or use AppRole \
             (--vault-role-id, --vault-secret-id-file)"
                .into(),
        )),
    }
}

fn connect(args: &KeyArgs) -> Result<VaultClient, CliError> {
    let config = config(args)?;
    VaultClient::connect(config).map_err(|e| CliError::open(args.key(), e))
}

pub fn open(key: &KeyPath, args: &KeyArgs) -> Result<OpenedKey, CliError> {
    let access_key_id = super::access_key_id(args, None, NO_AKID_HINT)?;
    let client = Arc::new(connect(args)?);
    let root_key =
        VaultRootKey::open(client, key.clone()).map_err(|e| CliError::open(args.key(), e))?;
    Ok(OpenedKey {
        root_key: Arc::new(root_key),
        access_key_id,
    })
}

/// Before the secret is read: the server answers, the transit engine's wrapping key is
/// readable, and no key of that name exists (imported keys cannot be replaced).
pub fn preflight_import(key: &KeyPath, args: &ImportArgs) -> Result<(), CliError> {
    #[cfg(feature = "pkcs11")]
    if args.label.is_some() || args.id.is_some() {
        return Err(CliError::Usage(
            "--label and --id are for PKCS#11 keys; a Vault key is named by vault:NAME".into(),
        ));
    }
    #[cfg(feature = "tpm")]
    if args.tpm_persist_at.is_some() || args.tpm_pem_out.is_some() {
        return Err(CliError::Usage(
            "--tpm-persist-at and --tpm-pem-out are for TPM keys, not a Vault key".into(),
        ));
    }
    if args.replace {
        return Err(CliError::Usage(format!(
            "a Vault transit key that was imported cannot be replaced: import under a new name \
             (--key vault:{}/NEW-NAME) and point the users at it",
            key.mount
        )));
    }
    let client = connect(&args.key)?;
    let refuse = |e: VaultError| CliError::open(args.key.key(), e);
    client.wrapping_key(&key.mount).map_err(refuse)?;
    match client.key_info(key) {
        Ok(Some(_)) => Err(refuse(VaultError::KeyExists {
            key: key.to_string(),
        })),
        Ok(None) | Err(VaultError::Denied { .. }) => Ok(()),
        Err(e) => Err(refuse(e)),
    }
}

pub fn import(key: &KeyPath, args: &ImportArgs, secret: &RootSecret) -> Result<KeyRef, CliError> {
    let reference = KeyRef::Vault(key.clone());
    let client = Arc::new(connect(&args.key)?);
    backend_vault::import(&client, key, secret).map_err(|e| CliError::Import {
        backend: "Vault transit engine",
        source: e.into(),
    })?;
    let root_key =
        VaultRootKey::open(client, key.clone()).map_err(|e| CliError::open(&reference, e))?;
    let proved =
        super::prove_import(&root_key, secret).map_err(|e| CliError::open(&reference, e))?;
    if !proved {
        return Err(CliError::ImportCheckFailed {
            key: reference.to_string(),
            cleanup: "the key stays in the transit engine (imported keys cannot be deleted by \
                      default): do not use it, and ask the Vault administrators to delete it"
                .into(),
        });
    }
    Ok(reference)
}

const LINKS: [(&str, &str); 4] = [
    (
        "Vault configured (address, token or AppRole)",
        "set VAULT_ADDR (or --vault-addr) and VAULT_TOKEN, a token file, or AppRole flags; and --access-key-id",
    ),
    (
        "Vault reachable and unsealed, the token valid",
        "check VAULT_ADDR and VAULT_CACERT, unseal the server, or log in again",
    ),
    (
        "the key is an HMAC key that cannot be exported (where the token may read it)",
        "import the secret under a new name: an exportable key lets the secret leave Vault",
    ),
    (
        "one HMAC",
        "give the token `update` on MOUNT/hmac/NAME/sha2-256 in its policy",
    ),
];

/// The configuration, the server and the token, the key's settings, one HMAC.
pub fn doctor(key: &KeyPath, args: &KeyArgs) -> (Vec<Link>, Option<OpenedKey>) {
    let mut details = Vec::new();
    let failed = |at: usize, details: &[String], e: &(dyn std::error::Error + 'static)| {
        (chain(&LINKS, details, Some((at, e))), None)
    };
    let access_key_id = match super::access_key_id(args, None, NO_AKID_HINT) {
        Ok(id) => id,
        Err(e) => return failed(0, &details, &e),
    };
    let config = match config(args) {
        Ok(config) => config,
        Err(e) => return failed(0, &details, &e),
    };
    details.push(format!("{} (access key id {access_key_id})", config.addr));
    let client = match VaultClient::connect(config) {
        Ok(client) => client,
        Err(e) => return failed(1, &details, &e),
    };
    let mut token = match client.lookup_self() {
        Ok(info) if info.ttl == 0 => format!("token without expiry, policies {:?}", info.policies),
        Ok(info) => format!(
            "token valid for {} s, policies {:?}",
            info.ttl, info.policies
        ),
        Err(e) => return failed(1, &details, &e),
    };
    let config_path = format!("{}/keys/{}/config", key.mount, key.name);
    match client.capabilities(&config_path) {
        Ok(caps)
            if caps
                .iter()
                .any(|c| c == "root" || c == "update" || c == "sudo") =>
        {
            token.push_str(&format!(
                "; WARNING: this token may change {config_path} (make the key exportable): sign \
                 with a token that may only HMAC"
            ));
        }
        Ok(_) => {}
        Err(e) => token.push_str(&format!(
            "; whether it may change {config_path} could not be checked: {}",
            sigv4_core::error_chain(&e)
        )),
    }
    details.push(token);
    let client = Arc::new(client);
    let root_key = match VaultRootKey::open(client.clone(), key.clone()) {
        Ok(root_key) => root_key,
        Err(e) => return failed(2, &details, &e),
    };
    details.push(match client.key_info(key) {
        Ok(Some(info)) => format!(
            "hmac, exportable {}, allow_plaintext_backup {}, imported {}",
            info.exportable, info.allow_plaintext_backup, info.imported_key
        ),
        _ => "the token may not read the key's settings (least privilege): ask the administrators"
            .into(),
    });
    if let Err(e) = super::one_hmac(&root_key) {
        return failed(3, &details, &e);
    }
    details.push(format!("{key} computed kDate"));
    (
        chain(&LINKS, &details, None),
        Some(OpenedKey {
            root_key: Arc::new(root_key),
            access_key_id,
        }),
    )
}
