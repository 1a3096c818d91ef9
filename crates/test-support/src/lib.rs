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

/// Two consecutive free TCP ports on 127.0.0.1 (swtpm and OpenBao put a second listener on
/// port + 1), from a spread that depends on the process id, so that tests running at once
/// rarely try the same ones. Racy only against other programs binding them meanwhile.
pub fn free_port_pair() -> u16 {
    let seed = std::process::id() % 997;
    (0..500u32)
        .map(|i| (20_000 + (seed * 7 + i * 13) % 30_000) as u16)
        .find(|p| {
            std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", *p + 1)).is_ok()
        })
        .expect("two consecutive free ports on 127.0.0.1")
}

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
