//! The command line: clap definitions with help text and examples. Every flag that is not
//! a secret can also come from an environment variable (shown in `--help`); secrets (the
//! secret access key, PINs, TPM passwords) are never flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::key_ref::KeyRef;

mod cert;
mod credential_process;
mod key;
mod serve;

use cert::CERT_EXAMPLES;
pub use cert::{CertArgs, CertCommand, CertShowArgs, SignStringArgs, SignatureFormat};
use credential_process::CREDENTIAL_PROCESS_EXAMPLES;
pub use credential_process::{
    CredentialProcessArgs, RolesAnywhereArgs, SigningHelperFlags, SourceArgs,
};
pub use key::{KeyArgs, StsArgs};
use serve::{EXEC_EXAMPLES, SERVE_EXAMPLES, UPDATE_EXAMPLES};
pub use serve::{ExecArgs, ExportArgs, ExportFormat, RefreshArgs, ServeArgs, UpdateArgs};

const ABOUT: &str =
    "Use AWS with a secret access key kept in a PKCS#11 token, a TPM or a KMS-wrapped Tink keyset";

const LONG_ABOUT: &str = "\
Use AWS with a secret access key kept in a PKCS#11 token, a TPM or a KMS-wrapped Tink keyset.

`keyhold import` puts \"AWS4\"+secret into the device once. From then on the device computes
only the first step of SigV4 (kDate = HMAC-SHA256(\"AWS4\"+secret, yyyymmdd)); the rest of the
signature is computed here. The secret itself is never read back.

With a Tink keyset (--key tink:PATH --kek-uri aws-kms://...) the file holds only KMS
ciphertext, but on each use KMS decrypts it and the HMAC key is in this process's memory
while keyhold runs: weaker than PKCS#11 or a TPM, where the secret never leaves the device.";

const EXAMPLES: &str = "\
Examples:
  # once: put the secret into SoftHSM (the secret is read from stdin, never from a flag)
  keyhold import --access-key-id AKIAIOSFODNN7EXAMPLE \\
      --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin' \\
      < secret.txt
  # who am I, signed by the token
  keyhold whoami --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin'
  # ~/.aws/config: any AWS SDK or the AWS CLI gets role credentials through keyhold
  [profile prod]
  credential_process = keyhold credential-process --key tpm:file=/etc/keyhold/aws.pem --role-arn arn:aws:iam::123456789012:role/deploy
  region = us-east-1
  # a KMS-wrapped Tink keyset (KMS is called with this machine's own AWS credentials)
  keyhold whoami --key tink:/etc/keyhold/aws.keyset.json \\
      --kek-uri aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab

Exit status: 0 success, 1 the operation failed, 2 the command line was wrong.
-v logs what happens, -vv more; logs go to stderr and never contain a secret.";

/// `keyhold`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "keyhold",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Log to stderr: -v what happens, -vv details, -vvv everything (never secrets).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The AWS signing helper's --debug: the same as -vv.
    #[arg(long, global = true, hide = true)]
    pub debug: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a secret access key into a device (once), and print the key reference to use.
    #[command(after_long_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Sign an HTTP request: print the signed headers or a presigned URL, or send it.
    #[command(after_long_help = SIGN_EXAMPLES)]
    Sign(SignArgs),
    /// Call STS GetCallerIdentity signed by the device key (same JSON as the AWS CLI).
    #[command(after_long_help = WHOAMI_EXAMPLES)]
    Whoami(WhoamiArgs),
    /// Print temporary credentials as AWS credential_process JSON (for ~/.aws/config).
    #[command(
        after_long_help = CREDENTIAL_PROCESS_EXAMPLES,
        mut_arg("key", |a| a.required(false))
    )]
    CredentialProcess(CredentialProcessArgs),
    /// Serve temporary credentials to programs on this machine: an IMDSv2 endpoint and an
    /// ECS container endpoint, refreshed ahead of expiry.
    #[command(after_long_help = SERVE_EXAMPLES, mut_arg("key", |a| a.required(false)))]
    Serve(ServeArgs),
    /// Run a command with temporary credentials (an ECS endpoint for it, or --env).
    #[command(after_long_help = EXEC_EXAMPLES, mut_arg("key", |a| a.required(false)))]
    Exec(ExecArgs),
    /// Print temporary credentials once: shell exports, JSON or a credentials-file section.
    #[command(mut_arg("key", |a| a.required(false)))]
    Export(ExportArgs),
    /// Keep a profile's temporary credentials in ~/.aws/credentials fresh.
    #[command(after_long_help = UPDATE_EXAMPLES, mut_arg("key", |a| a.required(false)))]
    Update(UpdateArgs),
    /// Check each link from the device to STS, and say how to fix the first broken one.
    #[command(after_long_help = DOCTOR_EXAMPLES, mut_arg("key", |a| a.required(false)))]
    Doctor(DoctorArgs),
    /// IAM Roles Anywhere certificates: make a key pair in the device, a certificate request,
    /// put the certificate on the token, show one.
    #[command(after_long_help = CERT_EXAMPLES)]
    Cert(CertArgs),
    /// Sign standard input with a Roles Anywhere private key (a self-test, as the AWS signing
    /// helper's sign-string); --certificate also checks it.
    #[command(mut_arg("key", |a| a.required(false).hide(true)))]
    SignString(SignStringArgs),
    /// `cert show`, by the AWS signing helper's name.
    #[command(hide = true)]
    ReadCertificateData(CertShowArgs),
}

impl Command {
    /// The key the command uses, if it uses one.
    pub fn key_args(&self) -> Option<&KeyArgs> {
        Some(match self {
            Command::Import(a) => &a.key,
            Command::Sign(a) => &a.key,
            Command::Whoami(a) => &a.key,
            Command::CredentialProcess(_)
            | Command::Serve(_)
            | Command::Exec(_)
            | Command::Export(_)
            | Command::Update(_) => &self.source_args()?.key,
            Command::Doctor(a) => &a.key,
            Command::Cert(a) => match &a.command {
                CertCommand::Keygen(a) => &a.key,
                CertCommand::Csr(a) => &a.key,
                CertCommand::Import(a) => &a.key,
                CertCommand::Show(_) => return None,
            },
            Command::SignString(a) => &a.key,
            Command::ReadCertificateData(_) => return None,
        })
    }

    /// Where the credentials come from, for the commands that hand out temporary ones.
    pub fn source_args(&self) -> Option<&SourceArgs> {
        Some(match self {
            Command::CredentialProcess(a) => &a.source,
            Command::Serve(a) => &a.source,
            Command::Exec(a) => &a.source,
            Command::Export(a) => &a.source,
            Command::Update(a) => &a.source,
            _ => return None,
        })
    }

    /// Whether the command runs for long and handles SIGINT, SIGTERM and SIGHUP itself.
    pub fn long_running(&self) -> bool {
        match self {
            Command::Serve(_) | Command::Exec(_) => true,
            Command::Update(a) => !a.once,
            _ => false,
        }
    }

    /// What the process's environment must hold for this command's key.
    pub fn process_needs(&self) -> crate::process::Needs {
        let Some(key) = self.key_args() else {
            return crate::process::Needs {
                quiet_tss2: false,
                nesting_marker: false,
            };
        };
        // A Roles Anywhere key in a TPM (`--private-key tpm:...`) talks to the TPM too.
        let roles_anywhere_tpm = match self {
            Command::SignString(a) => Some(a.private_key.as_str()),
            Command::Doctor(a) => a.roles_anywhere.private_key.as_deref(),
            _ => self
                .source_args()
                .and_then(|a| a.roles_anywhere.private_key.as_deref()),
        }
        .is_some_and(|k| {
            k.starts_with("tpm:")
                || crate::commands::roles_anywhere::signing_helper_tpm_key(k).is_some()
        });
        crate::process::Needs {
            quiet_tss2: key.key.as_ref().is_some_and(KeyRef::is_tpm) || roles_anywhere_tpm,
            nesting_marker: key.key.as_ref().is_some_and(KeyRef::is_tink) && key.kek_uri_is_aws(),
        }
    }
}

const IMPORT_EXAMPLES: &str = "\
Examples:
  # SoftHSM; the PIN comes from the file named in the URI
  keyhold import --access-key-id AKIAIOSFODNN7EXAMPLE \\
      --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin' \\
      < secret.txt
  # a TPM, as a key file (the access key id is written into it)
  keyhold import --access-key-id AKIAIOSFODNN7EXAMPLE --key tpm:file=/etc/keyhold/aws.pem \\
      --tcti swtpm:host=127.0.0.1,port=2321 --secret-env AWS_SECRET_ACCESS_KEY
  # a TPM, persistent, usable only while PCRs 0,2,4,7 hold today's values
  keyhold import --access-key-id AKIAIOSFODNN7EXAMPLE --key tpm:handle=0x81008001 \\
      --tpm-pcrs 0,2,4,7 --secret-file secret.txt
  # a Tink keyset encrypted by AWS KMS (written with mode 0600; the access key id goes to
  # /etc/keyhold/aws.keyset.json.access-key-id)
  keyhold import --access-key-id AKIAIOSFODNN7EXAMPLE --key tink:/etc/keyhold/aws.keyset.json \\
      --kek-uri aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab \\
      < secret.txt

Before it reports success, import asks the device for one HMAC and compares it with the
software HMAC of the secret. It prints the --key value to use from then on (on stdout).
A Tink keyset holds only KMS ciphertext at rest, but each use decrypts the HMAC key into
the memory of the keyhold process: a PKCS#11 token or a TPM never lets it out.";

/// `keyhold import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The key to create.
    #[command(flatten)]
    pub key: KeyArgs,

    /// Read the secret access key from this file instead of stdin.
    #[arg(long, value_name = "PATH", conflicts_with = "secret_env")]
    pub secret_file: Option<PathBuf>,

    /// Read the secret access key from this environment variable instead of stdin.
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,

    /// Replace a key of the same label or id (PKCS#11), or an existing key file (TPM) or
    /// keyset file (Tink).
    #[arg(long)]
    pub replace: bool,

    /// After the import, call STS GetCallerIdentity signed by the new key: proves that the
    /// access key id and the secret belong together (the device check proves only that the
    /// device holds the secret given). Needs STS to be reachable.
    #[arg(long)]
    pub verify: bool,

    /// Where STS is, for --verify.
    #[command(flatten)]
    pub sts: StsArgs,

    /// The new key's label (instead of the URI's object=).
    #[cfg(feature = "pkcs11")]
    #[arg(long, value_name = "LABEL", help_heading = "PKCS#11")]
    pub label: Option<String>,

    /// The new key's id in hex, e.g. 01a2 (instead of the URI's id=).
    #[cfg(feature = "pkcs11")]
    #[arg(long, value_name = "HEX", value_parser = parse_hex_id, help_heading = "PKCS#11")]
    pub id: Option<HexId>,

    /// Also make a tpm:file= key persistent at this handle.
    #[cfg(feature = "tpm")]
    #[arg(long, value_name = "HANDLE", value_parser = crate::key_ref::parse_persistent_handle, help_heading = "TPM")]
    pub tpm_persist_at: Option<u32>,

    /// Also write a TSS2 PEM key file for a tpm:handle= key.
    #[cfg(feature = "tpm")]
    #[arg(long, value_name = "PATH", help_heading = "TPM")]
    pub tpm_pem_out: Option<PathBuf>,
}

/// A PKCS#11 object id given in hex.
#[cfg(feature = "pkcs11")]
#[derive(Clone, Debug)]
pub struct HexId(pub Vec<u8>);

#[cfg(feature = "pkcs11")]
fn parse_hex_id(text: &str) -> Result<HexId, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err("give the id as an even number of hex digits, e.g. 01 or a1b2".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("'{text}' is not hexadecimal"))
        })
        .collect::<Result<Vec<u8>, String>>()
        .map(HexId)
}

const SIGN_EXAMPLES: &str = "\
Examples:
  # signed headers for an STS call (paste them into another HTTP client)
  keyhold sign --key tpm:file=aws.pem --region us-east-1 --service sts -X POST \\
      -H 'content-type: application/x-www-form-urlencoded' \\
      --data 'Action=GetCallerIdentity&Version=2011-06-15' https://sts.us-east-1.amazonaws.com/
  # a presigned S3 URL valid for 15 minutes
  keyhold sign --key tpm:file=aws.pem --region eu-west-1 --service s3 --presign --expires 900 \\
      https://my-bucket.s3.eu-west-1.amazonaws.com/report.pdf
  # send it and print the response body, like curl (-i adds the status and headers)
  keyhold sign --key tpm:file=aws.pem --region us-east-1 --service s3 --send -i https://s3.amazonaws.com/";

/// `keyhold sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The signing key.
    #[command(flatten)]
    pub key: KeyArgs,

    /// The region to sign for (default: AWS_REGION, else AWS_DEFAULT_REGION).
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// The SigV4 service name: sts, s3, execute-api, ... (s3 gets S3's signing rules).
    #[arg(long, value_name = "SERVICE")]
    pub service: String,

    /// The HTTP method.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,

    /// A header to send and sign, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// The body: a string, @FILE, or @- for stdin.
    #[arg(short = 'd', long, value_name = "DATA")]
    pub data: Option<String>,

    /// Sign UNSIGNED-PAYLOAD instead of the body's SHA-256 (S3).
    #[arg(long)]
    pub unsigned_payload: bool,

    /// Print a presigned URL (signature in the query) instead of headers.
    #[arg(long)]
    pub presign: bool,

    /// How long a presigned URL is valid, in seconds (at most 604800, 7 days).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 900,
        requires = "presign",
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub expires: u64,

    /// Send the signed request and print the response body.
    #[arg(long)]
    pub send: bool,

    /// With --send: print the status line and response headers before the body.
    #[arg(short, long, requires = "send")]
    pub include: bool,

    /// With --send: exit 1 when the status is 400 or more.
    #[arg(short, long, requires = "send")]
    pub fail: bool,

    /// With --send: follow redirects (at most 10, https or loopback only), as curl -L.
    /// Without it a redirect is printed, not followed.
    #[arg(short = 'L', long, requires = "send")]
    pub location: bool,

    /// With --send: give up after this many seconds in all (decimals allowed), as curl's
    /// --max-time. Default: no limit beyond the connect and read timeouts.
    #[arg(short = 'm', long, value_name = "SECONDS", requires = "send", value_parser = parse_max_time)]
    pub max_time: Option<f64>,

    /// With --send: seconds to wait for the connection (and for each read, at least 30).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "send")]
    pub connect_timeout: u64,

    /// The absolute URL, e.g. https://sts.us-east-1.amazonaws.com/.
    #[arg(value_name = "URL")]
    pub url: String,
}

const WHOAMI_EXAMPLES: &str = "\
Examples:
  keyhold whoami --key tpm:file=/etc/keyhold/aws.pem
  keyhold whoami --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so' \\
      --endpoint-url http://127.0.0.1:5000     # a local moto_server";

/// `keyhold whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// The signing key.
    #[command(flatten)]
    pub key: KeyArgs,

    /// Where STS is.
    #[command(flatten)]
    pub sts: StsArgs,
}

fn parse_max_time(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!(
            "'{text}' is not a number of seconds from 0.001 to 86400"
        )),
    }
}

/// A profile name that reads back as the same INI section (`[NAME]`): not empty, no
/// brackets or line breaks, no surrounding spaces (INI readers trim them away).
pub fn parse_profile(text: &str) -> Result<String, String> {
    if text.is_empty() || text.trim() != text || text.contains(['[', ']', '\n', '\r']) {
        return Err(format!(
            "{text:?} cannot name a section: no brackets, line breaks or surrounding spaces"
        ));
    }
    Ok(text.to_owned())
}

/// `3600`, `3600s`, `60m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: use seconds (3600) or 15m, 1h"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("unknown unit in '{text}': use s, m or h")),
    };
    if n == 0 {
        return Err("the duration must be more than zero".into());
    }
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is too long"))
}

const DOCTOR_EXAMPLES: &str = "\
Examples:
  keyhold doctor --key tpm:file=/etc/keyhold/aws.pem --tcti swtpm:host=127.0.0.1,port=2321
  keyhold doctor --key 'pkcs11:token=aws;object=prod?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin'
  keyhold doctor --key tink:/etc/keyhold/aws.keyset.json --kek-uri aws-kms://arn:aws:kms:...

Checks, in order: the module or TCTI loads, the token or TPM is found, login/authorization,
the key is found and cannot be read out, one HMAC works, the clock is sane, STS is reachable,
GetCallerIdentity succeeds. For a Tink keyset: the keyset file is readable and encrypted,
the KMS key URI parses, KMS is reachable and decrypts the keyset, one HMAC works; then the
same clock and STS checks. STS counts as reachable when it answers at all, and
GetCallerIdentity passes only with a valid reply. Exits 1 if any check fails; --json prints
the same checks for scripts.";

/// `keyhold doctor`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["key", "certificate"]))]
pub struct DoctorArgs {
    /// The key to check.
    #[command(flatten)]
    pub key: KeyArgs,

    /// IAM Roles Anywhere: check a certificate and its key instead of --key, through to
    /// CreateSession.
    #[command(flatten, next_help_heading = "IAM Roles Anywhere (instead of --key)")]
    pub roles_anywhere: RolesAnywhereArgs,

    /// With --certificate: the role CreateSession asks for.
    #[arg(long, value_name = "ARN", requires = "certificate")]
    pub role_arn: Option<String>,

    /// Where STS is.
    #[command(flatten)]
    pub sts: StsArgs,

    /// Print the checks as one JSON document on stdout, for scripts:
    /// {"key": ..., "ok": bool, "checks": [{"name", "status": "pass"|"fail"|"skipped",
    /// "detail", "fix"}]}. The exit status is the same.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1d").unwrap_err().contains("unit"));
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn profiles_are_names_an_ini_file_reads_back() {
        assert_eq!(parse_profile("work").unwrap(), "work");
        assert_eq!(parse_profile("a b").unwrap(), "a b");
        for bad in ["", " work", "work ", "a]b", "[a", "a\nb", "a\rb"] {
            assert!(
                parse_profile(bad).unwrap_err().contains("section"),
                "{bad:?}"
            );
        }
    }

    #[cfg(feature = "pkcs11")]
    #[test]
    fn ids_are_even_hex() {
        assert_eq!(parse_hex_id("01a2").unwrap().0, vec![1, 0xa2]);
        assert!(parse_hex_id("1").is_err());
        assert!(parse_hex_id("zz").is_err());
    }
}
