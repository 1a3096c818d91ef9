//! `keyhold serve` end to end: the AWS CLI, boto3 and the AWS SDK for Rust get role
//! credentials from its IMDSv2 and ECS endpoints (a SoftHSM key through moto's STS, and an
//! X.509 key through the local Roles Anywhere endpoint); what the protocols refuse is
//! refused; faults (STS gone, back; SIGHUP; SIGTERM) and 1,000 concurrent clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::serve::*;
use common::*;

fn role_arn() -> String {
    env(test_support::env::ROLE_ARN)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn the_aws_cli_boto3_and_the_rust_sdk_get_role_credentials_from_serve() {
    let dir = scratch("serve-clients");
    let source = Source::new(Kind::Hmac, &dir, "serve-clients");
    let token_file = dir.join("ecs-token");
    let served = Served::start(
        &dir,
        &[
            source.args(),
            vec![
                "--region",
                "us-east-1",
                "--ecs-token-file",
                token_file.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let expected = source.expected_arn();

    // IMDSv2.
    let imds = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", served.imds.as_str())];
    assert_eq!(aws_cli_caller(&dir, &imds), expected);
    let bucket = format!("served-imds-{}", std::process::id());
    assert_eq!(
        boto3_caller_and_bucket(&dir, &imds, &bucket),
        (expected.clone(), true)
    );

    // The ECS container endpoint, the token in a 0600 file the SDKs read.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
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
    assert_eq!(aws_cli_caller(&dir, &ecs), expected);
    let bucket = format!("served-ecs-{}", std::process::id());
    assert_eq!(
        boto3_caller_and_bucket(&dir, &ecs, &bucket),
        (expected.clone(), true)
    );

    // The AWS SDK for Rust's default chain, both ways (in a child process of this test
    // binary, whose environment is the SDK's input).
    for vars in [&imds[..], &ecs[..]] {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        clean_aws_environment(&mut cmd, &dir)
            .args(["--exact", "rust_sdk_child", "--nocapture"])
            .env("KEYHOLD_TEST_SDK_CHILD", "1");
        for (name, value) in vars {
            cmd.env(name, value);
        }
        let out = run(&mut cmd).ok();
        assert!(
            out.stdout.contains(&format!("caller={expected}\n")),
            "{}{}",
            out.stdout,
            out.stderr
        );
    }

    // A printed token (no --ecs-token-file) works as AWS_CONTAINER_AUTHORIZATION_TOKEN.
    let printed = Served::start(&dir, &source.args());
    let token = printed.ecs_token.clone().expect("the token is printed");
    assert_eq!(token.len(), 64);
    let vars = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            printed.ecs_uri.as_str(),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.as_str()),
    ];
    assert_eq!(aws_cli_caller(&dir, &vars), expected);
}

/// The Rust SDK half of the test above: runs only as its child.
#[test]
fn rust_sdk_child() {
    if std::env::var_os("KEYHOLD_TEST_SDK_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let arn = runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .load()
            .await;
        let identity = aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .unwrap();
        identity.arn().unwrap().to_owned()
    });
    println!("caller={arn}");
}

#[test]
fn imds_and_ecs_refuse_what_the_protocols_refuse() {
    let dir = scratch("serve-refusals");
    let source = Source::new(Kind::Hmac, &dir, "serve-refusals");
    let served = Served::start(
        &dir,
        &[source.args(), vec!["--region", "eu-west-3"]].concat(),
    );
    let a = served.address.as_str();
    let creds = "/latest/meta-data/iam/security-credentials/";
    let role = role_arn().rsplit('/').next().unwrap().to_owned();

    // Tokens: the TTL header is required, 1 to 21600.
    for ttl in [None, Some("0"), Some("21601"), Some("x"), Some("-1")] {
        let headers: Vec<_> = ttl
            .map(|t| ("X-aws-ec2-metadata-token-ttl-seconds", t))
            .into_iter()
            .collect();
        assert_eq!(
            request(a, "PUT", "/latest/api/token", &headers).0,
            400,
            "{ttl:?}"
        );
    }
    assert_eq!(request(a, "GET", "/latest/api/token", &[]).0, 405);
    let token = served.imds_token(21600);
    assert_eq!(token.len(), 64);
    assert_ne!(token, served.imds_token(60), "tokens are random");

    // No IMDSv1: every GET needs a valid token.
    assert_eq!(request(a, "GET", creds, &[]).0, 401);
    assert_eq!(
        request(
            a,
            "GET",
            creds,
            &[("X-aws-ec2-metadata-token", "0".repeat(64).as_str())]
        )
        .0,
        401
    );
    let with = [("X-aws-ec2-metadata-token", token.as_str())];
    assert_eq!(request(a, "GET", creds, &with), (200, role.clone()));
    assert_eq!(
        request(
            a,
            "GET",
            "/latest/meta-data/iam/security-credentials",
            &with
        ),
        (200, role.clone())
    );
    assert_eq!(
        request(a, "GET", &format!("{creds}other-role"), &with).0,
        404
    );
    assert_eq!(
        request(a, "GET", "/latest/meta-data/placement/region", &with),
        (200, "eu-west-3".into())
    );
    assert_eq!(request(a, "GET", "/latest/meta-data/ami-id", &with).0, 404);
    let (status, body) = request(a, "GET", &format!("{creds}{role}"), &with);
    assert_eq!(status, 200, "{body}");
    let document = json(&body);
    assert_eq!(document["Code"], "Success");
    assert_eq!(document["Type"], "AWS-HMAC");
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "LastUpdated",
    ] {
        assert!(
            document[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {body}"
        );
    }
    assert!(
        document["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    // An expired token stops working.
    let short = served.imds_token(1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        request(
            a,
            "GET",
            creds,
            &[("X-aws-ec2-metadata-token", short.as_str())]
        )
        .0,
        401
    );

    // Through a proxy, or by a name an attacker's DNS could point here: refused.
    let forwarded = [
        ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
        ("X-Forwarded-For", "10.0.0.1"),
    ];
    assert_eq!(request(a, "PUT", "/latest/api/token", &forwarded).0, 403);
    let rebound = [
        ("Host", "attacker.example:9911"),
        ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
    ];
    assert_eq!(request(a, "PUT", "/latest/api/token", &rebound).0, 403);
    let (status, _) = request(
        a,
        "GET",
        &format!("{creds}{role}"),
        &[
            ("X-aws-ec2-metadata-token", token.as_str()),
            ("Host", "localhost"),
        ],
    );
    assert_eq!(status, 200, "localhost is this machine");

    // ECS: the Authorization header must be the token.
    let ecs_token = served.ecs_token.clone().unwrap();
    assert_eq!(served.ecs("").0, 401);
    assert_eq!(served.ecs("wrong").0, 401);
    assert_eq!(served.ecs(&ecs_token[..63]).0, 401);
    let (status, body) = served.ecs(&ecs_token);
    assert_eq!(status, 200, "{body}");
    let document = json(&body);
    assert_eq!(
        document["AccessKeyId"].as_str().unwrap(),
        json(&request(a, "GET", &format!("{creds}{role}"), &with).1)["AccessKeyId"]
            .as_str()
            .unwrap()
    );
    assert!(document.get("Code").is_none(), "{body}");
    assert!(
        !served
            .log()
            .contains(document["SecretAccessKey"].as_str().unwrap()),
        "the log holds no secret"
    );
}

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
fn a_thousand_concurrent_clients_are_served_with_one_sts_call() {
    let dir = scratch("serve-load");
    let source = Source::new(Kind::Hmac, &dir, "serve-load");
    let sts = &source.proxy;
    let served = Served::start(&dir, &source.args());
    let token = served.ecs_token.clone().unwrap();
    let path = served
        .ecs_uri
        .split_once(&served.address)
        .unwrap()
        .1
        .to_owned();
    let clients: Vec<_> = (0..1000)
        .map(|_| {
            let (address, path, token) = (served.address.clone(), path.clone(), token.clone());
            std::thread::spawn(move || {
                let mut connection = Connection::open(&address);
                (0..20)
                    .map(|i| connection.send("GET", &path, &[("Authorization", &token)], i == 19))
                    .filter(|(status, body)| {
                        *status == 200 && body.contains("\"AccessKeyId\":\"ASIA")
                    })
                    .count()
            })
        })
        .collect();
    let served_ok: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(served_ok, 20_000, "every request got credentials");
    assert_eq!(sts.requests(), 1, "one STS call for all of them");
}

#[test]
fn serve_refuses_what_it_cannot_do_safely() {
    let dir = scratch("serve-usage");
    let out = run(keyhold().args([
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--key",
        "tpm:file=x.pem",
        "--role-arn",
        &role_arn(),
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--allow-remote"), "{}", out.stderr);
    let out = run(keyhold().args([
        "serve",
        "--key",
        "tpm:file=x.pem",
        "--role-arn",
        &role_arn(),
        "--duration-seconds",
        "900",
        "--refresh-ahead",
        "20m",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--refresh-ahead"), "{}", out.stderr);
    // A key that cannot give credentials is an error at start, not a 503 later.
    let key = softhsm_key("serve-nokey", "missing", &dir);
    let out = run(keyhold().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &key,
        "--role-arn",
        &role_arn(),
        "--endpoint-url",
        &moto(),
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("could not open the key"),
        "{}",
        out.stderr
    );
}

#[test]
fn roles_anywhere_credentials_are_served_too() {
    let dir = scratch("serve-ra");
    let source = Source::new(Kind::RolesAnywhere, &dir, "serve-ra");
    let served = Served::start(&dir, &source.args());
    let imds = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", served.imds.as_str())];
    assert_eq!(aws_cli_caller(&dir, &imds), source.expected_arn());
    let token = served.ecs_token.clone().unwrap();
    let ecs = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            served.ecs_uri.as_str(),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.as_str()),
    ];
    let bucket = format!("served-ra-{}", std::process::id());
    assert_eq!(
        boto3_caller_and_bucket(&dir, &ecs, &bucket),
        (source.expected_arn(), true)
    );
    assert_eq!(
        source.proxy.requests(),
        1,
        "one CreateSession for both clients"
    );
    // The role name IMDS lists is the role's.
    let t = served.imds_token(60);
    let (status, name) = request(
        &served.address,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", t.as_str())],
    );
    assert_eq!(
        (status, name.as_str()),
        (200, role_arn().rsplit('/').next().unwrap())
    );
}
