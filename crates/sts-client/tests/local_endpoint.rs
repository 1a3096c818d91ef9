//! The client against a tiny local HTTP server with canned replies: the request it sends,
//! retries (500 then 200, throttling), a closed port, clock-skew correction, timeouts, and
//! replies that are not STS documents (malformed, truncated, wrong content type).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sigv4_core::{DateKey, DateStamp, KeyError, RootKey, SoftwareRootKey};
use sts_client::{ServiceErrorKind, StsClient, StsError};
use test_support::local_server::*;

const ARN: &str = "arn:aws:iam::123456789012:user/local";

fn client(url: &str) -> StsClient {
    client_with(
        url,
        Arc::new(SoftwareRootKey::from_secret_access_key("local-secret")),
    )
}

fn client_with(url: &str, key: Arc<dyn RootKey>) -> StsClient {
    StsClient::builder("AKIDEXAMPLE", key)
        .region("us-east-1")
        .endpoint_url(url)
        .max_attempts(3)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .call_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn ok() -> Vec<u8> {
    reply(200, "text/xml", &caller_identity_xml(ARN))
}

#[tokio::test]
async fn sends_a_signed_form_post() {
    let server = LocalServer::always(ok()).await;
    let id = client(&server.url).get_caller_identity().await.unwrap();
    assert_eq!(id.arn, ARN);
    let request = &server.received()[0];
    assert!(
        request.head.starts_with("POST / HTTP/1.1"),
        "{}",
        request.head
    );
    assert_eq!(request.body, "Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    let auth = request.header("authorization").unwrap();
    let date = &request.header("x-amz-date").unwrap()[..8];
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date}/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
        )),
        "{auth}"
    );
}

#[tokio::test]
async fn a_500_then_200_is_retried() {
    let server = LocalServer::start(|n, _| match n {
        0 => reply(500, "text/html", "<html>Internal Server Error</html>"),
        _ => ok(),
    })
    .await;
    let id = client(&server.url).get_caller_identity().await.unwrap();
    assert_eq!(id.arn, ARN);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn throttling_is_retried_then_reported_when_it_persists() {
    let throttled = reply(400, "text/xml", &error_xml("Throttling", "Rate exceeded"));
    let t = throttled.clone();
    let server = LocalServer::start(move |n, _| if n < 2 { t.clone() } else { ok() }).await;
    client(&server.url).get_caller_identity().await.unwrap();
    assert_eq!(server.count(), 3, "two throttled attempts, then success");

    let server = LocalServer::always(throttled).await;
    let err = client(&server.url).get_caller_identity().await.unwrap_err();
    assert_eq!(server.count(), 3, "max_attempts is 3");
    assert_eq!(err.kind(), Some(&ServiceErrorKind::Throttling), "{err}");
    assert_eq!(err.request_id(), Some("req-Throttling"));
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error_after_every_attempt() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = Instant::now();
    let err = client(&url).get_caller_identity().await.unwrap_err();
    let StsError::Transport {
        attempts, endpoint, ..
    } = &err
    else {
        panic!("expected a transport error, got {err}")
    };
    assert_eq!(*attempts, 3);
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    assert!(err.to_string().contains("after 3 attempt(s)"), "{err}");
    // Two backoff waits of at least half of 10 ms and 20 ms.
    assert!(started.elapsed() >= Duration::from_millis(15));
}

#[tokio::test]
async fn request_time_too_skewed_corrects_the_clock_and_retries_once() {
    let server = LocalServer::start(|n, request| {
        let server_now = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let amz_date = request.header("x-amz-date").unwrap();
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let sent = time::PrimitiveDateTime::parse(&amz_date, &format)
            .unwrap()
            .assume_utc();
        if n > 0 && (sent - server_now).abs() < time::Duration::minutes(1) {
            return ok();
        }
        let http_date = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        reply_with(
            403,
            &[
                ("content-type", "text/xml"),
                ("date", &server_now.format(&http_date).unwrap()),
            ],
            &error_xml(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            ),
        )
    })
    .await;
    let sts = client(&server.url);
    sts.get_caller_identity().await.unwrap();
    assert_eq!(server.count(), 2);
    assert!(
        (sts.clock_offset_secs() - 3600).abs() <= 2,
        "{}",
        sts.clock_offset_secs()
    );
    // Later calls use the corrected clock from the start.
    sts.get_caller_identity().await.unwrap();
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_silent_server_hits_the_call_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        }
    });
    let sts = StsClient::builder(
        "AKIDEXAMPLE",
        Arc::new(SoftwareRootKey::from_secret_access_key("x")),
    )
    .region("us-east-1")
    .endpoint_url(&url)
    .call_timeout(Duration::from_millis(300))
    .build()
    .unwrap();
    let started = Instant::now();
    let err = sts.get_caller_identity().await.unwrap_err();
    assert!(
        matches!(err, StsError::Timeout { attempts: 1, .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.to_string().contains("call timeout"), "{err}");
}

#[tokio::test]
async fn replies_that_are_not_sts_documents_are_parse_errors() {
    let good = caller_identity_xml(ARN);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            reply(
                200,
                "text/xml",
                "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>x</Ar",
            ),
            "malformed or incomplete",
        ),
        (
            reply(200, "text/xml", &good[..good.len() / 2]),
            "malformed or incomplete",
        ),
        (truncated(&good[..40], good.len()), "cut off after"),
        (
            reply(200, "application/json", r#"{"Arn":"x"}"#),
            "content type is not XML",
        ),
        (
            reply(200, "text/html", "<html><body>captive portal</body></html>"),
            "found <html>",
        ),
        (reply(200, "text/xml", ""), "empty"),
        (
            reply(
                200,
                "text/xml",
                &good.replace("GetCallerIdentity", "AssumeRole"),
            ),
            "found <AssumeRoleResponse>",
        ),
        (
            reply(403, "text/plain", "Forbidden"),
            "not an STS error document",
        ),
    ];
    for (bytes, expected) in cases {
        let server = LocalServer::always(bytes).await;
        let err = client(&server.url).get_caller_identity().await.unwrap_err();
        assert!(matches!(err, StsError::Parse { .. }), "{expected}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(expected) && text.contains("GetCallerIdentity"),
            "{expected}: {text}"
        );
        assert_eq!(
            server.count(),
            1,
            "{expected}: parse errors are not retried"
        );
    }
}

/// A root key whose device takes 300 ms per call, like a slow token.
#[derive(Debug)]
struct SlowKey(SoftwareRootKey);

impl RootKey for SlowKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        std::thread::sleep(Duration::from_millis(300));
        self.0.date_key(date)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_device_does_not_stall_the_runtime() {
    let server = LocalServer::always(ok()).await;
    let sts = client_with(
        &server.url,
        Arc::new(SlowKey(SoftwareRootKey::from_secret_access_key("x"))),
    );
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    sts.get_caller_identity().await.unwrap();
    ticker.abort();
    // On this one-thread runtime the ticker only runs if signing left the thread free.
    assert!(
        ticks.load(Ordering::Relaxed) >= 10,
        "ticks: {}",
        ticks.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn a_redirect_is_an_error_and_nothing_reaches_its_target() {
    let elsewhere = LocalServer::always(ok()).await;
    let location = format!("{}/", elsewhere.url);
    for status in [301, 302, 307, 308] {
        let redirecting =
            LocalServer::always(reply_with(status, &[("location", &location)], "")).await;
        let request = sts_client::AssumeRole::new("arn:aws:iam::123456789012:role/r", "session")
            .external_id("the-external-id");
        let err = client(&redirecting.url)
            .assume_role(request)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("redirect"), "{status}: {err}");
        assert_eq!(redirecting.count(), 1, "{status}: not retried");
    }
    assert_eq!(
        elsewhere.count(),
        0,
        "the signed body went to the redirect's target"
    );
}

#[test]
fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
    let key: Arc<dyn RootKey> = Arc::new(SoftwareRootKey::from_secret_access_key("x"));
    let build = |url: &str, allow: bool| {
        StsClient::builder("AKIDEXAMPLE", Arc::clone(&key))
            .region("us-east-1")
            .endpoint_url(url)
            .allow_insecure_http(allow)
            .build()
    };
    for url in [
        "http://sts.example.com",
        "http://10.0.0.1:5000",
        "http://[fe80::1]/",
    ] {
        let err = build(url, false).unwrap_err().to_string();
        assert!(err.contains("--allow-insecure-http"), "{url}: {err}");
        assert!(build(url, true).is_ok(), "{url}");
    }
    for url in [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://[::1]:5000",
    ] {
        assert!(build(url, false).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn credentials_that_expire_in_the_past_or_too_late_are_refused() {
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let cases = [
        ("2001-01-01T00:00:00Z".to_owned(), "in the past"),
        ("9999-12-31T23:59:59Z".to_owned(), "later than"),
        (rfc3339(now + time::Duration::hours(2)), "later than"),
    ];
    for (expiration, expected) in cases {
        let server = LocalServer::always(reply(
            200,
            "text/xml",
            &assume_role_xml("ASIAEXAMPLE", &expiration),
        ))
        .await;
        let request = sts_client::AssumeRole::new("arn:aws:iam::123456789012:role/r", "session");
        let err = client(&server.url).assume_role(request).await.unwrap_err();
        assert!(
            matches!(err, StsError::Expiration { .. }),
            "{expiration}: {err}"
        );
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.is_transient());
    }
    // Within the hour asked for (the default) plus the allowed skew: accepted.
    let fine = rfc3339(now + time::Duration::minutes(62));
    let server = LocalServer::always(reply(
        200,
        "text/xml",
        &assume_role_xml("ASIAEXAMPLE", &fine),
    ))
    .await;
    let request = sts_client::AssumeRole::new("arn:aws:iam::123456789012:role/r", "session");
    client(&server.url).assume_role(request).await.unwrap();
}
