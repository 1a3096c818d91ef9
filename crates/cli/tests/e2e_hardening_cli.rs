//! End to end, the hardening of the CLI against SoftHSM, moto and small local servers: the
//! presigned URLs `keyhold sign` prints (bodies included) against aws-sigv4's, `sign --send`
//! against redirects, silent servers and a 200 MiB reply, secrets refused before the device,
//! `import --verify`, and `doctor --json` against a failing endpoint. The process's own
//! hygiene is `e2e_process_hygiene.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use test_support::http::{answer_every_request, silent_server};

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
        let mut cmd = sign_for(&key, "execute-api");
        cmd.args(["--presign", "--expires", "300", "-X", method]);
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

#[test]
fn send_follows_no_redirect_without_location_and_never_shows_a_presigned_url() {
    let key = imported_key("send-redirect");
    let (target, reached) = answer_every_request(
        "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\narrived".into(),
    );
    let (redirecting, _) = answer_every_request(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let sign = |extra: &[&str], url: &str| run(sign_s3(&key).arg("--send").args(extra).arg(url));
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
    let (url, _) = silent_server();
    let started = Instant::now();
    let out = run(sign_s3(&key).args(["--send", "--max-time", "1.5", &url]));
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
    let (url, _) = answer_every_request(
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
fn send_streams_a_large_response_in_bounded_memory() {
    const SIZE: usize = 200 << 20;
    let key = imported_key("send-stream");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/bucket/big", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..SIZE / chunk.len() {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut child = sign_s3(&key)
        .args(["--send", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let received = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    // The peak resident memory, sampled until the process ends (VmHWM only grows).
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(received.join().unwrap().unwrap(), SIZE as u64);
    eprintln!("sign --send of a 200 MiB response: peak RSS {peak_kib} KiB");
    // Buffered, the body alone would be 200 MiB; streamed, the process stays small.
    assert!(
        peak_kib > 0 && peak_kib < 64 << 10,
        "peak RSS {peak_kib} KiB"
    );
}
