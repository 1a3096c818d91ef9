//! Fuzz target on stable Rust (see `test-support`'s `fuzz`), run for a bounded number of
//! inputs in `cargo xtask ci`: TSS2 key files, PEM and DER, as `--key tpm:file=` reads them.
//! Parsing never panics, and a file that parses writes back as DER that parses to the same
//! key file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_tpm::TpmKeyFile;
use test_support::fuzz;

#[test]
fn fuzz_tss2_key_file() {
    let dictionary: &[&[u8]] = &[
        b"-----BEGIN TSS2 PRIVATE KEY-----\n",
        b"-----END TSS2 PRIVATE KEY-----",
        b"=",
        b"\n",
        b"aws_access_key_id = ",
        &[0x30, 0x82, 0xff, 0xff],
        &[0xa0, 0x03, 0x01, 0x01, 0x01],
        &[0x02, 0x04, 0x40, 0x00, 0x00, 0x01],
        &[0x04, 0x00],
    ];
    let parsed = fuzz::run(
        "tss2-key-file",
        0x5eed_0004,
        fuzz::runs(20_000),
        dictionary,
        |input| {
            let from_pem = TpmKeyFile::from_pem(&String::from_utf8_lossy(input));
            let files = [from_pem.ok(), TpmKeyFile::from_der(input).ok()];
            let accepted = files.iter().any(Option::is_some);
            for file in files.into_iter().flatten() {
                let again = TpmKeyFile::from_der(&file.to_der()).expect("our own DER parses");
                assert_eq!(again.to_der(), file.to_der());
            }
            accepted
        },
    );
    assert!(parsed > 10, "only {parsed} inputs parsed");
}
