//! The local IAM Roles Anywhere endpoint (`python/rolesanywhere_endpoint.py`) and its test
//! PKI: no Roles Anywhere service runs here, so tests talk to one that follows the documented
//! protocol, verifies every request it receives, and answers with real credentials from moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::env;
use crate::moto;

/// The trust anchor the endpoint accepts (any ARN of the right form works; it only compares).
pub const TRUST_ANCHOR_ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/7a1c6c4b-0f2e-4a55-9d4e-5a0a1e4c2b10";
/// The profile the endpoint accepts.
pub const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/3f0e5b8d-61c4-4c0f-8d35-2b8f8a7e9c21";

/// A trust anchor in eu-west-1, for tests of the signing region.
pub const TRUST_ANCHOR_ARN_EU_WEST_1: &str = "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0b7d9a2e-3c41-4e8f-a6d2-9f1e7c5b3a20";
/// A profile in eu-west-1, with [`TRUST_ANCHOR_ARN_EU_WEST_1`].
pub const PROFILE_ARN_EU_WEST_1: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/5c2a8e1f-7b3d-4f60-9e14-2d8c6a0b7f35";

/// How an [`Endpoint`] is set up beyond its trust anchor (`Default`: the test ARNs in
/// us-east-1, every verified request answered).
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// The region the endpoint expects in the credential scope.
    pub region: String,
    /// The trust anchor ARN it accepts.
    pub trust_anchor_arn: String,
    /// The profile ARN it accepts.
    pub profile_arn: String,
    /// The first N verified requests get a 503 InternalServerException.
    pub fail_first: u32,
    /// The first N verified requests (after those that fail) get a 429 ThrottlingException.
    pub throttle_first: u32,
    /// Every request is answered 307 to this URL (plus the request's path and query).
    pub redirect_to: Option<String>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            trust_anchor_arn: TRUST_ANCHOR_ARN.into(),
            profile_arn: PROFILE_ARN.into(),
            fail_first: 0,
            throttle_first: 0,
            redirect_to: None,
        }
    }
}

/// The moto role the endpoint mints credentials for.
pub fn role_arn() -> String {
    moto::env(env::ROLE_ARN)
}

/// The endpoint script (also a test CA: see its `pki` command).
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/rolesanywhere_endpoint.py")
}

/// The virtualenv's Python (`KEYHOLD_TEST_PYTHON_BIN` is its `bin/`).
pub fn python() -> PathBuf {
    Path::new(&moto::env(env::PYTHON_BIN)).join("python")
}

/// A fresh directory under the system's temp dir, for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyhold-ra-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test PKI made by the endpoint script: `ca.pem`, `leaf.pem`, `leaf.key`,
/// `full-chain.pem` (and `intermediate.pem`) in `dir`.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
    /// The leaf's serial number in decimal.
    pub serial: String,
}

impl Pki {
    /// Runs `pki --dir DIR ARGS...` (see the script's usage).
    pub fn make(dir: &Path, args: &[&str]) -> Self {
        Self::make_with_password(dir, args, "")
    }

    /// An expired leaf with a `key` key (`p256`, `rsa2048`...) in `dir`, issued by `ca`'s CA.
    pub fn make_expired(dir: &Path, ca: &Pki, key: &str) -> Self {
        let ca_dir = ca.dir.to_str().expect("a UTF-8 scratch path");
        Self::make(dir, &["--key", key, "--expired", "--ca-dir", ca_dir])
    }

    /// As [`make`](Self::make), encrypting the key (`--key-format encrypted`) with `password`.
    pub fn make_with_password(dir: &Path, args: &[&str], password: &str) -> Self {
        let out = Command::new(python())
            .env("KEYHOLD_TEST_KEY_PASSWORD", password)
            .arg(script())
            .args(["pki", "--dir"])
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pki {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir: dir.to_owned(),
            serial: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        }
    }

    /// A file of the PKI.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The endpoint, serving on loopback until dropped.
pub struct Endpoint {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT` of the https listener, when started with one.
    pub tls_address: Option<String>,
    stderr: PathBuf,
}

impl Endpoint {
    /// Starts an endpoint trusting `anchor` (a CA PEM) for the test ARNs; the first
    /// `fail_first` verified requests get a 503.
    pub fn start(anchor: &Path, fail_first: u32) -> Self {
        Self::start_configured(
            anchor,
            &EndpointOptions {
                fail_first,
                ..EndpointOptions::default()
            },
        )
    }

    /// Starts an endpoint trusting `anchor` whose first `n` verified requests get a 429.
    pub fn throttling(anchor: &Path, n: u32) -> Self {
        Self::start_configured(
            anchor,
            &EndpointOptions {
                throttle_first: n,
                ..EndpointOptions::default()
            },
        )
    }

    /// Starts an endpoint trusting `anchor`, set up as `options` say.
    pub fn start_configured(anchor: &Path, options: &EndpointOptions) -> Self {
        let (fail, throttle) = (
            options.fail_first.to_string(),
            options.throttle_first.to_string(),
        );
        let mut extra = vec![
            "--fail-first",
            &fail,
            "--throttle-first",
            &throttle,
            "--region",
            &options.region,
            "--trust-anchor-arn",
            &options.trust_anchor_arn,
            "--profile-arn",
            &options.profile_arn,
        ];
        if let Some(url) = &options.redirect_to {
            extra.extend(["--redirect-to", url]);
        }
        Self::start_with(anchor, &role_arn(), &moto::moto(), &extra)
    }

    /// keyhold's flags for a CreateSession here: `--trust-anchor-arn ... --profile-arn ...
    /// --role-arn ... --endpoint-url URL` (the test trust anchor, profile and role).
    pub fn session_flags(&self) -> Vec<String> {
        let role = role_arn();
        let flags = [
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
            "--profile-arn",
            PROFILE_ARN,
            "--role-arn",
            &role,
            "--endpoint-url",
            &self.url,
        ];
        flags.map(str::to_owned).to_vec()
    }

    /// For benchmarks of the clients only: no moto (fixed credentials for `role_arn`), and
    /// an https listener with `pki`'s server certificate (`Pki::make(.., ["--server"])`).
    pub fn start_static(pki: &Pki, role_arn: &str) -> Self {
        let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
        let tls = [
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        let mut extra = vec![
            "--region",
            "us-east-1",
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
        ];
        extra.extend(["--profile-arn", PROFILE_ARN]);
        extra.extend(tls);
        Self::start_with(&pki.path("ca.pem"), role_arn, "static", &extra)
    }

    fn start_with(anchor: &Path, role_arn: &str, sts: &str, extra: &[&str]) -> Self {
        // One log per endpoint: tests start several with one anchor.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = anchor.with_extension(format!("endpoint-{}-{n}.log", std::process::id()));
        let mut child = Command::new(python())
            .arg(script())
            .arg("serve")
            .arg("--anchor")
            .arg(anchor)
            .args(["--role-arn", role_arn])
            .args(["--sts", sts])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut ports = line.split_whitespace().map(|p| p.parse::<u16>());
        let Some(Ok(port)) = ports.next() else {
            panic!(
                "the endpoint did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        };
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            tls_address: ports
                .next()
                .and_then(Result::ok)
                .map(|p| format!("127.0.0.1:{p}")),
            stderr,
        }
    }

    /// The reasons the endpoint refused (or throttled, or redirected) requests, one per line.
    pub fn refusals(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Panics unless every refusal was of a reachability probe (`keyhold doctor`'s GET): no
    /// CreateSession was refused.
    pub fn assert_only_probes_refused(&self) {
        let refusals = self.refusals();
        assert!(
            refusals
                .lines()
                .all(|l| l.contains("no such operation GET")),
            "{refusals}"
        );
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
