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
//! - [`openbao`]: OpenBao's `bao` CLI, to set up the dev server or a test's own server;
//! - `rolesanywhere` (feature `moto`): the local IAM Roles Anywhere endpoint that verifies
//!   what it receives and mints credentials from moto, and its test PKI.

pub mod env;
pub mod fuzz;
pub mod http;
#[cfg(feature = "local-server")]
pub mod local_server;
#[cfg(feature = "moto")]
pub mod moto;
pub mod openbao;
pub mod proxy;
#[cfg(feature = "moto")]
pub mod rolesanywhere;
#[cfg(feature = "bench")]
pub mod rounds;
#[cfg(feature = "softhsm")]
pub mod softhsm;
pub mod tpm;

/// Two consecutive free TCP ports on 127.0.0.1 (swtpm and OpenBao put a second listener on
/// port + 1); `None` if none were found.
///
/// Candidates come from below the kernel's ephemeral range (32768 and up on Linux): a busy
/// client leaves thousands of its ephemeral ports in TIME_WAIT (libtss2's swtpm TCTI
/// connects once per command), and those cannot be bound again for a minute, so "the port
/// after a free ephemeral port" is often taken. A simple generator seeded from the clock and
/// pid spreads the picks so that runs at the same time rarely try the same ports.
pub fn free_port_pair() -> Option<u16> {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    (0..500).find_map(|_| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let port = 20_000 + (seed >> 16) as u16 % 12_000;
        (std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok())
        .then_some(port)
    })
}

/// An error and every one of its causes, joined by ": ": for asserting on a cause that
/// errors leave to `source()`. (`sigv4_core::error_chain`, which the CLI prints, also drops a
/// link whose text the one before it repeats.)
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
