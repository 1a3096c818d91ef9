//! Naming and opening a key (`--key` and each backend's options), and where STS is.

#[cfg(any(feature = "tpm", feature = "vault"))]
use std::path::PathBuf;

use clap::Args;

use crate::key_ref::KeyRef;

/// Naming and opening a key.
#[derive(Clone, Debug, Args)]
pub struct KeyArgs {
    /// The key: pkcs11:<RFC 7512 URI>, tpm:file=<key.pem>, tpm:handle=0x81xxxxxx,
    /// tink:<keyset.json> (with --kek-uri) or vault:NAME / vault:MOUNT/NAME (a Vault or OpenBao
    /// transit key, with --vault-addr).
    ///
    /// A PKCS#11 PIN comes from the URI's pin-source=file:PATH, else from the
    /// KEYHOLD_PKCS11_PIN environment variable.
    #[arg(
        long,
        env = "KEYHOLD_KEY",
        value_name = "KEY",
        hide_env_values = true,
        required = true
    )]
    pub key: Option<KeyRef>,

    /// The AWS access key id of the secret. Default: the one stored with the key at import
    /// (for a Tink keyset, in the file <keyset>.access-key-id next to it; a Vault key stores
    /// none).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", value_name = "AKID")]
    pub access_key_id: Option<String>,

    /// Allow plain http:// to other machines (STS, KMS, sign --send). Without it, http is
    /// allowed only to loopback addresses: credentials (and for a Tink import, the secret
    /// sent to KMS for wrapping) would cross the network in clear text.
    #[arg(long)]
    pub allow_insecure_http: bool,

    /// TPM options.
    #[cfg(feature = "tpm")]
    #[command(flatten)]
    pub tpm: TpmArgs,

    /// Tink options.
    #[cfg(feature = "tink")]
    #[command(flatten)]
    pub tink: TinkArgs,

    /// Vault / OpenBao options.
    #[cfg(feature = "vault")]
    #[command(flatten)]
    pub vault: VaultArgs,
}

impl KeyArgs {
    /// The `--key` value. Every command requires it, except `credential-process` with
    /// `--certificate`, which never opens an HMAC key.
    pub fn key(&self) -> &KeyRef {
        self.key
            .as_ref()
            .expect("clap requires --key unless credential-process runs with --certificate")
    }

    /// Whether the key is a Tink keyset under an AWS KMS key (whose client may run an AWS
    /// profile's credential_process).
    pub fn kek_uri_is_aws(&self) -> bool {
        #[cfg(feature = "tink")]
        {
            self.tink
                .kek_uri
                .as_deref()
                .is_none_or(|uri| uri.starts_with("aws-kms://"))
        }
        #[cfg(not(feature = "tink"))]
        false
    }
}

/// Which KMS key a Tink keyset is encrypted under.
#[cfg(feature = "tink")]
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Tink")]
pub struct TinkArgs {
    /// The KMS key (key-encryption key) of a tink: keyset:
    /// aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID or
    /// gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K.
    ///
    /// KMS is called with this machine's own credentials: for AWS the standard chain
    /// (environment, ~/.aws profiles, instance or task role) and AWS_ENDPOINT_URL_KMS /
    /// AWS_ENDPOINT_URL; for Google Cloud, Application Default Credentials. Note: on each use
    /// KMS decrypts the keyset and the HMAC key is in this process's memory while keyhold
    /// runs (a PKCS#11 token or a TPM never lets it out).
    #[arg(long, env = "KEYHOLD_KEK_URI", value_name = "URI")]
    pub kek_uri: Option<String>,
}

/// How to reach a TPM and authorize its key.
#[cfg(feature = "tpm")]
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "TPM")]
pub struct TpmArgs {
    /// The TPM: swtpm:host=H,port=P, device:/dev/tpmrm0 or tabrmd. Default: TPM2TOOLS_TCTI,
    /// else TCTI, else device:/dev/tpmrm0.
    #[arg(long, env = "KEYHOLD_TCTI", value_name = "TCTI")]
    pub tcti: Option<String>,

    /// Bind the key to these PCRs (sha256 bank) at import; name them again to use a
    /// persistent-handle key (a key file records them).
    #[arg(
        long,
        env = "KEYHOLD_TPM_PCRS",
        value_name = "N,N,...",
        value_delimiter = ','
    )]
    pub tpm_pcrs: Vec<u8>,

    /// A file holding the key's password (trailing newline ignored). Default:
    /// KEYHOLD_TPM_PASSWORD, else no password.
    #[arg(long, env = "KEYHOLD_TPM_PASSWORD_FILE", value_name = "PATH")]
    pub tpm_password_file: Option<PathBuf>,

    /// Refuse a TPM whose endorsement key name (hex) differs: guards the encrypted session
    /// against a TPM in the middle.
    #[arg(long, env = "KEYHOLD_TPM_EK_NAME", value_name = "HEX")]
    pub tpm_ek_name: Option<String>,
}

/// Where STS is.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "AWS")]
pub struct StsArgs {
    /// The AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1). With
    /// --certificate, the Roles Anywhere signing region and endpoint region, as the AWS
    /// signing helper's --region (default: the trust anchor's region; AWS_REGION is not
    /// read then).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The STS endpoint (default: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the
    /// region's STS endpoint); with --certificate, the Roles Anywhere endpoint (default:
    /// AWS_ENDPOINT_URL_ROLESANYWHERE, else AWS_ENDPOINT_URL, else the region's). Plain
    /// http only to loopback, unless --allow-insecure-http; -v logs which endpoint is used
    /// and where it came from. --endpoint is the AWS signing helper's name for it.
    #[arg(long, visible_alias = "endpoint", value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl StsArgs {
    /// `--region`, else `AWS_REGION` (a region a server or child process is told about).
    pub fn region_or_env(&self) -> Option<String> {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .filter(|r| !r.is_empty())
    }
}

/// Where the Vault or OpenBao server is and how to log in (`--key vault:NAME`). The token
/// itself is never a flag: `VAULT_TOKEN`, a token file, or an AppRole login.
#[cfg(feature = "vault")]
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Vault / OpenBao")]
pub struct VaultArgs {
    /// The server: https://vault.example.com:8200 (http only on loopback, or with
    /// --allow-insecure-http).
    #[arg(long, env = "VAULT_ADDR", value_name = "URL")]
    pub vault_addr: Option<String>,

    /// The namespace (Vault Enterprise, OpenBao).
    #[arg(long, env = "VAULT_NAMESPACE", value_name = "NS")]
    pub vault_namespace: Option<String>,

    /// A PEM file of CA certificates to trust for the server, besides the usual roots.
    #[arg(long, env = "VAULT_CACERT", value_name = "FILE")]
    pub vault_cacert: Option<PathBuf>,

    /// A file holding the token (default: VAULT_TOKEN, else ~/.vault-token).
    #[arg(long, env = "KEYHOLD_VAULT_TOKEN_FILE", value_name = "FILE")]
    pub vault_token_file: Option<PathBuf>,

    /// Log in with AppRole: the role id (its secret id from --vault-secret-id-file).
    #[arg(long, env = "VAULT_ROLE_ID", value_name = "ID")]
    pub vault_role_id: Option<String>,

    /// The file holding the AppRole's secret id.
    #[arg(long, env = "KEYHOLD_VAULT_SECRET_ID_FILE", value_name = "FILE")]
    pub vault_secret_id_file: Option<PathBuf>,

    /// The AppRole auth method's mount.
    #[arg(long, default_value = "approle", value_name = "PATH")]
    pub vault_approle_mount: String,
}
