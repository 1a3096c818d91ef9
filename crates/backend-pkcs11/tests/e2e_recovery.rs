//! The signer heals without the caller seeing an error: after a logout from another session,
//! after every session of the process is closed from another handle, after the module is
//! finalised from another handle; and each of those again with eight threads signing at once.
//!
//! One test, run in order: closing all sessions and finalising act on the whole process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use std::sync::{Arc, Barrier};

use backend_pkcs11::{OpenOptions, Pkcs11RootKey};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN, context};
use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, SoftwareRootKey};

fn day(n: i64) -> DateStamp {
    DateStamp::from_date(time::macros::date!(2015 - 08 - 30) + time::Duration::days(n))
}

fn assert_signs(key: &Pkcs11RootKey, n: i64, what: &str) {
    let want = SoftwareRootKey::from_secret_access_key(SUITE_SECRET)
        .date_key(&day(n))
        .unwrap();
    match key.date_key(&day(n)) {
        Ok(got) => assert_eq!(got.as_bytes(), want.as_bytes(), "{what}"),
        Err(e) => panic!("{what}: the caller saw an error: {e}"),
    }
}

/// Something done to the token behind the key's back.
type Fault = fn(&TestToken);

/// Logs the token out from a session of another handle (login state is per application).
fn logout(token: &TestToken) {
    token.user_session().logout().unwrap();
}

/// Closes every session of the process from another handle: finalise and initialise again.
fn close_all_sessions(_: &TestToken) {
    let other = context();
    other.clone().finalize().unwrap();
    other
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
}

/// Finalises the module from another handle and leaves it so.
fn finalize(_: &TestToken) {
    context().finalize().unwrap();
}

/// Eight threads, started together, each signing 20 dates from `base`.
fn run_threads(key: &Arc<Pkcs11RootKey>, base: i64, what: &str) {
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (key, start, what) = (key.clone(), start.clone(), what.to_owned());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..20 {
                    assert_signs(&key, 100 + base + t * 20 + i, &format!("8 threads, {what}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn recovers_from_logout_closed_sessions_and_finalize() {
    let _serial = common::serial();
    let token = TestToken::new("recovery");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let key = Arc::new(
        Pkcs11RootKey::open_with(
            &token.uri("aws"),
            OpenOptions::new().pin(SecretString::from(USER_PIN)),
        )
        .unwrap(),
    );
    assert_signs(&key, 0, "before anything happened");

    // 1. Logged out from another session (login state is shared by all of them):
    //    the next C_Sign returns CKR_USER_NOT_LOGGED_IN or CKR_KEY_HANDLE_INVALID.
    logout(&token);
    assert_signs(&key, 1, "after a logout from another session");
    assert_eq!(key.repairs(), 1);

    // 2. Every session of the process closed from another handle. cryptoki has no safe
    //    C_CloseAllSessions, so this is done the way a second component in the process would
    //    do it: finalise and initialise the module again through its own handle. The key's
    //    sessions and object handles are gone: CKR_SESSION_HANDLE_INVALID.
    close_all_sessions(&token);
    assert_signs(
        &key,
        2,
        "after all sessions were closed from another handle",
    );
    assert_eq!(key.repairs(), 2);

    // 3. The module finalised from another handle and left so:
    //    CKR_CRYPTOKI_NOT_INITIALIZED; the key initialises it again.
    finalize(&token);
    assert_signs(
        &key,
        3,
        "after the module was finalised from another handle",
    );
    assert_eq!(key.repairs(), 3);

    // 4. The same three faults with eight threads signing into them at once: they all see
    //    the fault, one repairs, the others notice and retry. (The faults are made while no
    //    call is in flight: SoftHSM itself crashes if a logout or C_Finalize lands in the
    //    middle of another thread's C_Sign, whatever the caller does.)
    let faults: [(&str, Fault); 3] = [
        ("logout", logout),
        ("all sessions closed", close_all_sessions),
        ("finalize", finalize),
    ];
    for (round, (what, fault)) in faults.iter().enumerate() {
        // Fill the pool with sessions that will all go stale together.
        run_threads(&key, 1000 * round as i64, what);
        let before = key.repairs();
        fault(&token);
        run_threads(&key, 1000 * round as i64 + 500, what);
        // All eight saw the fault; one repaired it, the others noticed and only retried.
        assert_eq!(key.repairs(), before + 1, "{what}");
    }
    assert_signs(&key, 4, "at the end");
}
