//! Shared by the sdk-credentials tests: the moto helpers and local server of sts-client's
//! tests, SDK clients on moto (plain HTTP), and the per-backend scenario every e2e file runs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use test_support::moto as sts;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_credential_types::provider::ProvideCredentials;
use sdk_credentials::{CredentialsProvider, DeviceSigV4AuthScheme};
use sigv4_core::{DateKey, DateStamp, KeyError, RootKey};
use sts_client::AssumeRole;

pub use sts::{env, moto, moto_client, unique};

/// Counts the calls that reach the wrapped (device) key.
#[derive(Debug)]
pub struct CountingKey {
    inner: Arc<dyn RootKey>,
    calls: AtomicU64,
}

impl CountingKey {
    pub fn new(inner: Arc<dyn RootKey>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicU64::new(0),
        })
    }
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl RootKey for CountingKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.date_key(date)
    }
}

/// An SDK HTTP client for moto's plain-HTTP endpoint.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

/// An SDK config on moto whose credentials come from `provider`.
pub async fn sdk_config(provider: impl ProvideCredentials + 'static) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto())
        .http_client(http_client())
        .credentials_provider(provider)
        .load()
        .await
}

/// An S3 client on moto signing every request with the device key (no credentials at all).
pub fn direct_s3(access_key_id: &str, key: Arc<dyn RootKey>) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(moto())
        .force_path_style(true)
        .http_client(http_client())
        .push_auth_scheme(DeviceSigV4AuthScheme::new(access_key_id, key))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An STS client (the SDK's) on moto signing with the device key directly.
pub fn direct_sts(access_key_id: &str, key: Arc<dyn RootKey>) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(moto())
        .http_client(http_client())
        .push_auth_scheme(DeviceSigV4AuthScheme::new(access_key_id, key))
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// The bucket names S3 lists.
pub async fn bucket_names(s3: &aws_sdk_s3::Client) -> Vec<String> {
    s3.list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}

/// What every backend must do against moto, with the moto test user's secret in `device`:
/// GetCallerIdentity through sts-client; AssumeRole credentials through the provider listing
/// S3 buckets with `aws-sdk-s3`; and the direct-signing scheme with `aws-sdk-sts` and
/// `aws-sdk-s3`, with no STS call and no credentials configured.
pub async fn backend_scenario(backend: &str, device: Arc<dyn RootKey>) {
    let akid = env(test_support::env::AWS_ACCESS_KEY_ID);
    let user_arn = env(test_support::env::USER_ARN);
    let counted = CountingKey::new(device);
    let key: Arc<dyn RootKey> = counted.clone();

    // 1. GetCallerIdentity signed by the device key.
    let sts = moto_client(&akid, Arc::clone(&key));
    assert_eq!(
        sts.get_caller_identity().await.unwrap().arn,
        user_arn,
        "{backend}"
    );
    assert_eq!(
        counted.calls(),
        1,
        "{backend}: one device call for the scope"
    );

    // 2. AssumeRole credentials, through the provider, used by aws-sdk-s3.
    let role_arn = sts::assumable_role(&[]).await;
    let provider = CredentialsProvider::assume_role(
        sts.clone(),
        AssumeRole::new(&role_arn, unique(backend).replace('-', "_")),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config(provider.clone()).await)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique(&format!("kh-{backend}")).to_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket with role credentials");
    assert!(bucket_names(&s3).await.contains(&bucket), "{backend}");
    let creds = provider.provide_credentials().await.unwrap();
    assert!(
        creds.access_key_id().starts_with("ASIA"),
        "{backend}: role credentials"
    );

    // 3. Direct signing: no credentials provider, no STS; the device key signs each request.
    let before = counted.calls();
    let direct = direct_s3(&akid, Arc::clone(&key));
    assert!(bucket_names(&direct).await.contains(&bucket), "{backend}");
    assert_eq!(
        counted.calls(),
        before + 1,
        "{backend}: one device call for the s3 scope"
    );
    bucket_names(&direct).await;
    assert_eq!(
        counted.calls(),
        before + 1,
        "{backend}: then the cached signing key"
    );
    let id = direct_sts(&akid, Arc::clone(&key))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity through aws-sdk-sts");
    // The user's own ARN, not an assumed role: the request was signed with the long-term key.
    assert_eq!(id.arn(), Some(user_arn.as_str()), "{backend}");
}
