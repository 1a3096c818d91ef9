//! AWS KMS as a Tink master key (feature `aws-kms`), over the official `aws-sdk-kms`.
//!
//! Behaves like Go and Python Tink's AWS KMS AEAD, so keysets move between them:
//! - the key URI is `aws-kms://` + a KMS key ARN (or alias ARN); the region comes from the ARN;
//! - non-empty associated data is sent, hex-encoded, as the encryption context
//!   `{"associatedData": hex}`; empty associated data sends no context;
//! - on decrypt, when the URI holds a key ARN, the key id in the reply must be that ARN.
//!
//! Credentials come from the standard chain (aws-config: environment, shared config and
//! credentials files, `credential_process`, web identity, ECS and EC2 metadata) unless a
//! provider is given. The endpoint is [`AwsKmsOptions::endpoint_url`], else the one the AWS
//! configuration names (`AWS_ENDPOINT_URL_KMS`, a profile's `services` section,
//! `AWS_ENDPOINT_URL`, a profile's `endpoint_url`, as the SDK resolves them), else the
//! region's own. keyhold resolves it, checks it and hands it to the SDK itself, so the
//! client uses exactly the endpoint checked: plain http is refused except to loopback (an
//! import sends `"AWS4"+secret` to KMS's `Encrypt`) unless
//! [`AwsKmsOptions::allow_insecure_http`]. The SDK does not follow redirects.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use crate::Error;
use crate::endpoint::{CALLER, check_endpoint};
use crate::runtime::KmsRuntime;

/// The URI scheme of AWS KMS keys in Tink.
const SCHEME: &str = "aws-kms://";

/// The encryption-context key Go and Python Tink put associated data under.
const ASSOCIATED_DATA_CONTEXT_KEY: &str = "associatedData";

/// Settings for [`AwsKmsAead::new`]. The default is the standard AWS configuration.
#[derive(Clone, Default)]
pub struct AwsKmsOptions {
    endpoint_url: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    allow_insecure_http: bool,
}

impl AwsKmsOptions {
    /// The standard configuration: endpoint and credentials from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends KMS calls to this endpoint (e.g. `http://127.0.0.1:5000` for a local moto),
    /// overriding any endpoint in the AWS configuration (environment or profile).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Allows an `http://` endpoint on another machine (refused by default: the plaintext
    /// of an import's `Encrypt` is the secret).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Uses these credentials instead of the standard chain.
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }
}

impl fmt::Debug for AwsKmsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsOptions")
            .field("endpoint_url", &self.endpoint_url)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "** provider **"),
            )
            .finish()
    }
}

/// A Tink AEAD whose encrypt and decrypt are AWS KMS `Encrypt` and `Decrypt` calls.
///
/// Implements `tink_core::Aead` (errors then become text in a `TinkError`); the inherent
/// [`try_encrypt`](Self::try_encrypt) and [`try_decrypt`](Self::try_decrypt) return typed
/// errors. Cheap to clone; usable from sync code and from inside a tokio runtime.
#[derive(Clone)]
pub struct AwsKmsAead {
    inner: Arc<Inner>,
}

struct Inner {
    uri: String,
    /// The ARN (the URI without its scheme), sent as `KeyId`.
    key_arn: String,
    /// Whether `key_arn` is a key ARN (not an alias ARN), so replies can be checked against it.
    is_key_arn: bool,
    client: aws_sdk_kms::Client,
    runtime: KmsRuntime,
}

impl AwsKmsAead {
    /// A KMS AEAD for `aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID` (or `.../alias/NAME`).
    ///
    /// Loads the AWS configuration (no network call is made until the first use).
    pub fn new(key_uri: &str, options: AwsKmsOptions) -> Result<Self, Error> {
        let parsed = parse_key_uri(key_uri)?;
        let setup = |reason: &str, source: Option<crate::error::BoxError>| Error::KmsSetup {
            uri: key_uri.to_owned(),
            reason: reason.to_owned(),
            source,
        };
        let runtime = KmsRuntime::new()
            .map_err(|e| setup("could not start its tokio runtime", Some(Box::new(e))))?;
        let region = parsed.region.clone();
        let credentials = options.credentials.clone();
        let sdk_config = runtime
            .block_on(async move {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(aws_config::Region::new(region));
                if let Some(credentials) = credentials {
                    loader = loader.credentials_provider(credentials);
                }
                loader.load().await
            })
            .map_err(|e| setup("could not start a thread for it", Some(Box::new(e))))?;
        let mut config = aws_sdk_kms::config::Builder::from(&sdk_config);
        match resolve_endpoint(&options, &sdk_config) {
            Some((url, from)) => {
                check_endpoint(key_uri, &url, &from, options.allow_insecure_http)?;
                tracing::info!(endpoint = %url, from = %from, "KMS endpoint");
                config = config.endpoint_url(url);
            }
            None => {
                tracing::info!(region = %parsed.region, "KMS endpoint: the default for the key's region")
            }
        }
        let client = aws_sdk_kms::Client::from_conf(config.build());
        Ok(Self {
            inner: Arc::new(Inner {
                uri: key_uri.to_owned(),
                key_arn: parsed.arn,
                is_key_arn: parsed.is_key_arn,
                client,
                runtime,
            }),
        })
    }

    /// The key URI this AEAD was made for.
    pub fn key_uri(&self) -> &str {
        &self.inner.uri
    }

    /// KMS `Encrypt` of `plaintext`, binding `associated_data` as Tink does.
    pub fn try_encrypt(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let request = inner
            .client
            .encrypt()
            .key_id(&inner.key_arn)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(encryption_context(associated_data));
        let reply = inner
            .runtime
            .block_on(request.send())
            .map_err(|e| inner.unavailable("Encrypt", e))?
            .map_err(|e| inner.sdk_error("Encrypt", e))?;
        inner.check_key_id("Encrypt", reply.key_id.as_deref())?;
        reply
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| inner.reply_error("Encrypt", "it has no CiphertextBlob"))
    }

    /// KMS `Decrypt` of `ciphertext` under this key, checking `associated_data` as Tink does.
    /// The plaintext is returned in a buffer that is zeroized on drop.
    pub fn try_decrypt(
        &self,
        ciphertext: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let inner = &self.inner;
        let request = inner
            .client
            .decrypt()
            .key_id(&inner.key_arn)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(encryption_context(associated_data));
        let reply = inner
            .runtime
            .block_on(request.send())
            .map_err(|e| inner.unavailable("Decrypt", e))?
            .map_err(|e| inner.sdk_error("Decrypt", e))?;
        let plaintext = reply
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()));
        inner.check_key_id("Decrypt", reply.key_id.as_deref())?;
        plaintext.ok_or_else(|| inner.reply_error("Decrypt", "it has no Plaintext"))
    }
}

impl Inner {
    /// The reply must name the key asked for, when that was a key ARN (as Go and Java Tink
    /// check): otherwise a ciphertext under another key these credentials may use would be
    /// accepted.
    fn check_key_id(
        &self,
        operation: &'static str,
        reply_key_id: Option<&str>,
    ) -> Result<(), Error> {
        match reply_key_id {
            Some(actual) if self.is_key_arn && actual != self.key_arn => Err(Error::WrongKmsKey {
                uri: self.uri.clone(),
                detail: format!("the {operation} reply names key {actual}"),
            }),
            _ => Ok(()),
        }
    }

    fn reply_error(&self, operation: &'static str, reason: &str) -> Error {
        Error::KmsReply {
            uri: self.uri.clone(),
            operation,
            reason: reason.to_owned(),
        }
    }

    fn unavailable(&self, operation: &'static str, error: std::io::Error) -> Error {
        Error::KmsUnavailable {
            uri: self.uri.clone(),
            operation,
            reason: "could not start a thread to run the call".to_owned(),
            source: Some(Box::new(error)),
        }
    }

    /// Maps an SDK failure to the error that says what to do.
    fn sdk_error<E>(
        &self,
        operation: &'static str,
        error: SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let uri = self.uri.clone();
        let (code, message) = match &error {
            SdkError::ServiceError(context) => {
                let status = context.raw().status().as_u16();
                match context.err().code() {
                    Some(code) => (
                        code.to_owned(),
                        context.err().message().unwrap_or_default().to_owned(),
                    ),
                    // Some KMS look-alikes (moto) answer the JSON protocol with XML errors.
                    None => xml_error(context.raw().body().bytes().unwrap_or_default())
                        .unwrap_or_else(|| (format!("HTTP {status}"), String::new())),
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => {
                let reason = match &error {
                    SdkError::TimeoutError(_) => "the call timed out",
                    SdkError::DispatchFailure(_) => "the request could not be sent",
                    _ => "the reply could not be read",
                };
                return Error::KmsUnavailable {
                    uri,
                    operation,
                    reason: reason.to_owned(),
                    source: Some(Box::new(error)),
                };
            }
            _ => {
                return Error::KmsSetup {
                    uri,
                    reason: format!("could not build the {operation} request"),
                    source: Some(Box::new(error)),
                };
            }
        };
        classify(uri, operation, code, message)
    }
}

/// The endpoint the client is to use and where it came from (`None`: the region's own):
/// the option, else what `sdk_config` names for KMS, resolved as `aws-sdk-kms` resolves it
/// (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, then the profile's `services` section and
/// its `endpoint_url`), so that it can be checked and logged before anything is sent.
fn resolve_endpoint(
    options: &AwsKmsOptions,
    sdk_config: &aws_config::SdkConfig,
) -> Option<(String, String)> {
    if let Some(url) = &options.endpoint_url {
        return Some((url.clone(), CALLER.into()));
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("KMS")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("service id, env and profile names are all set");
    let url = sdk_config
        .service_config()
        .and_then(|config| config.load_config(key))
        .or_else(|| sdk_config.endpoint_url().map(str::to_owned))?;
    let from = ["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find(|name| std::env::var(name).is_ok_and(|value| value.trim() == url))
        .map_or_else(
            || "the AWS profile's endpoint_url or services section".to_owned(),
            |name| format!("{name} in the environment"),
        );
    Some((url, from))
}

/// Sorts a KMS error code into the error that says what to do.
fn classify(uri: String, operation: &'static str, code: String, message: String) -> Error {
    match code.as_str() {
        "NotFoundException" => Error::KmsKeyNotFound {
            uri,
            operation,
            code,
            message,
        },
        "IncorrectKeyException" => Error::WrongKmsKey {
            uri,
            detail: format!("{code}: {message}"),
        },
        "InvalidCiphertextException" => Error::KeysetCiphertextInvalid { uri, code, message },
        "DisabledException"
        | "KMSInvalidStateException"
        | "KMSInvalidStateFault"
        | "InvalidKeyUsageException"
        | "KeyUnavailableException" => Error::KmsKeyUnusable {
            uri,
            operation,
            code,
            message,
        },
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch" => Error::KmsDenied {
            uri,
            operation,
            code,
            message,
        },
        _ => Error::Kms {
            uri,
            operation,
            code,
            message,
        },
    }
}

/// `<Code>` and `<Message>` of an XML error body.
fn xml_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    Some((element("Code")?, element("Message").unwrap_or_default()))
}

/// Tink's encryption context for `associated_data`: none when empty.
fn encryption_context(associated_data: &[u8]) -> Option<HashMap<String, String>> {
    if associated_data.is_empty() {
        return None;
    }
    let hex: String = associated_data.iter().map(|b| format!("{b:02x}")).collect();
    Some(HashMap::from([(
        ASSOCIATED_DATA_CONTEXT_KEY.to_owned(),
        hex,
    )]))
}

/// What an `aws-kms://` URI says.
#[derive(Debug, PartialEq)]
struct ParsedUri {
    arn: String,
    region: String,
    is_key_arn: bool,
}

/// Parses `aws-kms://arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (or `alias/NAME`).
fn parse_key_uri(uri: &str) -> Result<ParsedUri, Error> {
    let invalid = |reason: &str| Error::InvalidKeyUri {
        uri: uri.to_owned(),
        reason: format!(
            "{reason}; expected aws-kms://arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (or alias/NAME)"
        ),
    };
    let arn = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| invalid("it does not start with aws-kms://"))?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(invalid("it is not an ARN (six ':'-separated parts)"));
    };
    if prefix != "arn" || partition.is_empty() || service != "kms" {
        return Err(invalid("it is not a KMS ARN"));
    }
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("the ARN has no valid region"));
    }
    if account.is_empty() {
        return Err(invalid("the ARN has no account"));
    }
    let is_key_arn = match resource.split_once('/') {
        Some(("key", id)) if !id.is_empty() => true,
        Some(("alias", name)) if !name.is_empty() => false,
        _ => return Err(invalid("the ARN names neither key/KEY-ID nor alias/NAME")),
    };
    Ok(ParsedUri {
        arn: arn.to_owned(),
        region: region.to_owned(),
        is_key_arn,
    })
}

impl tink_core::Aead for AwsKmsAead {
    fn encrypt(
        &self,
        plaintext: &[u8],
        additional_data: &[u8],
    ) -> Result<Vec<u8>, tink_core::TinkError> {
        self.try_encrypt(plaintext, additional_data)
            .map_err(|e| tink_core::utils::wrap_err("AWS KMS encrypt failed", e))
    }

    fn decrypt(
        &self,
        ciphertext: &[u8],
        additional_data: &[u8],
    ) -> Result<Vec<u8>, tink_core::TinkError> {
        // Tink's trait hands back a plain Vec; the caller owns zeroizing it.
        self.try_decrypt(ciphertext, additional_data)
            .map(|plaintext| plaintext.to_vec())
            .map_err(|e| tink_core::utils::wrap_err("AWS KMS decrypt failed", e))
    }
}

impl fmt::Debug for AwsKmsAead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsAead")
            .field("key_uri", &self.inner.uri)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_uris_parse_like_tink() {
        let parsed =
            parse_key_uri("aws-kms://arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab")
                .unwrap();
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(
            parsed.arn,
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"
        );
        assert!(parsed.is_key_arn);
        let alias =
            parse_key_uri("aws-kms://arn:aws-cn:kms:cn-north-1:123456789012:alias/prod").unwrap();
        assert!(!alias.is_key_arn);
        for bad in [
            "arn:aws:kms:us-east-1:1:key/x",
            "aws-kms://arn:aws:s3:us-east-1:1:key/x",
            "aws-kms://arn:aws:kms::1:key/x",
            "aws-kms://arn:aws:kms:us-east-1:1:thing/x",
            "aws-kms://arn:aws:kms:us-east-1:1:key/",
            "aws-kms://1234abcd-12ab",
        ] {
            let err = parse_key_uri(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidKeyUri { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn associated_data_goes_in_the_context_as_hex() {
        assert_eq!(encryption_context(b""), None);
        let context = encryption_context(b"\x01\xab").unwrap();
        assert_eq!(context.len(), 1);
        assert_eq!(context["associatedData"], "01ab");
    }

    #[test]
    fn xml_errors_are_read() {
        let body = b"<ErrorResponse><Error><Code>NotFoundException</Code>\
            <Message>key/abc does not exist</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_error(body),
            Some((
                "NotFoundException".to_owned(),
                "key/abc does not exist".to_owned()
            ))
        );
        assert_eq!(xml_error(b"{}"), None);
    }
}
