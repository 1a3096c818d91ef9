//! End to end, the hardening of the CLI against SoftHSM, moto and small local servers: the
//! presigned URLs `keyhold sign` prints (bodies included) against aws-sigv4's, `sign --send`
//! against redirects and silent servers, secrets refused before the device, `import
//! --verify`, `doctor --json` against a failing endpoint, and a process that dumps no core
//! and ends on SIGINT as the default action would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// A SoftHSM key holding the test user's secret.
fn imported_key(name: &str) -> String {
    let dir = scratch(name);
    let key = softhsm_key(name, "aws", &dir);
    import(&key, &access_key_id(), &secret(), &[]).ok();
    key
}

/// aws-sigv4's presigned URL for the same request at the same time.
fn aws_presigned(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
    expires: u64,
) -> String {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let identity =
        aws_credential_types::Credentials::new(access_key_id(), secret(), None, None, "test")
            .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut all_headers = vec![("host", url.split('/').nth(2).unwrap())];
    all_headers.extend_from_slice(headers);
    let signable = SignableRequest::new(
        method,
        url,
        all_headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request.uri().to_string()
}

/// The time in a presigned URL's `X-Amz-Date`.
fn amz_date(url: &str) -> SystemTime {
    let value = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-Date="))
        .unwrap();
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, &format)
        .unwrap()
        .assume_utc()
        .into()
}

/// A request to presign: method, URL, headers, body.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn presigned_urls_with_bodies_are_the_ones_aws_sigv4_makes() {
    let key = imported_key("presign-body");
    let cases: &[Case] = &[
        (
            "POST",
            "https://api.example.com/v1/items",
            &[],
            "Action=Put&Value=1",
        ),
        (
            "PUT",
            "https://api.example.com/obj?b=2&a=1",
            &[("x-amz-meta-k", "v")],
            "{\"json\":true}",
        ),
        (
            "POST",
            "https://api.example.com/",
            &[("content-type", "application/json")],
            "",
        ),
        (
            "PUT",
            "https://api.example.com/a%20b/c",
            &[],
            "line one\nline two\n",
        ),
        ("DELETE", "https://api.example.com/x?z=%2F&y=", &[], "x"),
        ("GET", "https://api.example.com/", &[], ""),
    ];
    for (method, url, headers, body) in cases {
        let mut cmd = keyhold();
        cmd.args([
            "sign",
            "--key",
            &key,
            "--region",
            "us-east-1",
            "--service",
            "execute-api",
        ])
        .args(["--presign", "--expires", "300", "-X", method]);
        for (name, value) in *headers {
            cmd.args(["-H", &format!("{name}: {value}")]);
        }
        if !body.is_empty() {
            cmd.args(["--data", body]);
        }
        let ours = run(cmd.arg(url)).ok().stdout.trim().to_owned();
        let theirs = aws_presigned(method, url, headers, body.as_bytes(), amz_date(&ours), 300);
        assert_eq!(ours, theirs, "{method} {url} with body {body:?}");
    }
}

/// A one-request-at-a-time HTTP server on loopback answering every request with `reply`;
/// counts requests.
fn serve(reply: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = (&stream).write_all(reply.as_bytes());
        }
    });
    (url, count)
}

#[test]
fn send_follows_no_redirect_without_location_and_never_shows_a_presigned_url() {
    let key = imported_key("send-redirect");
    let (target, reached) =
        serve("HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\narrived".into());
    let (redirecting, _) = serve(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let sign = |extra: &[&str], url: &str| {
        run(keyhold()
            .args([
                "sign",
                "--key",
                &key,
                "--region",
                "us-east-1",
                "--service",
                "s3",
                "--send",
            ])
            .args(extra)
            .arg(url))
    };
    let out = sign(&["-i"], &format!("{redirecting}/bucket/key"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("HTTP/1.1 307"), "{}", out.stdout);
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let out = sign(&["--location"], &format!("{redirecting}/bucket/key"));
    assert_eq!(out.stdout, "arrived", "{}", out.stderr);
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    // A presigned send that fails (nothing listens on port 9) names the host, not the URL.
    let out = sign(&["--presign"], "http://127.0.0.1:9/bucket/key");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("http://127.0.0.1:9/bucket/key?..."),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("X-Amz-Signature"), "{}", out.stderr);
}

#[test]
fn max_time_gives_up_on_a_silent_server() {
    let key = imported_key("send-silent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().take(4).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let started = Instant::now();
    let out = run(keyhold()
        .args([
            "sign",
            "--key",
            &key,
            "--region",
            "us-east-1",
            "--service",
            "s3",
        ])
        .args(["--send", "--max-time", "1.5", &url]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("timed out") || out.stderr.contains("timeout"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_malformed_secret_is_refused_and_nothing_is_written() {
    let dir = scratch("bad-secret");
    let key = softhsm_key("bad-secret", "aws", &dir);
    for (bad, expected) in [
        (format!("\"{}\"", secret()), "in quotes"),
        (access_key_id(), "access key id"),
        (secret()[..30].to_owned(), "30 characters"),
    ] {
        let out = run(keyhold()
            .args(["import", "--key", &key, "--access-key-id", &access_key_id()])
            .args(["--secret-env", "KEYHOLD_TEST_BAD_SECRET"])
            .env("KEYHOLD_TEST_BAD_SECRET", &bad));
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(!out.stderr.contains(&secret()[4..20]), "{}", out.stderr);
    }
    // Nothing was created: the right secret now imports without --replace.
    import(&key, &access_key_id(), &secret(), &[]).ok();
}

#[test]
fn import_verify_proves_the_pair_with_sts() {
    let dir = scratch("verify");
    let key = softhsm_key("verify", "aws", &dir);
    let out = import(
        &key,
        &access_key_id(),
        &secret(),
        &["--verify", "--endpoint-url", &moto()],
    )
    .ok();
    assert!(out.stderr.contains("verified with STS"), "{}", out.stderr);
    assert!(out.stderr.contains(&user_arn()), "{}", out.stderr);
    let other = softhsm_key("verify-wrong", "aws", &dir);
    let out = import(
        &other,
        &access_key_id(),
        &wrong_secret(),
        &["--verify", "--endpoint-url", &moto()],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("the check with STS failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("stored with the key") || out.stderr.contains("--access-key-id"),
        "{}",
        out.stderr
    );
}

#[test]
fn doctor_fails_on_a_server_error_and_reports_json() {
    let key = imported_key("doctor-500");
    let (url, _) = serve(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .into(),
    );
    let out = run(keyhold().args(["doctor", "--key", &key, "--json", "--endpoint-url", &url]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let checks = report["checks"].as_array().unwrap();
    let check = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    // Up, but no valid GetCallerIdentity reply: the identity check fails.
    assert_eq!(check("STS reachable")["status"], "pass", "{report:#}");
    let identity = check("GetCallerIdentity signed by the device");
    assert_eq!(identity["status"], "fail", "{report:#}");
    assert!(
        identity["detail"].as_str().unwrap().contains("500"),
        "{report:#}"
    );
    // Against moto every check passes, in the same form.
    let out =
        run(keyhold().args(["doctor", "--key", &key, "--json", "--endpoint-url", &moto()])).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "pass")
    );
}

#[test]
fn no_core_dumps_and_sigint_ends_the_process_as_the_default_action_would() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = scratch("core");
    let key = softhsm_key("core", "aws", &dir);
    // Waiting for the secret on a pipe that stays open: not in a device operation.
    let mut child = keyhold()
        .args(["import", "--key", &key, "--access-key-id", &access_key_id()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let limits_path = format!("/proc/{}/limits", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let limits = loop {
        let limits = std::fs::read_to_string(&limits_path).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap()
            .to_owned();
        // Soft and hard limit both 0 (the soft one may be 0 already when it starts).
        let fields: Vec<&str> = core.split_whitespace().collect();
        if fields[4..6] == ["0", "0"] || Instant::now() > deadline {
            break core;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let fields: Vec<&str> = limits.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{limits}");
    // Give the signal thread time to start, then interrupt.
    std::thread::sleep(Duration::from_millis(300));
    assert!(send_signal(&child, "INT"));
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(2), "{status:?}");
    // Nothing was created: a later import needs no --replace.
    import(&key, &access_key_id(), &secret(), &[]).ok();
}
