//! Shared helpers of the e2e tests: where the swtpm instances are, one TPM client at a time,
//! and the reference (software) key the TPM's answers are compared with.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use backend_tpm::{SessionEncryption, Tpm};
use sigv4_core::{DateStamp, RootSecret, SoftwareRootKey};
use zeroize::Zeroizing;

/// The AWS documentation's example secret access key.
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";

/// An environment variable set by `cargo xtask e2e`; fails the test (does not skip) if absent.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the TPM tests through `cargo xtask e2e`, which starts swtpm")
    })
}

/// The TCTI of the main swtpm instance.
pub fn tcti() -> String {
    env(test_support::env::TPM_TCTI)
}

/// The TCTI of the second swtpm instance (duplication target/bystander).
pub fn tcti_b() -> String {
    env(test_support::env::TPM_B_TCTI)
}

static ONE_CLIENT: Mutex<()> = Mutex::new(());

/// swtpm serves one client at a time: tests of one binary take turns (nextest runs each test
/// in its own process and serializes them with the `tpm` test group).
pub fn serial() -> MutexGuard<'static, ()> {
    ONE_CLIENT.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn connect() -> Tpm {
    Tpm::connect(Some(&tcti())).expect("connect to swtpm")
}

pub fn connect_cleartext() -> Tpm {
    Tpm::connect_with(Some(&tcti()), SessionEncryption::Cleartext).expect("connect to swtpm")
}

pub fn root_secret() -> RootSecret {
    RootSecret::from_secret_access_key(Zeroizing::new(SECRET.as_bytes().to_vec()))
}

pub fn software_key() -> SoftwareRootKey {
    SoftwareRootKey::from_secret_access_key(SECRET)
}

pub fn date(text: &str) -> DateStamp {
    let format = time::macros::format_description!("[year][month][day]");
    DateStamp::from_date(time::Date::parse(text, &format).expect("yyyymmdd"))
}

/// A persistent handle no other test uses (each test passes its own offset).
pub fn handle(offset: u32) -> u32 {
    0x8100_0100 + offset
}

/// tpm2-tools against swtpm (shared with the other crates' TPM tests).
#[allow(unused_imports)] // not every test binary runs tpm2-tools
pub use test_support::tpm::tpm2;

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keyhold-tpm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Evicts a persistent handle if something is there (test cleanup; ignores "nothing there").
pub fn evict_if_present(tcti: &str, handle: u32) {
    let handle = format!("{handle:#010x}");
    let _ = std::process::Command::new("tpm2_evictcontrol")
        .args(["-C", "o", "-c", &handle])
        .env("TPM2TOOLS_TCTI", tcti)
        .output();
}
