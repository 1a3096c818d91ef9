//! keyhold against aws-sigv4 on generated requests: the same request, settings, time and
//! credentials must give the same `Authorization` header and the same presigned URL.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode as AwsTokenMode, SignableBody,
    SignableRequest as AwsRequest, SignatureLocation, SigningSettings as AwsSettings,
    UriPathNormalizationMode,
};
use proptest::prelude::*;
use sigv4_core::testing::{ArbRequest, arb_request, shapes};
use sigv4_core::{
    PathEncoding, SessionTokenMode, Signer, SigningParams, SigningSettings, SoftwareRootKey,
};

const AKID: &str = "AKIDEXAMPLE";
// The public example secret of AWS's documentation and test suite.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTw+/=";

#[derive(Clone, Debug)]
struct Options {
    normalize: bool,
    double: bool,
    content_sha256: bool,
    token: Option<bool>, // Some(signed?)
    presign: Option<u64>,
    unix_time: i64,
    service: &'static str,
    unsigned: bool,
}

fn options() -> impl Strategy<Value = Options> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::option::of(1u64..=604_800),
        // 2001 to 2096: date changes, leap days.
        1_000_000_000i64..4_000_000_000,
    )
        .prop_map(
            |(normalize, double, content_sha256, token, presign, unix_time)| Options {
                normalize,
                double,
                content_sha256,
                token,
                presign,
                unix_time,
                service: "service",
                unsigned: false,
            },
        )
}

fn keyhold(req: &ArbRequest, o: &Options) -> http::Request<Vec<u8>> {
    let mut settings = SigningSettings::default();
    settings.normalize_path = o.normalize;
    settings.path_encoding = if o.double {
        PathEncoding::Double
    } else {
        PathEncoding::Single
    };
    settings.content_sha256_header = o.content_sha256;
    if o.token == Some(false) {
        settings.session_token = SessionTokenMode::AppendedOnly;
    }
    let mut signer =
        Signer::new(AKID, SoftwareRootKey::from_secret_access_key(SECRET)).with_settings(settings);
    if o.token.is_some() {
        signer = signer.with_session_token(TOKEN);
    }
    let time = time::OffsetDateTime::from_unix_timestamp(o.unix_time).expect("time");
    let mut params = SigningParams::new("us-east-1", o.service).at(time);
    if o.unsigned {
        params = params.with_payload(sigv4_core::Payload::Unsigned);
    }
    let mut request = req.to_http();
    match o.presign {
        // aws-sigv4 hashes the body for presigned URLs too, and so does presign_request.
        Some(secs) => {
            signer
                .presign_request(&mut request, &params, Duration::from_secs(secs))
                .expect("keyhold presign");
        }
        None => {
            signer
                .sign_request(&mut request, &params)
                .expect("keyhold sign");
        }
    }
    request
}

fn aws(req: &ArbRequest, o: &Options) -> http::Request<Vec<u8>> {
    let mut settings = AwsSettings::default();
    settings.uri_path_normalization_mode = if o.normalize {
        UriPathNormalizationMode::Enabled
    } else {
        UriPathNormalizationMode::Disabled
    };
    settings.percent_encoding_mode = if o.double {
        PercentEncodingMode::Double
    } else {
        PercentEncodingMode::Single
    };
    if o.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if o.token == Some(false) {
        settings.session_token_mode = AwsTokenMode::Exclude;
    }
    if let Some(secs) = o.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs));
    }
    let token = o.token.map(|_| TOKEN.to_owned());
    let identity = aws_credential_types::Credentials::new(AKID, SECRET, token, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(o.service)
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(o.unix_time as u64))
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let mut request = req.to_http();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().expect("ASCII header")))
        .collect();
    let signable = AwsRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        match o.unsigned {
            true => SignableBody::UnsignedPayload,
            false => SignableBody::Bytes(request.body()),
        },
    )
    .expect("aws signable");
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .expect("aws sign")
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    request
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn same_authorization_and_presigned_url_as_aws_sigv4(req in arb_request(), o in options()) {
        let ours = keyhold(&req, &o);
        let theirs = aws(&req, &o);
        prop_assert_eq!(ours.uri().to_string(), theirs.uri().to_string());
        prop_assert_eq!(ours.headers(), theirs.headers());
        if o.presign.is_none() {
            prop_assert!(ours.headers().contains_key("authorization"));
        } else {
            prop_assert!(ours.uri().query().unwrap_or("").contains("X-Amz-Signature="));
        }
    }
}

/// The bench's request shapes ([`shapes`]) sign as aws-sigv4 signs them.
#[test]
fn every_bench_shape_signs_as_aws_sigv4() {
    for shape in shapes() {
        let o = Options {
            normalize: !shape.s3,
            double: !shape.s3,
            content_sha256: shape.s3,
            token: shape.session_token.then_some(true),
            presign: shape.presign_secs,
            unix_time: 1_440_938_160,
            service: shape.service,
            unsigned: shape.unsigned_payload,
        };
        let ours = keyhold(&shape.request, &o);
        let theirs = aws(&shape.request, &o);
        assert_eq!(ours.uri(), theirs.uri(), "{}", shape.name);
        assert_eq!(ours.headers(), theirs.headers(), "{}", shape.name);
        // And the shape's own signer (the bench's) agrees with the one built here.
        let mut again = shape.request.to_http();
        let time = time::OffsetDateTime::from_unix_timestamp(o.unix_time).expect("time");
        shape.sign(
            &shape.signer(sigv4_core::CachePolicy::PerScope),
            &mut again,
            time,
        );
        assert_eq!(again.uri(), ours.uri(), "{}", shape.name);
        assert_eq!(again.headers(), ours.headers(), "{}", shape.name);
    }
    assert!(shapes().len() >= 8);
}
