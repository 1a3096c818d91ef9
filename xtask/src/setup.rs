//! Installs what the tests and the demo need on a fresh Debian machine, or says exactly
//! what to run when it can't.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

/// Debian packages: the PKCS#11 and TPM services the end-to-end tests start, their tools,
/// and the headers `tss-esapi` builds against.
pub const APT_PACKAGES: &[&str] = &[
    "softhsm2",
    "p11-kit-modules",
    "opensc",
    "swtpm",
    "swtpm-tools",
    "tpm2-tools",
    "libtss2-dev",
    "pkg-config",
];

/// Installs missing Debian packages.
pub fn run(_root: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "missing Debian packages: {}\nrun as root: {command}",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let ok = |cmd: &mut Command| cmd.status().map(|s| s.success()).unwrap_or(false);
    let updated = ok(Command::new("apt-get").args(["update", "-qq"]));
    let installed = updated
        && ok(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"));
    if !installed {
        bail!("installing Debian packages failed; run as root: {command}");
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes sure `cargo nextest` is available, installing it from crates.io if not.
pub fn ensure_nextest() -> anyhow::Result<()> {
    let present = super::cargo()
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        return Ok(());
    }
    super::run(
        "installing cargo-nextest (once)",
        super::cargo().args(["install", "cargo-nextest", "--locked"]),
    )
}
