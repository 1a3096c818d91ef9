//! Arguments of the commands that hand credentials to other programs for a long time:
//! `serve`, `exec`, `update`, and `export` (once).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{SourceArgs, parse_duration, parse_profile};

pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  # IMDSv2 and ECS endpoints on loopback, credentials from a TPM key through AssumeRole
  keyhold serve --key tpm:file=/etc/keyhold/aws.pem --role-arn arn:aws:iam::123456789012:role/app \\
      --ecs-token-file /run/keyhold/ecs-token
  # then, in the programs' environment (keyhold prints these lines):
  export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9911/
  # or
  export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/ecs/credentials
  export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/keyhold/ecs-token

  # IAM Roles Anywhere, the same endpoints
  keyhold serve --certificate cert.pem --private-key 'pkcs11:token=ra;object=app;type=private' \\
      --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN

Refreshes ahead of expiry (a quarter of the lifetime, 5 to 15 minutes, with jitter); if a
refresh fails it keeps serving the last good credentials until 5 minutes before they expire,
then answers 503 with the reason. SIGHUP re-reads the key and certificate; SIGTERM drains
and exits. Only loopback unless --allow-remote.";

pub(super) const EXEC_EXAMPLES: &str = "\
Examples:
  keyhold exec --key tpm:file=/etc/keyhold/aws.pem --role-arn arn:aws:iam::123456789012:role/app -- aws s3 ls
  keyhold exec --env --certificate cert.pem --private-key key.pem --trust-anchor-arn ARN \\
      --profile-arn ARN --role-arn ARN -- terraform apply

By default the command gets AWS_CONTAINER_CREDENTIALS_FULL_URI and
AWS_CONTAINER_AUTHORIZATION_TOKEN for an endpoint keyhold runs on a random loopback port
while the command runs, so a long-running command keeps getting fresh credentials. --env
gives it the credentials themselves instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION), which do not refresh. Inherited AWS_*
credential and profile variables that would shadow them are removed. keyhold exits with the
command's status.";

pub(super) const UPDATE_EXAMPLES: &str = "\
Examples:
  keyhold update --key tpm:file=/etc/keyhold/aws.pem --role-arn arn:aws:iam::123456789012:role/app --profile app
  keyhold update --once --certificate cert.pem --private-key key.pem --trust-anchor-arn ARN \\
      --profile-arn ARN --role-arn ARN

Writes aws_access_key_id, aws_secret_access_key and aws_session_token of the profile into
$AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), keeping every other line as it
was, atomically (a complete new file renamed into place, under a lock), mode 0600. Then it
refreshes them before they expire until stopped (--once: writes once and exits). A failed
refresh leaves the last good credentials in the file.";

/// When a long-running command refreshes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Refreshing")]
pub struct RefreshArgs {
    /// Refresh this long before the credentials expire (seconds, or 10m). Default: a quarter
    /// of the duration, between 5 and 15 minutes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub refresh_ahead: Option<Duration>,

    /// After failed refreshes, stop handing out the last good credentials this long before
    /// they expire (seconds, or 5m). Default: 5 minutes, or half of --refresh-ahead if less.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub stop_before_expiry: Option<Duration>,
}

/// `keyhold serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the credentials come from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// When to refresh.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// The address and port to listen on (port 0: any free port, printed).
    #[arg(
        long,
        env = "KEYHOLD_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:9911"
    )]
    pub listen: SocketAddr,

    /// Allow --listen on an address other machines can reach. Then replies leave with IP TTL
    /// 1 (they cannot cross a router), and the Host check and the ECS token still apply.
    #[arg(long)]
    pub allow_remote: bool,

    /// Write the ECS endpoint's token to this file (0600), which the SDKs read through
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE. The file is read again when it changes, so the
    /// token can be rotated by writing a new one. Default: a token printed for
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub ecs_token_file: Option<PathBuf>,

    /// The role name the IMDS endpoint lists. Default: the role's name from --role-arn, else
    /// "keyhold".
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,

    /// Another Host header value to accept (IP addresses and localhost always are; any other
    /// name is refused, which stops DNS rebinding).
    #[arg(long, value_name = "NAME")]
    pub allowed_host: Vec<String>,
}

/// `keyhold exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Where the credentials come from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// When to refresh.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// Give the command the credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION (they do not refresh) instead of an
    /// endpoint.
    #[arg(long)]
    pub env: bool,

    /// The command and its arguments (after --).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// How `keyhold export` prints the credentials.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// `export AWS_ACCESS_KEY_ID=...` lines for a POSIX shell (`eval "$(keyhold export ...)"`).
    Env,
    /// The credential_process JSON.
    Json,
    /// A ~/.aws/credentials section (`[PROFILE]` and three keys).
    Ini,
}

/// `keyhold export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where the credentials come from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// The output format.
    #[arg(long, value_enum, default_value = "env")]
    pub format: ExportFormat,

    /// The section name for --format ini.
    #[arg(long, default_value = "default", value_name = "NAME", value_parser = parse_profile)]
    pub profile: String,
}

/// `keyhold update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Where the credentials come from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// When to refresh.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// The profile (section) of the credentials file to write.
    #[arg(
        long,
        env = "AWS_PROFILE",
        default_value = "default",
        value_name = "NAME",
        value_parser = parse_profile
    )]
    pub profile: String,

    /// Write once and exit.
    #[arg(long)]
    pub once: bool,
}
