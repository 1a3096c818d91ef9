//! `keyhold serve` end to end: the AWS CLI, boto3 and the AWS SDK for Rust get role
//! credentials from its IMDSv2 and ECS endpoints (a SoftHSM key through moto's STS, and an
//! X.509 key through the local Roles Anywhere endpoint); what the protocols refuse is
//! refused; 1,000 concurrent clients. Faults: `e2e_serve_faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use common::serve::*;
use common::*;

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
