//! The credential_process cache: a warm `keyhold credential-process` makes no network call
//! and no device call (counted at a relay in front of STS or Roles Anywhere, and proved by
//! removing the PIN the device would need); concurrent cold calls make one; `--no-cache`,
//! the margin, a malformed entry and an unsafe directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::serve::*;
use common::*;

fn credential_process(source: &Source, cache: &Path, flags: &[&str]) -> Run {
    run(keyhold()
        .arg("credential-process")
        .args(source.args())
        .args(flags)
        .env_remove("KEYHOLD_NO_CACHE")
        .env("KEYHOLD_CACHE_DIR", cache))
}

fn key_id(out: &Run) -> String {
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    document["AccessKeyId"].as_str().unwrap().to_owned()
}

fn entries(cache: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect()
}

#[test]
fn a_warm_credential_process_makes_no_network_or_device_call() {
    for kind in [Kind::Hmac, Kind::RolesAnywhere] {
        let dir = scratch(&format!("cache-warm-{kind:?}"));
        let source = Source::new(kind, &dir, "cache-warm");
        let cache = dir.join("cache");
        let cold = credential_process(&source, &cache, &[]).ok();
        assert_eq!(source.proxy.requests(), 1);
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let stored = entries(&cache, "json");
        assert_eq!(stored.len(), 1);
        assert_eq!(
            std::fs::metadata(&stored[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // Without the PIN file (HMAC) and with the service down, a warm call still answers.
        let _ = std::fs::remove_file(dir.join("pin"));
        source.proxy.set_down(true);
        let warm = credential_process(&source, &cache, &[]).ok();
        assert_eq!(warm.stdout, cold.stdout, "{kind:?}");
        assert_eq!(source.proxy.requests(), 1, "no call");
        source.proxy.set_down(false);

        // Another session name is other credentials: another entry, another call.
        let mut other: Vec<&str> = source.args();
        let at = other
            .iter()
            .position(|a| *a == "--role-session-name")
            .unwrap();
        other[at + 1] = "another-session";
        let out = run(keyhold()
            .arg("credential-process")
            .args(&other)
            .env_remove("KEYHOLD_NO_CACHE")
            .env("KEYHOLD_CACHE_DIR", &cache));
        if matches!(kind, Kind::RolesAnywhere) {
            out.ok();
            assert_eq!(source.proxy.requests(), 2);
            assert_eq!(entries(&cache, "json").len(), 2);
        } else {
            // The HMAC key's PIN is gone: a miss has to open the key, and says so.
            assert_eq!(out.code, 1, "{}", out.stderr);
            assert!(
                out.stderr.contains("could not open the key"),
                "{}",
                out.stderr
            );
        }
    }
}

#[test]
fn no_cache_the_margin_and_malformed_entries_mean_a_new_call() {
    let dir = scratch("cache-misses");
    let source = Source::new(Kind::Hmac, &dir, "cache-misses");
    let cache = dir.join("cache");
    let first = key_id(&credential_process(&source, &cache, &[]).ok());
    let fresh = key_id(&credential_process(&source, &cache, &["--no-cache"]).ok());
    assert_ne!(fresh, first);
    assert_eq!(source.proxy.requests(), 2);
    assert_eq!(
        key_id(&credential_process(&source, &cache, &[]).ok()),
        first,
        "--no-cache left the entry alone"
    );
    // One-hour credentials are not good for another 61 minutes.
    credential_process(&source, &cache, &["--cache-margin", "61m"]).ok();
    assert_eq!(source.proxy.requests(), 3);
    // A malformed entry is ignored and replaced.
    let entry = entries(&cache, "json").pop().unwrap();
    std::fs::write(&entry, "{not json").unwrap();
    credential_process(&source, &cache, &[]).ok();
    assert_eq!(source.proxy.requests(), 4);
    credential_process(&source, &cache, &[]).ok();
    assert_eq!(source.proxy.requests(), 4);
}

#[test]
fn concurrent_cold_calls_wait_for_one_refresh() {
    let dir = scratch("cache-concurrent");
    let source = Source::new(Kind::Hmac, &dir, "cache-concurrent");
    let cache = dir.join("cache");
    let children: Vec<_> = (0..8)
        .map(|_| {
            keyhold()
                .arg("credential-process")
                .args(source.args())
                .env_remove("KEYHOLD_NO_CACHE")
                .env("KEYHOLD_CACHE_DIR", &cache)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            document["AccessKeyId"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(source.proxy.requests(), 1);
}

#[test]
fn a_directory_others_can_open_is_not_used() {
    let dir = scratch("cache-unsafe");
    let source = Source::new(Kind::Hmac, &dir, "cache-unsafe");
    let cache = dir.join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = credential_process(&source, &cache, &[]).ok();
    assert!(
        out.stderr.contains("not caching credentials"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("0700"), "{}", out.stderr);
    assert!(
        std::fs::read_dir(&cache).unwrap().next().is_none(),
        "nothing written"
    );
    credential_process(&source, &cache, &[]).ok();
    assert_eq!(source.proxy.requests(), 2);
}

#[test]
fn a_warm_hit_with_a_tpm_key_starts_one_process_and_never_the_tpm() {
    let dir = scratch("cache-tpm");
    let key = format!("tpm:file={}", dir.join("aws.pem").display());
    let tcti = env(test_support::env::TPM_TCTI);
    import(&key, &access_key_id(), &secret(), &["--tcti", &tcti]).ok();
    let cache = dir.join("cache");
    let process = |tcti: &str| {
        run(keyhold()
            .args(["-vv", "credential-process", "--key", &key, "--tcti", tcti])
            .args([
                "--role-arn",
                &env(test_support::env::ROLE_ARN),
                "--endpoint-url",
                &moto(),
            ])
            .env_remove("KEYHOLD_NO_CACHE")
            .env_remove("TSS2_LOG")
            .env("KEYHOLD_CACHE_DIR", &cache))
        .ok()
    };
    // Cold: keyhold sets libtss2's environment by executing itself again, then asks the TPM.
    let cold = process(&tcti);
    assert!(
        cold.stderr.contains("executing keyhold again"),
        "{}",
        cold.stderr
    );
    // Warm, with no TPM there at all: answered from the cache by the first process.
    let warm = process("swtpm:host=127.0.0.1,port=9");
    assert_eq!(key_id(&warm), key_id(&cold));
    assert!(
        warm.stderr.contains("credentials from the cache"),
        "{}",
        warm.stderr
    );
    assert!(
        !warm.stderr.contains("executing keyhold again"),
        "{}",
        warm.stderr
    );
}

#[test]
fn a_credential_process_killed_at_any_point_leaves_no_half_made_cache_entry() {
    let dir = scratch("cache-kill");
    let source = Source::new(Kind::RolesAnywhere, &dir, "cache-kill");
    let cache = dir.join("cache");
    for delay_ms in (0..300).step_by(20) {
        let _ = std::fs::remove_dir_all(&cache);
        let mut child = keyhold()
            .arg("credential-process")
            .args(source.args())
            .env_remove("KEYHOLD_NO_CACHE")
            .env("KEYHOLD_CACHE_DIR", &cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        send_signal(&child, "KILL");
        let _ = child.wait();
        // Whatever the moment, an entry is complete or absent; the next run answers.
        for entry in std::fs::read_dir(&cache).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let document: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).unwrap())
                        .unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
                assert!(
                    document["SessionToken"]
                        .as_str()
                        .is_some_and(|t| !t.is_empty())
                );
            }
        }
        key_id(&credential_process(&source, &cache, &[]).ok());
    }
}
