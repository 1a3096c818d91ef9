//! Tink helpers of the CLI's end-to-end tests: a KMS key of a test's own in moto, the
//! machine's AWS identity for KMS (a shared credentials file, KMS at moto), and `keyhold
//! import` / `whoami` with a Tink key.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// Creates a symmetric KMS key of this test's own in moto; returns its Tink URI.
pub fn create_kms_key(name: &str) -> String {
    let script = r#"
import os, sys, boto3
kms = boto3.client("kms", endpoint_url=os.environ["MOTO"], region_name="us-east-1",
    aws_access_key_id=os.environ["AKID"], aws_secret_access_key=os.environ["SECRET"])
print(kms.create_key(Description=sys.argv[1])["KeyMetadata"]["Arn"])
"#;
    let description = format!("keyhold-cli-{name}-{}", std::process::id());
    let out = run(Command::new(python_bin().join("python"))
        .args(["-c", script, &description])
        .env("MOTO", moto())
        .env("AKID", access_key_id())
        .env("SECRET", secret()))
    .ok();
    let arn = out.stdout.trim();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:"), "{arn}");
    format!("aws-kms://{arn}")
}

/// The machine's own AWS identity for KMS: a shared credentials file with the test user's
/// keys as `[default]`, no config file, KMS at moto.
pub struct KmsIdentity {
    pub credentials: PathBuf,
    pub config: PathBuf,
}

impl KmsIdentity {
    pub fn new(dir: &Path) -> Self {
        let credentials = dir.join("aws-credentials");
        std::fs::write(
            &credentials,
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                access_key_id(),
                secret()
            ),
        )
        .unwrap();
        Self {
            credentials,
            config: dir.join("aws-config-none"),
        }
    }

    /// `keyhold` with this identity for KMS (and nothing else of AWS's in its environment).
    pub fn keyhold(&self) -> Command {
        let mut cmd = keyhold();
        self.apply(&mut cmd);
        cmd
    }

    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", &self.credentials)
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_ENDPOINT_URL_KMS", moto())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("KEYHOLD_KEK_URI")
    }
}

/// `keyhold import --key tink:PATH --kek-uri URI --access-key-id AKID` with the secret on
/// stdin.
pub fn import_tink(
    kms: &KmsIdentity,
    key: &str,
    kek_uri: &str,
    secret: &str,
    extra: &[&str],
) -> Run {
    run_with_stdin(
        kms.keyhold()
            .args(["import", "--key", key, "--kek-uri", kek_uri])
            .args(["--access-key-id", &access_key_id()])
            .args(extra),
        &format!("{secret}\n"),
    )
}

/// `keyhold COMMAND --key KEY --kek-uri URI --endpoint-url MOTO` with `kms`'s identity.
pub fn tink_command(kms: &KmsIdentity, command: &str, key: &str, kek_uri: &str) -> Run {
    run(kms.keyhold().args([
        command,
        "--key",
        key,
        "--kek-uri",
        kek_uri,
        "--endpoint-url",
        &moto(),
    ]))
}

pub fn whoami_tink(kms: &KmsIdentity, key: &str, kek_uri: &str) -> Run {
    tink_command(kms, "whoami", key, kek_uri)
}
