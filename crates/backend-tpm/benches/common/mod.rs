//! What the TPM benches share: where swtpm is, and the bare tss-esapi context their floors
//! run on.

use backend_tpm::tss_esapi::Context;
use backend_tpm::tss_esapi::handles::KeyHandle;
use backend_tpm::tss_esapi::interface_types::resource_handles::Hierarchy;
use backend_tpm::tss_esapi::interface_types::session_handles::AuthSession;

/// The TCTI of the swtpm `cargo xtask bench` starts.
pub fn tcti() -> String {
    std::env::var(test_support::env::TPM_TCTI).unwrap_or_else(|_| {
        panic!("KEYHOLD_TEST_TPM_TCTI is not set: run `cargo xtask bench`, which starts swtpm")
    })
}

/// A bare tss-esapi context on swtpm with a password session, and the owner's standard
/// storage primary made in it (flush it once the key under it is loaded).
pub fn bare_context_and_primary() -> (Context, KeyHandle) {
    let mut ctx = Context::new(tcti().parse().expect("TCTI")).expect("tss-esapi context");
    ctx.set_sessions((Some(AuthSession::Password), None, None));
    let primary = ctx
        .create_primary(
            Hierarchy::Owner,
            backend_tpm::storage_primary_template().expect("primary template"),
            None,
            None,
            None,
            None,
        )
        .expect("primary")
        .key_handle;
    (ctx, primary)
}
