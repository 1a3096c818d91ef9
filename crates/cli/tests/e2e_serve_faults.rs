//! `keyhold serve` under faults, end to end: STS taken away and brought back (the last good
//! credentials, then 503 with the reason, then recovery without a restart), SIGHUP and
//! SIGTERM, swtpm killed and restarted under a running server, an ECS token file rotated,
//! and replies to other machines leaving with IP TTL 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::serve::*;
use common::*;

#[test]
fn a_failed_refresh_serves_the_last_good_credentials_then_503_and_recovers() {
    let dir = scratch("serve-faults");
    let source = Source::new(Kind::Hmac, &dir, "serve-faults");
    let sts = &source.proxy;
    // 900-second credentials, due for refresh after 12 s, served until 24 s old.
    let served = Served::start(
        &dir,
        &[
            source.args(),
            vec![
                "--duration-seconds",
                "900",
                "--refresh-ahead",
                "888",
                "--stop-before-expiry",
                "876",
            ],
        ]
        .concat(),
    );
    let started = Instant::now();
    let token = served.ecs_token.clone().unwrap();
    let key_id = |body: &str| json(body)["AccessKeyId"].as_str().unwrap().to_owned();
    let (status, body) = served.ecs(&token);
    assert_eq!(status, 200, "{body}");
    let first = key_id(&body);
    assert_eq!(sts.requests(), 1);

    // STS goes away: after the refresh point the last good credentials are still served...
    sts.set_down(true);
    std::thread::sleep(Duration::from_secs(14).saturating_sub(started.elapsed()));
    let (status, body) = served.ecs(&token);
    assert_eq!(
        (status, key_id(&body)),
        (200, first.clone()),
        "the last good credentials"
    );
    // ...until they are too close to expiry: then 503 with the reason, never expired ones.
    std::thread::sleep(Duration::from_secs(27).saturating_sub(started.elapsed()));
    let (status, body) = served.ecs(&token);
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["Code"], "CredentialsUnavailable");
    assert!(
        body.contains("STS"),
        "the reason names the failing call: {body}"
    );
    let imds = served.imds_token(60);
    let role = role_arn().rsplit('/').next().unwrap().to_owned();
    let path = format!("/latest/meta-data/iam/security-credentials/{role}");
    assert_eq!(
        request(
            &served.address,
            "GET",
            &path,
            &[("X-aws-ec2-metadata-token", imds.as_str())]
        )
        .0,
        503
    );

    // STS back: new credentials without a restart.
    sts.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let renewed = loop {
        let (status, body) = served.ecs(&token);
        if status == 200 {
            break key_id(&body);
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {body}\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_ne!(renewed, first);
    assert!(
        served.log().contains("refreshing credentials failed"),
        "{}",
        served.log()
    );
}

#[test]
fn sighup_rereads_the_key_and_sigterm_drains_and_exits() {
    let dir = scratch("serve-signals");
    let source = Source::new(Kind::Hmac, &dir, "serve-signals");
    let sts = &source.proxy;
    let mut served = Served::start(&dir, &source.args());
    let token = served.ecs_token.clone().unwrap();
    let (_, body) = served.ecs(&token);
    let first = json(&body)["AccessKeyId"].as_str().unwrap().to_owned();
    assert_eq!(
        served.ecs(&token).1,
        body,
        "fresh credentials come from the cache"
    );
    assert_eq!(sts.requests(), 1);

    served.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.log().contains("read again") {
        assert!(Instant::now() < deadline, "{}", served.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = served.ecs(&token);
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        json(&body)["AccessKeyId"].as_str().unwrap(),
        first,
        "the re-read key refreshed"
    );
    assert_eq!(sts.requests(), 2);

    served.signal("TERM");
    let status = served
        .wait(Duration::from_secs(15))
        .expect("serve exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", served.log());
    assert!(
        std::net::TcpStream::connect(&served.address).is_err(),
        "no longer listening"
    );
}

#[test]
fn a_tpm_restart_and_a_rotated_token_file_need_no_restart_of_serve() {
    let dir = scratch("serve-tpm-restart");
    let swtpm = test_support::tpm::OwnSwtpm::start(&dir);
    let key = format!("tpm:file={}", dir.join("aws.pem").display());
    import(&key, &access_key_id(), &secret(), &["--tcti", &swtpm.tcti]).ok();
    let sts = test_support::proxy::Proxy::start(&moto());
    let token_file = dir.join("ecs-token");
    // Due for refresh 8 s after they are issued.
    let served = Served::start(
        &dir,
        &[
            "--key",
            &key,
            "--tcti",
            &swtpm.tcti,
            "--role-arn",
            &role_arn(),
            "--endpoint-url",
            &sts.url,
            "--ecs-token-file",
            token_file.to_str().unwrap(),
            "--duration-seconds",
            "900",
            "--refresh-ahead",
            "892",
            "--stop-before-expiry",
            "880",
        ],
    );
    let started = Instant::now();
    let token = std::fs::read_to_string(&token_file).unwrap();
    let (status, body) = served.ecs(&token);
    assert_eq!(status, 200, "{body}");
    let first = json(&body)["AccessKeyId"].as_str().unwrap().to_owned();

    // The TPM restarts (SIGKILL, then its state again): the next refresh reconnects.
    swtpm.restart();
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let renewed = loop {
        let (status, body) = served.ecs(&token);
        assert_eq!(status, 200, "{body}");
        let id = json(&body)["AccessKeyId"].as_str().unwrap().to_owned();
        if id != first {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no refresh after the restart:\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(renewed.starts_with("ASIA"));

    // The token file is rotated by writing a new token: the old one stops working, the new
    // one works for the AWS CLI, without a restart.
    std::fs::write(&token_file, "a-rotated-token-0123456789abcdef").unwrap();
    assert_eq!(served.ecs(&token).0, 401);
    assert_eq!(served.ecs("a-rotated-token-0123456789abcdef").0, 200);
    let ecs = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            served.ecs_uri.as_str(),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
    ];
    let arn = aws_cli_caller(&dir, &ecs);
    assert!(arn.contains(":assumed-role/"), "{arn}");
}

/// The IP TTL of the first reply packet carrying data from `port` on the loopback
/// interface, read by a raw packet socket (root) while `request` runs.
fn reply_ttl(port: u16, request: impl FnOnce()) -> u8 {
    let script = r#"
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
s.bind(("lo", 0))
s.settimeout(10)
print("ready", flush=True)
while True:
    ip = s.recv(65535)[14:]
    if ip[0] >> 4 != 4 or ip[9] != 6:
        continue
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    sport = struct.unpack("!H", ip[ihl:ihl + 2])[0]
    offset = (ip[ihl + 12] >> 4) * 4
    if sport == port and total > ihl + offset:
        print(ip[8], flush=True)
        break
"#;
    let mut capture = std::process::Command::new(python_bin().join("python"))
        .args(["-c", script, &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(capture.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    request();
    let ttl = lines
        .next()
        .expect("a reply packet")
        .unwrap()
        .parse()
        .unwrap();
    let _ = capture.wait();
    ttl
}

#[test]
fn replies_to_other_machines_cannot_cross_a_router() {
    let dir = scratch("serve-ttl");
    let source = Source::new(Kind::RolesAnywhere, &dir, "serve-ttl");
    // On every address (--allow-remote): replies leave with IP TTL 1.
    let mut args = source.args();
    args.extend(["--listen", "0.0.0.0:0", "--allow-remote"]);
    let remote = Served::start(&dir, &args);
    let port: u16 = remote.address.rsplit(':').next().unwrap().parse().unwrap();
    let local = format!("127.0.0.1:{port}");
    let ttl = reply_ttl(port, || {
        let ttl_header = [("X-aws-ec2-metadata-token-ttl-seconds", "60")];
        assert_eq!(
            request(&local, "PUT", "/latest/api/token", &ttl_header).0,
            200
        );
    });
    assert_eq!(ttl, 1);
    // On loopback (the default): the system's usual TTL.
    let loopback = Served::start(&dir, &source.args());
    let port: u16 = loopback
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ttl = reply_ttl(port, || {
        let ttl_header = [("X-aws-ec2-metadata-token-ttl-seconds", "60")];
        assert_eq!(
            request(&loopback.address, "PUT", "/latest/api/token", &ttl_header).0,
            200
        );
    });
    assert!(ttl > 1, "{ttl}");
}
