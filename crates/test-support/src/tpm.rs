//! tpm2-tools against the swtpm `cargo xtask e2e` starts: what the TPM tests of every crate
//! run to make keys the way users of the AWS helper make them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The attributes of a signing key that cannot leave the TPM.
pub const SIGN: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";

/// Runs a tpm2-tools command against `tcti` and returns its stdout; panics with its stderr.
/// Callers disconnect keyhold first: the TPM serves one client at a time.
pub fn tpm2(tcti: &str, tool: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(tool)
        .args(args)
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .unwrap_or_else(|e| panic!("could not run {tool} (install tpm2-tools): {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Flushes every transient object and session: without a resource manager, tpm2-tools and
/// failed tests leave them loaded, and swtpm has room for only a few.
pub fn flush_all(tcti: &str) {
    for kind in ["-t", "-l", "-s"] {
        tpm2(tcti, "tpm2_flushcontext", &[kind]);
    }
}

/// `tpm2_createprimary` of the owner's standard storage primary (ECC P-256, as keyhold's
/// template and tpm2-tools' default make it), its context saved at `context`.
pub fn create_primary(tcti: &str, context: &str) {
    tpm2(
        tcti,
        "tpm2_createprimary",
        &[
            "-C",
            "o",
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
            "-c",
            context,
        ],
    );
}

/// A signing key made by `tpm2_create -G ALGORITHM -a ATTRIBUTES EXTRA...` under the owner's
/// standard primary (made by `tpm2_createprimary` as tpm2-tools makes it), written by
/// `tpm2_encodeobject` as a TSS2 PEM key file. Returns the key file and the public key as PEM
/// (`tpm2_readpublic -f pem`).
pub fn signing_key_file(
    tcti: &str,
    dir: &Path,
    name: &str,
    algorithm: &str,
    attributes: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let path = |f: &str| dir.join(format!("{name}-{f}")).display().to_string();
    flush_all(tcti);
    create_primary(tcti, &path("prim.ctx"));
    let (primary, public, private) = (path("prim.ctx"), path("k.pub"), path("k.priv"));
    let mut create = vec!["-C", &primary, "-G", algorithm, "-a", attributes];
    create.extend(["-u", &public, "-r", &private]);
    create.extend(extra);
    tpm2(tcti, "tpm2_create", &create);
    flush_all(tcti);
    let (key_file, loaded, public_pem) = (path("k.pem"), path("k.ctx"), path("public.pem"));
    tpm2(
        tcti,
        "tpm2_encodeobject",
        &[
            "-C", &primary, "-u", &public, "-r", &private, "-o", &key_file,
        ],
    );
    flush_all(tcti);
    tpm2(
        tcti,
        "tpm2_load",
        &["-C", &primary, "-u", &public, "-r", &private, "-c", &loaded],
    );
    tpm2(
        tcti,
        "tpm2_readpublic",
        &["-c", &loaded, "-f", "pem", "-o", &public_pem],
    );
    flush_all(tcti);
    (PathBuf::from(key_file), PathBuf::from(public_pem))
}
