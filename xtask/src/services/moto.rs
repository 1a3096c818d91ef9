//! moto_server as a local AWS (IAM, STS, KMS, S3) that checks every signature.
//!
//! Started with `INITIAL_NO_AUTH_ACTION_COUNT` = the number of calls `xtask/moto_setup.py`
//! makes to create an IAM user with an access key, a role it may assume, and allow-all
//! policies for both. From then on moto verifies each request's SigV4 signature (with
//! botocore), the IAM policies and the role's trust policy. Exports:
//!
//! - `KEYHOLD_TEST_MOTO_ENDPOINT`: `http://127.0.0.1:P`, for every service (region us-east-1).
//! - `KEYHOLD_TEST_AWS_ACCESS_KEY_ID`, `KEYHOLD_TEST_AWS_SECRET_ACCESS_KEY`: the user's key.
//! - `KEYHOLD_TEST_USER_ARN`, `KEYHOLD_TEST_ROLE_ARN`, `KEYHOLD_TEST_ACCOUNT`.
//! - `KEYHOLD_TEST_PYTHON_BIN`: the virtualenv's `bin/` (python, aws, moto_server).
//!
//! Its request log is kept, after it stops, at `target/xtask/moto.log`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use super::{ChildGuard, Ctx, Service, free_port, wait_for_port};

/// Calls `moto_setup.py` makes before moto starts checking signatures.
const SETUP_CALLS: u32 = 5;

struct Moto {
    child: ChildGuard,
    endpoint: String,
    identity: serde_json::Value,
    venv: PathBuf,
    log: PathBuf,
    kept_log: PathBuf,
}

/// Starts moto_server on a free loopback port and creates the test identity in it.
pub fn start(ctx: &Ctx) -> anyhow::Result<Box<dyn Service>> {
    let venv = crate::setup::python_venv(&ctx.root)?;
    let dir = ctx.work.join("moto");
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("moto.log");
    let log = std::fs::File::create(&log_path)?;
    let port = free_port()?;
    let mut child = ChildGuard::spawn(
        "moto_server",
        Command::new(venv.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_CALLS.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log),
    )?;
    wait_for_port(&mut child, port, Duration::from_secs(60))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let identity_file = dir.join("identity.json");
    let script = ctx.root.join("xtask/moto_setup.py");
    crate::run(
        "creating the test IAM user and role in moto",
        Command::new(venv.join("python"))
            .arg(&script)
            .arg(&endpoint)
            .arg(&identity_file)
            .arg(SETUP_CALLS.to_string()),
    )?;
    let identity = serde_json::from_slice(&std::fs::read(&identity_file)?)
        .with_context(|| format!("bad {}", identity_file.display()))?;
    Ok(Box::new(Moto {
        child,
        endpoint,
        identity,
        venv,
        log: log_path,
        kept_log: ctx.root.join("target/xtask/moto.log"),
    }))
}

impl Service for Moto {
    fn name(&self) -> &'static str {
        "moto"
    }

    fn env(&self) -> Vec<(String, String)> {
        let field = |name: &str| self.identity[name].as_str().unwrap_or_default().to_owned();
        vec![
            (
                test_support::env::MOTO_ENDPOINT.into(),
                self.endpoint.clone(),
            ),
            (
                test_support::env::AWS_ACCESS_KEY_ID.into(),
                field("access_key_id"),
            ),
            (
                test_support::env::AWS_SECRET_ACCESS_KEY.into(),
                field("secret_access_key"),
            ),
            (test_support::env::USER_ARN.into(), field("user_arn")),
            (test_support::env::ROLE_ARN.into(), field("role_arn")),
            (test_support::env::ACCOUNT.into(), field("account")),
            (
                test_support::env::PYTHON_BIN.into(),
                self.venv.display().to_string(),
            ),
        ]
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        // The run's directory goes away; the log stays for whoever debugs a failed test.
        std::fs::copy(&self.log, &self.kept_log)
            .map(drop)
            .with_context(|| format!("could not keep {}", self.log.display()))
    }
}
