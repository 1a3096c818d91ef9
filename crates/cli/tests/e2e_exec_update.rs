//! `keyhold exec`, `keyhold update` and `keyhold export` end to end, for both credential
//! sources (a SoftHSM HMAC key through moto's STS, an X.509 file key through the local Roles
//! Anywhere endpoint): the AWS CLI and boto3 use what they hand over; `update` keeps the rest
//! of the credentials file byte for byte, atomically, under concurrency and SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;

const KINDS: [Kind; 2] = [Kind::Hmac, Kind::RolesAnywhere];

/// `keyhold exec SOURCE -- ARGS` with the AWS environment of [`clean_aws_environment`] plus
/// variables that would shadow keyhold's credentials if they were passed on.
fn exec(dir: &Path, source: &Source, flags: &[&str], command: &[&str]) -> Run {
    let mut cmd = keyhold();
    clean_aws_environment(&mut cmd, dir)
        .env("AWS_SESSION_TOKEN", "shadow")
        .env("AWS_SECRET_ACCESS_KEY", "shadow")
        .env("AWS_PROFILE", "shadow")
        .arg("exec")
        .args(source.args())
        .args(flags)
        .arg("--")
        .args(command);
    run(&mut cmd)
}

#[test]
fn exec_gives_the_command_credentials_both_ways() {
    let aws = python_bin().join("aws");
    let aws = aws.to_str().unwrap();
    for kind in KINDS {
        let dir = scratch(&format!("exec-{kind:?}"));
        let source = Source::new(kind, &dir, "exec");
        // An ECS endpoint for the command (the default), then the variables (--env).
        for flags in [&[][..], &["--env"][..]] {
            let out = exec(
                &dir,
                &source,
                flags,
                &[aws, "sts", "get-caller-identity", "--output", "json"],
            )
            .ok();
            let identity: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(
                identity["Arn"],
                source.expected_arn().as_str(),
                "{kind:?} {flags:?}"
            );
            // boto3 too: it creates and lists a bucket with what it was given.
            let python = python_bin().join("python");
            let bucket =
                format!("exec-{kind:?}-{}-{}", flags.len(), std::process::id()).to_lowercase();
            let out = exec(
                &dir,
                &source,
                flags,
                &[
                    python.to_str().unwrap(),
                    "-c",
                    BOTO3_IDENTITY_AND_BUCKETS,
                    &bucket,
                ],
            )
            .ok();
            let seen: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(
                seen["Arn"],
                source.expected_arn().as_str(),
                "{kind:?} {flags:?}"
            );
            assert!(
                seen["Buckets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b == bucket.as_str()),
                "{seen}"
            );
        }
        let script = "import os, json; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('AWS_')}))";
        let python = python_bin().join("python");
        let out = exec(
            &dir,
            &source,
            &["--env"],
            &[python.to_str().unwrap(), "-c", script],
        )
        .ok();
        let vars: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            vars["AWS_ACCESS_KEY_ID"]
                .as_str()
                .unwrap()
                .starts_with("ASIA"),
            "{vars}"
        );
        assert!(
            vars["AWS_CREDENTIAL_EXPIRATION"]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{vars}"
        );
        assert!(
            vars.get("AWS_PROFILE").is_none(),
            "shadowing variables are removed: {vars}"
        );
        let out = exec(
            &dir,
            &source,
            &[],
            &[python.to_str().unwrap(), "-c", script],
        )
        .ok();
        let vars: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
        assert_eq!(
            vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
        assert!(vars.get("AWS_ACCESS_KEY_ID").is_none(), "{vars}");
    }
}

#[test]
fn exec_passes_on_the_exit_status_and_signals() {
    let dir = scratch("exec-status");
    let source = Source::new(Kind::Hmac, &dir, "exec-status");
    assert_eq!(exec(&dir, &source, &[], &["sh", "-c", "exit 7"]).code, 7);
    let out = exec(&dir, &source, &[], &["/nonexistent/program"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("could not run /nonexistent/program"),
        "{}",
        out.stderr
    );

    let mut cmd = keyhold();
    clean_aws_environment(&mut cmd, &dir)
        .arg("exec")
        .args(source.args())
        .args([
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready, "ready\n");
    assert!(send_signal(&child, "TERM"));
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the command got SIGTERM and its status came back"
    );
}

#[test]
fn a_long_running_command_keeps_getting_fresh_credentials() {
    let dir = scratch("exec-refresh");
    let source = Source::new(Kind::Hmac, &dir, "exec-refresh");
    // Due for refresh 7 s after they are issued; the command asks twice, 9 s apart.
    let script = r#"
import json, os, time, urllib.request
def key_id():
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    return json.load(urllib.request.urlopen(request))["AccessKeyId"]
first = key_id(); time.sleep(9); print(first, key_id())
"#;
    let python = python_bin().join("python");
    let flags = [
        "--duration-seconds",
        "900",
        "--refresh-ahead",
        "893",
        "--stop-before-expiry",
        "880",
    ];
    let out = exec(
        &dir,
        &source,
        &flags,
        &[python.to_str().unwrap(), "-c", script],
    )
    .ok();
    let ids: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "{}", out.stdout);
    assert_ne!(ids[0], ids[1], "refreshed while the command ran");
    assert_eq!(source.proxy.requests(), 2);
}

#[test]
fn export_prints_env_lines_json_and_an_ini_section() {
    for kind in KINDS {
        let dir = scratch(&format!("export-{kind:?}"));
        let source = Source::new(kind, &dir, "export");
        let aws = python_bin().join("aws");
        let script = format!(
            "eval \"$({} export {})\" && {} sts get-caller-identity --output text --query Arn",
            env!("CARGO_BIN_EXE_keyhold"),
            source
                .args()
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" "),
            aws.display()
        );
        let mut cmd = Command::new("sh");
        clean_aws_environment(&mut cmd, &dir).args(["-c", &script]);
        keyhold_environment(&mut cmd)
            .env("AWS_ENDPOINT_URL", moto())
            .env("AWS_DEFAULT_REGION", "us-east-1");
        let out = run(&mut cmd).ok();
        assert_eq!(out.stdout.trim(), source.expected_arn(), "{kind:?}");

        let out = run(keyhold()
            .arg("export")
            .args(source.args())
            .args(["--format", "json"]))
        .ok();
        let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(document["Version"], 1);
        let out = run(keyhold().arg("export").args(source.args()).args([
            "--format",
            "ini",
            "--profile",
            "ci",
        ]))
        .ok();
        assert!(
            out.stdout.starts_with("[ci]\naws_access_key_id = ASIA"),
            "{}",
            out.stdout
        );
        assert_eq!(out.stdout.lines().count(), 4);
    }
}

/// The credentials file's profile as the AWS CLI reads it: the caller's ARN.
fn caller_through_profile(dir: &Path, file: &Path, profile: &str) -> String {
    aws_cli_caller(
        dir,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", profile),
        ],
    )
}

fn update(source: &Source, file: &Path, flags: &[&str]) -> Command {
    let mut cmd = keyhold();
    cmd.arg("update")
        .args(source.args())
        .args(flags)
        .env("AWS_SHARED_CREDENTIALS_FILE", file);
    cmd
}

const OTHERS: &str = "# my machine's credentials\r\n[default]\r\naws_access_key_id = AKIADEFAULTEXAMPLE\r\n\
                      aws_secret_access_key = keep/me\r\n\r\n; old profile\r\n[old]\r\nregion=eu-west-1\r\n";

#[test]
fn update_once_writes_one_profile_and_keeps_every_other_byte() {
    for kind in KINDS {
        let dir = scratch(&format!("update-once-{kind:?}"));
        let source = Source::new(kind, &dir, "update-once");
        let file = dir.join("credentials");
        std::fs::write(&file, OTHERS).unwrap();
        run(update(&source, &file, &["--once", "--profile", "work"]).stdin(Stdio::null())).ok();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(OTHERS), "the rest is untouched:\n{text}");
        assert!(
            text[OTHERS.len()..].starts_with("\r\n[work]\r\naws_access_key_id = ASIA"),
            "{text:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            caller_through_profile(&dir, &file, "work"),
            source.expected_arn()
        );
        let bucket = format!("update-{kind:?}-{}", std::process::id()).to_lowercase();
        let vars = [
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "work"),
        ];
        assert_eq!(
            boto3_caller_and_bucket(&dir, &vars, &bucket),
            (source.expected_arn(), true)
        );
        // Again: the profile's keys are replaced in place, nothing else moves.
        run(update(&source, &file, &["--once", "--profile", "work"]).stdin(Stdio::null())).ok();
        let again = std::fs::read_to_string(&file).unwrap();
        assert!(again.starts_with(OTHERS));
        assert_eq!(again.lines().count(), text.lines().count());
        assert_ne!(again, text, "new credentials");
        assert!(temp_files_beside(&file).is_empty());
    }
    // A new file is created 0600 in a new directory.
    let dir = scratch("update-new");
    let source = Source::new(Kind::Hmac, &dir, "update-new");
    let file = dir.join("aws").join("credentials");
    run(update(&source, &file, &["--once"]).stdin(Stdio::null())).ok();
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("[default]\naws_access_key_id = ASIA")
    );
    assert_eq!(
        caller_through_profile(&dir, &file, "default"),
        source.expected_arn()
    );
}

/// Reads `file` as botocore does (configparser); the profiles that have all three keys.
fn complete_profiles(file: &Path) -> Vec<String> {
    let script = r#"
import configparser, sys
parser = configparser.RawConfigParser()
parser.read(sys.argv[1])
keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
print(" ".join(s for s in parser.sections() if all(parser.has_option(s, k) for k in keys)))
"#;
    let out =
        run(Command::new(python_bin().join("python")).args(["-c", script, file.to_str().unwrap()]))
            .ok();
    let mut profiles: Vec<String> = out.stdout.split_whitespace().map(str::to_owned).collect();
    profiles.sort();
    profiles
}

#[test]
fn concurrent_updates_and_sigkill_never_leave_a_torn_or_lost_profile() {
    let dir = scratch("update-race");
    // A file key: SoftHSM itself fails when several processes log in to one token at once.
    let source = Source::new(Kind::RolesAnywhere, &dir, "update-race");
    let file = dir.join("credentials");
    std::fs::write(&file, OTHERS).unwrap();
    let writers: Vec<_> = (0..6)
        .map(|n| {
            update(&source, &file, &["--once", "--profile", &format!("p{n}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for writer in writers {
        let out = writer.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all: Vec<String> = (0..6).map(|n| format!("p{n}")).collect();
    assert_eq!(
        complete_profiles(&file),
        all,
        "no writer lost another's profile"
    );
    assert!(std::fs::read_to_string(&file).unwrap().starts_with(OTHERS));

    // SIGKILL at many points of an update: the file is always the old one or the new one.
    let before = std::fs::read_to_string(&file).unwrap();
    for delay_ms in (0..400).step_by(25) {
        let mut child = update(&source, &file, &["--once", "--profile", "p0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        send_signal(&child, "KILL");
        let _ = child.wait();
        let now = std::fs::read_to_string(&file).unwrap();
        assert!(
            now.starts_with(OTHERS),
            "after a kill at {delay_ms} ms:\n{now}"
        );
        assert_eq!(now.lines().count(), before.lines().count(), "{now}");
        assert_eq!(
            complete_profiles(&file),
            all,
            "after a kill at {delay_ms} ms"
        );
    }
    // What a killed writer left beside the file goes with the next write.
    run(update(&source, &file, &["--once", "--profile", "p0"]).stdin(Stdio::null())).ok();
    assert!(
        temp_files_beside(&file).is_empty(),
        "{:?}",
        temp_files_beside(&file)
    );
    assert_eq!(
        caller_through_profile(&dir, &file, "p0"),
        source.expected_arn()
    );
}

#[test]
fn update_refreshes_the_file_and_keeps_the_last_good_credentials_through_failures() {
    let dir = scratch("update-loop");
    let source = Source::new(Kind::Hmac, &dir, "update-loop");
    let file = dir.join("credentials");
    let key_id = || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("aws_access_key_id = ").map(str::to_owned))
    };
    // Due for refresh 8 s after they are issued.
    let child = update(
        &source,
        &file,
        &[
            "--duration-seconds",
            "900",
            "--refresh-ahead",
            "892",
            "--stop-before-expiry",
            "880",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(id) = key_id() {
            break id;
        }
        assert!(Instant::now() < deadline, "no credentials written");
        std::thread::sleep(Duration::from_millis(100));
    };
    // STS gone past the refresh point: the file keeps the last good credentials.
    source.proxy.set_down(true);
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(key_id().as_deref(), Some(first.as_str()));
    assert_eq!(complete_profiles(&file), ["default"]);
    // Back: new credentials in the file, without a restart.
    source.proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while key_id().as_deref() == Some(first.as_str()) {
        assert!(Instant::now() < deadline, "the file was not refreshed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(send_signal(&child, "TERM"));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last good"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
