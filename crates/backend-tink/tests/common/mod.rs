//! Shared setup for the Tink tests: the local AWS (moto) that `cargo xtask` starts, KMS keys
//! of each test's own, and the SigV4 comparison against sigv4-core's software signer.
//!
//! Tests share one moto: every KMS key is created with a unique description and nothing
//! assumes an empty account. Credentials go to the SDK explicitly; `~/.aws` is never used.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use backend_tink::{AwsKmsAead, AwsKmsOptions, MasterKey};
use sigv4_core::{DateStamp, RootKey, RootSecret, Signer, SigningParams, SoftwareRootKey};
use zeroize::Zeroizing;

/// The secret access key of the AWS SigV4 test suite.
pub const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// `"AWS4" + SUITE_SECRET` as the zeroizing type every backend takes.
pub fn suite_secret() -> RootSecret {
    RootSecret::from_secret_access_key(Zeroizing::new(SUITE_SECRET.as_bytes().to_vec()))
}

/// Where moto is and who to be there.
pub struct Moto {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: String,
}

/// The moto `cargo xtask` started, or a panic saying how to run these tests.
pub fn moto() -> Moto {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: run the Tink KMS tests through `cargo xtask e2e` (or \
                 `cargo xtask with-services cargo nextest run -p backend-tink`), which starts \
                 moto_server and exports its endpoint and credentials"
            )
        })
    };
    Moto {
        endpoint: var(test_support::env::MOTO_ENDPOINT),
        access_key_id: var(test_support::env::AWS_ACCESS_KEY_ID),
        secret_access_key: var(test_support::env::AWS_SECRET_ACCESS_KEY),
        account: var(test_support::env::ACCOUNT),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (in this or another process) uses.
pub fn unique(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("keyhold-tink-{name}-{}-{n}-{nanos}", std::process::id())
}

impl Moto {
    /// The test user's credentials.
    pub fn credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "keyhold-tests",
        )
    }

    /// Our AWS KMS AEAD for `key_uri`, pointed at moto.
    pub fn aead(&self, key_uri: &str) -> AwsKmsAead {
        AwsKmsAead::new(
            key_uri,
            AwsKmsOptions::new()
                .endpoint_url(&self.endpoint)
                .credentials_provider(self.credentials()),
        )
        .expect("AWS KMS AEAD")
    }

    /// [`Moto::aead`] as a master key.
    pub fn master_key(&self, key_uri: &str) -> MasterKey {
        MasterKey::from(self.aead(key_uri))
    }

    /// Creates a symmetric KMS key of this test's own and returns its Tink URI.
    pub fn create_kms_key(&self, name: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let arn = runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(self.credentials())
                .endpoint_url(&self.endpoint)
                .load()
                .await;
            let client = aws_sdk_kms::Client::new(&config);
            let key = client
                .create_key()
                .description(unique(name))
                .send()
                .await
                .expect("KMS CreateKey on moto");
            key.key_metadata().unwrap().arn().unwrap().to_owned()
        });
        format!("aws-kms://{arn}")
    }

    /// A key URI in this account that names no key.
    pub fn missing_key_uri(&self) -> String {
        format!(
            "aws-kms://arn:aws:kms:us-east-1:{}:key/00000000-0000-4000-8000-{:012x}",
            self.account,
            std::process::id()
        )
    }
}

/// Checks that `key` derives the same kDate as the software key for `secret` on several
/// dates, and that a whole request signature agrees.
pub fn assert_signs_like_software(key: impl RootKey + 'static, secret: &str) {
    let software = SoftwareRootKey::from_secret_access_key(secret);
    for date in [
        time::macros::date!(2015 - 08 - 30),
        time::macros::date!(2024 - 02 - 29),
        time::macros::date!(2031 - 12 - 31),
    ] {
        let stamp = DateStamp::from_date(date);
        assert_eq!(
            key.date_key(&stamp).unwrap().as_bytes(),
            software.date_key(&stamp).unwrap().as_bytes(),
            "kDate differs on {stamp}"
        );
    }
    let sign = |signer: &Signer| {
        let mut request = http::Request::get(
            "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        )
        .body(Vec::new())
        .unwrap();
        let params = SigningParams::new("us-east-1", "sts")
            .at(time::macros::datetime!(2015-08-30 12:36:00 UTC));
        signer
            .sign_request(&mut request, &params)
            .unwrap()
            .signature()
            .to_string()
    };
    assert_eq!(
        sign(&Signer::new("AKIDEXAMPLE", key)),
        sign(&Signer::new("AKIDEXAMPLE", software))
    );
}

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A whole HTTP/1.1 response with `status`, extra `headers` (each ending in CRLF) and an
/// empty JSON body, for `test_support::http::answer_every_request`.
pub fn reply(status: u16, headers: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\n{headers}content-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{{}}"
    )
}
