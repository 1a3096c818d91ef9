//! The variables `cargo xtask` (`e2e`, `with-services`, `ci`) sets for the tests it runs:
//! where SoftHSM, swtpm, moto and OpenBao are, and who the test user is. xtask sets them by
//! these names and tests read them by these names.

/// The SoftHSM PKCS#11 module's path.
pub const PKCS11_MODULE: &str = "KEYHOLD_TEST_PKCS11_MODULE";
/// The first swtpm's TCTI string (`swtpm:host=127.0.0.1,port=N`).
pub const TPM_TCTI: &str = "KEYHOLD_TEST_TPM_TCTI";
/// The second swtpm's TCTI (duplication tests: another machine's TPM).
pub const TPM_B_TCTI: &str = "KEYHOLD_TEST_TPM_B_TCTI";
/// The first swtpm's command port.
pub const TPM_PORT: &str = "KEYHOLD_TEST_TPM_PORT";
/// The first swtpm's state directory.
pub const TPM_STATE: &str = "KEYHOLD_TEST_TPM_STATE";
/// moto_server's endpoint (`http://127.0.0.1:N`).
pub const MOTO_ENDPOINT: &str = "KEYHOLD_TEST_MOTO_ENDPOINT";
/// The test user's access key id in moto.
pub const AWS_ACCESS_KEY_ID: &str = "KEYHOLD_TEST_AWS_ACCESS_KEY_ID";
/// The test user's secret access key in moto. Tests hand it to keyhold on stdin, never in
/// keyhold's environment.
pub const AWS_SECRET_ACCESS_KEY: &str = "KEYHOLD_TEST_AWS_SECRET_ACCESS_KEY";
/// moto's account id.
pub const ACCOUNT: &str = "KEYHOLD_TEST_ACCOUNT";
/// The test user's ARN.
pub const USER_ARN: &str = "KEYHOLD_TEST_USER_ARN";
/// A role the test user may assume.
pub const ROLE_ARN: &str = "KEYHOLD_TEST_ROLE_ARN";
/// The OpenBao dev server's address (`http://127.0.0.1:N`), transit mounted at `transit/`.
pub const VAULT_ADDR: &str = "KEYHOLD_TEST_VAULT_ADDR";
/// Its root token, for the tests' set-up only (keyhold is given least-privilege tokens).
pub const VAULT_ROOT_TOKEN: &str = "KEYHOLD_TEST_VAULT_ROOT_TOKEN";
/// The xtask virtualenv's `bin` directory (python, aws, boto3, bao).
pub const PYTHON_BIN: &str = "KEYHOLD_TEST_PYTHON_BIN";

/// The value of `name`, or a panic that says how to run the tests with their services.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through `cargo xtask e2e` (or `cargo xtask \
             with-services cargo nextest run -p CRATE`), which starts SoftHSM, swtpm, moto and \
             OpenBao on loopback and sets it"
        )
    })
}
