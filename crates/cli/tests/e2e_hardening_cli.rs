//! End to end, the hardening of the CLI against SoftHSM, moto and small local servers: the
//! presigned URLs `keyhold sign` prints (bodies included) against aws-sigv4's, `sign --send`
//! against redirects, silent servers and a 200 MiB reply, secrets refused before the device,
//! `import --verify`, `doctor --json` against a failing endpoint, a process that dumps no
//! core, is not dumpable and ends on SIGINT as the default action would, and a secret that
//! leaves no copy in memory (a gdb snapshot) and is not echoed at a terminal.
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().take(4).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
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

/// A loopback server that accepts connections and never answers; returns its URL and how
/// many connections it has accepted.
fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, count)
}

/// How many times `needle` occurs in the memory of process `pid`, from a core snapshot
/// taken with gdb's `gcore` (root may snapshot a non-dumpable process).
fn copies_in_memory(pid: u32, needle: &[u8], dir: &std::path::Path) -> (usize, Vec<u8>) {
    let prefix = dir.join("core");
    let out = std::process::Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .expect("gcore (apt-get install gdb)");
    let core_path = dir.join(format!("core.{pid}"));
    let core =
        std::fs::read(&core_path).unwrap_or_else(|e| panic!("gcore wrote no core ({e}): {out:?}"));
    std::fs::remove_file(&core_path).unwrap();
    let copies = core.windows(needle.len()).filter(|w| *w == needle).count();
    (copies, core)
}

/// The pid of the process whose command line holds `marker`, other than `not`.
fn pid_with_argument(marker: &str, program: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let runs = args.first()?.ends_with(program.as_bytes());
            let marked = args
                .iter()
                .any(|a| a.windows(marker.len()).any(|w| w == marker.as_bytes()));
            (runs && marked).then_some(pid)
        })
}

#[test]
fn a_secret_from_a_pipe_or_a_terminal_leaves_no_copy_in_memory_and_is_never_echoed() {
    let dir = scratch("secret-memory");
    let (silent, connected) = silent_server();
    let secret = secret();
    for terminal in [false, true] {
        let object = if terminal { "tty" } else { "pipe" };
        let key = softhsm_key(&format!("mem-{object}"), object, &dir);
        let import = [
            "import",
            "--key",
            &key,
            "--access-key-id",
            &access_key_id(),
            // Once the key is in the token, --verify waits on a server that never answers:
            // the process stays alive, its secret dropped, for the snapshot.
            "--verify",
            "--endpoint-url",
            &silent,
        ];
        let before = connected.load(Ordering::SeqCst);
        let screen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut child = if terminal {
            // `script` gives keyhold a pseudo-terminal; its output is what the screen shows.
            let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_keyhold"))
                .chain(import)
                .map(|a| format!("'{a}'"))
                .collect();
            let mut script = std::process::Command::new("script");
            for (name, value) in keyhold().get_envs() {
                match value {
                    Some(value) => script.env(name, value),
                    None => script.env_remove(name),
                };
            }
            let mut child = script
                .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("script (util-linux)");
            let mut stdout = child.stdout.take().unwrap();
            let shown = Arc::clone(&screen);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut chunk) {
                    shown.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            // Type the secret only once the prompt is up (echo is off before it shows).
            let deadline = Instant::now() + Duration::from_secs(20);
            while !String::from_utf8_lossy(&screen.lock().unwrap()).contains("Secret access key") {
                assert!(Instant::now() < deadline, "no prompt");
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(format!("{secret}\n").as_bytes()).unwrap();
            std::mem::forget(stdin); // keep the terminal open
            child
        } else {
            spawn_with_stdin(keyhold().args(import), &format!("{secret}\n"))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while connected.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "the import never reached --verify"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = match terminal {
            true => pid_with_argument(&format!("object={object}"), "keyhold").unwrap(),
            false => child.id(),
        };
        let (copies, core) = copies_in_memory(pid, secret.as_bytes(), &dir);
        // The snapshot holds the process's data: the key URI it is verifying is there.
        assert!(
            core.windows(10)
                .any(|w| w == b"object=tty" || w == b"object=pip"),
            "the snapshot of {pid} misses the heap"
        );
        assert_eq!(
            copies, 0,
            "{object}: copies of the secret in memory after import"
        );
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        let _ = child.kill();
        child.wait().unwrap();
        if terminal {
            let shown = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
            assert!(shown.contains("not shown"), "{shown}");
            assert!(
                !shown.contains(&secret[..8]),
                "the terminal echoed the secret: {shown}"
            );
        }
    }
}

/// The owner of `/proc/PID/environ` once `pid` runs as `uid`: Linux shows the entries of a
/// non-dumpable process as root's.
fn proc_owner_once_running_as(pid: u32, uid: u32) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let real_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        if real_uid == uid.to_string() {
            // Give keyhold the moment between its start and its first read of stdin.
            std::thread::sleep(Duration::from_millis(300));
            return std::fs::metadata(format!("/proc/{pid}/environ"))
                .unwrap()
                .uid();
        }
        assert!(Instant::now() < deadline, "{pid} never ran as {uid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_process_holding_a_secret_is_not_dumpable() {
    use std::os::unix::fs::PermissionsExt as _;
    let nobody = 65534;
    let as_nobody = |program: &str| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
        cmd
    };
    let whoami = run(std::process::Command::new("id").arg("-u")).ok();
    assert_eq!(
        whoami.stdout.trim(),
        "0",
        "this test runs as root (it starts keyhold as another user with setpriv)"
    );
    // A control: an ordinary process of that user shows as its own in /proc.
    let mut sleeper = as_nobody("sleep").arg("30").spawn().unwrap();
    assert_eq!(proc_owner_once_running_as(sleeper.id(), nobody), nobody);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    // keyhold waiting for a secret on stdin (no device needed before that for a Tink key).
    let dir = scratch("not-dumpable");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut keyhold_cmd = as_nobody(env!("CARGO_BIN_EXE_keyhold"));
    for (name, value) in keyhold().get_envs() {
        match value {
            Some(value) => keyhold_cmd.env(name, value),
            None => keyhold_cmd.env_remove(name),
        };
    }
    let mut child = keyhold_cmd
        .env("HOME", &dir)
        .env("AWS_CONFIG_FILE", dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .args(["import", "--key"])
        .arg(format!("tink:{}", dir.join("aws.keyset.json").display()))
        .args([
            "--kek-uri",
            "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "--access-key-id",
            &access_key_id(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let owner = proc_owner_once_running_as(child.id(), nobody);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        owner,
        0,
        "keyhold is dumpable; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
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
