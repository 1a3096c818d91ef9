//! Shared by the sts-client tests: the moto environment `cargo xtask e2e` sets, signed IAM
//! calls to moto (to make extra users). The local HTTP server with canned replies is
//! `test_support::local_server`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sigv4_core::{RootKey, Signer, SigningParams, SoftwareRootKey};
use sts_client::StsClient;

/// An environment variable `cargo xtask e2e` sets; a missing one fails the test.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through `cargo xtask e2e`, which starts moto_server"
        )
    })
}

/// The moto endpoint (every service, region us-east-1).
pub fn moto() -> String {
    env(crate::env::MOTO_ENDPOINT)
}

/// The test user's key, in software.
pub fn user_key() -> (String, Arc<dyn RootKey>) {
    let secret = env(crate::env::AWS_SECRET_ACCESS_KEY);
    (
        env(crate::env::AWS_ACCESS_KEY_ID),
        Arc::new(SoftwareRootKey::from_secret_access_key(&secret)),
    )
}

/// An STS client on moto signing as `access_key_id` with `key`.
pub fn moto_client(access_key_id: &str, key: Arc<dyn RootKey>) -> StsClient {
    StsClient::builder(access_key_id, key)
        .region("us-east-1")
        .endpoint_url(moto())
        .call_timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A name no other test (or run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// One IAM Query API call to moto signed as the allow-all test user; returns the XML reply.
pub async fn iam_call(params: &[(&str, &str)]) -> String {
    let (akid, key) = user_key();
    let signer = Signer::from_arc(akid, key);
    let mut body = String::from("Version=2010-05-08");
    for (name, value) in params {
        body.push('&');
        body.push_str(name);
        body.push('=');
        body.push_str(&encode(value));
    }
    let mut request = http::Request::post(moto())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body.into_bytes())
        .unwrap();
    signer
        .sign_request(&mut request, &SigningParams::new("us-east-1", "iam"))
        .unwrap();
    let request = reqwest::Request::try_from(request.map(reqwest::Body::from)).unwrap();
    let response = reqwest::Client::new().execute(request).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "IAM {params:?}: HTTP {status}: {text}");
    text
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else if b == b' ' {
                "+".to_owned()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The text of the first `<name>` element in an XML document.
pub fn xml_text(xml: &str, name: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == name => {
                inside = true;
            }
            quick_xml::events::Event::Text(t) if inside => return t.into_inner().into_owned(),
            quick_xml::events::Event::Eof => panic!("no <{name}> in {xml}"),
            _ => {}
        }
    }
}

/// Makes an IAM user whose only permission is `sts:AssumeRole` on `role_arn`, and returns
/// its ARN, access key id and (software) key.
pub async fn user_allowed_to_assume_only(role_arn: &str) -> (String, String, Arc<dyn RootKey>) {
    let name = unique("assume-only");
    let reply = iam_call(&[("Action", "CreateUser"), ("UserName", &name)]).await;
    let arn = xml_text(&reply, "Arn");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#
    );
    iam_call(&[
        ("Action", "PutUserPolicy"),
        ("UserName", &name),
        ("PolicyName", "assume-one-role"),
        ("PolicyDocument", &policy),
    ])
    .await;
    let reply = iam_call(&[("Action", "CreateAccessKey"), ("UserName", &name)]).await;
    let secret = xml_text(&reply, "SecretAccessKey");
    (
        arn,
        xml_text(&reply, "AccessKeyId"),
        Arc::new(SoftwareRootKey::from_secret_access_key(&secret)),
    )
}

/// Makes a role (allow-all permissions) that the test user and `also_trusted` may assume,
/// and returns its ARN.
///
/// Not `KEYHOLD_TEST_ROLE_ARN`: that role trusts `arn:aws:iam::ACCOUNT:root`, and moto
/// matches trust-policy principals exactly, so it refuses the test user. A role naming the
/// user's ARN as principal is one moto lets the user assume (and checks).
pub async fn assumable_role(also_trusted: &[&str]) -> String {
    create_role(&unique("keyhold-role"), also_trusted).await
}

/// Makes role `name` (allow-all permissions) trusting the test user and `also_trusted`.
pub async fn create_role(name: &str, also_trusted: &[&str]) -> String {
    let mut principals = vec![format!("\"{}\"", env(crate::env::USER_ARN))];
    principals.extend(also_trusted.iter().map(|p| format!("\"{p}\"")));
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":[{}]}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#,
        principals.join(",")
    );
    let reply = iam_call(&[
        ("Action", "CreateRole"),
        ("RoleName", name),
        ("AssumeRolePolicyDocument", &trust),
    ])
    .await;
    iam_call(&[
        ("Action", "PutRolePolicy"),
        ("RoleName", name),
        ("PolicyName", "all"),
        (
            "PolicyDocument",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ),
    ])
    .await;
    xml_text(&reply, "Arn")
}
