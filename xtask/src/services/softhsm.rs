//! SoftHSM2 for the PKCS#11 tests: a private token directory and config, nothing running.
//!
//! SoftHSM is a library, not a server: "starting" it means writing a `softhsm2.conf` whose
//! token directory is ours, under the run's scratch directory, so tests never see or touch
//! the machine's tokens. Tests create their own tokens in it (one per test, so tests in
//! parallel processes do not share state). Exports:
//!
//! - `SOFTHSM2_CONF`: the config, read by the SoftHSM library in every test process.
//! - `KEYHOLD_TEST_PKCS11_MODULE`: the SoftHSM module path.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Ctx, Service};

/// Where Debian and other distributions install the SoftHSM2 module.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct SoftHsm {
    conf: PathBuf,
    module: PathBuf,
    dir: PathBuf,
}

/// Writes the private SoftHSM config and checks the module is installed.
pub fn start(ctx: &Ctx) -> anyhow::Result<Box<dyn Service>> {
    let Some(module) = MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        bail!(
            "SoftHSM2 is not installed (looked for {}): apt-get install softhsm2",
            MODULE_CANDIDATES.join(", ")
        );
    };
    let dir = ctx.work.join("softhsm");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)
        .with_context(|| format!("could not create {}", tokens.display()))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\n\
             objectstore.backend = file\n\
             log.level = ERROR\n\
             slots.removable = false\n\
             slots.mechanisms = ALL\n\
             library.reset_on_fork = false\n",
            tokens.display()
        ),
    )
    .with_context(|| format!("could not write {}", conf.display()))?;
    Ok(Box::new(SoftHsm { conf, module, dir }))
}

impl Service for SoftHsm {
    fn name(&self) -> &'static str {
        "softhsm"
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SOFTHSM2_CONF".into(), self.conf.display().to_string()),
            (
                test_support::env::PKCS11_MODULE.into(),
                self.module.display().to_string(),
            ),
        ]
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        // The tokens hold test keys only; remove them so no run sees another's.
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("could not remove {}", self.dir.display()))
    }
}
