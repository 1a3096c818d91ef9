//! STS against moto_server, which checks every signature: each action signed by the test
//! user's key (in software here; the device backends are exercised in sdk-credentials),
//! and the typed errors for a wrong secret and a role the caller may not assume.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::moto as common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use secrecy::ExposeSecret;
use sigv4_core::SoftwareRootKey;
use sts_client::{AssumeRole, GetSessionToken, ServiceErrorKind, StsError};

#[tokio::test]
async fn get_caller_identity_returns_the_users_arn() {
    let (akid, key) = user_key();
    let sts = moto_client(&akid, key);
    let id = sts.get_caller_identity().await.unwrap();
    assert_eq!(id.arn, env(test_support::env::USER_ARN));
    assert_eq!(id.account, env(test_support::env::ACCOUNT));
    assert!(!id.user_id.is_empty());
    // The second call reuses the derived key: the root key was asked once.
    sts.get_caller_identity().await.unwrap();
    assert_eq!(sts.signer().root_key_calls(), 1);
}

#[tokio::test]
async fn assume_role_with_every_parameter_returns_working_credentials() {
    let (akid, key) = user_key();
    let sts = moto_client(&akid, key);
    let role_arn = assumable_role(&[]).await;
    let session = unique("all-params");
    let request = AssumeRole::new(&role_arn, &session)
        .duration(Duration::from_secs(900))
        .external_id("external id with spaces & symbols")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .policy_arns(["arn:aws:iam::aws:policy/ReadOnlyAccess"])
        .tag("project", "keyhold")
        .tag("team", "a=b/c")
        .transitive_tag_keys(["project"])
        .source_identity("alice");
    let role = sts.assume_role(request).await.unwrap();
    let account = env(test_support::env::ACCOUNT);
    let role_name = role_arn.rsplit('/').next().unwrap();
    assert_eq!(
        role.assumed_role_user.arn,
        format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}")
    );
    assert!(
        role.assumed_role_user
            .assumed_role_id
            .ends_with(&format!(":{session}"))
    );
    let creds = &role.credentials;
    assert!(
        creds.access_key_id.starts_with("ASIA"),
        "{}",
        creds.access_key_id
    );
    assert!(!creds.session_token.expose_secret().is_empty());
    let now = time::OffsetDateTime::now_utc();
    assert!(creds.expiration > now && creds.expiration <= now + time::Duration::seconds(905));

    // The temporary credentials authenticate: GetCallerIdentity signed with them (software
    // key plus session token, through sigv4-core directly) names the assumed role.
    let signer = sigv4_core::Signer::new(
        &creds.access_key_id,
        SoftwareRootKey::from_secret_access_key(creds.secret_access_key.expose_secret()),
    )
    .with_session_token(creds.session_token.expose_secret());
    let mut request = http::Request::post(moto())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
        .unwrap();
    signer
        .sign_request(
            &mut request,
            &sigv4_core::SigningParams::new("us-east-1", "sts"),
        )
        .unwrap();
    let reply = reqwest::Client::new()
        .execute(reqwest::Request::try_from(request.map(reqwest::Body::from)).unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(xml_text(&reply, "Arn"), role.assumed_role_user.arn);
}

/// moto answers GetSessionToken with fixed example keys that do not authenticate, so this
/// checks that our signed request is accepted (moto verifies the signature) and parsed.
#[tokio::test]
async fn get_session_token_is_accepted_and_parsed() {
    let (akid, key) = user_key();
    let sts = moto_client(&akid, key);
    let creds = sts
        .get_session_token(GetSessionToken::new().duration(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(!creds.access_key_id.is_empty());
    assert!(!creds.secret_access_key.expose_secret().is_empty());
    assert!(!creds.session_token.expose_secret().is_empty());
    assert!(creds.expiration > time::OffsetDateTime::now_utc());
    let debug = format!("{creds:?}");
    assert!(
        !debug.contains(creds.secret_access_key.expose_secret()),
        "{debug}"
    );
    assert!(
        !debug.contains(creds.session_token.expose_secret()),
        "{debug}"
    );

    let with_mfa = sts
        .get_session_token(
            GetSessionToken::new().mfa("arn:aws:iam::123456789012:mfa/keyhold-test", "123456"),
        )
        .await
        .unwrap();
    assert!(!with_mfa.access_key_id.is_empty());
}

#[tokio::test]
async fn wrong_secret_is_a_typed_signature_does_not_match() {
    let akid = env(test_support::env::AWS_ACCESS_KEY_ID);
    let wrong = Arc::new(SoftwareRootKey::from_secret_access_key(
        "not-the-secret-of-this-key",
    ));
    let err = moto_client(&akid, wrong)
        .get_caller_identity()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        Some(&ServiceErrorKind::SignatureDoesNotMatch),
        "{err}"
    );
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    let text = err.to_string();
    assert!(
        text.contains("GetCallerIdentity") && text.contains("imported"),
        "{text}"
    );
}

/// moto does not check that a role exists: an allow-all user may "assume" any ARN. So this
/// makes a second IAM user (through signed IAM calls) whose policy allows sts:AssumeRole on
/// one real role only (a role whose trust policy names that user); moto evaluates that
/// policy, and assuming any other role is AccessDenied.
#[tokio::test]
async fn unknown_role_is_a_typed_access_denied() {
    // The user's policy names the role and the role's trust names the user: pick the
    // role's name first, make the user, then the role.
    let role_name = unique("assume-target");
    let role_arn = format!(
        "arn:aws:iam::{}:role/{role_name}",
        env(test_support::env::ACCOUNT)
    );
    let (user_arn, akid, key) = user_allowed_to_assume_only(&role_arn).await;
    assert_eq!(create_role(&role_name, &[&user_arn]).await, role_arn);
    let sts = moto_client(&akid, key);
    // The restricted user can assume the one role it is allowed...
    let ok = sts
        .assume_role(AssumeRole::new(&role_arn, "allowed"))
        .await
        .unwrap();
    assert!(ok.assumed_role_user.arn.contains(":assumed-role/"));
    // ...and nothing else.
    let unknown = format!(
        "arn:aws:iam::{}:role/{}",
        env(test_support::env::ACCOUNT),
        unique("no-such-role")
    );
    let err = sts
        .assume_role(AssumeRole::new(&unknown, "denied"))
        .await
        .unwrap_err();
    let StsError::Service(service) = &err else {
        panic!("expected a service error, got {err}")
    };
    assert_eq!(service.kind, ServiceErrorKind::AccessDenied, "{err}");
    assert_eq!(service.status, 403);
    assert!(!err.is_transient());
    assert!(err.to_string().contains("trust policy"), "{err}");
}
