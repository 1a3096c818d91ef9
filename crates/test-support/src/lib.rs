//! What the workspace's tests share (never a dependency of a shipped crate):
//!
//! - [`env`]: the variables `cargo xtask` sets for tests (where its local services are),
//!   named once, here, for xtask and the tests alike;
//! - [`fuzz`]: a small, seeded mutation fuzzer for the parsers that read files or the
//!   network. It needs no nightly toolchain (none can be installed here); `cargo xtask ci`
//!   runs every target for a bounded number of inputs from its corpus in `testdata/fuzz/`;
//! - [`http`]: loopback servers that answer every request alike, or never;
//! - [`proxy`]: a counting TCP relay in front of a real service that can be taken down;
//! - `rounds` (feature `bench`): how every criterion bench in the workspace runs its rows;
//! - `local_server` (feature `local-server`): a loopback HTTP server with canned replies,
//!   for the STS client's and the SDK provider's tests;
//! - `softhsm` (feature `softhsm`): the SoftHSM module and fresh tokens;
//! - [`tpm`]: tpm2-tools against swtpm, to make keys as users of other tools make them;
//! - `moto` (feature `moto`): the local AWS (moto) and signed calls to it;
//! - `rolesanywhere` (feature `moto`): the local IAM Roles Anywhere endpoint that verifies
//!   what it receives and mints credentials from moto, and its test PKI.

pub mod env;
pub mod fuzz;
pub mod http;
#[cfg(feature = "local-server")]
pub mod local_server;
#[cfg(feature = "moto")]
pub mod moto;
pub mod proxy;
#[cfg(feature = "moto")]
pub mod rolesanywhere;
#[cfg(feature = "bench")]
pub mod rounds;
#[cfg(feature = "softhsm")]
pub mod softhsm;
pub mod tpm;

/// An error and its causes, joined by ": ", as the `keyhold` CLI prints them: for asserting
/// on a cause that errors leave to `source()`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
