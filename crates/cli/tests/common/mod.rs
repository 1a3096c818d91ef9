//! Shared helpers of the CLI's end-to-end tests: the services `cargo xtask` started (found
//! through environment variables), running the built `keyhold` binary, SoftHSM tokens and
//! TPM key files of a test's own, IAM roles in moto, and AWS CLI / boto3 profiles whose
//! credential_process is keyhold.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod roles_anywhere;
pub mod serve;
pub mod tink;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An environment variable set by `cargo xtask e2e`; fails the test (does not skip) if absent.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through `cargo xtask e2e` (or `cargo xtask \
             with-services cargo nextest run -p cli`), which starts SoftHSM, swtpm and moto"
        )
    })
}

pub fn moto() -> String {
    env(test_support::env::MOTO_ENDPOINT)
}
pub fn access_key_id() -> String {
    env(test_support::env::AWS_ACCESS_KEY_ID)
}
pub fn secret() -> String {
    env(test_support::env::AWS_SECRET_ACCESS_KEY)
}
pub fn account() -> String {
    env(test_support::env::ACCOUNT)
}
pub fn user_arn() -> String {
    env(test_support::env::USER_ARN)
}
pub fn python_bin() -> PathBuf {
    PathBuf::from(env(test_support::env::PYTHON_BIN))
}

/// A scratch directory of this test's own.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyhold-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the credentials and region the host's environment may set, so that `cmd` uses only
/// what the test gives it.
pub fn without_host_credentials(cmd: &mut Command) -> &mut Command {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The built `keyhold`, in [`keyhold_environment`].
pub fn keyhold() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyhold"));
    keyhold_environment(&mut cmd);
    cmd
}

/// The environment keyhold runs in, for `cmd` (keyhold, or a program that starts it):
/// cleared of AWS settings the host may have and of the test user's secret (which
/// `cargo xtask` hands the tests, not keyhold).
pub fn keyhold_environment(cmd: &mut Command) -> &mut Command {
    without_host_credentials(cmd);
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_PROFILE",
        "KEYHOLD_KEY",
        test_support::env::AWS_SECRET_ACCESS_KEY,
    ] {
        cmd.env_remove(var);
    }
    // Each run calls the service, as the tests of failures expect; the cache's own tests
    // (e2e_process_cache.rs) turn it back on.
    cmd.env("KEYHOLD_CACHE_DIR", cache_dir())
        .env("KEYHOLD_NO_CACHE", "1")
}

/// The credential-process cache of this test's own (keyhold makes it, 0700).
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("keyhold-cli-cache-{}", std::process::id()))
}

/// What a finished command printed, as text (and stdout as it came, for binary output).
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stdout_bytes: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Starts `cmd` with `stdin` written to its standard input (which is then closed), and
/// its stdout and stderr piped; returns it running.
pub fn spawn_with_stdin(cmd: &mut Command, stdin: &str) -> std::process::Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// Runs `cmd` with `stdin` piped in.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Run {
    Run::from(spawn_with_stdin(cmd, stdin).wait_with_output().unwrap())
}

/// Runs `cmd` with stdin closed.
pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.stdin(Stdio::null()).output().unwrap())
}

/// `keyhold import --key KEY --access-key-id AKID` started with the secret on stdin;
/// returns it running.
pub fn spawn_import(key: &str, akid: &str, secret: &str, extra: &[&str]) -> std::process::Child {
    spawn_with_stdin(
        keyhold()
            .args(["import", "--key", key, "--access-key-id", akid])
            .args(extra),
        &format!("{secret}\n"),
    )
}

/// `keyhold import --key KEY --access-key-id AKID` with the secret on stdin; returns the run
/// (stdout is the key reference).
pub fn import(key: &str, akid: &str, secret: &str, extra: &[&str]) -> Run {
    Run::from(
        spawn_import(key, akid, secret, extra)
            .wait_with_output()
            .unwrap(),
    )
}

/// The signals the kill tests send, by `kill -s` name: SIGKILL cannot be caught; keyhold
/// defers SIGINT and SIGTERM until a device write or login is done.
pub const SIGNALS: [&str; 3] = ["KILL", "INT", "TERM"];

/// Sends `signal` (a `kill -s` name) to `child`; whether `kill` succeeded (it fails when
/// the process has ended already).
pub fn send_signal(child: &std::process::Child, signal: &str) -> bool {
    Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `keyhold whoami` against moto.
pub fn whoami(key: &str, extra: &[&str]) -> Run {
    run(keyhold()
        .args(["whoami", "--key", key, "--endpoint-url", &moto()])
        .args(extra))
}

/// A fresh SoftHSM token of this test's own; returns a `--key` for `object` on it, whose
/// PIN comes from a pin-source file in `dir`.
pub fn softhsm_key(name: &str, object: &str, dir: &Path) -> String {
    let pin = "user-pin-for-tests";
    // Tests in other processes create tokens in the same directory at the same time, and
    // softhsm2-util fails ("Could not get info about the token in slot N") when it lists a
    // token another process is still writing. Every test helper that creates tokens takes
    // turns through this lock file; a retry covers a collision with a process writing
    // objects. A failed attempt may still have made its token, so each attempt has its own
    // label: the URI must name exactly one token.
    let conf_dir = PathBuf::from(env("SOFTHSM2_CONF"));
    let lock = std::fs::File::create(conf_dir.with_file_name("token-init.lock")).unwrap();
    lock.lock().unwrap();
    let mut attempt = 0;
    let (label, out) = loop {
        attempt += 1;
        let mut label = format!("cli{attempt}-{}-{name}", std::process::id());
        label.truncate(32);
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", &label])
            .args(["--so-pin", "so-pin-for-tests", "--pin", pin])
            .output()
            .expect("softhsm2-util (apt-get install softhsm2)");
        if out.status.success() || attempt == 5 {
            break (label, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    drop(lock);
    assert!(
        out.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, pin).unwrap();
    format!(
        "pkcs11:token={label};object={object}?module-path={}&pin-source=file:{}",
        env(test_support::env::PKCS11_MODULE),
        pin_file.display()
    )
}

/// Creates an IAM role in moto that trusts the test user and may do anything; returns its
/// ARN. (moto compares trust-policy principals literally, so the role names the user.)
pub fn create_role(name: &str) -> String {
    let role = format!("cli-{name}-{}", std::process::id());
    let script = r#"
import json, os, sys, boto3
iam = boto3.client("iam", endpoint_url=os.environ["MOTO"], region_name="us-east-1",
    aws_access_key_id=os.environ["AKID"], aws_secret_access_key=os.environ["SECRET"])
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"AWS": os.environ["USER_ARN"]}, "Action": "sts:AssumeRole"}]}
allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
arn = iam.create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.put_role_policy(RoleName=sys.argv[1], PolicyName="all", PolicyDocument=json.dumps(allow))
print(arn)
"#;
    let out = run(Command::new(python_bin().join("python"))
        .args(["-c", script, &role])
        .env("MOTO", moto())
        .env("AKID", access_key_id())
        .env("SECRET", secret())
        .env("USER_ARN", user_arn()))
    .ok();
    out.stdout.trim().to_owned()
}

/// A boto3 program: GetCallerIdentity, then creates the bucket `argv[1]` and lists the
/// buckets; prints `{"Arn": ..., "Buckets": [...]}`.
pub const BOTO3_IDENTITY_AND_BUCKETS: &str = r#"
import json, sys, boto3
session = boto3.Session()
arn = session.client("sts").get_caller_identity()["Arn"]
s3 = session.client("s3")
s3.create_bucket(Bucket=sys.argv[1])
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
print(json.dumps({"Arn": arn, "Buckets": names}))
"#;

/// An AWS config file with profile `keyhold` whose credential_process is
/// `keyhold credential-process --key KEY --role-arn ROLE`, and the environment that points
/// the AWS CLI and boto3 at it (and at moto).
pub struct AwsProfile {
    pub config: PathBuf,
}

impl AwsProfile {
    pub fn new(dir: &Path, key: &str, extra: &str, role_arn: &str, session_name: &str) -> Self {
        let arguments = format!(
            "--key '{key}' {extra} --role-arn {role_arn} --role-session-name {session_name} --endpoint-url {}",
            moto()
        );
        Self::with_arguments(dir, &arguments)
    }

    /// A profile whose credential_process is `keyhold credential-process ARGUMENTS`.
    pub fn with_arguments(dir: &Path, arguments: &str) -> Self {
        let config = dir.join("aws-config");
        let line = format!(
            "{} credential-process {arguments}",
            env!("CARGO_BIN_EXE_keyhold")
        );
        std::fs::write(
            &config,
            format!("[profile keyhold]\nregion = us-east-1\ncredential_process = {line}\n"),
        )
        .unwrap();
        Self { config }
    }

    /// Points `cmd` at the profile and at moto, with no other credentials around.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        without_host_credentials(cmd)
            .env("AWS_CONFIG_FILE", &self.config)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.config.with_extension("none"),
            )
            .env("AWS_PROFILE", "keyhold")
            .env("AWS_ENDPOINT_URL", moto())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KEYHOLD_CACHE_DIR", cache_dir())
    }

    /// `aws ARGS...` through the profile; panics unless it succeeds; returns stdout as JSON.
    pub fn aws(&self, args: &[&str]) -> serde_json::Value {
        let out = run(self
            .apply(&mut Command::new(python_bin().join("aws")))
            .args(args)
            .args(["--output", "json"]))
        .ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }

    /// A boto3 program through the profile: GetCallerIdentity, then creates `bucket` and lists
    /// the buckets; prints `{"Arn": ..., "Buckets": [...]}`.
    pub fn boto3_identity_and_buckets(&self, bucket: &str) -> serde_json::Value {
        let out = run(self
            .apply(&mut Command::new(python_bin().join("python")))
            .args(["-c", BOTO3_IDENTITY_AND_BUCKETS, bucket]))
        .ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}

/// The AWS CLI and boto3, both through keyhold's credential_process for `key`: each gets
/// role credentials (the caller is the assumed role), and lists a bucket it created.
pub fn real_clients_through_credential_process(name: &str, key: &str, extra: &str, dir: &Path) {
    let role_arn = create_role(name);
    let role_name = role_arn.rsplit('/').next().unwrap().to_owned();
    let profile = AwsProfile::new(dir, key, extra, &role_arn, &format!("{name}-session"));
    let expected_arn = format!(
        "arn:aws:sts::{}:assumed-role/{role_name}/{name}-session",
        account()
    );

    let identity = profile.aws(&["sts", "get-caller-identity"]);
    assert_eq!(identity["Arn"], expected_arn.as_str(), "{identity}");
    assert_eq!(identity["Account"], account().as_str());
    let bucket = format!("{name}-cli-{}", std::process::id());
    profile.aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let listed = profile.aws(&["s3api", "list-buckets"]);
    let names: Vec<&str> = listed["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["Name"].as_str())
        .collect();
    assert!(names.contains(&bucket.as_str()), "{listed}");

    let boto_bucket = format!("{name}-boto3-{}", std::process::id());
    let seen = profile.boto3_identity_and_buckets(&boto_bucket);
    assert_eq!(seen["Arn"], expected_arn.as_str(), "{seen}");
    let names = seen["Buckets"].as_array().unwrap();
    assert!(
        names.iter().any(|n| n == boto_bucket.as_str())
            && names.iter().any(|n| n == bucket.as_str()),
        "{seen}"
    );
}

/// Parses `keyhold whoami` output and checks it is the test user, as the AWS CLI prints it.
pub fn assert_is_test_user(stdout: &str) {
    let identity: serde_json::Value = serde_json::from_str(stdout).unwrap();
    assert_eq!(identity["Arn"], user_arn().as_str(), "{stdout}");
    assert_eq!(identity["Account"], account().as_str());
    assert!(identity["UserId"].as_str().is_some_and(|u| !u.is_empty()));
    let keys: Vec<&str> = identity
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "{stdout}");
    // The AWS CLI's layout: four-space indent, UserId first.
    assert!(stdout.starts_with("{\n    \"UserId\": "), "{stdout}");
}

/// The test secret with its last character changed: a wrong secret for the right key id.
pub fn wrong_secret() -> String {
    let mut s = secret();
    let last = s.pop().unwrap();
    s.push(if last == 'A' { 'B' } else { 'A' });
    s
}

/// `keyhold sign --key KEY --region us-east-1 --service SERVICE` (the URL and flags to
/// add).
pub fn sign_for(key: &str, service: &str) -> Command {
    let mut cmd = keyhold();
    cmd.args([
        "sign",
        "--key",
        key,
        "--region",
        "us-east-1",
        "--service",
        service,
    ]);
    cmd
}

/// [`sign_for`] S3.
pub fn sign_s3(key: &str) -> Command {
    sign_for(key, "s3")
}

/// The temporary files keyhold left beside `path` (`.NAME.keyhold-tmp.PID.N`).
pub fn temp_files_beside(path: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".keyhold-tmp."))
        .collect()
}

/// The AWS CLI and boto3, through a profile whose credential_process is `keyhold
/// credential-process ARGUMENTS`, are the role session `session` of the test role
/// (`KEYHOLD_TEST_ROLE_ARN`); boto3 also creates and lists a bucket with those credentials.
pub fn assert_aws_cli_and_boto3_are_role_session(dir: &Path, arguments: &str, session: &str) {
    let role_arn = env(test_support::env::ROLE_ARN);
    let role_name = role_arn.rsplit('/').next().unwrap();
    let profile = AwsProfile::with_arguments(dir, arguments);
    let expected = format!(
        "arn:aws:sts::{}:assumed-role/{role_name}/{session}",
        account()
    );
    let identity = profile.aws(&["sts", "get-caller-identity"]);
    assert_eq!(
        identity["Arn"],
        expected.as_str(),
        "{arguments}: {identity}"
    );
    let bucket = format!("{session}-{}", std::process::id()).to_lowercase();
    let seen = profile.boto3_identity_and_buckets(&bucket);
    assert_eq!(seen["Arn"], expected.as_str(), "{arguments}: {seen}");
    let names = seen["Buckets"].as_array().unwrap();
    assert!(names.iter().any(|n| n == bucket.as_str()), "{seen}");
}
