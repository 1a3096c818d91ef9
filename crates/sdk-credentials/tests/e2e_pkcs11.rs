//! The backend scenario (see `common::backend_scenario`) with the moto user's secret
//! imported into a fresh SoftHSM token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use backend_pkcs11::{ImportOptions, OpenOptions, Pkcs11RootKey, Pkcs11Uri, import_key};
use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use secrecy::SecretString;
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

const SO_PIN: &str = "so-pin-for-tests";
const USER_PIN: &str = "user-pin-for-tests";

/// A new SoftHSM token holding the moto user's secret; returns the key, opened.
fn token_key() -> Pkcs11RootKey {
    let module = env("KEYHOLD_TEST_PKCS11_MODULE");
    env("SOFTHSM2_CONF");
    let ctx = Pkcs11::new(&module).expect("load SoftHSM");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let mut label = unique("sdk");
    label.truncate(32);
    // Token creation takes turns with other test processes: one listing slots while SoftHSM
    // writes a new token's files fails on the half-made token. (Same lock file as the
    // backend's and the CLI's tests.)
    let conf = std::path::PathBuf::from(std::env::var_os("SOFTHSM2_CONF").expect("SOFTHSM2_CONF"));
    let lock = std::fs::File::create(conf.with_file_name("token-init.lock")).unwrap();
    lock.lock().unwrap();
    // A slot whose token can't be read is being written by another process: not the free one.
    let free = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|info| !info.token_initialized())
        })
        .expect("SoftHSM offers a free slot");
    ctx.init_token(free, &SecretString::from(SO_PIN), &label)
        .unwrap();
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|info| info.label() == label)
        })
        .unwrap();
    // Setting the user PIN rewrites the token's files too: still under the lock.
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&SecretString::from(SO_PIN)))
        .unwrap();
    session.init_pin(&SecretString::from(USER_PIN)).unwrap();
    drop(session);
    drop(lock);

    let mut uri = Pkcs11Uri::default();
    uri.token = Some(label);
    uri.object = Some("aws".into());
    uri.module_path = Some(module);
    uri.pin_value = Some(SecretString::from(USER_PIN));
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(
        env("KEYHOLD_TEST_AWS_SECRET_ACCESS_KEY").into_bytes(),
    ));
    let uri = import_key(
        &uri,
        &secret,
        &env("KEYHOLD_TEST_AWS_ACCESS_KEY_ID"),
        ImportOptions::new(),
    )
    .expect("import into SoftHSM");
    Pkcs11RootKey::open_with(&uri, OpenOptions::new().pin(SecretString::from(USER_PIN))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcs11_key_signs_sts_and_sdk_requests() {
    let key = tokio::task::spawn_blocking(token_key).await.unwrap();
    assert_eq!(key.access_key_id(), env("KEYHOLD_TEST_AWS_ACCESS_KEY_ID"));
    backend_scenario("pkcs11", Arc::new(key)).await;
}
