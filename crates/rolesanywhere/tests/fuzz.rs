//! Fuzz targets on stable Rust (see `test-support`'s `fuzz`), run for a bounded number of
//! inputs in `cargo xtask ci`: certificate files (PEM bundles or DER) and private-key PEM
//! files, the two inputs `credential-process --certificate/--private-key` reads. Neither
//! parser may panic; what parses must describe itself consistently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rolesanywhere::{CertificateChain, FileKey};
use sigv4_core::X509Key;
use test_support::fuzz;

#[test]
fn fuzz_certificate_chain() {
    let dictionary: &[&[u8]] = &[
        b"-----BEGIN CERTIFICATE-----\n",
        b"-----END CERTIFICATE-----\n",
        &[0x30, 0x82],
        &[0x02, 0x01, 0x00],
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        &[0x81],
    ];
    let parsed = fuzz::run(
        "certificate-chain",
        0x5eed_00a1,
        fuzz::runs(20_000),
        dictionary,
        |input| {
            let Ok(chain) = CertificateChain::from_pem(input) else {
                return false;
            };
            let info = chain.info();
            assert!(info.serial_number.bytes().all(|b| b.is_ascii_digit()));
            assert!(!chain.leaf_der().is_empty() && !chain.public_key_der().is_empty());
            true
        },
    );
    assert!(parsed >= 3, "only {parsed} inputs parsed");
}

#[test]
fn fuzz_private_key_pem() {
    let dictionary: &[&[u8]] = &[
        b"-----BEGIN EC PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
        b"Proc-Type: 4,ENCRYPTED\n",
        &[0x30, 0x81],
        &[0x04, 0x20],
    ];
    let parsed = fuzz::run(
        "private-key-pem",
        0x5eed_00a2,
        fuzz::runs(20_000),
        dictionary,
        |input| {
            let text = String::from_utf8_lossy(input);
            let Ok(key) = FileKey::from_pem(&text, Some(b"password")) else {
                return false;
            };
            assert!(!key.public_key_der().is_empty());
            assert!(!format!("{key:?}").contains("BEGIN"));
            assert!(!key.sign(b"message").unwrap().is_empty());
            true
        },
    );
    assert!(parsed >= 1, "only {parsed} inputs parsed");
}
