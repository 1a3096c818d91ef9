//! The backend scenario (see `common::backend_scenario`) with the software root key, and
//! GetSessionToken through the provider, against moto_server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aws_credential_types::provider::ProvideCredentials;
use common::*;
use sdk_credentials::CredentialsProvider;
use sigv4_core::SoftwareRootKey;
use sts_client::GetSessionToken;

fn software_key() -> Arc<SoftwareRootKey> {
    Arc::new(SoftwareRootKey::from_secret_access_key(&env(
        test_support::env::AWS_SECRET_ACCESS_KEY,
    )))
}

#[tokio::test(flavor = "multi_thread")]
async fn software_key_signs_sts_and_sdk_requests() {
    backend_scenario("software", software_key()).await;
}

/// moto's GetSessionToken returns fixed example keys that do not authenticate: this checks
/// the signed request is accepted and the reply reaches the SDK as credentials.
#[tokio::test(flavor = "multi_thread")]
async fn session_token_provider_yields_parsed_credentials() {
    let akid = env(test_support::env::AWS_ACCESS_KEY_ID);
    let provider = CredentialsProvider::session_token(
        moto_client(&akid, software_key()),
        GetSessionToken::new().duration(std::time::Duration::from_secs(900)),
    );
    let creds = provider.provide_credentials().await.unwrap();
    assert!(!creds.access_key_id().is_empty());
    assert!(creds.session_token().is_some_and(|t| !t.is_empty()));
    assert!(creds.expiry().unwrap() > std::time::SystemTime::now());
    assert!(!format!("{creds:?}").contains(creds.secret_access_key()));
}

/// moto checks S3 signatures too: the direct scheme with the wrong secret is refused, so the
/// successful listings above were verified signatures, not an open door.
#[tokio::test(flavor = "multi_thread")]
async fn direct_signing_with_a_wrong_secret_is_refused() {
    let akid = env(test_support::env::AWS_ACCESS_KEY_ID);
    let wrong = Arc::new(SoftwareRootKey::from_secret_access_key(
        "not-the-secret-of-this-key",
    ));
    let err = direct_s3(&akid, wrong)
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    let text = format!("{:?}", aws_sdk_s3::error::DisplayErrorContext(&err));
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
}
