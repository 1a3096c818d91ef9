//! The backend scenario (see `common::backend_scenario`) with the moto user's secret
//! imported into swtpm. (`tpm` in the file name: nextest runs it in the one-at-a-time group.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use backend_tpm::{ImportOptions, KeyAuth, Tpm, TpmRootKey};
use common::*;
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

fn tpm_key() -> TpmRootKey {
    let tpm = Tpm::connect(Some(&env(test_support::env::TPM_TCTI))).expect("connect to swtpm");
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(
        env(test_support::env::AWS_SECRET_ACCESS_KEY).into_bytes(),
    ));
    let imported = tpm
        .import(
            &secret,
            &ImportOptions::new(env(test_support::env::AWS_ACCESS_KEY_ID)),
        )
        .expect("import into the TPM");
    tpm.load_key_file(&imported.key_file, KeyAuth::none())
        .expect("load the key")
}

#[tokio::test(flavor = "multi_thread")]
async fn tpm_key_signs_sts_and_sdk_requests() {
    let key = tokio::task::spawn_blocking(tpm_key).await.unwrap();
    backend_scenario("tpm", Arc::new(key)).await;
}
