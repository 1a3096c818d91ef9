//! `cargo xtask demo`: keyhold end to end on this machine, with short explanations.
//!
//! Installs what is missing, builds `keyhold`, starts SoftHSM, swtpm and moto on loopback
//! (moto gets an IAM user with an access key and a role), imports the user's secret into
//! SoftHSM and into the TPM with `keyhold import` (secret on stdin), and shows: whoami
//! through each device, a presigned URL, the credential_process JSON (secrets redacted in
//! what is printed), and the AWS CLI listing buckets through keyhold. Every service stops
//! when the demo ends, also on failure (dropping `Services` does it).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// The SoftHSM token the demo creates (in the run's private token directory).
const TOKEN: &str = "keyhold-demo";
/// Its user PIN: a demo token in a throwaway directory.
const USER_PIN: &str = "demo-user-pin";
const SO_PIN: &str = "demo-so-pin";

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let root = crate::workspace_root();
    crate::setup::run(&root)?;
    crate::run(
        "building keyhold (cargo build -p cli)",
        crate::cargo().args(["build", "--quiet", "-p", "cli"]),
    )?;
    let keyhold = crate::target_dir(&root).join("debug/keyhold");
    let services = crate::start_services(&root)?;
    let env: HashMap<String, String> = services.env().into_iter().collect();
    let get = |name: &str| {
        env.get(name)
            .cloned()
            .with_context(|| format!("the services did not set {name}"))
    };
    let demo = Demo {
        keyhold,
        env: env.clone(),
        dir: root.join("target/xtask/demo"),
        moto: get(test_support::env::MOTO_ENDPOINT)?,
        python_bin: PathBuf::from(get(test_support::env::PYTHON_BIN)?),
    };
    if demo.dir.exists() {
        std::fs::remove_dir_all(&demo.dir)?;
    }
    std::fs::create_dir_all(&demo.dir)?;
    let access_key_id = get(test_support::env::AWS_ACCESS_KEY_ID)?;
    let secret = get(test_support::env::AWS_SECRET_ACCESS_KEY)?;
    let role_arn = get(test_support::env::ROLE_ARN)?;
    let user_arn = get(test_support::env::USER_ARN)?;
    let tcti = get(test_support::env::TPM_TCTI)?;

    say(
        "The setup",
        &format!(
            "moto (a local AWS that checks every SigV4 signature) runs at {}; it has an IAM \
             user {user_arn}\nwith access key {access_key_id} and a role {role_arn}. SoftHSM \
             (a PKCS#11 token), swtpm (a TPM 2.0) and OpenBao (Vault) run on loopback too.",
            demo.moto
        ),
    );

    // 1. Import into SoftHSM.
    demo.softhsm_token()?;
    let pin_file = demo.dir.join("pin");
    std::fs::write(&pin_file, USER_PIN)?;
    let module = get(test_support::env::PKCS11_MODULE)?;
    let pkcs11_key = format!(
        "pkcs11:token={TOKEN};object=aws?module-path={module}&pin-source=file:{}",
        pin_file.display()
    );
    say(
        "Import the secret into SoftHSM",
        "The secret goes in on stdin (never as a flag). keyhold stores \"AWS4\"+secret as a \
         non-extractable HMAC key, checks one HMAC against the software HMAC, and prints the \
         --key value to use from now on.",
    );
    let pkcs11_ref = demo.import(&pkcs11_key, &access_key_id, &secret, &[])?;

    // 2. Import into the TPM.
    let pem = demo.dir.join("aws-key.pem");
    let tpm_key = format!("tpm:file={}", pem.display());
    say(
        "Import the same secret into the TPM",
        "The TPM wraps the key to itself: the key file is useless on any other TPM, and holds \
         no secret in the clear (only the access key id, as a comment).",
    );
    let tpm_ref = demo.import(&tpm_key, &access_key_id, &secret, &["--tcti", &tcti])?;
    let tcti_flag = ["--tcti", tcti.as_str()];

    // 2b. Import into OpenBao's transit engine, then sign with a token that may only HMAC.
    let vault_addr = get(test_support::env::VAULT_ADDR)?;
    let admin_token = demo.dir.join("vault-admin-token");
    std::fs::write(&admin_token, get(test_support::env::VAULT_ROOT_TOKEN)?)?;
    say(
        "Import the same secret into OpenBao (Vault) transit",
        "keyhold wraps the secret for transit's bring-your-own-key import (RSA-OAEP + AES key \
         wrap) and creates a key that is not exportable and has no plaintext backup. The \
         import uses an administrator's token; signing uses a token whose policy allows one \
         thing: update on transit/hmac/aws-demo/sha2-256.",
    );
    let vault_flags = |token: &Path| {
        [
            "--vault-addr".to_owned(),
            vault_addr.clone(),
            "--vault-token-file".to_owned(),
            token.display().to_string(),
        ]
    };
    let admin_flags = vault_flags(&admin_token);
    let admin_flags: Vec<&str> = admin_flags.iter().map(String::as_str).collect();
    let vault_ref = demo.import("vault:aws-demo", &access_key_id, &secret, &admin_flags)?;
    let signing_token = demo.dir.join("vault-signing-token");
    std::fs::write(
        &signing_token,
        demo.vault_signing_token(&vault_addr, &admin_token)?,
    )?;
    let signing_flags = vault_flags(&signing_token);
    let signing_flags: Vec<&str> = signing_flags.iter().map(String::as_str).collect();
    drop(secret);

    // 3. whoami through each device.
    say(
        "Who am I? (STS GetCallerIdentity, signed by the token)",
        "Only kDate = HMAC(\"AWS4\"+secret, today) is computed in the device; the rest of SigV4 \
         is software. moto checks the signature with botocore.",
    );
    demo.keyhold(&["whoami", "--key", &pkcs11_ref, "--endpoint-url", &demo.moto])?;
    say("Who am I? (signed by the TPM)", "");
    demo.keyhold(&[
        "whoami",
        "--key",
        &tpm_ref,
        tcti_flag[0],
        tcti_flag[1],
        "--endpoint-url",
        &demo.moto,
    ])?;

    say(
        "Who am I? (signed by OpenBao, with the least-privilege token)",
        "",
    );
    let mut whoami = vec![
        "whoami",
        "--key",
        &vault_ref,
        "--access-key-id",
        &access_key_id,
    ];
    whoami.extend_from_slice(&signing_flags);
    whoami.extend_from_slice(&["--endpoint-url", &demo.moto]);
    demo.keyhold(&whoami)?;

    // 4. Any AWS request, signed by the device and sent.
    say(
        "Any AWS request: IAM GetUser, signed by the token, sent by keyhold",
        "`keyhold sign` prints the headers (or a presigned URL); with --send it sends the \
         request and prints the response, like curl.",
    );
    let body = "Action=GetUser&Version=2010-05-08";
    let out = demo.capture(&[
        "sign",
        "--key",
        &pkcs11_ref,
        "--region",
        "us-east-1",
        "--service",
        "iam",
        "-X",
        "POST",
        "-H",
        "content-type: application/x-www-form-urlencoded",
        "--data",
        body,
        "--send",
        "--fail",
        &format!("{}/", demo.moto),
    ])?;
    println!("{}\n", out.trim());

    // 5. A presigned URL.
    say(
        "A presigned URL (S3 GetObject, valid 15 minutes, signed by the TPM)",
        "Anyone holding the URL can fetch the object until it expires; the signature is in the \
         query string.",
    );
    demo.keyhold(&[
        "sign",
        "--key",
        &tpm_ref,
        tcti_flag[0],
        tcti_flag[1],
        "--region",
        "us-east-1",
        "--service",
        "s3",
        "--presign",
        "--expires",
        "900",
        &format!("{}/keyhold-demo-bucket/report.pdf", demo.moto),
    ])?;

    // 6. credential_process JSON.
    say(
        "Temporary role credentials as credential_process JSON (signed by the TPM)",
        "This is what the AWS CLI and SDKs read from `credential_process`. The secret key and \
         session token are redacted here; keyhold prints them in full.",
    );
    let cp_args = format!(
        "credential-process --key {tpm_ref} --tcti {tcti} --role-arn {role_arn} \
         --role-session-name keyhold-demo --endpoint-url {}",
        demo.moto
    );
    let cp: Vec<&str> = cp_args.split(' ').collect();
    let json = demo.capture(&cp)?;
    let credentials: serde_json::Value =
        serde_json::from_str(&json).context("credential-process did not print JSON")?;
    let field = |name: &str| credentials[name].as_str().unwrap_or_default().to_owned();
    let redacted = |name: &str| format!("** redacted ({} characters) **", field(name).len());
    println!(
        "{{\n    \"Version\": {},\n    \"AccessKeyId\": \"{}\",\n    \"SecretAccessKey\": \"{}\",\n    \
         \"SessionToken\": \"{}\",\n    \"Expiration\": \"{}\"\n}}\n",
        credentials["Version"],
        field("AccessKeyId"),
        redacted("SecretAccessKey"),
        redacted("SessionToken"),
        field("Expiration")
    );

    // 7. The AWS CLI, through keyhold.
    let config = demo.dir.join("aws-config");
    let line = format!("{} {cp_args}", demo.keyhold.display());
    std::fs::write(
        &config,
        format!("[profile keyhold-demo]\nregion = us-east-1\ncredential_process = {line}\n"),
    )?;
    say(
        "The AWS CLI, getting its credentials from keyhold",
        &format!(
            "{} holds:\n  [profile keyhold-demo]\n  credential_process = keyhold {cp_args}",
            config.display()
        ),
    );
    demo.aws(
        &config,
        &["s3api", "create-bucket", "--bucket", "keyhold-demo-bucket"],
    )?;
    demo.aws(&config, &["sts", "get-caller-identity"])?;
    demo.aws(
        &config,
        &["s3api", "list-buckets", "--query", "Buckets[].Name"],
    )?;

    // 8. A command run with credentials that refresh themselves.
    say(
        "keyhold exec: a command with role credentials (signed by OpenBao)",
        "keyhold serves the ECS credential endpoint on a random loopback port for as long as \
         the command runs (credentials refresh themselves), and removes inherited AWS \
         variables that would shadow them. Also: keyhold serve (IMDSv2 + ECS for the whole \
         machine), keyhold update (~/.aws/credentials), keyhold export.",
    );
    let aws = demo.python_bin.join("aws");
    let aws = aws.display().to_string();
    let mut exec = vec![
        "exec",
        "--key",
        &vault_ref,
        "--access-key-id",
        &access_key_id,
    ];
    exec.extend_from_slice(&signing_flags);
    exec.extend_from_slice(&[
        "--role-arn",
        &role_arn,
        "--role-session-name",
        "keyhold-exec",
    ]);
    exec.extend_from_slice(&[
        "--endpoint-url",
        &demo.moto,
        "--",
        &aws,
        "sts",
        "get-caller-identity",
    ]);
    println!("$ keyhold {}", shown(&exec));
    let out = demo
        .command(&demo.keyhold)
        .args(&exec)
        .env("AWS_ENDPOINT_URL", &demo.moto)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", demo.dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", demo.dir.join("none"))
        .stdin(Stdio::null())
        .output()
        .context("could not run keyhold exec")?;
    println!("{}", check("keyhold exec", &out)?);

    drop(services);
    say(
        "Done",
        &format!(
            "All services stopped. The demo took {:.1} s.",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

struct Demo {
    keyhold: PathBuf,
    env: HashMap<String, String>,
    dir: PathBuf,
    moto: String,
    python_bin: PathBuf,
}

impl Demo {
    /// `keyhold ARGS` with the services' environment (but no AWS credentials).
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(&self.env)
            .env("TSS2_LOG", "all+none")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        cmd
    }

    /// Runs keyhold, showing the command and its output.
    fn keyhold(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = self.capture(args)?;
        print!("{out}");
        println!();
        Ok(())
    }

    /// Runs keyhold, showing the command, and returns its stdout.
    fn capture(&self, args: &[&str]) -> anyhow::Result<String> {
        println!("$ keyhold {}", shown(args));
        let out = self
            .command(&self.keyhold)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("could not run keyhold")?;
        check("keyhold", &out)
    }

    /// `keyhold import` with the secret on stdin; returns the key reference it printed.
    fn import(
        &self,
        key: &str,
        access_key_id: &str,
        secret: &str,
        extra: &[&str],
    ) -> anyhow::Result<String> {
        let mut args = vec!["import", "--key", key, "--access-key-id", access_key_id];
        args.extend_from_slice(extra);
        println!("$ keyhold {} < secret", shown(&args));
        let mut child = self
            .command(&self.keyhold)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not run keyhold")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(secret.as_bytes())?;
            stdin.write_all(b"\n")?;
        }
        let out = child.wait_with_output()?;
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let reference = check("keyhold import", &out)?.trim().to_owned();
        println!("{reference}\n");
        Ok(reference)
    }

    /// `aws ARGS --profile keyhold-demo`, showing the command and its output.
    fn aws(&self, config: &Path, args: &[&str]) -> anyhow::Result<()> {
        println!("$ aws --profile keyhold-demo {}", shown(args));
        let out = self
            .command(&self.python_bin.join("aws"))
            .args(args)
            .args(["--profile", "keyhold-demo", "--output", "json"])
            .env("AWS_CONFIG_FILE", config)
            .env("AWS_SHARED_CREDENTIALS_FILE", config.with_extension("none"))
            .env("AWS_ENDPOINT_URL", &self.moto)
            .stdin(Stdio::null())
            .output()
            .context("could not run the AWS CLI")?;
        print!("{}", check("aws", &out)?);
        println!();
        Ok(())
    }

    /// A token that may only HMAC with transit/aws-demo, made with the admin token.
    fn vault_signing_token(&self, addr: &str, admin_token: &Path) -> anyhow::Result<String> {
        let bao = |args: &[&str]| -> anyhow::Result<String> {
            let out = self
                .command(&self.python_bin.join("bao"))
                .args(args)
                .env("VAULT_ADDR", addr)
                .env("VAULT_TOKEN", std::fs::read_to_string(admin_token)?.trim())
                .env("HOME", &self.dir)
                .output()
                .context("could not run bao")?;
            check("bao", &out)
        };
        let policy = self.dir.join("aws-demo-signing.hcl");
        std::fs::write(
            &policy,
            "path \"transit/hmac/aws-demo/sha2-256\" { capabilities = [\"update\"] }\n",
        )?;
        bao(&[
            "policy",
            "write",
            "aws-demo-signing",
            &policy.display().to_string(),
        ])?;
        let token = bao(&[
            "token",
            "create",
            "-policy",
            "aws-demo-signing",
            "-field",
            "token",
        ])?;
        Ok(token.trim().to_owned())
    }

    /// A fresh SoftHSM token in the run's private token directory.
    fn softhsm_token(&self) -> anyhow::Result<()> {
        let out = self
            .command(Path::new("softhsm2-util"))
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
            .output()
            .context("could not run softhsm2-util (apt-get install softhsm2)")?;
        check("softhsm2-util --init-token", &out).map(drop)
    }
}

/// Prints a section title and its explanation.
fn say(title: &str, text: &str) {
    println!("== {title}");
    if !text.is_empty() {
        println!("{text}");
    }
    println!();
}

/// Arguments as a shell would need them quoted (for showing, not for running).
fn shown(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.chars().any(|c| " ;&?'\"{}$".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                (*a).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// stdout of a finished command, or an error with its stderr.
fn check(what: &str, out: &std::process::Output) -> anyhow::Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
