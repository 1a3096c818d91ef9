//! swtpm for the TPM tests: two software TPMs in socket mode on loopback, fresh state each run.
//!
//! swtpm serves one client at a time and has no resource manager, so the TPM tests run one at
//! a time (the `tpm` test group in `.config/nextest.toml`). Instance A is the TPM most tests
//! use; instance B is a second, different TPM (duplication target, EK-pinning bystander).
//! Exports:
//!
//! - `KEYHOLD_TEST_TPM_TCTI`, `KEYHOLD_TEST_TPM_B_TCTI`: `swtpm:host=127.0.0.1,port=P`.
//! - `KEYHOLD_TEST_TPM_STATE`, `KEYHOLD_TEST_TPM_PORT`: A's state directory and port (control
//!   channel on port + 1, pid in `STATE/swtpm.pid`), so a test can kill A and start it again
//!   with the same arguments as [`swtpm_args`]. Stopping goes through the control channel,
//!   which reaches a restarted A too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use super::{ChildGuard, Ctx, Service, free_port_pair, wait_for_port};

struct Instance {
    child: ChildGuard,
    port: u16,
    state: PathBuf,
}

struct Swtpm {
    a: Instance,
    b: Instance,
}

/// Starts the two instances and waits until both listen.
pub fn start(ctx: &Ctx) -> anyhow::Result<Box<dyn Service>> {
    let a = Instance::start(&ctx.work.join("swtpm-a"))?;
    let b = Instance::start(&ctx.work.join("swtpm-b"))?;
    Ok(Box::new(Swtpm { a, b }))
}

/// The swtpm command line for a state directory and port (tests restart A with the same).
pub fn swtpm_args(state: &Path, port: u16) -> Vec<String> {
    vec![
        "socket".into(),
        "--tpm2".into(),
        format!("--tpmstate=dir={}", state.display()),
        format!("--server=type=tcp,port={port},bindaddr=127.0.0.1"),
        format!("--ctrl=type=tcp,port={},bindaddr=127.0.0.1", port + 1),
        // Powered on and TPM2_Startup(CLEAR) done, as a booted machine's TPM.
        "--flags=not-need-init,startup-clear".into(),
        format!("--pid=file={}", state.join("swtpm.pid").display()),
    ]
}

impl Instance {
    fn start(state: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state)
            .with_context(|| format!("could not create {}", state.display()))?;
        let port = free_port_pair()?;
        let mut child =
            ChildGuard::spawn("swtpm", Command::new("swtpm").args(swtpm_args(state, port)))
                .context("apt-get install swtpm (or run `cargo xtask setup`)")?;
        // The control channel, so the one client slot of the TPM port is not taken.
        wait_for_port(&mut child, port + 1, Duration::from_secs(10))?;
        Ok(Self {
            child,
            port,
            state: state.to_path_buf(),
        })
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        // Shuts down whichever swtpm holds the port, ours or one a test restarted.
        let _ = Command::new("swtpm_ioctl")
            .args(["--tcp", &format!("127.0.0.1:{}", self.port + 1), "-s"])
            .output();
        self.child.kill()
    }
}

impl Service for Swtpm {
    fn name(&self) -> &'static str {
        "swtpm"
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (test_support::env::TPM_TCTI.into(), self.a.tcti()),
            (test_support::env::TPM_B_TCTI.into(), self.b.tcti()),
            (
                test_support::env::TPM_STATE.into(),
                self.a.state.display().to_string(),
            ),
            (test_support::env::TPM_PORT.into(), self.a.port.to_string()),
        ]
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let a = self.a.stop();
        let b = self.b.stop();
        a.and(b)
    }
}
