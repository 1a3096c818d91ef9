//! `-v` / `-vv` / `-vvv`: tracing to stderr. keyhold's own crates log at the chosen level;
//! libraries (hyper, rustls, reqwest) stay a level quieter until `-vvv`. Nothing anywhere logs
//! a secret: keyhold's crates log names, ids and sizes, never key material, PINs, passwords,
//! secret access keys or session tokens.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The crates whose logs `-v` is about.
const OURS: &[&str] = &[
    "keyhold",
    "sigv4_core",
    "backend_pkcs11",
    "backend_tpm",
    "backend_tink",
    "sts_client",
    "rolesanywhere",
    "sdk_credentials",
];

/// Installs the stderr subscriber for this verbosity (the number of `-v`).
pub fn init(verbosity: u8) {
    let (ours, others) = match verbosity {
        0 => (LevelFilter::WARN, LevelFilter::ERROR),
        1 => (LevelFilter::INFO, LevelFilter::WARN),
        2 => (LevelFilter::DEBUG, LevelFilter::INFO),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = OURS
        .iter()
        .fold(Targets::new().with_default(others), |f, target| {
            f.with_target(*target, ours)
        });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(verbosity >= 2);
    // Fails only if a subscriber is already set, which main does once.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}
