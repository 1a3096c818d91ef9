//! The backend scenario (see `common::backend_scenario`) with the moto user's secret
//! imported into a fresh SoftHSM token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// The backend's own SoftHSM test helpers: one place that knows how to make a token while
// other test processes make theirs.
use test_support::softhsm as pkcs11;

use std::sync::Arc;

use backend_pkcs11::{OpenOptions, Pkcs11RootKey};
use common::*;
use secrecy::SecretString;

/// A new SoftHSM token holding the moto user's secret; returns the key, opened.
fn token_key() -> Pkcs11RootKey {
    let token = pkcs11::TestToken::new("sdk");
    let uri = token.import(
        "aws",
        &env(test_support::env::AWS_SECRET_ACCESS_KEY),
        &env(test_support::env::AWS_ACCESS_KEY_ID),
    );
    Pkcs11RootKey::open_with(
        &uri,
        OpenOptions::new().pin(SecretString::from(pkcs11::USER_PIN)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcs11_key_signs_sts_and_sdk_requests() {
    let key = tokio::task::spawn_blocking(token_key).await.unwrap();
    assert_eq!(
        key.access_key_id(),
        env(test_support::env::AWS_ACCESS_KEY_ID)
    );
    backend_scenario("pkcs11", Arc::new(key)).await;
}
