//! CreateSession against the local Roles Anywhere endpoint (see
//! `test_support::rolesanywhere`), which verifies the chain, the scope and the signature of
//! every request, then mints credentials for the role from moto. Run by `cargo xtask e2e`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rolesanywhere::{
    CertificateChain, CreateSession, FileKey, RolesAnywhereClient, RolesAnywhereError,
    ServiceErrorKind,
};
use secrecy::ExposeSecret;
use sigv4_core::SigningParams;
use test_support::proxy::Proxy;
use test_support::rolesanywhere::{
    Endpoint, EndpointOptions, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, python, role_arn, scratch,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn request() -> CreateSession {
    CreateSession::new(
        TRUST_ANCHOR_ARN.parse().unwrap(),
        PROFILE_ARN.parse().unwrap(),
        role_arn().parse().unwrap(),
    )
}

fn read(pki: &Pki, name: &str) -> Vec<u8> {
    std::fs::read(pki.path(name)).unwrap()
}

fn file_key(pki: &Pki) -> FileKey {
    FileKey::from_pem(&String::from_utf8(read(pki, "leaf.key")).unwrap(), None).unwrap()
}

fn client(endpoint: &Endpoint, chain: &CertificateChain, key: FileKey) -> RolesAnywhereClient {
    RolesAnywhereClient::builder(chain.signer(key).unwrap())
        .region("us-east-1")
        .endpoint_url(&endpoint.url)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap()
}

/// The endpoint's refusal, as the client reports it.
fn refusal(
    result: Result<rolesanywhere::Credentials, RolesAnywhereError>,
) -> (ServiceErrorKind, String) {
    match result {
        Err(RolesAnywhereError::Service(e)) => (e.kind.clone(), e.message.clone()),
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[test]
fn every_key_kind_gets_credentials_from_a_verifying_endpoint() {
    for (kind, intermediate) in [
        ("rsa2048", false),
        ("rsa3072", true),
        ("p256", false),
        ("p256", true),
        ("p384", false),
    ] {
        let dir = scratch(&format!("kinds-{kind}-{intermediate}"));
        let args: &[&str] = if intermediate {
            &["--key", kind, "--intermediate"]
        } else {
            &["--key", kind]
        };
        let pki = Pki::make(&dir, args);
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        // The full-chain file carries the intermediate after the leaf.
        let chain = CertificateChain::from_pem(&read(&pki, "full-chain.pem")).unwrap();
        assert_eq!(chain.intermediates_der().len(), usize::from(intermediate));
        assert_eq!(chain.info().serial_number, pki.serial);
        let key = file_key(&pki);
        assert_eq!(key.public_key_der(), chain.public_key_der(), "{kind}");
        let credentials = runtime()
            .block_on(client(&endpoint, &chain, key).create_session(&request()))
            .unwrap_or_else(|e| panic!("{kind}: {e:?}; endpoint: {}", endpoint.refusals()));
        assert!(credentials.access_key_id.starts_with("ASIA"), "{kind}");
        assert!(!credentials.session_token.expose_secret().is_empty());
        let left = credentials.expiration - time::OffsetDateTime::now_utc();
        assert!(
            left > time::Duration::minutes(55) && left <= time::Duration::minutes(61),
            "{left}"
        );
    }
}

#[test]
fn a_serial_with_its_high_bit_set_is_sent_as_a_positive_decimal() {
    let dir = scratch("high-bit");
    let pki = Pki::make(&dir, &["--key", "p256", "--high-bit-serial"]);
    assert!(pki.serial.len() >= 38, "{}", pki.serial);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    assert_eq!(chain.info().serial_number, pki.serial);
    runtime()
        .block_on(client(&endpoint, &chain, file_key(&pki)).create_session(&request()))
        .unwrap();
}

/// `serial` (decimal) read as DER's two's complement without its leading zero: the
/// negative number a client that drops the zero would send.
fn negative_twos_complement(serial: &str) -> String {
    let out = std::process::Command::new(python())
        .args([
            "-c",
            "import sys; n = int(sys.argv[1]); print(n - (1 << (8 * ((n.bit_length() + 7) // 8))))",
            serial,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_serial_with_its_high_bit_set_sent_as_a_negative_decimal_is_refused() {
    let dir = scratch("high-bit-negative");
    let pki = Pki::make(&dir, &["--key", "p256", "--high-bit-serial"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let negative = negative_twos_complement(&pki.serial);
    assert!(negative.starts_with('-'), "{negative}");
    let now = time::OffsetDateTime::now_utc();
    let (status, body) = send_tampered(&pki, &endpoint, now, |r| {
        let authorization = r.headers()["authorization"].to_str().unwrap().to_owned();
        let positive = format!("Credential={}/", pki.serial);
        assert!(authorization.contains(&positive), "{authorization}");
        let changed = authorization.replace(&positive, &format!("Credential={negative}/"));
        r.headers_mut()
            .insert("authorization", changed.parse().unwrap());
    });
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!(
            "Credential serial {negative} is not the certificate's serial {} in decimal",
            pki.serial
        )),
        "{body}"
    );
    // The same request with the serial as keyhold writes it passes.
    let (status, body) = send_tampered(&pki, &endpoint, now, |_| {});
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_redirect_is_never_followed_and_its_target_gets_nothing() {
    let dir = scratch("redirect");
    let pki = Pki::make(&dir, &["--key", "p256"]);
    // The target: a real endpoint that would answer, behind a relay that counts requests.
    let target = Endpoint::start(&pki.path("ca.pem"), 0);
    let relay = Proxy::start(&target.url);
    let redirecting = Endpoint::start_configured(
        &pki.path("ca.pem"),
        &EndpointOptions {
            redirect_to: Some(relay.url.clone()),
            ..EndpointOptions::default()
        },
    );
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    let err = runtime()
        .block_on(client(&redirecting, &chain, file_key(&pki)).create_session(&request()))
        .unwrap_err();
    match &err {
        RolesAnywhereError::Reply { status, detail, .. } => {
            assert_eq!(*status, 307, "{err}");
            assert!(detail.contains("never follows"), "{detail}");
        }
        other => panic!("expected the redirect as a reply error, got {other:?}"),
    }
    assert_eq!(
        redirecting
            .refusals()
            .matches("redirected: POST /sessions")
            .count(),
        1,
        "one request, not retried: {}",
        redirecting.refusals()
    );
    assert_eq!(relay.requests(), 0, "the redirect's target got a request");
    assert!(target.refusals().is_empty(), "{}", target.refusals());
}

#[test]
fn throttling_is_retried_with_backoff_and_given_up_typed() {
    let dir = scratch("throttle");
    let pki = Pki::make(&dir, &["--key", "rsa2048"]);
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    let throttled = |n| Endpoint::throttling(&pki.path("ca.pem"), n);
    // Two 429s, then an answer: within the default three attempts.
    let endpoint = throttled(2);
    let credentials = runtime()
        .block_on(client(&endpoint, &chain, file_key(&pki)).create_session(&request()))
        .unwrap_or_else(|e| panic!("{e:?}; endpoint: {}", endpoint.refusals()));
    assert!(credentials.access_key_id.starts_with("ASIA"));
    assert_eq!(endpoint.refusals().matches("throttled").count(), 2);

    // Throttled for ever: each attempt is made, then the service's answer, typed.
    let endpoint = throttled(1000);
    let err = runtime()
        .block_on(client(&endpoint, &chain, file_key(&pki)).create_session(&request()))
        .unwrap_err();
    let (kind, message) = refusal(Err(err));
    assert_eq!(kind, ServiceErrorKind::Throttling);
    assert_eq!(message, "Rate exceeded");
    assert_eq!(endpoint.refusals().matches("throttled").count(), 3);
}

#[test]
fn the_endpoint_refuses_what_the_service_would_with_its_reason() {
    let dir = scratch("refusals");
    let pki = Pki::make(&dir.join("good"), &["--key", "p256"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    let rt = runtime();

    // A key that is not the certificate's.
    let other = Pki::make(&dir.join("other-key"), &["--key", "p256"]);
    let (kind, message) = refusal(
        rt.block_on(client(&endpoint, &chain, file_key(&other)).create_session(&request())),
    );
    assert_eq!(kind, ServiceErrorKind::AccessDenied);
    assert!(message.contains("Signature does not match"), "{message}");

    // A certificate from another CA.
    let (_, message) = refusal(
        rt.block_on(
            client(
                &endpoint,
                &CertificateChain::from_pem(&read(&other, "leaf.pem")).unwrap(),
                file_key(&other),
            )
            .create_session(&request()),
        ),
    );
    assert!(
        message.contains("Untrusted signing certificate"),
        "{message}"
    );

    // Expired, and not yet valid, certificates of the trusted CA.
    for (flag, reason) in [
        ("--expired", "has expired"),
        ("--not-yet-valid", "not yet valid"),
    ] {
        let sub = dir.join(flag.trim_start_matches('-'));
        let ca = pki.dir.to_str().unwrap();
        let pki = Pki::make(&sub, &["--key", "p256", flag, "--ca-dir", ca]);
        let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
        assert!(
            chain
                .check_validity(time::OffsetDateTime::now_utc())
                .is_err()
        );
        let (_, message) = refusal(
            rt.block_on(client(&endpoint, &chain, file_key(&pki)).create_session(&request())),
        );
        assert!(message.contains(reason), "{flag}: {message}");
    }

    // A duration the service refuses never leaves the client.
    let err = rt
        .block_on(
            client(&endpoint, &chain, file_key(&pki))
                .create_session(&request().duration(Duration::from_secs(60))),
        )
        .unwrap_err();
    assert!(matches!(err, RolesAnywhereError::Config(_)), "{err}");
}

/// Signs a CreateSession by hand, lets `tamper` change it, and sends it as it is then.
fn send_tampered(
    pki: &Pki,
    endpoint: &Endpoint,
    signed_at: time::OffsetDateTime,
    tamper: impl FnOnce(&mut http::Request<Vec<u8>>),
) -> (u16, String) {
    let chain = CertificateChain::from_pem(&read(pki, "leaf.pem")).unwrap();
    let signer = chain.signer(file_key(pki)).unwrap();
    let query = format!(
        "profileArn={}&roleArn={}&trustAnchorArn={}",
        PROFILE_ARN,
        role_arn(),
        TRUST_ANCHOR_ARN
    );
    let mut request = http::Request::post(format!("{}/sessions?{query}", endpoint.url))
        .header("content-type", "application/json")
        .body(br#"{"durationSeconds":3600}"#.to_vec())
        .unwrap();
    signer
        .sign_request(
            &mut request,
            &SigningParams::new("us-east-1", "rolesanywhere").at(signed_at),
        )
        .unwrap();
    tamper(&mut request);
    runtime().block_on(async {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from)).unwrap();
        let response = reqwest::Client::new().execute(request).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

#[test]
fn tampered_or_stale_requests_are_refused() {
    let dir = scratch("tampered");
    let pki = Pki::make(&dir, &["--key", "rsa2048"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let now = time::OffsetDateTime::now_utc();

    // Untouched, the hand-signed request works: the cases below fail for their change only.
    let (status, _) = send_tampered(&pki, &endpoint, now, |_| {});
    assert_eq!(status, 201);

    let (status, body) = send_tampered(&pki, &endpoint, now, |r| {
        *r.body_mut() = br#"{"durationSeconds":43200}"#.to_vec();
    });
    assert_eq!(status, 403);
    assert!(body.contains("Signature does not match"), "{body}");

    let (status, body) = send_tampered(&pki, &endpoint, now, |r| {
        let uri = r.uri().to_string() + "&extra=1";
        *r.uri_mut() = uri.parse().unwrap();
    });
    assert_eq!(status, 403);
    assert!(body.contains("Signature does not match"), "{body}");

    let (status, body) = send_tampered(&pki, &endpoint, now - time::Duration::minutes(10), |_| {});
    assert_eq!(status, 403);
    assert!(body.contains("more than 5 minutes"), "{body}");
}

#[test]
fn a_failing_service_is_retried_and_then_answers() {
    let dir = scratch("retry");
    let pki = Pki::make(&dir, &["--key", "p384"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 2);
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    runtime()
        .block_on(client(&endpoint, &chain, file_key(&pki)).create_session(&request()))
        .unwrap();

    // With one attempt only, the 503 is the answer, typed.
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 1);
    let one = RolesAnywhereClient::builder(chain.signer(file_key(&pki)).unwrap())
        .region("us-east-1")
        .endpoint_url(&endpoint.url)
        .max_attempts(1)
        .build()
        .unwrap();
    let (kind, _) = refusal(runtime().block_on(one.create_session(&request())));
    assert_eq!(kind, ServiceErrorKind::ServiceFailure);
}

#[test]
fn a_client_without_a_region_names_where_the_region_comes_from() {
    let dir = scratch("no-region");
    let pki = Pki::make(&dir, &["--key", "p256"]);
    let chain = CertificateChain::from_pem(&read(&pki, "leaf.pem")).unwrap();
    let built = RolesAnywhereClient::builder(chain.signer(file_key(&pki)).unwrap()).build();
    let Err(err) = built else {
        panic!("a client without a region was built");
    };
    let message = err.to_string();
    assert!(
        matches!(err, RolesAnywhereError::Config(_))
            && message.contains("trust anchor's region")
            && message.contains("--region")
            && !message.contains("AWS_REGION"),
        "{message}"
    );
}
