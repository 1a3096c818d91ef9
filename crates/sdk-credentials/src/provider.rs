//! [`CredentialsProvider`]: temporary credentials from a [`CredentialSource`] (STS signed by
//! an HMAC root key, or IAM Roles Anywhere signed by an X.509 key) for the AWS SDK for Rust
//! and for keyhold's own servers.
//!
//! Cached, refreshed ahead of expiry (5 minutes by default, optionally earlier by a random
//! jitter), one refresh in flight at a time: however many callers arrive when the credentials
//! are due, the source is called once and everyone gets the new credentials. If a refresh
//! fails, the last good credentials are handed out until a margin before they expire (none by
//! default), never after.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials as SdkCredentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use rolesanywhere::{CreateSession, RolesAnywhereClient};
use sts_client::{AssumeRole, GetSessionToken, StsClient};
use time::OffsetDateTime;

use crate::source::{
    CredentialSource, Expiring, RolesAnywhereSource, SourceError, StsCall, StsSource,
};

/// How long before expiry credentials are refreshed, by default.
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh, or one whose credentials were already due for refreshing (a
/// service that hands out short-lived credentials), how long callers get the last good
/// credentials (or the failure) without another call, so that the service is not hammered by
/// every caller.
const FAILURE_HOLD_OFF: Duration = Duration::from_secs(5);

/// The longest [`CredentialsProvider::keep_fresh`] waits between attempts after failures.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Temporary credentials from a [`CredentialSource`], cached and refreshed; plug it into the
/// SDK with `aws_config::defaults(..).credentials_provider(provider)`.
///
/// Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct CredentialsProvider {
    inner: Arc<Inner>,
}

/// How the provider refreshes.
#[derive(Clone, Copy, Debug)]
struct Settings {
    refresh_ahead: Duration,
    jitter: Duration,
    stop_before_expiry: Duration,
}

struct Inner {
    source: RwLock<Arc<dyn CredentialSource>>,
    settings: Settings,
    state: RwLock<State>,
    /// Held by the one caller that is refreshing; the others wait on it.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    current: Option<Expiring>,
    /// When the current credentials are due for refreshing.
    refresh_at: Option<OffsetDateTime>,
    /// When the source was last called, and how that call failed, if it did.
    last_call: Option<(Instant, Option<String>)>,
}

impl fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsProvider")
            .field("source", &*self.source())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl CredentialsProvider {
    /// Credentials from `source`.
    pub fn new(source: impl CredentialSource + 'static) -> Self {
        Self::shared(Arc::new(source))
    }

    /// Credentials from a source shared with others (a server that also re-reads it).
    pub fn shared(source: Arc<dyn CredentialSource>) -> Self {
        Self::with(
            source,
            Settings {
                refresh_ahead: DEFAULT_REFRESH_AHEAD,
                jitter: Duration::ZERO,
                stop_before_expiry: Duration::ZERO,
            },
        )
    }

    /// Credentials for a role: `AssumeRole` with `request`, signed through `sts`.
    pub fn assume_role(sts: StsClient, request: AssumeRole) -> Self {
        Self::new(StsSource::new(sts, StsCall::AssumeRole(request)))
    }

    /// Session credentials for the key's IAM user: `GetSessionToken` with `request`.
    pub fn session_token(sts: StsClient, request: GetSessionToken) -> Self {
        Self::new(StsSource::new(sts, StsCall::SessionToken(request)))
    }

    /// Credentials for a role through IAM Roles Anywhere: `CreateSession` with `request`,
    /// signed by `client`'s X.509 key.
    pub fn roles_anywhere(client: RolesAnywhereClient, request: CreateSession) -> Self {
        Self::new(RolesAnywhereSource::new(client, request))
    }

    fn with(source: Arc<dyn CredentialSource>, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                source: RwLock::new(source),
                settings,
                state: RwLock::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The same source with other settings and an empty cache.
    fn reconfigured(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.inner.settings;
        change(&mut settings);
        Self::with(self.source(), settings)
    }

    /// Refreshes this long before the credentials expire (default 5 minutes). Keep it
    /// shorter than the session duration, or every call refreshes.
    pub fn refresh_ahead(self, refresh_ahead: Duration) -> Self {
        self.reconfigured(|s| s.refresh_ahead = refresh_ahead)
    }

    /// Refreshes up to `jitter` earlier than [`refresh_ahead`](Self::refresh_ahead) says,
    /// chosen at random for each set of credentials (default none), so that many machines
    /// started together do not call the service together.
    pub fn refresh_jitter(self, jitter: Duration) -> Self {
        self.reconfigured(|s| s.jitter = jitter)
    }

    /// Never hands out credentials that expire within `margin` (default none): after a
    /// failed refresh the last good credentials serve until then, and after that the
    /// failure is returned. Keep it shorter than `refresh_ahead`.
    pub fn stop_before_expiry(self, margin: Duration) -> Self {
        self.reconfigured(|s| s.stop_before_expiry = margin)
    }

    /// The source in use.
    pub fn source(&self) -> Arc<dyn CredentialSource> {
        self.inner
            .source
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the source (a re-read key or certificate) and makes the next call refresh
    /// through it. The current credentials stay as the last good ones if that refresh fails.
    pub fn replace_source(&self, source: Arc<dyn CredentialSource>) {
        *self
            .inner
            .source
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = source;
        let mut state = self.write_state();
        state.refresh_at = Some(OffsetDateTime::UNIX_EPOCH);
        state.last_call = None;
    }

    /// Current credentials: cached ones while they are fresh, else new ones from the source.
    pub async fn credentials(&self) -> Result<SdkCredentials, CredentialsError> {
        self.expiring().await.map(|e| e.credentials)
    }

    /// Like [`credentials`](Self::credentials), with the expiry as a time.
    pub async fn expiring(&self) -> Result<Expiring, CredentialsError> {
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
        match self.fetch_and_store().await {
            Ok(new) => self.usable(new),
            Err(error) => match self.cached(false) {
                Some(still_valid) => {
                    tracing::warn!(error = %crate::error_chain(&error), "refreshing credentials failed; using the last good ones until shortly before they expire");
                    Ok(still_valid)
                }
                None => Err(to_credentials_error(error)),
            },
        }
    }

    /// Calls the source now, whatever the cache holds (one call at a time), and keeps what it
    /// gives; the source's own error if it fails (a long-running command's first call, which
    /// should fail loudly rather than be retried).
    pub async fn refresh_now(&self) -> Result<Expiring, SourceError> {
        let _one_refresh = self.inner.refreshing.lock().await;
        self.fetch_and_store().await
    }

    /// One call to the source, its result stored (run with `refreshing` held).
    async fn fetch_and_store(&self) -> Result<Expiring, SourceError> {
        let source = self.source();
        match source.fetch().await {
            Ok(new) => {
                let settings = self.inner.settings;
                let refresh_at =
                    new.expires - settings.refresh_ahead - random_up_to(settings.jitter);
                let mut state = self.write_state();
                state.current = Some(new.clone());
                state.refresh_at = Some(refresh_at);
                // Credentials already due for refresh would send every caller to the source.
                let due = OffsetDateTime::now_utc() >= refresh_at;
                state.last_call = due.then(|| (Instant::now(), None));
                Ok(new)
            }
            Err(error) => {
                let message = crate::error_chain(&error);
                self.write_state().last_call = Some((Instant::now(), Some(message)));
                Err(error)
            }
        }
    }

    /// How long until the current credentials are due for refreshing: zero when there are
    /// none or they are due.
    pub fn next_refresh_in(&self) -> Duration {
        let state = self.read_state();
        let Some(refresh_at) = state.refresh_at else {
            return Duration::ZERO;
        };
        (refresh_at - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO)
    }

    /// Refreshes whenever the credentials are due, forever (spawn it): callers then find
    /// fresh credentials in the cache instead of waiting for the source. After a failure it
    /// tries again after 5 seconds, doubling to a minute.
    pub async fn keep_fresh(&self) {
        self.keep_fresh_with(|_| true).await;
    }

    /// As [`keep_fresh`](Self::keep_fresh), handing the current credentials to
    /// `on_credentials` at each wake (the first at once); when it returns `false` (it could
    /// not use them), it is called again after the failure back-off.
    pub async fn keep_fresh_with(&self, mut on_credentials: impl FnMut(&Expiring) -> bool) {
        let mut retry = FAILURE_HOLD_OFF;
        loop {
            let used = match self.expiring().await {
                Ok(current) => on_credentials(&current),
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error), "no usable credentials; trying again");
                    false
                }
            };
            let wait = match self.next_refresh_in() {
                due if used && due > Duration::ZERO => {
                    retry = FAILURE_HOLD_OFF;
                    due
                }
                // Failed, unused, or due again at once (short-lived credentials): back off.
                _ => {
                    let wait = retry;
                    retry = (retry * 2).min(MAX_RETRY_WAIT);
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// `credentials` unless they are within the stop margin of their expiry.
    fn usable(&self, credentials: Expiring) -> Result<Expiring, CredentialsError> {
        let margin = self.inner.settings.stop_before_expiry;
        if OffsetDateTime::now_utc() + margin < credentials.expires {
            Ok(credentials)
        } else {
            Err(CredentialsError::provider_error(format!(
                "the credentials received expire at {}, within {margin:?}; \
                 ask for a longer session",
                credentials.expires
            )))
        }
    }

    /// The cached credentials if they are fresh (`fresh`: not yet due for refreshing) or
    /// merely usable (not within the stop margin of their expiry).
    fn cached(&self, fresh: bool) -> Option<Expiring> {
        let state = self.read_state();
        let current = state.current.as_ref()?;
        let now = OffsetDateTime::now_utc();
        let usable = now + self.inner.settings.stop_before_expiry < current.expires;
        let not_due = state.refresh_at.is_some_and(|at| now < at);
        (usable && (!fresh || not_due)).then(|| current.clone())
    }

    /// Within the hold-off after the last call: the still-usable credentials, or the failure
    /// again, without calling the source. `None` when the source may be called.
    fn held(&self) -> Option<Result<Expiring, CredentialsError>> {
        let failure = {
            let state = self.read_state();
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
            // The last call succeeded and its credentials are no longer usable: call again.
            (None, None) => None,
        }
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A random duration from zero to `max` (for jitter: not cryptographic).
fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(hasher.finish() % nanos.saturating_add(1))
}

/// Maps a source's failure to the SDK's error kinds: a configuration mistake as invalid
/// configuration, everything else (service errors, network, parse) as a provider error
/// carrying the failure as its source.
fn to_credentials_error(error: SourceError) -> CredentialsError {
    if error.is_configuration() {
        CredentialsError::invalid_configuration(error)
    } else {
        CredentialsError::provider_error(error)
    }
}

impl ProvideCredentials for CredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.credentials())
    }
}
