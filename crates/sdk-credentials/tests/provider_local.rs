//! The provider's cache against a tiny local STS that counts requests: 1,000 concurrent
//! callers at expiry cause exactly one AssumeRole; a failed refresh hands out the last good
//! credentials while they are valid and never once they have expired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use sdk_credentials::CredentialsProvider;
use sigv4_core::SoftwareRootKey;
use sts_client::{AssumeRole, StsClient};
use test_support::local_server::{LocalServer, assume_role_xml, error_xml, reply};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn expiring_in(d: time::Duration) -> String {
    (OffsetDateTime::now_utc() + d).format(&Rfc3339).unwrap()
}

fn provider(url: &str, refresh_ahead: Duration) -> CredentialsProvider {
    let sts = StsClient::builder(
        "AKIDEXAMPLE",
        Arc::new(SoftwareRootKey::from_secret_access_key("x")),
    )
    .region("us-east-1")
    .endpoint_url(url)
    .max_attempts(1)
    .build()
    .unwrap();
    CredentialsProvider::assume_role(
        sts,
        AssumeRole::new("arn:aws:iam::123456789012:role/r", "s1"),
    )
    .refresh_ahead(refresh_ahead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_callers_at_expiry_cause_one_sts_call() {
    // First credentials are fresh for one second (then inside the 5-minute refresh window);
    // every later reply is slow (so the callers really overlap) and good for an hour.
    let server = LocalServer::start(|n, _| {
        if n == 0 {
            let expiry = expiring_in(time::Duration::minutes(5) + time::Duration::seconds(1));
            reply(
                200,
                "text/xml",
                &assume_role_xml("ASIAFIRSTEXAMPLE", &expiry),
            )
        } else {
            std::thread::sleep(Duration::from_millis(100));
            reply(
                200,
                "text/xml",
                &assume_role_xml(
                    &format!("ASIANEW{n}EXAMPLE"),
                    &expiring_in(time::Duration::hours(1)),
                ),
            )
        }
    })
    .await;
    let provider = provider(&server.url, Duration::from_secs(300));
    assert_eq!(
        provider
            .provide_credentials()
            .await
            .unwrap()
            .access_key_id(),
        "ASIAFIRSTEXAMPLE"
    );
    provider.provide_credentials().await.unwrap();
    assert_eq!(server.count(), 1, "fresh credentials come from the cache");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.provide_credentials().await })
        })
        .collect();
    for caller in callers {
        let creds = caller.await.unwrap().unwrap();
        assert_eq!(creds.access_key_id(), "ASIANEW1EXAMPLE");
    }
    let refreshes = server.count() - 1;
    eprintln!("STS calls for 1000 concurrent callers at expiry: {refreshes}");
    assert_eq!(refreshes, 1, "exactly one STS call for 1000 callers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_serves_valid_credentials_and_never_expired_ones() {
    // Good for 3 s with a 2 s refresh window: due after 1 s, expired after 3 s. STS then fails.
    let server = LocalServer::start(|n, _| {
        if n == 0 {
            reply(
                200,
                "text/xml",
                &assume_role_xml("ASIAOLDEXAMPLE", &expiring_in(time::Duration::seconds(3))),
            )
        } else {
            reply(
                500,
                "text/xml",
                &error_xml("InternalFailure", "STS is down"),
            )
        }
    })
    .await;
    let provider = provider(&server.url, Duration::from_secs(2));
    let first = provider.provide_credentials().await.unwrap();
    assert_eq!(first.access_key_id(), "ASIAOLDEXAMPLE");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..50 {
        let held = provider.provide_credentials().await.unwrap();
        assert_eq!(held.access_key_id(), "ASIAOLDEXAMPLE");
        assert!(
            held.expiry().unwrap() > SystemTime::now(),
            "never hands out expired credentials"
        );
    }
    assert_eq!(
        server.count(),
        2,
        "one failed refresh; then held off, not hammering STS"
    );

    tokio::time::sleep(Duration::from_millis(2000)).await;
    let err = provider.provide_credentials().await.unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(
        text.contains("InternalFailure") && text.contains("STS is down"),
        "{text}"
    );
}

#[tokio::test]
async fn a_first_fetch_failure_is_an_error_naming_the_sts_code() {
    let server = LocalServer::always(reply(
        403,
        "text/xml",
        &error_xml("AccessDenied", "not allowed"),
    ))
    .await;
    let provider = provider(&server.url, Duration::from_secs(300));
    let err = provider.provide_credentials().await.unwrap_err();
    let source = std::error::Error::source(&err).expect("the source's error is the source");
    let Some(sdk_credentials::SourceError::Sts(sts)) =
        source.downcast_ref::<sdk_credentials::SourceError>()
    else {
        panic!("an STS failure: {source:?}");
    };
    assert_eq!(sts.code(), Some("AccessDenied"));
    assert_eq!(sts.request_id(), Some("req-AccessDenied"));
}

#[tokio::test]
async fn credentials_already_due_for_refresh_do_not_send_every_call_to_sts() {
    // Valid for 60 s, inside the 5-minute refresh window from the start.
    let server = LocalServer::start(|n, _| {
        reply(
            200,
            "text/xml",
            &assume_role_xml(
                &format!("ASIASHORT{n}EXAMPLE"),
                &expiring_in(time::Duration::seconds(60)),
            ),
        )
    })
    .await;
    let provider = provider(&server.url, Duration::from_secs(300));
    for _ in 0..50 {
        provider.provide_credentials().await.unwrap();
    }
    assert_eq!(
        server.count(),
        1,
        "one STS call per hold-off, not one per caller"
    );
}

#[tokio::test]
async fn an_implausible_expiration_is_an_error_and_sts_is_not_hammered() {
    let server = LocalServer::always(reply(
        200,
        "text/xml",
        &assume_role_xml("ASIAFUTUREEXAMPLE", "9999-12-31T23:59:59Z"),
    ))
    .await;
    let provider = provider(&server.url, Duration::from_secs(300));
    for _ in 0..20 {
        let err = provider.provide_credentials().await.unwrap_err();
        let text = format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        );
        assert!(text.contains("Expiration"), "{text}");
    }
    assert_eq!(server.count(), 1);
}
