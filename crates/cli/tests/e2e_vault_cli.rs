//! `keyhold --key vault:NAME` end to end against a real OpenBao (dev mode, started by xtask):
//! import with a token file, whoami and the AWS CLI and boto3 through credential_process with
//! a least-privilege token, doctor, and the mistakes a user makes, each named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use test_support::openbao::Bao;

fn root_token() -> String {
    env(test_support::env::VAULT_ROOT_TOKEN)
}

/// `keyhold` pointed at the OpenBao server, its token in `token_file`.
fn vault_keyhold(token_file: &Path) -> Command {
    let mut cmd = keyhold();
    cmd.env("VAULT_ADDR", env(test_support::env::VAULT_ADDR))
        .env("KEYHOLD_VAULT_TOKEN_FILE", token_file)
        .env_remove("VAULT_TOKEN");
    cmd
}

/// A token file for a token with only `update` on the key's HMAC path.
fn signing_token(dir: &Path, name: &str) -> std::path::PathBuf {
    let policy = dir.join("policy.hcl");
    std::fs::write(
        &policy,
        format!("path \"transit/hmac/{name}/sha2-256\" {{ capabilities = [\"update\"] }}\n"),
    )
    .unwrap();
    let root = Bao::dev_root();
    root.run(&["policy", "write", name, policy.to_str().unwrap()]);
    let token = root.run(&[
        "token", "create", "-policy", name, "-ttl", "1h", "-field", "token",
    ]);
    let file = dir.join("signing-token");
    std::fs::write(&file, token.trim()).unwrap();
    file
}

#[test]
fn import_whoami_and_the_aws_cli_through_a_vault_key() {
    let dir = scratch("vault-cli");
    let name = format!("cli-{}", std::process::id());
    let key = format!("vault:{name}");
    let admin = dir.join("admin-token");
    std::fs::write(&admin, root_token()).unwrap();

    let out = run_with_stdin(
        vault_keyhold(&admin).args(["import", "--key", &key, "--access-key-id", &access_key_id()]),
        &format!("{}\n", secret()),
    )
    .ok();
    assert_eq!(out.stdout.trim(), format!("vault:transit/{name}"));

    // Importing again under the same name is refused before the secret is read.
    let again = run(vault_keyhold(&admin).args([
        "import",
        "--key",
        &key,
        "--access-key-id",
        &access_key_id(),
    ]));
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("exists already") && again.stderr.contains("new name"),
        "{}",
        again.stderr
    );

    // From here on, a token that may only HMAC.
    let token = signing_token(&dir, &name);
    let whoami = run(vault_keyhold(&token).args([
        "whoami",
        "--key",
        &key,
        "--access-key-id",
        &access_key_id(),
        "--endpoint-url",
        &moto(),
    ]))
    .ok();
    assert_is_test_user(&whoami.stdout);
    let arguments = format!(
        "--key {key} --access-key-id {} --endpoint-url {} --role-session-name vault-cli",
        access_key_id(),
        moto()
    );
    let profile = AwsProfile::with_arguments(
        &dir,
        &format!(
            "{arguments} --role-arn {} --vault-addr {} --vault-token-file {}",
            env(test_support::env::ROLE_ARN),
            env(test_support::env::VAULT_ADDR),
            token.display()
        ),
    );
    let identity = profile.aws(&["sts", "get-caller-identity"]);
    let role = env(test_support::env::ROLE_ARN);
    let role_name = role.rsplit('/').next().unwrap();
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/vault-cli",
            account()
        )
        .as_str()
    );
    let bucket = format!("vault-cli-{}", std::process::id());
    let seen = profile.boto3_identity_and_buckets(&bucket);
    assert!(
        seen["Buckets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == bucket.as_str()),
        "{seen}"
    );

    // doctor: every link, with the least-privilege token's view; with the root token, a
    // warning that it could make the key exportable.
    let doctor = |token: &Path| {
        let args = [
            "doctor",
            "--key",
            &key,
            "--access-key-id",
            &access_key_id(),
            "--endpoint-url",
            &moto(),
        ];
        run(vault_keyhold(token).args(args)).ok().stdout
    };
    let report = doctor(&token);
    assert!(report.contains("least privilege"), "{report}");
    let report = doctor(&admin);
    assert!(
        report.contains("WARNING") && report.contains("exportable false"),
        "{report}"
    );
}

#[test]
fn vault_mistakes_are_named_with_the_fix() {
    let dir = scratch("vault-mistakes");
    let key = "vault:nothing-here";
    // No server named.
    let out = run(keyhold()
        .args(["whoami", "--key", key, "--access-key-id", "AKIAEXAMPLE"])
        .env_remove("VAULT_ADDR"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("VAULT_ADDR"), "{}", out.stderr);
    // No token anywhere.
    let out = run(keyhold()
        .args(["whoami", "--key", key, "--access-key-id", "AKIAEXAMPLE"])
        .env("VAULT_ADDR", env(test_support::env::VAULT_ADDR))
        .env("HOME", &dir)
        .env_remove("VAULT_TOKEN")
        .env_remove("KEYHOLD_VAULT_TOKEN_FILE"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no Vault token"), "{}", out.stderr);
    // No access key id: a transit key does not store one.
    let out = run(keyhold()
        .args(["whoami", "--key", key])
        .env("VAULT_ADDR", env(test_support::env::VAULT_ADDR)));
    assert!(
        out.stderr.contains("does not store its access key id"),
        "{}",
        out.stderr
    );
    // A key that does not exist.
    let token = dir.join("t");
    std::fs::write(&token, root_token()).unwrap();
    let out =
        run(vault_keyhold(&token).args(["whoami", "--key", key, "--access-key-id", "AKIAEXAMPLE"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("no transit key transit/nothing-here"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&root_token()));
    // A malformed reference.
    let out = run(keyhold().args(["whoami", "--key", "vault:a b"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("vault:NAME or vault:MOUNT/NAME"),
        "{}",
        out.stderr
    );
}

#[test]
fn serve_hands_out_role_credentials_signed_by_a_vault_key() {
    let dir = scratch("vault-serve");
    let name = format!("serve-{}", std::process::id());
    let key = format!("vault:{name}");
    let admin = dir.join("admin-token");
    std::fs::write(&admin, root_token()).unwrap();
    run_with_stdin(
        vault_keyhold(&admin).args(["import", "--key", &key, "--access-key-id", &access_key_id()]),
        &format!("{}\n", secret()),
    )
    .ok();
    let token = signing_token(&dir, &name);
    let vault_addr = env(test_support::env::VAULT_ADDR);
    let role = env(test_support::env::ROLE_ARN);
    let served = common::serve::Served::start(
        &dir,
        &[
            "--key",
            &key,
            "--access-key-id",
            &access_key_id(),
            "--vault-addr",
            &vault_addr,
            "--vault-token-file",
            token.to_str().unwrap(),
            "--role-arn",
            &role,
            "--role-session-name",
            "vault-serve",
            "--endpoint-url",
            &moto(),
        ],
    );
    let imds = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", served.imds.as_str())];
    assert_eq!(
        common::serve::aws_cli_caller(&dir, &imds),
        common::serve::assumed_role_arn("vault-serve")
    );
}

/// An import into Vault is one request that the server carries out whole: killed at any
/// point (SIGKILL, SIGINT, SIGTERM), keyhold leaves no key or a whole one, never a key that
/// signs wrong, and a name left free can be imported again.
#[test]
fn a_killed_import_leaves_no_key_or_a_whole_one() {
    let dir = scratch("vault-kill");
    let admin = dir.join("admin-token");
    std::fs::write(&admin, root_token()).unwrap();
    let import = |name: &str| {
        let mut cmd = vault_keyhold(&admin);
        cmd.args(["import", "--key", &format!("vault:{name}")])
            .args(["--access-key-id", &access_key_id()]);
        cmd
    };
    let whoami = |name: &str| {
        run(vault_keyhold(&admin)
            .args(["whoami", "--key", &format!("vault:{name}")])
            .args([
                "--access-key-id",
                &access_key_id(),
                "--endpoint-url",
                &moto(),
            ]))
    };
    let started = std::time::Instant::now();
    let first = format!("kill-{}-timing", std::process::id());
    run_with_stdin(&mut import(&first), &format!("{}\n", secret())).ok();
    let total = started.elapsed();

    let tries = 24;
    let mut made = 0;
    for i in 0..tries {
        let name = format!("kill-{}-{i}", std::process::id());
        let signal = SIGNALS[i % SIGNALS.len()];
        let mut child = spawn_with_stdin(&mut import(&name), &format!("{}\n", secret()));
        std::thread::sleep(total.mul_f64(1.2) * i as u32 / tries as u32);
        send_signal(&child, signal);
        child.wait().unwrap();
        let listed =
            Bao::dev_root().try_run(&["read", "-field=name", &format!("transit/keys/{name}")]);
        if listed.is_ok() {
            made += 1;
            // A whole key: STS accepts its signatures.
            assert_is_test_user(&whoami(&name).ok().stdout);
        } else {
            // No key: the name is free, and a new import under it works.
            run_with_stdin(&mut import(&name), &format!("{}\n", secret())).ok();
            assert_is_test_user(&whoami(&name).ok().stdout);
        }
    }
    assert!(
        made > 0 && made < tries,
        "{made} of {tries} tries left a key"
    );
}
