//! Where temporary credentials come from, for every command that hands them out
//! (`credential-process`, `serve`, `exec`, `export`, `update`): STS signed by the `--key`
//! HMAC key (AssumeRole, or GetSessionToken), or IAM Roles Anywhere signed by the
//! `--certificate`'s private key. Both become one [`CredentialSource`], and the long-running
//! commands share `sdk-credentials`' [`CredentialsProvider`] over it.

use std::sync::Arc;
use std::time::Duration;

use sdk_credentials::{
    CredentialSource, CredentialsProvider, RolesAnywhereSource, SourceError, StsCall, StsSource,
};

use crate::args::SourceArgs;
use crate::backend::OpenedKey;
use crate::error::CliError;
use crate::{backend, sts};

/// A source opened from the command line, with what its errors need to say.
pub struct Opened {
    /// The source.
    pub source: Arc<dyn CredentialSource>,
    /// The HMAC key, on the STS path (to say where its access key id came from).
    key: Option<OpenedKey>,
}

/// Checks everything the flags say without touching the device or the network: the
/// duration against the call's range, the ARNs, the endpoint.
pub fn check(args: &SourceArgs) -> Result<(), CliError> {
    if args.roles_anywhere.certificate.is_some() {
        crate::commands::roles_anywhere::session_request(args).map(drop)
    } else {
        sts_endpoint(args).map(drop)
    }
}

/// Where STS is, once the duration and the role ARN have been checked.
fn sts_endpoint(args: &SourceArgs) -> Result<sts::Endpoint, CliError> {
    let endpoint = sts::endpoint(&args.sts, &args.key)?;
    check_duration(args)?;
    if let Some(role_arn) = &args.role_arn {
        sts::check_role_arn(role_arn)?;
    }
    Ok(endpoint)
}

/// Opens the key or certificate the flags name and builds the source (no network call),
/// after the checks of [`check`].
pub fn open(args: &SourceArgs) -> Result<Opened, CliError> {
    if args.roles_anywhere.certificate.is_some() {
        let (client, request) = crate::commands::roles_anywhere::open(args)?;
        return Ok(Opened {
            source: Arc::new(RolesAnywhereSource::new(client, request)),
            key: None,
        });
    }
    let endpoint = sts_endpoint(args)?;
    let key = backend::open(&args.key)?;
    let client = sts::client(&key, &endpoint)?;
    let call = match &args.role_arn {
        Some(role_arn) => {
            let mut request = sts_client::AssumeRole::new(role_arn.clone(), session_name(args))
                .duration(args.duration);
            if let Some(external_id) = &args.external_id {
                request = request.external_id(external_id.clone());
            }
            tracing::info!(
                role_arn,
                duration_secs = args.duration.as_secs(),
                "AssumeRole"
            );
            StsCall::AssumeRole(request)
        }
        None => {
            tracing::info!(duration_secs = args.duration.as_secs(), "GetSessionToken");
            StsCall::SessionToken(sts_client::GetSessionToken::new().duration(args.duration))
        }
    };
    Ok(Opened {
        source: Arc::new(StsSource::new(client, call)),
        key: Some(key),
    })
}

impl Opened {
    /// The command-line error for a failed fetch: STS rejecting the key says where its
    /// access key id came from.
    pub fn failure(&self, error: SourceError, args: &SourceArgs) -> CliError {
        match (error, &self.key) {
            (SourceError::Sts(e), Some(key)) => sts::failure(e, key, &args.key),
            (SourceError::Sts(e), None) => CliError::Sts(e),
            (SourceError::RolesAnywhere(e), _) => CliError::RolesAnywhere(e),
            (other, _) => CliError::Credentials(Box::new(other)),
        }
    }

    /// A provider over this source for a long-running command: refreshed `refresh.ahead`
    /// before expiry with up to a minute's jitter, and the last good credentials kept
    /// through failures until `refresh.stop_before` before they expire.
    pub fn provider(&self, refresh: &Refresh) -> CredentialsProvider {
        CredentialsProvider::shared(self.source.clone())
            .refresh_ahead(refresh.ahead)
            .refresh_jitter(refresh.jitter)
            .stop_before_expiry(refresh.stop_before)
    }
}

/// When a long-running command refreshes.
#[derive(Clone, Copy, Debug)]
pub struct Refresh {
    /// How long before expiry.
    pub ahead: Duration,
    /// Up to how much earlier, at random.
    pub jitter: Duration,
    /// How long before expiry the last good credentials stop being handed out.
    pub stop_before: Duration,
}

impl Refresh {
    /// The defaults for credentials lasting `lifetime`: refresh a quarter of the way before
    /// the end (5 to 15 minutes ahead), stop handing out the last good ones 5 minutes before
    /// expiry (or halfway through the refresh window, if that is shorter).
    pub fn for_lifetime(lifetime: Duration) -> Self {
        let ahead = (lifetime / 4).clamp(Duration::from_secs(300), Duration::from_secs(900));
        Self {
            ahead,
            jitter: Self::jitter(lifetime, ahead),
            stop_before: Duration::from_secs(300).min(ahead / 2),
        }
    }

    /// Up to a minute, a tenth of the refresh window, and a tenth of the time between
    /// issue and refresh (so that jitter never makes new credentials due at once).
    pub fn jitter(lifetime: Duration, ahead: Duration) -> Duration {
        (ahead / 10)
            .min(lifetime.saturating_sub(ahead) / 10)
            .min(Duration::from_secs(60))
    }
}

/// The role session name: the flag's, else `keyhold-<unix time>`.
pub fn session_name(args: &SourceArgs) -> String {
    args.role_session_name.clone().unwrap_or_else(|| {
        format!(
            "keyhold-{}",
            time::OffsetDateTime::now_utc().unix_timestamp()
        )
    })
}

/// Checks `--duration-seconds` against STS's range for the call, before any device call.
fn check_duration(args: &SourceArgs) -> Result<(), CliError> {
    let (call, max) = match args.role_arn {
        Some(_) => ("AssumeRole", 43_200),
        None => ("GetSessionToken", 129_600),
    };
    let secs = args.duration.as_secs();
    if (900..=max).contains(&secs) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--duration-seconds {secs} is outside {call}'s range of 900 to {max} seconds \
             (AssumeRole is further limited by the role's maximum session duration)"
        )))
    }
}
