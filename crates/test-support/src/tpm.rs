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

/// An swtpm of one test's own (its state in a directory of the test's, on two free ports),
/// which the test can kill and start again on the same state, as a TPM restarting under a
/// running program. Killed when dropped.
pub struct OwnSwtpm {
    /// `swtpm:host=127.0.0.1,port=P` (the control port is P + 1, as the TCTI expects).
    pub tcti: String,
    port: u16,
    state: PathBuf,
}

impl OwnSwtpm {
    /// Starts one with its state in `dir`.
    pub fn start(dir: &Path) -> Self {
        let state = dir.join("swtpm-state");
        std::fs::create_dir_all(&state).expect("swtpm state directory");
        let port = crate::free_port_pair().expect("two free ports");
        let swtpm = Self {
            tcti: format!("swtpm:host=127.0.0.1,port={port}"),
            port,
            state,
        };
        swtpm.launch();
        swtpm
    }

    fn pid_file(&self) -> PathBuf {
        self.state.join("swtpm.pid")
    }

    fn launch(&self) {
        let status = std::process::Command::new("swtpm")
            .args(["socket", "--tpm2", "--daemon"])
            .arg(format!("--tpmstate=dir={}", self.state.display()))
            .arg(format!(
                "--server=type=tcp,port={},bindaddr=127.0.0.1",
                self.port
            ))
            .arg(format!(
                "--ctrl=type=tcp,port={},bindaddr=127.0.0.1",
                self.port + 1
            ))
            .arg("--flags=not-need-init,startup-clear")
            .arg(format!("--pid=file={}", self.pid_file().display()))
            .status()
            .expect("swtpm (apt-get install swtpm)");
        assert!(status.success(), "swtpm did not start");
        self.wait_for(true);
    }

    fn wait_for(&self, listening: bool) {
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port + 1)).is_ok() != listening {
            assert!(
                start.elapsed().as_secs() < 10,
                "swtpm did not {}",
                if listening { "start" } else { "stop" }
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.pid_file()) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
            self.wait_for(false);
        }
    }

    /// Kills it (SIGKILL) and starts it again on the same state and ports.
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }
}

impl Drop for OwnSwtpm {
    fn drop(&mut self) {
        self.kill();
    }
}
