//! End to end, Tink keys against moto's KMS: the endpoint KMS is reached at (from a
//! profile or the environment, refused when plain http to another machine, logged at -v
//! with its source), interrupted and mismatched `import --replace`, and the nesting marker a
//! KMS credential_process inherits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::tink::*;
use common::*;

#[test]
fn a_plain_http_kms_endpoint_from_a_profile_or_the_environment_is_refused_before_the_secret() {
    let dir = scratch("tink-kms-http");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("kms-http");
    let keyset = dir.join("aws.keyset.json");
    let key = format!("tink:{}", keyset.display());
    let far = "http://10.1.2.3:8080";
    let services = format!(
        "[default]\nservices = elsewhere\n[services elsewhere]\nkms =\n  endpoint_url = {far}\n"
    );
    let cases = [
        (
            format!("[default]\nendpoint_url = {far}\n"),
            None,
            "the AWS profile's endpoint_url",
        ),
        (services, None, "the AWS profile's endpoint_url"),
        (
            String::new(),
            Some("AWS_ENDPOINT_URL"),
            "AWS_ENDPOINT_URL in the environment",
        ),
        (
            String::new(),
            Some("AWS_ENDPOINT_URL_KMS"),
            "AWS_ENDPOINT_URL_KMS in the environment",
        ),
    ];
    for (config, var, from) in cases {
        let config_file = dir.join("aws-config");
        std::fs::write(&config_file, config).unwrap();
        let mut cmd = kms.keyhold();
        cmd.env("AWS_CONFIG_FILE", &config_file)
            .env_remove("AWS_ENDPOINT_URL_KMS")
            .env_remove("AWS_ENDPOINT_URL");
        if let Some(var) = var {
            cmd.env(var, far);
        }
        cmd.args(["import", "--key", &key, "--kek-uri", &kek_uri])
            .args(["--access-key-id", &access_key_id()]);
        // No secret on stdin: the refusal must come before keyhold asks for it.
        let out = run(&mut cmd);
        assert_eq!(out.code, 2, "{from}: {}", out.stderr);
        assert!(
            out.stderr.contains(from)
                && out.stderr.contains("10.1.2.3")
                && out.stderr.contains("--allow-insecure-http"),
            "{from}: {}",
            out.stderr
        );
        assert!(!keyset.exists(), "{from}: a keyset was written");
    }
}

#[test]
fn at_v_each_endpoint_is_logged_with_where_it_came_from() {
    let dir = scratch("tink-endpoints");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("endpoints");
    let key = format!("tink:{}", dir.join("aws.keyset.json").display());
    import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    let whoami = |sts: &[(&str, String)], extra: &[&str]| {
        let mut cmd = kms.keyhold();
        cmd.env_remove("AWS_ENDPOINT_URL_STS")
            .env_remove("AWS_ENDPOINT_URL");
        for (name, value) in sts {
            cmd.env(name, value);
        }
        run(cmd
            .args(["-v", "whoami", "--key", &key, "--kek-uri", &kek_uri])
            .args(extra))
        .ok()
        .stderr
    };
    let logged = |log: &str, service: &str, from: &str| {
        log.lines()
            .any(|line| line.contains(service) && line.contains(&moto()) && line.contains(from))
    };
    let log = whoami(&[], &["--endpoint-url", &moto()]);
    assert!(logged(&log, "STS endpoint", "--endpoint-url"), "{log}");
    assert!(
        logged(
            &log,
            "KMS endpoint",
            "AWS_ENDPOINT_URL_KMS in the environment"
        ),
        "{log}"
    );
    let log = whoami(&[("AWS_ENDPOINT_URL_STS", moto())], &[]);
    assert!(
        logged(&log, "STS endpoint", "AWS_ENDPOINT_URL_STS"),
        "{log}"
    );
}

/// What a keyset and its `.access-key-id` hold after an interrupted `import --replace`.
#[derive(Debug, PartialEq)]
enum Held {
    /// The pair imported first, from [`wrong_secret`]: STS refuses its signatures.
    Old,
    /// The pair of the interrupted import, from [`secret`]: STS accepts it.
    New,
    /// The new `.access-key-id` beside the old keyset: refused, naming the repair.
    Interrupted,
}

/// Classifies `key` by opening it as keyhold does and asking STS who signs with it.
fn held(kms: &KmsIdentity, key: &str, kek_uri: &str) -> Held {
    let out = whoami_tink(kms, key, kek_uri);
    if out.code == 0 {
        assert_is_test_user(&out.stdout);
        return Held::New;
    }
    if out.stderr.contains("was interrupted") {
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("run it again"), "{}", out.stderr);
        return Held::Interrupted;
    }
    assert!(
        out.stderr.contains("SignatureDoesNotMatch"),
        "neither the old pair nor the new one: {}",
        out.stderr
    );
    Held::Old
}

#[test]
fn a_killed_replace_leaves_the_old_pair_or_the_new_one_and_replace_recovers() {
    let dir = scratch("tink-kill");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("kill");
    let keyset = dir.join("aws.keyset.json");
    let key = format!("tink:{}", keyset.display());
    import_tink(&kms, &key, &kek_uri, &wrong_secret(), &[]).ok();
    let started = Instant::now();
    import_tink(&kms, &key, &kek_uri, &secret(), &["--replace"]).ok();
    let total = started.elapsed();

    let tries = 30;
    let mut seen = Vec::new();
    for i in 0..tries {
        let signal = SIGNALS[i % SIGNALS.len()];
        let delay = total.mul_f64(1.2) * i as u32 / tries as u32;
        import_tink(&kms, &key, &kek_uri, &wrong_secret(), &["--replace"]).ok();
        let mut child = spawn_with_stdin(
            kms.keyhold()
                .args(["import", "--key", &key, "--kek-uri", &kek_uri, "--replace"])
                .args(["--access-key-id", &access_key_id()]),
            &format!("{}\n", secret()),
        );
        std::thread::sleep(delay);
        send_signal(&child, signal);
        child.wait().unwrap();

        let state = held(&kms, &key, &kek_uri);
        if state == Held::Interrupted {
            // SIGINT and SIGTERM wait for the files to be written.
            assert_eq!(signal, "KILL", "SIG{signal} after {delay:?}");
        }
        seen.push((signal, state));
        // Whatever is there, --replace finishes the job and clears stale temporary files.
        import_tink(&kms, &key, &kek_uri, &secret(), &["--replace"]).ok();
        assert_eq!(held(&kms, &key, &kek_uri), Held::New);
        assert_eq!(temp_files_beside(&keyset), Vec::<String>::new());
    }
    eprintln!("states seen (signal, state): {seen:?}");
    // The kills landed on both sides of the switch, or the test proved little.
    assert!(seen.iter().any(|(_, s)| *s == Held::Old), "{seen:?}");
    assert!(seen.iter().any(|(_, s)| *s == Held::New), "{seen:?}");
}

#[test]
fn an_access_key_id_file_of_another_keyset_is_refused_and_replace_repairs_it() {
    let dir = scratch("tink-mismatch");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("mismatch");
    let ours = dir.join("aws.keyset.json");
    let other = dir.join("other.keyset.json");
    let key = format!("tink:{}", ours.display());
    let other_key = format!("tink:{}", other.display());
    import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    import_tink(&kms, &other_key, &kek_uri, &wrong_secret(), &[]).ok();
    // The state a kill between the two renames of a --replace leaves.
    std::fs::copy(
        dir.join("other.keyset.json.access-key-id"),
        dir.join("aws.keyset.json.access-key-id"),
    )
    .unwrap();
    assert_eq!(held(&kms, &key, &kek_uri), Held::Interrupted);
    // A temporary file of a process that is gone, as a kill leaves one.
    let stale = dir.join(".aws.keyset.json.keyhold-tmp.2147483647.0");
    std::fs::write(&stale, "partial").unwrap();
    import_tink(&kms, &key, &kek_uri, &secret(), &["--replace"]).ok();
    assert_eq!(held(&kms, &key, &kek_uri), Held::New);
    assert!(!stale.exists(), "the stale temporary file is still there");
}

#[test]
fn a_credential_process_that_kms_runs_inherits_the_nesting_marker() {
    let dir = scratch("tink-nesting");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("nesting");
    let key = format!("tink:{}", dir.join("aws.keyset.json").display());
    import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    // The profile KMS uses runs a program that records the marker (as keyhold would read
    // it, started through that profile) and fails.
    let marker = dir.join("marker");
    let config = dir.join("aws-config-nesting");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = sh -c 'printenv KEYHOLD_KMS_CLIENT_PID > {}; exit 1'\n",
            marker.display()
        ),
    )
    .unwrap();
    let child = kms
        .keyhold()
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .args(["whoami", "--key", &key, "--kek-uri", &kek_uri])
        .args(["--endpoint-url", &moto()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let recorded = std::fs::read_to_string(&marker).unwrap_or_else(|e| {
        panic!(
            "the credential_process did not run ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // keyhold re-executes itself in place to set the marker: the pid is the one started.
    assert_eq!(recorded.trim(), pid.to_string());
}
