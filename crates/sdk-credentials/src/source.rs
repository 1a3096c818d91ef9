//! Where temporary credentials come from: [`CredentialSource`], and its two implementations,
//! STS signed by an HMAC root key ([`StsSource`]) and IAM Roles Anywhere signed by an X.509
//! key ([`RolesAnywhereSource`]).
//!
//! A source makes one call each time it is asked; caching, refreshing ahead of expiry and
//! keeping the last good credentials through a failure are the
//! [`CredentialsProvider`](crate::CredentialsProvider)'s job, the same for every source.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use aws_credential_types::Credentials as SdkCredentials;
use rolesanywhere::{CreateSession, RolesAnywhereClient, RolesAnywhereError};
use secrecy::{ExposeSecret, SecretString};
use sts_client::{AssumeRole, GetSessionToken, StsClient, StsError};
use time::OffsetDateTime;

/// Temporary credentials and when they expire.
#[derive(Clone)]
pub struct Expiring {
    /// The credentials, in the SDK's type (its secret is zeroized on drop).
    pub credentials: SdkCredentials,
    /// When they stop working.
    pub expires: OffsetDateTime,
}

impl fmt::Debug for Expiring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK's own Debug redacts the secret and the token.
        f.debug_struct("Expiring")
            .field("credentials", &self.credentials)
            .field("expires", &self.expires)
            .finish()
    }
}

impl Expiring {
    /// Credentials from their parts; `provider_name` is what the SDK records as their origin.
    pub fn new(
        access_key_id: &str,
        secret_access_key: &SecretString,
        session_token: &SecretString,
        expires: OffsetDateTime,
        provider_name: &'static str,
    ) -> Self {
        Self {
            credentials: SdkCredentials::new(
                access_key_id,
                secret_access_key.expose_secret(),
                Some(session_token.expose_secret().to_owned()),
                Some(SystemTime::from(expires)),
                provider_name,
            ),
            expires,
        }
    }
}

/// What a [`CredentialSource::fetch`] returns.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<Expiring, SourceError>> + Send + 'a>>;

/// One call that returns new temporary credentials.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// Calls the service once for new credentials.
    fn fetch(&self) -> Fetch<'_>;
}

/// Why a source could not give credentials. `Display` names the call; `source()` holds why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The STS call failed.
    #[error("the STS call for temporary credentials failed")]
    Sts(#[source] StsError),
    /// The Roles Anywhere call failed.
    #[error("IAM Roles Anywhere CreateSession failed")]
    RolesAnywhere(#[source] RolesAnywhereError),
    /// Another source's failure.
    #[error("{what}")]
    Other {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SourceError {
    /// Whether the failure is a mistake in the configuration (a refresh cannot mend it).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::Sts(StsError::Config(_)) | Self::RolesAnywhere(RolesAnywhereError::Config(_))
        )
    }
}

/// The STS call a [`StsSource`] makes.
#[derive(Clone, Debug)]
pub enum StsCall {
    /// `AssumeRole`: credentials for a role.
    AssumeRole(AssumeRole),
    /// `GetSessionToken`: session credentials for the key's own IAM user.
    SessionToken(GetSessionToken),
}

/// Temporary credentials from STS, signed by the client's root key.
#[derive(Clone, Debug)]
pub struct StsSource {
    sts: StsClient,
    call: StsCall,
}

/// The provider name the SDK records with STS credentials.
const STS_PROVIDER_NAME: &str = "keyhold-sts";
/// The provider name the SDK records with Roles Anywhere credentials.
const ROLES_ANYWHERE_PROVIDER_NAME: &str = "keyhold-rolesanywhere";

impl StsSource {
    /// A source that makes `call` through `sts`.
    pub fn new(sts: StsClient, call: StsCall) -> Self {
        Self { sts, call }
    }

    /// The STS client in use.
    pub fn sts(&self) -> &StsClient {
        &self.sts
    }
}

impl CredentialSource for StsSource {
    fn fetch(&self) -> Fetch<'_> {
        Box::pin(async move {
            let credentials = match &self.call {
                StsCall::AssumeRole(request) => self
                    .sts
                    .assume_role(request.clone())
                    .await
                    .map(|r| r.credentials),
                StsCall::SessionToken(request) => self.sts.get_session_token(request.clone()).await,
            }
            .map_err(SourceError::Sts)?;
            tracing::debug!(access_key_id = %credentials.access_key_id, expiration = %credentials.expiration, "new STS credentials");
            Ok(Expiring::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                &credentials.session_token,
                credentials.expiration,
                STS_PROVIDER_NAME,
            ))
        })
    }
}

/// Temporary credentials from IAM Roles Anywhere, `CreateSession` signed by the client's
/// X.509 key.
#[derive(Clone, Debug)]
pub struct RolesAnywhereSource {
    client: RolesAnywhereClient,
    request: CreateSession,
}

impl RolesAnywhereSource {
    /// A source that sends `request` through `client`.
    pub fn new(client: RolesAnywhereClient, request: CreateSession) -> Self {
        Self { client, request }
    }
}

impl CredentialSource for RolesAnywhereSource {
    fn fetch(&self) -> Fetch<'_> {
        Box::pin(async move {
            let credentials = self
                .client
                .create_session(&self.request)
                .await
                .map_err(SourceError::RolesAnywhere)?;
            tracing::debug!(access_key_id = %credentials.access_key_id, expiration = %credentials.expiration, "new Roles Anywhere credentials");
            Ok(Expiring::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                &credentials.session_token,
                credentials.expiration,
                ROLES_ANYWHERE_PROVIDER_NAME,
            ))
        })
    }
}
