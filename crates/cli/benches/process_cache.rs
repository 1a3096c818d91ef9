//! What a `credential_process` run costs the `aws` command that starts it, in one run: group
//! `process-cache`, rows
//! - `keyhold-warm`: `keyhold credential-process` answered from its cache (no device, no
//!   network), the key in SoftHSM;
//! - `keyhold-warm-tpm`: the same with a key in swtpm (whose cold path re-executes keyhold to
//!   set libtss2's environment; a hit must not);
//! - `keyhold-version`: `keyhold --version`, the process-start floor of the same binary;
//! - `keyhold-cold`: the same run with `--no-cache` (SoftHSM login and HMAC, AssumeRole at moto);
//! - `aws-sts-assume-role`: `aws sts assume-role` against the same moto (the AWS CLI's own
//!   way to get role credentials, its own process start included).
//!
//! Needs SoftHSM, moto and the virtualenv: `cargo xtask bench process-cache` starts them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use test_support::env;
use test_support::rounds::{Group, ROUNDS, plain, round};

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name}: run through `cargo xtask bench process-cache`"))
}

/// Process runs take milliseconds to hundreds of them: short rounds of few samples.
fn slow(group: &mut Group<'_>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

/// Runs `command`; panics unless it succeeded and printed `expect`.
fn run(command: &mut Command, expect: &[u8]) {
    let out = command.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success() && out.stdout.windows(expect.len()).any(|w| w == expect),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("keyhold-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let keyhold = env!("CARGO_BIN_EXE_keyhold");
    let moto = var(env::MOTO_ENDPOINT);
    let role = var(env::ROLE_ARN);

    // The test user's secret in a SoftHSM token of the bench's own.
    let token = test_support::softhsm::TestToken::new("bench-cache");
    let pin = dir.join("pin");
    std::fs::write(&pin, test_support::softhsm::USER_PIN).expect("pin file");
    let key = format!(
        "pkcs11:token={};object=aws?module-path={}&pin-source=file:{}",
        token.uri("aws").token.expect("label"),
        test_support::softhsm::module_path().display(),
        pin.display()
    );
    run(
        Command::new(keyhold)
            .args([
                "import",
                "--key",
                &key,
                "--access-key-id",
                &var(env::AWS_ACCESS_KEY_ID),
            ])
            .args(["--secret-env", env::AWS_SECRET_ACCESS_KEY]),
        b"pkcs11:",
    );
    let process = |extra: &[&str]| {
        let mut cmd = Command::new(keyhold);
        cmd.args([
            "credential-process",
            "--key",
            &key,
            "--role-arn",
            &role,
            "--endpoint-url",
            &moto,
        ])
        .args(["--role-session-name", "bench"])
        .args(extra)
        .env("KEYHOLD_CACHE_DIR", dir.join("cache"))
        .env_remove("KEYHOLD_NO_CACHE")
        .env_remove("AWS_PROFILE");
        cmd
    };
    // Fill the cache.
    run(&mut process(&[]), b"ASIA");

    // The same secret in swtpm, a key file of the bench's own.
    let tcti = var(env::TPM_TCTI);
    let tpm_key = format!("tpm:file={}", dir.join("aws.pem").display());
    run(
        Command::new(keyhold)
            .args(["import", "--key", &tpm_key, "--tcti", &tcti])
            .args(["--access-key-id", &var(env::AWS_ACCESS_KEY_ID)])
            .args(["--secret-env", env::AWS_SECRET_ACCESS_KEY]),
        b"tpm:",
    );
    let mut warm_tpm = Command::new(keyhold);
    warm_tpm
        .args(["credential-process", "--key", &tpm_key, "--tcti", &tcti])
        .args([
            "--role-arn",
            &role,
            "--endpoint-url",
            &moto,
            "--role-session-name",
            "bench",
        ])
        .env("KEYHOLD_CACHE_DIR", dir.join("cache"))
        .env_remove("KEYHOLD_NO_CACHE")
        .env_remove("TSS2_LOG")
        .env_remove("AWS_PROFILE");
    run(&mut warm_tpm, b"ASIA");
    let aws = Path::new(&var(env::PYTHON_BIN)).join("aws");
    let mut aws = Command::new(aws);
    aws.args([
        "sts",
        "assume-role",
        "--role-arn",
        &role,
        "--role-session-name",
        "bench",
    ])
    .env("AWS_ACCESS_KEY_ID", var(env::AWS_ACCESS_KEY_ID))
    .env("AWS_SECRET_ACCESS_KEY", var(env::AWS_SECRET_ACCESS_KEY))
    .env("AWS_ENDPOINT_URL", &moto)
    .env("AWS_DEFAULT_REGION", "us-east-1")
    .env("AWS_CONFIG_FILE", dir.join("none"))
    .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
    .env_remove("AWS_PROFILE");

    let (mut warm, mut cold) = (process(&[]), process(&["--no-cache"]));
    let mut version = Command::new(keyhold);
    version.arg("--version");
    for n in 0..ROUNDS {
        round(
            c,
            "process-cache",
            n,
            slow,
            &mut [
                (
                    "keyhold-warm",
                    &mut plain(&mut |b| b.iter(|| run(&mut warm, b"ASIA"))),
                ),
                (
                    "keyhold-warm-tpm",
                    &mut plain(&mut |b| b.iter(|| run(&mut warm_tpm, b"ASIA"))),
                ),
                (
                    "keyhold-version",
                    &mut plain(&mut |b| b.iter(|| run(&mut version, b"keyhold"))),
                ),
                (
                    "keyhold-cold",
                    &mut plain(&mut |b| b.iter(|| run(&mut cold, b"ASIA"))),
                ),
                (
                    "aws-sts-assume-role",
                    &mut plain(&mut |b| b.iter(|| run(&mut aws, b"ASIA"))),
                ),
            ],
        );
    }
}

criterion_group!(process_cache, benches);
criterion_main!(process_cache);
