//! End to end, TPM: imports are all-or-nothing. `keyhold import` is killed (SIGKILL, SIGINT,
//! SIGTERM) at many points, and afterwards the key file or persistent handle holds the old
//! complete key or the new one (a handle may also be empty), and a retry with `--replace`
//! succeeds. Also: what import refuses before it touches the TPM or reads the secret, and
//! the one line printed when no TPM answers. Each test uses its own persistent handle;
//! nextest runs this binary alone (its name contains `tpm`: swtpm serves one client).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn tcti() -> String {
    env(test_support::env::TPM_TCTI)
}

/// What a key file or handle holds after an interrupted import.
#[derive(Debug, PartialEq)]
enum Held {
    Empty,
    /// The key imported first, from [`wrong_secret`]: STS refuses its signatures.
    Old,
    /// The key of the interrupted import, from [`secret`]: STS accepts it.
    New,
}

/// Classifies `key` by asking STS who signs with it.
fn held(key: &str) -> Held {
    let out = whoami(
        key,
        &["--tcti", &tcti(), "--access-key-id", &access_key_id()],
    );
    if out.code == 0 {
        assert_is_test_user(&out.stdout);
        return Held::New;
    }
    if out.stderr.contains("no object at persistent handle") {
        return Held::Empty;
    }
    assert!(
        out.stderr.contains("SignatureDoesNotMatch") || out.stderr.contains("signature"),
        "neither the old nor the new key: {}",
        out.stderr
    );
    Held::Old
}

/// Empties a persistent handle with tpm2-tools (a leftover of an earlier run on this swtpm).
fn evict(handle: &str) {
    let _ = Command::new("tpm2_evictcontrol")
        .args(["-C", "o", "-c", handle])
        .env("TPM2TOOLS_TCTI", tcti())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Starts `keyhold import` of `secret` into `key` on the test TPM, returns it running.
fn spawn_tpm_import(key: &str, secret: &str, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["--tcti".to_owned(), tcti()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_import(key, &access_key_id(), secret, &args)
}

/// Imports `secret` into `key` (must succeed).
fn import_ok(key: &str, secret: &str, extra: &[&str]) {
    let out = spawn_tpm_import(key, secret, extra)
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long an uninterrupted import of `key` takes, to spread the kills over.
fn import_duration(key: &str, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let status = spawn_tpm_import(key, &wrong_secret(), extra)
        .wait()
        .unwrap();
    assert!(status.success(), "the timing import failed");
    started.elapsed()
}

/// Kills an import of `key` after `delay`, with `signal`, and waits for it.
fn interrupt(key: &str, extra: &[&str], delay: Duration, signal: &str) {
    let mut child = spawn_tpm_import(key, &secret(), extra);
    std::thread::sleep(delay);
    send_signal(&child, signal);
    child.wait().unwrap();
}

/// `tries` delays spread from 0 to a little past the end of an import.
fn delays(total: Duration, tries: u32) -> impl Iterator<Item = Duration> {
    let step = total.mul_f64(1.2) / tries;
    (0..tries).map(move |i| step * i)
}

#[test]
fn a_killed_replace_of_a_key_file_leaves_the_old_or_the_new_file() {
    let dir = scratch("tpm-kill-file");
    let path = dir.join("aws.pem");
    let key = format!("tpm:file={}", path.display());
    import_ok(&key, &wrong_secret(), &[]);
    let total = import_duration(&key, &["--replace"]);
    let mut seen = Vec::new();
    for (i, delay) in delays(total, 30).enumerate() {
        let signal = SIGNALS[i % SIGNALS.len()];
        interrupt(&key, &["--replace"], delay, signal);
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(
            pem.starts_with("aws_access_key_id = ") && pem.contains("-----END TSS2 PRIVATE KEY"),
            "after SIG{signal} at {delay:?}, a partial key file: {pem:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "after SIG{signal} at {delay:?}: {mode:o}"
            );
        }
        let state = held(&key);
        assert_ne!(state, Held::Empty);
        seen.push(state);
        // Back to the old key for the next try (and this also clears stale temp files).
        import_ok(&key, &wrong_secret(), &["--replace"]);
        assert_eq!(temp_files_beside(&path), Vec::<String>::new());
    }
    eprintln!("states seen: {seen:?}");
}

#[test]
fn a_killed_handle_import_leaves_empty_old_or_new_and_replace_always_recovers() {
    let handle = "0x81000a11";
    let key = format!("tpm:handle={handle}");
    evict(handle);
    let total = import_duration(&key, &[]);
    let mut seen = Vec::new();
    for (i, delay) in delays(total, 30).enumerate() {
        let signal = SIGNALS[i % SIGNALS.len()];
        // Half the tries interrupt a first import into an empty handle, half a --replace.
        let replace = i % 2 == 1;
        if replace {
            import_ok(&key, &wrong_secret(), &["--replace"]);
        } else {
            evict(handle);
        }
        let extra: &[&str] = if replace { &["--replace"] } else { &[] };
        interrupt(&key, extra, delay, signal);
        let state = held(&key);
        if !replace {
            assert_ne!(state, Held::Old, "nothing old was there");
        }
        seen.push((replace, state));
        // Whatever the state, a retry with --replace succeeds and holds the new key.
        import_ok(&key, &secret(), &["--replace"]);
        assert_eq!(held(&key), Held::New);
    }
    eprintln!("states seen (replace, state): {seen:?}");
    evict(handle);
}

#[test]
fn pem_out_that_cannot_be_written_is_refused_before_the_tpm_is_touched() {
    let handle = "0x81000a12";
    let key = format!("tpm:handle={handle}");
    evict(handle);
    let dir = scratch("tpm-pem-out-unwritable");
    let a_file = dir.join("not-a-directory");
    std::fs::write(&a_file, "x").unwrap();
    for pem_out in [a_file.join("aws.pem"), dir.join("missing").join("aws.pem")] {
        let pem_out = pem_out.display().to_string();
        let out = import(
            &key,
            &access_key_id(),
            &secret(),
            &["--tcti", &tcti(), "--tpm-pem-out", &pem_out],
        );
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("--tpm-pem-out"), "{}", out.stderr);
        assert_eq!(held(&key), Held::Empty, "the handle was persisted");
    }
}

#[test]
fn a_taken_handle_without_replace_is_refused_before_the_secret_is_read() {
    let handle = "0x81000a13";
    let key = format!("tpm:handle={handle}");
    evict(handle);
    import_ok(&key, &secret(), &[]);
    let out = run(keyhold().args([
        "import",
        "--key",
        &key,
        "--access-key-id",
        &access_key_id(),
        "--tcti",
        &tcti(),
        "--secret-file",
        "/nonexistent/secret",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--replace"), "{}", out.stderr);
    assert!(out.stderr.contains(handle), "{}", out.stderr);
    assert!(!out.stderr.contains("/nonexistent"), "{}", out.stderr);
    assert_eq!(held(&key), Held::New, "the key is still there");
    evict(handle);
}

#[test]
fn no_tpm_listening_is_one_line_naming_the_tcti() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let dir = scratch("tpm-unreachable");
    let key = format!("tpm:file={}", dir.join("aws.pem").display());
    let out = import(&key, &access_key_id(), &secret(), &["--tcti", &tcti]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let expected = format!("could not connect to the TPM at {tcti}: is it running?");
    assert!(lines[0].contains(&expected), "{}", out.stderr);
    assert!(
        !out.stderr.contains("Response code value"),
        "{}",
        out.stderr
    );
    let out = whoami("tpm:handle=0x81000a14", &["--tcti", &tcti]);
    assert!(
        !out.stderr.contains("Response code value"),
        "{}",
        out.stderr
    );
}
