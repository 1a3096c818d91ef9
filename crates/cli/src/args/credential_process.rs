//! `keyhold credential-process`'s arguments: the STS path (`--key`) and the IAM Roles
//! Anywhere path (`--certificate`), which share `--role-arn`, the duration and the
//! session name.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{KeyArgs, StsArgs, parse_duration};

pub(super) const CREDENTIAL_PROCESS_EXAMPLES: &str = "\
Examples (in ~/.aws/config; the line is split like a shell's, without a shell):
  [profile deploy]
  credential_process = keyhold credential-process --key tpm:file=/etc/keyhold/aws.pem --role-arn arn:aws:iam::123456789012:role/deploy --duration-seconds 3600
  region = us-east-1

  [profile me]
  credential_process = keyhold credential-process --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin' --get-session-token
  region = us-east-1

  # IAM Roles Anywhere, as the AWS signing helper's line with the program renamed
  [profile ra]
  credential_process = keyhold credential-process --certificate /etc/keyhold/client.pem --private-key /etc/keyhold/client.key --trust-anchor-arn arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/TA --profile-arn arn:aws:rolesanywhere:us-east-1:123456789012:profile/P --role-arn arn:aws:iam::123456789012:role/deploy

Prints {\"Version\": 1, \"AccessKeyId\", \"SecretAccessKey\", \"SessionToken\", \"Expiration\"}.
On failure it prints one line on stderr and exits 1, which the AWS CLI and SDKs show.";

/// `keyhold credential-process`.
#[derive(Debug, Args)]
pub struct CredentialProcessArgs {
    /// Where the credentials come from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Always fetch new credentials: neither read nor write the cache (also
    /// KEYHOLD_NO_CACHE=1).
    #[arg(
        long,
        env = "KEYHOLD_NO_CACHE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_cache: bool,

    /// Cached credentials are used until this long before they expire: seconds, or with a
    /// unit (5m). The cache is in $XDG_RUNTIME_DIR/keyhold (else ~/.cache/keyhold, or
    /// KEYHOLD_CACHE_DIR).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub cache_margin: Duration,
}

/// Where temporary credentials come from: an HMAC key through STS, or an X.509 certificate
/// through IAM Roles Anywhere (`credential-process`, `serve`, `exec`, `export`, `update`).
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("credentials").required(true).args(["role_arn", "get_session_token"]))]
#[command(group = clap::ArgGroup::new("source").required(true).args(["key", "certificate"]))]
pub struct SourceArgs {
    /// The signing key.
    #[command(flatten)]
    pub key: KeyArgs,

    /// Where STS is.
    #[command(flatten)]
    pub sts: StsArgs,

    /// Assume this role (STS AssumeRole).
    #[arg(long, env = "KEYHOLD_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,

    /// The role session name (default: keyhold-<unix time>).
    #[arg(
        long,
        env = "KEYHOLD_ROLE_SESSION_NAME",
        value_name = "NAME",
        conflicts_with = "get_session_token"
    )]
    pub role_session_name: Option<String>,

    /// The external id the role's trust policy asks for.
    #[arg(
        long,
        env = "KEYHOLD_EXTERNAL_ID",
        value_name = "ID",
        conflicts_with_all = ["get_session_token", "certificate"],
        hide_env_values = true
    )]
    pub external_id: Option<String>,

    /// Get session credentials for the key's own identity (STS GetSessionToken) instead of
    /// assuming a role.
    #[arg(long, alias = "session-token", conflicts_with_all = ["role_arn", "certificate"])]
    pub get_session_token: bool,

    /// How long the credentials last: seconds, or with a unit (15m, 1h, 12h). 900 s to
    /// 12 h for a role (and at most the role's maximum), to 36 h for --get-session-token.
    #[arg(
        long = "duration-seconds",
        visible_alias = "duration",
        env = "KEYHOLD_DURATION",
        value_name = "DURATION",
        alias = "session-duration",
        default_value = "3600",
        value_parser = parse_duration
    )]
    pub duration: Duration,

    /// IAM Roles Anywhere: an X.509 certificate instead of an HMAC key.
    #[command(flatten, next_help_heading = "IAM Roles Anywhere (instead of --key)")]
    pub roles_anywhere: RolesAnywhereArgs,
}

/// `credential-process` through IAM Roles Anywhere: flag names as the AWS signing helper's.
#[derive(Debug, Args)]
pub struct RolesAnywhereArgs {
    /// The certificate: a PEM file (the leaf first; intermediates after it are sent too), a
    /// DER file, or a pkcs11: URI of a certificate on a token (type=cert), whose private key
    /// (same CKA_ID) then signs without --private-key. Signs CreateSession instead of
    /// --key; needs --trust-anchor-arn, --profile-arn and --role-arn.
    #[arg(
        long,
        value_name = "FILE|URI",
        requires_all = ["trust_anchor_arn", "profile_arn"]
    )]
    pub certificate: Option<String>,

    /// The certificate's private key: a pkcs11: URI (type=private; the PIN as for --key),
    /// or a PEM file (PKCS#8, encrypted PKCS#8, SEC1 or PKCS#1; RSA, P-256 or P-384) whose
    /// password, if encrypted, comes from --private-key-password-file or
    /// KEYHOLD_PRIVATE_KEY_PASSWORD, never from a flag.
    #[arg(long, value_name = "FILE|URI", requires = "certificate")]
    pub private_key: Option<String>,

    /// A file holding the password of an encrypted --private-key.
    #[arg(long, value_name = "FILE", requires = "private_key")]
    pub private_key_password_file: Option<PathBuf>,

    /// Intermediate CA certificates (a PEM bundle, the one that issued the leaf first),
    /// sent as X-Amz-X509-Chain.
    #[arg(long, value_name = "FILE", requires = "certificate")]
    pub intermediates: Option<PathBuf>,

    /// The trust anchor (its region is where the session is asked for, unless --region).
    #[arg(long, value_name = "ARN", requires = "certificate")]
    pub trust_anchor_arn: Option<String>,

    /// The Roles Anywhere profile.
    #[arg(long, value_name = "ARN", requires = "certificate")]
    pub profile_arn: Option<String>,

    /// The PKCS#11 module of a pkcs11: --certificate or --private-key whose URI names none
    /// (the URI's module-path= or module-name= wins). Default: p11-kit's proxy.
    #[arg(long, value_name = "LIB", requires = "certificate")]
    pub pkcs11_lib: Option<PathBuf>,

    /// The AWS signing helper's flags that change nothing here.
    #[command(flatten)]
    pub signing_helper: SigningHelperFlags,
}

/// Flags of the AWS signing helper that keyhold takes, so that its `~/.aws/config` lines work
/// unchanged, though they change nothing: keyhold always does what they ask for. Hidden from
/// --help; the README lists them.
#[derive(Debug, Args)]
pub struct SigningHelperFlags {
    /// Use HTTPS_PROXY / HTTP_PROXY / NO_PROXY: keyhold always does.
    #[arg(long, hide = true)]
    pub with_proxy: bool,

    /// Log in to a key that always authenticates with the user PIN: keyhold always does.
    #[arg(long, hide = true)]
    pub reuse_pin: bool,

    /// The TPM key has no password: keyhold's default unless one is given.
    #[arg(long, hide = true)]
    pub no_tpm_key_password: bool,
}
