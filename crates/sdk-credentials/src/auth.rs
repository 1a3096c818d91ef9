//! Direct signing: an auth scheme for the AWS SDK for Rust that signs every request with the
//! device key itself, with no STS hop and no session credentials.
//!
//! [`DeviceSigV4AuthScheme`] has the scheme id `sigv4`, so pushing it onto a client's config
//! (`push_auth_scheme`) replaces the SDK's own SigV4 scheme for that client. Its identity
//! resolver hands out a [`DeviceIdentity`] (the access key id; nothing secret) and, off the
//! async runtime, warms the derived-key cache for the operation's region and service, so the
//! synchronous `Sign` step normally finds `kSigning` cached and does not touch the device.
//! The signing options (S3's single URI encoding and `x-amz-content-sha256`, payload
//! overrides, the endpoint's signing name and region) are read from what the SDK put in the
//! config bag for the operation, exactly as the SDK's own signer does.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_runtime::auth::{HttpSignatureType, SigV4OperationSigningConfig};
use aws_sigv4::http_request::SignableBody;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::auth::{
    AuthScheme, AuthSchemeEndpointConfig, AuthSchemeId, Sign,
};
use aws_smithy_runtime_api::client::identity::{
    Identity, IdentityCacheLocation, IdentityFuture, ResolveIdentity, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{GetIdentityResolver, RuntimeComponents};
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SigningName;
use aws_types::region::SigningRegion;
use sigv4_core::{
    DerivedKeyCache, PathEncoding, Payload, RootKey, Signer, SigningParams, SigningSettings,
};

/// The SDK's SigV4 scheme id, which this scheme takes over.
pub const SCHEME_ID: AuthSchemeId = AuthSchemeId::new("sigv4");

/// Why a request could not be signed with the device key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceSignError {
    /// The orchestrator gave this scheme an identity some other resolver made.
    #[error(
        "keyhold's SigV4 scheme was given an identity it did not resolve; do not set another identity resolver for `sigv4` on this client"
    )]
    ForeignIdentity,
    /// The operation has no signing region (set a region on the SDK config).
    #[error("no signing region for this operation: set a region on the SDK config")]
    NoRegion,
    /// The operation has no signing name.
    #[error("no signing name (service) for this operation")]
    NoSigningName,
    /// A presigned request was asked for.
    #[error("keyhold's SigV4 scheme signs headers only; presigned requests are not supported")]
    PresigningUnsupported,
    /// A streaming body for a service that must sign the payload.
    #[error(
        "the request body is a stream and this service needs its hash signed; buffer the body first"
    )]
    StreamingBody,
    /// The request could not be turned into one sigv4-core can sign.
    #[error("could not read the request to sign it: {0}")]
    Request(String),
    /// Signing failed (the device failed, or the request is unusual).
    #[error("signing with the device key failed")]
    Sign(#[from] sigv4_core::SignError),
}

/// The identity [`DeviceSigV4AuthScheme`]'s resolver hands out: the access key id whose
/// secret the device holds. Holds nothing secret.
#[derive(Clone, Debug)]
pub struct DeviceIdentity {
    access_key_id: String,
}

impl DeviceIdentity {
    /// The access key id requests are signed as.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

/// The key and what the scheme's parts share: the derived-key cache.
struct DeviceKey {
    access_key_id: String,
    root_key: Arc<dyn RootKey>,
    cache: Arc<DerivedKeyCache>,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("access_key_id", &self.access_key_id)
            .field("root_key", &self.root_key)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    fn signer(&self, settings: SigningSettings) -> Signer {
        Signer::from_arc(self.access_key_id.clone(), Arc::clone(&self.root_key))
            .with_cache(Arc::clone(&self.cache))
            .with_settings(settings)
    }

    /// Derives `kSigning` for today's scope through the device unless the cache holds it.
    /// Blocking: call it on the blocking pool.
    fn warm(&self, region: &str, service: &str) {
        let params = SigningParams::new(region, service).at(time::OffsetDateTime::now_utc());
        if let Err(error) = self.signer(SigningSettings::default()).prepare(&params) {
            tracing::warn!(%error, "could not derive the signing key ahead of signing");
        }
    }
}

/// The signing region and name for the current operation: the endpoint's auth-scheme
/// properties (when given) first, then the config bag, then the operation's SigV4 config.
fn signing_scope(
    config_bag: &ConfigBag,
    endpoint_config: Option<&AuthSchemeEndpointConfig<'_>>,
) -> (Option<String>, Option<String>) {
    let operation = config_bag.load::<SigV4OperationSigningConfig>();
    let region = endpoint_config
        .and_then(|c| endpoint_str(c, "signingRegion"))
        .or_else(|| {
            config_bag
                .load::<SigningRegion>()
                .map(|r| r.as_ref().to_owned())
        })
        .or_else(|| operation?.region.as_ref().map(|r| r.as_ref().to_owned()));
    let name = endpoint_config
        .and_then(|c| endpoint_str(c, "signingName"))
        .or_else(|| {
            config_bag
                .load::<SigningName>()
                .map(|n| n.as_ref().to_owned())
        })
        .or_else(|| operation?.name.as_ref().map(|n| n.as_ref().to_owned()));
    (region, name)
}

/// An SDK auth scheme that signs each request with the device key (SigV4, no STS).
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(root_key: Arc<dyn sigv4_core::RootKey>, sdk_config: &aws_types::SdkConfig) {
/// use sdk_credentials::DeviceSigV4AuthScheme;
/// let scheme = DeviceSigV4AuthScheme::new("AKIAIOSFODNN7EXAMPLE", root_key);
/// // For any SDK client: aws_sdk_s3::config::Builder::from(sdk_config).push_auth_scheme(scheme)
/// # let _ = (scheme, sdk_config);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DeviceSigV4AuthScheme {
    signer: DeviceSigner,
    resolver: SharedIdentityResolver,
}

impl DeviceSigV4AuthScheme {
    /// A scheme signing as `access_key_id`, whose secret `root_key` holds.
    pub fn new(access_key_id: impl Into<String>, root_key: Arc<dyn RootKey>) -> Self {
        let key = Arc::new(DeviceKey {
            access_key_id: access_key_id.into(),
            root_key,
            cache: Arc::new(DerivedKeyCache::default()),
        });
        Self {
            signer: DeviceSigner {
                key: Arc::clone(&key),
            },
            resolver: SharedIdentityResolver::new(DeviceIdentityResolver { key }),
        }
    }

    /// The identity resolver (also usable on its own with
    /// `identity_resolver(SCHEME_ID, ..)`).
    pub fn identity_resolver(&self) -> SharedIdentityResolver {
        self.resolver.clone()
    }
}

impl AuthScheme for DeviceSigV4AuthScheme {
    fn scheme_id(&self) -> AuthSchemeId {
        SCHEME_ID
    }

    /// Always this scheme's own resolver: the SDK's credentials providers are not consulted.
    fn identity_resolver(
        &self,
        _identity_resolvers: &dyn GetIdentityResolver,
    ) -> Option<SharedIdentityResolver> {
        Some(self.resolver.clone())
    }

    fn signer(&self) -> &dyn Sign {
        &self.signer
    }
}

/// Resolves a [`DeviceIdentity`], warming the derived-key cache on the blocking pool.
#[derive(Debug)]
struct DeviceIdentityResolver {
    key: Arc<DeviceKey>,
}

impl ResolveIdentity for DeviceIdentityResolver {
    fn resolve_identity<'a>(
        &'a self,
        _runtime_components: &'a RuntimeComponents,
        config_bag: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        let (region, name) = signing_scope(config_bag, None);
        let key = Arc::clone(&self.key);
        IdentityFuture::new(async move {
            if let (Some(region), Some(name), Ok(runtime)) =
                (region, name, tokio::runtime::Handle::try_current())
            {
                let warm_key = Arc::clone(&key);
                let _ = runtime
                    .spawn_blocking(move || warm_key.warm(&region, &name))
                    .await;
            }
            Ok(Identity::new(
                DeviceIdentity {
                    access_key_id: key.access_key_id.clone(),
                },
                None,
            ))
        })
    }

    /// Resolved per request (it is cheap), so the cache is warmed for each operation's scope.
    fn cache_location(&self) -> IdentityCacheLocation {
        IdentityCacheLocation::IdentityResolver
    }
}

/// The `Sign` half: SigV4 through sigv4-core with the device key.
#[derive(Clone, Debug)]
struct DeviceSigner {
    key: Arc<DeviceKey>,
}

/// A string property of the endpoint's auth scheme (`signingName`, `signingRegion`).
fn endpoint_str(config: &AuthSchemeEndpointConfig<'_>, name: &str) -> Option<String> {
    config
        .as_document()?
        .as_object()?
        .get(name)?
        .as_string()
        .map(str::to_owned)
}

fn endpoint_bool(config: &AuthSchemeEndpointConfig<'_>, name: &str) -> Option<bool> {
    config.as_document()?.as_object()?.get(name)?.as_bool()
}

impl Sign for DeviceSigner {
    fn sign_http_request(
        &self,
        request: &mut HttpRequest,
        identity: &Identity,
        endpoint_config: AuthSchemeEndpointConfig<'_>,
        runtime_components: &RuntimeComponents,
        config_bag: &ConfigBag,
    ) -> Result<(), BoxError> {
        identity
            .data::<DeviceIdentity>()
            .ok_or(DeviceSignError::ForeignIdentity)?;
        let (region, name) = signing_scope(config_bag, Some(&endpoint_config));
        let region = region.ok_or(DeviceSignError::NoRegion)?;
        let name = name.ok_or(DeviceSignError::NoSigningName)?;
        let operation = config_bag.load::<SigV4OperationSigningConfig>();
        let options = operation
            .map(|o| o.signing_options.clone())
            .unwrap_or_default();
        if matches!(
            options.signature_type,
            HttpSignatureType::HttpRequestQueryParams
        ) {
            return Err(DeviceSignError::PresigningUnsupported.into());
        }
        let double_encode = endpoint_bool(&endpoint_config, "disableDoubleEncoding")
            .map(|disable| !disable)
            .unwrap_or(options.double_uri_encode);
        let mut settings = SigningSettings::default();
        settings.path_encoding = if double_encode {
            PathEncoding::Double
        } else {
            PathEncoding::Single
        };
        settings.normalize_path = options.normalize_uri_path;
        settings.content_sha256_header = options.content_sha256_header;

        let body = request.body().bytes();
        let payload = match &options.payload_override {
            Some(SignableBody::Bytes(bytes)) => Payload::Bytes(bytes),
            Some(SignableBody::UnsignedPayload) => Payload::Unsigned,
            Some(SignableBody::Precomputed(hash)) => Payload::Precomputed(hash),
            Some(SignableBody::StreamingUnsignedPayloadTrailer) => {
                Payload::Precomputed("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            }
            Some(_) => return Err(DeviceSignError::StreamingBody.into()),
            None => match body {
                Some(bytes) => Payload::Bytes(bytes),
                // S3 (single encoding) accepts an unsigned payload over its streaming bodies.
                None if !double_encode => Payload::Unsigned,
                None => return Err(DeviceSignError::StreamingBody.into()),
            },
        };
        let now = runtime_components
            .time_source()
            .map(|source| source.now())
            .unwrap_or_else(SystemTime::now);

        let mut builder = http::Request::builder()
            .method(request.method())
            .uri(request.uri());
        for (header, value) in request.headers() {
            builder = builder.header(header, value);
        }
        let (mut parts, ()) = builder
            .body(())
            .map_err(|e| DeviceSignError::Request(e.to_string()))?
            .into_parts();
        let params = SigningParams::new(&region, &name).at(time::OffsetDateTime::from(now));
        let output = self
            .key
            .signer(settings)
            .sign_parts(&mut parts, payload, &params)
            .map_err(DeviceSignError::Sign)?;
        for addition in output.additions() {
            request
                .headers_mut()
                .insert(addition.name(), addition.value().to_owned());
        }
        Ok(())
    }
}
