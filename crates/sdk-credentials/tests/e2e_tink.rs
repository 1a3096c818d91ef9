//! The backend scenario (see `common::backend_scenario`) with the moto user's secret in a
//! Tink keyset encrypted under a KMS key of this test's own in moto, and opened again
//! through KMS as a user's program would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use backend_tink::{AwsKmsAead, AwsKmsOptions, MasterKey, TinkRootKey, create_keyset};
use common::*;
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

/// The test user's credentials, for the KMS calls (the machine's own identity).
fn kms_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        env(test_support::env::AWS_ACCESS_KEY_ID),
        env(test_support::env::AWS_SECRET_ACCESS_KEY),
        None,
        None,
        "keyhold-tests",
    )
}

/// Creates a symmetric KMS key in moto (a signed CreateKey) and returns its Tink URI.
async fn create_kms_key() -> String {
    let config = sdk_config(kms_credentials()).await;
    let key = aws_sdk_kms::Client::new(&config)
        .create_key()
        .description(unique("sdk-tink"))
        .send()
        .await
        .expect("KMS CreateKey on moto");
    format!("aws-kms://{}", key.key_metadata().unwrap().arn().unwrap())
}

/// Our AWS KMS master key for `key_uri`, on moto.
fn master_key(key_uri: &str) -> MasterKey {
    MasterKey::from(
        AwsKmsAead::new(
            key_uri,
            AwsKmsOptions::new()
                .endpoint_url(moto())
                .credentials_provider(kms_credentials()),
        )
        .expect("AWS KMS AEAD"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tink_key_signs_sts_and_sdk_requests() {
    let key_uri = create_kms_key().await;
    let key = tokio::task::spawn_blocking(move || {
        let secret = RootSecret::from_secret_access_key(Zeroizing::new(
            env(test_support::env::AWS_SECRET_ACCESS_KEY).into_bytes(),
        ));
        let json = create_keyset(&secret, &master_key(&key_uri)).expect("create the keyset");
        drop(secret);
        // A new client opens it, as a later process would.
        TinkRootKey::open(json.as_bytes(), &master_key(&key_uri)).expect("open the keyset")
    })
    .await
    .unwrap();
    backend_scenario("tink", Arc::new(key)).await;
}
