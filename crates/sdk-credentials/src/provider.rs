//! [`StsCredentialsProvider`]: temporary credentials from STS (`AssumeRole` or
//! `GetSessionToken`, signed by the device key) for the AWS SDK for Rust.
//!
//! Cached, refreshed ahead of expiry (5 minutes by default), one refresh in flight at a time:
//! however many callers arrive when the credentials are due, STS is called once and everyone
//! gets the new credentials. If a refresh fails, the last good credentials are handed out for
//! as long as they are valid, never after they expire.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as SdkCredentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use secrecy::ExposeSecret;
use sts_client::{AssumeRole, GetSessionToken, StsClient, StsError};
use time::OffsetDateTime;

/// How long before expiry credentials are refreshed, by default.
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh, or one whose credentials were already due for refreshing (an STS
/// that hands out short-lived credentials), how long callers get the last good credentials
/// (or the failure) without another STS call, so that STS is not hammered by every caller.
const FAILURE_HOLD_OFF: Duration = Duration::from_secs(5);

/// The provider name the SDK records with the credentials.
const PROVIDER_NAME: &str = "keyhold-sts";

/// What the provider asks STS for.
#[derive(Clone, Debug)]
enum Source {
    AssumeRole(AssumeRole),
    SessionToken(GetSessionToken),
}

/// Credentials from STS, signed by a device key; plug it into the SDK with
/// `aws_config::defaults(..).credentials_provider(provider)`.
///
/// Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct StsCredentialsProvider {
    inner: Arc<Inner>,
}

struct Inner {
    sts: StsClient,
    source: Source,
    refresh_ahead: Duration,
    state: RwLock<State>,
    /// Held by the one caller that is refreshing; the others wait on it.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    current: Option<SdkCredentials>,
    expires: Option<OffsetDateTime>,
    /// When STS was last called, and how that call failed, if it did.
    last_call: Option<(std::time::Instant, Option<String>)>,
}

impl fmt::Debug for StsCredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsCredentialsProvider")
            .field("sts", &self.inner.sts)
            .field("source", &self.inner.source)
            .field("refresh_ahead", &self.inner.refresh_ahead)
            .finish_non_exhaustive()
    }
}

impl StsCredentialsProvider {
    /// Credentials for a role: `AssumeRole` with `request`, signed through `sts`.
    pub fn assume_role(sts: StsClient, request: AssumeRole) -> Self {
        Self::new(sts, Source::AssumeRole(request))
    }

    /// Session credentials for the key's IAM user: `GetSessionToken` with `request`.
    pub fn session_token(sts: StsClient, request: GetSessionToken) -> Self {
        Self::new(sts, Source::SessionToken(request))
    }

    fn new(sts: StsClient, source: Source) -> Self {
        Self {
            inner: Arc::new(Inner {
                sts,
                source,
                refresh_ahead: DEFAULT_REFRESH_AHEAD,
                state: RwLock::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Refreshes this long before the credentials expire (default 5 minutes). Keep it
    /// shorter than the session duration, or every call refreshes.
    pub fn refresh_ahead(self, refresh_ahead: Duration) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            sts: shared.sts.clone(),
            source: shared.source.clone(),
            refresh_ahead: shared.refresh_ahead,
            state: RwLock::new(State::default()),
            refreshing: tokio::sync::Mutex::new(()),
        });
        Self {
            inner: Arc::new(Inner {
                refresh_ahead,
                ..inner
            }),
        }
    }

    /// The STS client in use.
    pub fn sts(&self) -> &StsClient {
        &self.inner.sts
    }

    /// Current credentials: cached ones while they are fresh, else new ones from STS.
    pub async fn credentials(&self) -> Result<SdkCredentials, CredentialsError> {
        if let Some(fresh) = self.cached(true) {
            return Ok(fresh);
        }
        let _one_refresh = self.inner.refreshing.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(fresh) = self.cached(true) {
            return Ok(fresh);
        }
        if let Some(held) = self.held() {
            return held;
        }
        match self.fetch().await {
            Ok((credentials, expires)) => {
                let mut state = self.write_state();
                state.current = Some(credentials.clone());
                state.expires = Some(expires);
                // Credentials already due for refresh would send every caller to STS.
                let due = OffsetDateTime::now_utc() + self.inner.refresh_ahead >= expires;
                state.last_call = due.then(|| (std::time::Instant::now(), None));
                Ok(credentials)
            }
            Err(error) => {
                let message = error.to_string();
                self.write_state().last_call = Some((std::time::Instant::now(), Some(message)));
                match self.cached(false) {
                    Some(still_valid) => {
                        tracing::warn!(%error, "refreshing STS credentials failed; using the current ones until they expire");
                        Ok(still_valid)
                    }
                    None => Err(to_credentials_error(error)),
                }
            }
        }
    }

    /// The cached credentials if they are fresh (`fresh`: not within the refresh window) or
    /// merely valid (not expired).
    fn cached(&self, fresh: bool) -> Option<SdkCredentials> {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let margin = if fresh {
            self.inner.refresh_ahead
        } else {
            Duration::ZERO
        };
        let expires = state.expires?;
        (OffsetDateTime::now_utc() + margin < expires)
            .then(|| state.current.clone())
            .flatten()
    }

    /// Within the hold-off after the last STS call: the still-valid credentials, or the
    /// failure again, without calling STS. `None` when STS may be called.
    fn held(&self) -> Option<Result<SdkCredentials, CredentialsError>> {
        let failure = {
            let state = self
                .inner
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (when, failure) = state.last_call.as_ref()?;
            if when.elapsed() >= FAILURE_HOLD_OFF {
                return None;
            }
            failure.clone()
        };
        match (self.cached(false), failure) {
            (Some(valid), _) => Some(Ok(valid)),
            (None, Some(message)) => Some(Err(CredentialsError::provider_error(format!(
                "{message} (not retried for {FAILURE_HOLD_OFF:?})"
            )))),
            // The last call succeeded and its credentials have expired since: call again.
            (None, None) => None,
        }
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<(SdkCredentials, OffsetDateTime), StsError> {
        let credentials = match &self.inner.source {
            Source::AssumeRole(request) => {
                self.inner
                    .sts
                    .assume_role(request.clone())
                    .await?
                    .credentials
            }
            Source::SessionToken(request) => {
                self.inner.sts.get_session_token(request.clone()).await?
            }
        };
        tracing::debug!(access_key_id = %credentials.access_key_id, expiration = %credentials.expiration, "new STS credentials");
        let expires = credentials.expiration;
        Ok((to_sdk_credentials(&credentials), expires))
    }
}

/// The SDK's credentials type (which zeroizes its secret on drop) from STS's.
pub fn to_sdk_credentials(credentials: &sts_client::Credentials) -> SdkCredentials {
    SdkCredentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose_secret().to_owned(),
        Some(credentials.session_token.expose_secret().to_owned()),
        Some(SystemTime::from(credentials.expiration)),
        PROVIDER_NAME,
    )
}

/// Maps an STS failure to the SDK's error kinds: a configuration mistake as invalid
/// configuration, everything else (service errors, network, parse) as a provider error
/// carrying the STS error as its source.
fn to_credentials_error(error: StsError) -> CredentialsError {
    match &error {
        StsError::Config(_) => CredentialsError::invalid_configuration(error),
        _ => CredentialsError::provider_error(error),
    }
}

impl ProvideCredentials for StsCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.credentials())
    }
}
