//! Helpers of the tests of `keyhold serve`, `exec` and `update`: a running server and the
//! lines it printed, a small HTTP/1.1 client (one request per connection, or many over one
//! kept-alive connection), and the environment that points the AWS CLI, boto3 and the Rust
//! SDK at an endpoint with nothing else to find.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{env, keyhold, moto, python_bin, without_host_credentials};

/// A `keyhold serve` of a test's own, on a free loopback port.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT/`, for AWS_EC2_METADATA_SERVICE_ENDPOINT.
    pub imds: String,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The ECS endpoint's URL.
    pub ecs_uri: String,
    /// The ECS token when it was printed (no --ecs-token-file).
    pub ecs_token: Option<String>,
    stderr: PathBuf,
}

impl Served {
    /// Starts `keyhold serve ARGS` (on `--listen 127.0.0.1:0` unless ARGS say where) and
    /// reads the lines it prints.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        // One log per server: a test may start several in one directory.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = dir.join(format!("serve-{n}.log"));
        let mut child = keyhold()
            .args(["-v", "serve"])
            .args(args)
            .args(match args.contains(&"--listen") {
                true => &[][..],
                false => &["--listen", "127.0.0.1:0"][..],
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut imds, mut ecs_uri, mut ecs_token) = (None, None, None);
        while let Some(Ok(line)) = lines.next() {
            if let Some(v) = line.strip_prefix("export AWS_EC2_METADATA_SERVICE_ENDPOINT=") {
                imds = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("export AWS_CONTAINER_CREDENTIALS_FULL_URI=")
            {
                ecs_uri = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("export AWS_CONTAINER_AUTHORIZATION_TOKEN=") {
                ecs_token = Some(v.to_owned());
                break;
            } else if line.starts_with("export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=") {
                break;
            }
        }
        let Some(imds) = imds else {
            let _ = child.wait();
            panic!(
                "serve did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        let address = imds
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self {
            child,
            imds,
            address,
            ecs_uri: ecs_uri.unwrap(),
            ecs_token,
            stderr,
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (a `kill -s` name).
    pub fn signal(&self, signal: &str) {
        assert!(super::send_signal(&self.child, signal), "kill -s {signal}");
    }

    /// Waits (at most `limit`) for the server to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// An IMDSv2 token good for `ttl` seconds.
    pub fn imds_token(&self, ttl: u32) -> String {
        let (status, token) = request(
            &self.address,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", &ttl.to_string())],
        );
        assert_eq!(status, 200, "{token}");
        token
    }

    /// The ECS endpoint's reply with `token`: status and body.
    pub fn ecs(&self, token: &str) -> (u16, String) {
        let path = self.ecs_uri.split_once(&self.address).unwrap().1.to_owned();
        request(&self.address, "GET", &path, &[("Authorization", token)])
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection (Host: the address); status and body.
pub fn request(address: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut connection = Connection::open(address);
    connection.send(method, path, headers, true)
}

/// A kept-alive HTTP/1.1 connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    address: String,
}

impl Connection {
    /// Connects to `address`.
    pub fn open(address: &str) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            reader: BufReader::new(stream),
            address: address.to_owned(),
        }
    }

    /// Sends one request (with `Host: ADDRESS` unless `headers` give one) and reads the
    /// reply; status and body.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        close: bool,
    ) -> (u16, String) {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head += &format!("Host: {}\r\n", self.address);
        }
        for (name, value) in headers {
            head += &format!("{name}: {value}\r\n");
        }
        if close {
            head += "Connection: close\r\n";
        }
        head += "Content-Length: 0\r\n\r\n";
        self.reader.get_mut().write_all(head.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

/// `cmd` with no credentials or profile files to find, AWS at moto, region us-east-1.
pub fn clean_aws_environment<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    without_host_credentials(cmd);
    for var in [
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", dir.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_DEFAULT_REGION", "us-east-1")
}

/// `aws sts get-caller-identity` with the environment `vars` (and nothing else to find);
/// the caller's ARN.
pub fn aws_cli_caller(dir: &Path, vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(python_bin().join("aws"));
    clean_aws_environment(&mut cmd, dir).args(["sts", "get-caller-identity", "--output", "json"]);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let out = super::run(&mut cmd).ok();
    let identity: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    identity["Arn"].as_str().unwrap().to_owned()
}

/// boto3: GetCallerIdentity, then creates `bucket` and lists buckets, with `vars`; the
/// caller's ARN and whether the bucket was listed.
pub fn boto3_caller_and_bucket(dir: &Path, vars: &[(&str, &str)], bucket: &str) -> (String, bool) {
    let mut cmd = Command::new(python_bin().join("python"));
    clean_aws_environment(&mut cmd, dir).args(["-c", super::BOTO3_IDENTITY_AND_BUCKETS, bucket]);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let out = super::run(&mut cmd).ok();
    let seen: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let listed = seen["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == bucket);
    (seen["Arn"].as_str().unwrap().to_owned(), listed)
}

/// The test role's ARN.
pub fn role_arn() -> String {
    env(test_support::env::ROLE_ARN)
}

/// `body` as JSON; panics with it if it is not.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The test role's ARN for a session: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
pub fn assumed_role_arn(session: &str) -> String {
    let role_arn = env(test_support::env::ROLE_ARN);
    let role = role_arn.rsplit('/').next().unwrap();
    format!(
        "arn:aws:sts::{}:assumed-role/{role}/{session}",
        super::account()
    )
}

/// Where a test's credentials come from.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// The test user's secret in SoftHSM, AssumeRole at moto.
    Hmac,
    /// An X.509 certificate and P-256 file key, CreateSession at the local Roles Anywhere
    /// endpoint (which mints the role's credentials from moto).
    RolesAnywhere,
}

/// A credential source for the commands' flags, behind a counting [`Proxy`] that can be
/// taken down.
pub struct Source {
    args: Vec<String>,
    /// The role session name.
    pub session: String,
    /// In front of STS or the Roles Anywhere endpoint.
    pub proxy: test_support::proxy::Proxy,
    _endpoint: Option<test_support::rolesanywhere::Endpoint>,
}

impl Source {
    /// A new source of `kind` for the test `name`.
    pub fn new(kind: Kind, dir: &Path, name: &str) -> Self {
        use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN};
        let session = format!("{name}-{kind:?}").to_lowercase();
        // The key or certificate, and what the proxy stands in front of.
        let (mut args, upstream, endpoint): (Vec<String>, String, _) = match kind {
            Kind::Hmac => {
                let key = super::softhsm_key(name, "aws", dir);
                super::import(&key, &super::access_key_id(), &super::secret(), &[]).ok();
                (vec!["--key".into(), key], moto(), None)
            }
            Kind::RolesAnywhere => {
                let pki = Pki::make(&dir.join("pki"), &["--key", "p256"]);
                let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
                let path = |name: &str| pki.path(name).to_str().unwrap().to_owned();
                let args = [
                    ("--certificate", path("leaf.pem")),
                    ("--private-key", path("leaf.key")),
                    ("--trust-anchor-arn", TRUST_ANCHOR_ARN.into()),
                    ("--profile-arn", PROFILE_ARN.into()),
                ];
                let args = args
                    .into_iter()
                    .flat_map(|(f, v)| [f.to_owned(), v])
                    .collect();
                (args, endpoint.url.clone(), Some(endpoint))
            }
        };
        let proxy = test_support::proxy::Proxy::start(&upstream);
        for (flag, value) in [
            ("--role-arn", env(test_support::env::ROLE_ARN)),
            ("--role-session-name", session.clone()),
            ("--endpoint-url", proxy.url.clone()),
        ] {
            args.extend([flag.to_owned(), value]);
        }
        Self {
            args,
            session,
            proxy,
            _endpoint: endpoint,
        }
    }

    /// The flags naming the source.
    pub fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The flags as one line (for an AWS config file's credential_process).
    pub fn line(&self) -> String {
        self.args.join(" ")
    }

    /// The ARN the credentials are for.
    pub fn expected_arn(&self) -> String {
        assumed_role_arn(&self.session)
    }
}
