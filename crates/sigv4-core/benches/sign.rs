//! Signing speed, keyhold against aws-sigv4 in the same run, plus the two floors: the
//! irreducible crypto of one signature ("limit") and plain SHA-256 over a 1 MiB body.
//!
//! Besides get-vanilla (with the cache off too) and a 1 MiB PUT, every request shape of
//! `sigv4_core::testing::shapes` is a group `shape-NAME` with three rows: keyhold (warm
//! cache), aws-sigv4 (its identity built once, outside the timed loop, as an SDK does), and
//! that shape's crypto floor: SHA-256 of the body when it is signed, SHA-256 of the
//! canonical request, one HMAC with a derived key.
//!
//! Every group runs in rounds (see `test_support::rounds`); `cargo xtask bench` prints the ratios the
//! README quotes.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use criterion::{BatchSize, Bencher, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sigv4_core::testing::{SHAPE_SESSION_TOKEN, Shape, shapes};
use sigv4_core::{CachePolicy, Signer, SigningParams, SoftwareRootKey};
use test_support::rounds::{Group, ROUNDS, plain, round, three_seconds};

const AKID: &str = "AKIDEXAMPLE";
// The public example secret of AWS's documentation and test suite.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const UNIX_TIME: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the suite's time

fn get_vanilla() -> http::Request<Vec<u8>> {
    http::Request::get("https://example.amazonaws.com/")
        .body(Vec::new())
        .expect("request")
}

fn put_1mib() -> http::Request<Vec<u8>> {
    let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    http::Request::put("https://bucket.s3.us-east-1.amazonaws.com/object")
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request")
}

fn signer(policy: CachePolicy) -> Signer {
    Signer::new(AKID, SoftwareRootKey::from_secret_access_key(SECRET)).with_cache_policy(policy)
}

// Both signers sign a request in place (`&mut`), run by `iter_batched_ref`: with
// `iter_batched` the harness also moved each ~250-byte request in and out of the timed
// routine, a cost of the harness, not of signing, that the limit row never paid.
fn keyhold_sign(signer: &Signer, service: &str, request: &mut http::Request<Vec<u8>>) {
    let time = time::OffsetDateTime::from_unix_timestamp(UNIX_TIME as i64).expect("time");
    let params = SigningParams::new("us-east-1", service).at(time);
    signer.sign_request(request, &params).expect("sign");
}

/// The identity aws-sigv4 signs with, built once per row (as an SDK does), not per call.
fn aws_identity() -> aws_smithy_runtime_api::client::identity::Identity {
    aws_credential_types::Credentials::new(AKID, SECRET, None, None, "bench").into()
}

fn aws_sign(
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    service: &'static str,
    request: &mut http::Request<Vec<u8>>,
) {
    aws_sign_with(identity, service, &AwsOptions::default(), request);
}

fn bench_get_vanilla(c: &mut Criterion) {
    let warm = signer(CachePolicy::PerScope);
    keyhold_sign(&warm, "service", &mut get_vanilla());
    let off = signer(CachePolicy::Off);
    let identity = aws_identity();
    let mut warm_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            get_vanilla,
            |r| keyhold_sign(&warm, "service", r),
            BatchSize::SmallInput,
        )
    };
    let mut off_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            get_vanilla,
            |r| keyhold_sign(&off, "service", r),
            BatchSize::SmallInput,
        )
    };
    let mut aws_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            get_vanilla,
            |r| aws_sign(&identity, "service", r),
            BatchSize::SmallInput,
        )
    };

    // The floor: hash a prebuilt canonical request, one HMAC over a prebuilt string to sign
    // with an already derived key. Inputs are the real ones of get-vanilla.
    let out = warm
        .sign_request(
            &mut get_vanilla(),
            &SigningParams::new("us-east-1", "service")
                .at(time::OffsetDateTime::from_unix_timestamp(UNIX_TIME as i64).expect("time")),
        )
        .expect("sign");
    let canonical = out.canonical_request().to_bytes();
    let string_to_sign = out.string_to_sign().to_string().into_bytes();
    let key = [7u8; 32];
    let mut limit_row = |b: &mut Bencher<'_>| {
        b.iter(|| {
            let digest = Sha256::digest(black_box(&canonical));
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("key");
            mac.update(black_box(&string_to_sign));
            (digest, mac.finalize().into_bytes())
        })
    };
    for n in 1..=ROUNDS {
        round(
            c,
            "get-vanilla",
            n,
            three_seconds,
            &mut [
                ("keyhold-warm", &mut plain(&mut warm_row)),
                ("keyhold-cache-off", &mut plain(&mut off_row)),
                ("aws-sigv4", &mut plain(&mut aws_row)),
                ("limit", &mut plain(&mut limit_row)),
            ],
        );
    }
}

/// How aws-sigv4 signs: as a shape says (S3 settings, presigned, unsigned payload).
#[derive(Default)]
struct AwsOptions {
    s3: bool,
    presign_secs: Option<u64>,
    unsigned_payload: bool,
}

/// aws-sigv4 signing `request` in place as `shape` says, with an identity built once.
fn aws_sign_shape(
    shape: &Shape,
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    request: &mut http::Request<Vec<u8>>,
) {
    let options = AwsOptions {
        s3: shape.s3,
        presign_secs: shape.presign_secs,
        unsigned_payload: shape.unsigned_payload,
    };
    aws_sign_with(identity, shape.service, &options, request);
}

fn aws_sign_with(
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    service: &str,
    shape: &AwsOptions,
    request: &mut http::Request<Vec<u8>>,
) {
    let mut settings = SigningSettings::default();
    if shape.s3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if let Some(secs) = shape.presign_secs {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs));
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(UNIX_TIME))
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii")));
    let body = match shape.unsigned_payload {
        true => SignableBody::UnsignedPayload,
        false => SignableBody::Bytes(request.body()),
    };
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers,
        body,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(request);
}

fn bench_shapes(c: &mut Criterion) {
    let time = time::OffsetDateTime::from_unix_timestamp(UNIX_TIME as i64).expect("time");
    for shape in shapes() {
        let fresh = || shape.request.to_http();
        let warm = shape.signer(CachePolicy::PerScope);
        let out = shape.sign(&warm, &mut fresh(), time);
        let token = shape.session_token.then(|| SHAPE_SESSION_TOKEN.to_owned());
        let identity =
            aws_credential_types::Credentials::new(AKID, SECRET, token, None, "bench").into();
        let mut warm_row = |b: &mut Bencher<'_>| {
            b.iter_batched_ref(
                fresh,
                |r| {
                    shape.sign(&warm, r, time);
                },
                BatchSize::SmallInput,
            )
        };
        let mut aws_row = |b: &mut Bencher<'_>| {
            b.iter_batched_ref(
                fresh,
                |r| aws_sign_shape(&shape, &identity, r),
                BatchSize::SmallInput,
            )
        };
        // The same signature from the request's parts: no `http::Request` touched.
        let (parts, body_bytes) = fresh().into_parts();
        let mut parts_row = |b: &mut Bencher<'_>| {
            b.iter(|| shape.sign_parts(&warm, black_box(&parts), &body_bytes, time))
        };
        // The floor, on this shape's real inputs.
        let body = (!shape.unsigned_payload).then(|| shape.request.body.clone());
        let canonical = out.canonical_request().to_bytes();
        let string_to_sign = out.string_to_sign().to_bytes();
        let mut limit_row = |b: &mut Bencher<'_>| {
            b.iter(|| limit_row_once(body.as_deref(), &canonical, &string_to_sign))
        };
        // The floor plus what any signer must do to put its result on an `http::Request`:
        // make the header values and insert them (headers), or parse the new path and query
        // into the URI (presigned). Inputs prebuilt from keyhold's output.
        let header_additions = match out.is_presigned() {
            true => Vec::new(),
            false => out.additions(),
        };
        let additions: Vec<(http::HeaderName, String)> = header_additions
            .iter()
            .map(|a| {
                (
                    http::HeaderName::from_static(a.name()),
                    a.value().to_owned(),
                )
            })
            .collect();
        let mut presigned = fresh();
        let presigned_target = shape.presign_secs.map(|_| {
            shape.sign(&warm, &mut presigned, time);
            let target = presigned.uri().path_and_query().expect("target");
            target.as_str().to_owned()
        });
        let mut http_floor_row = |b: &mut Bencher<'_>| {
            b.iter_batched_ref(
                fresh,
                |r| {
                    let crypto = limit_row_once(body.as_deref(), &canonical, &string_to_sign);
                    match &presigned_target {
                        Some(target) => {
                            let mut parts = r.uri().clone().into_parts();
                            let target = target.as_bytes().to_vec();
                            parts.path_and_query = Some(target.try_into().expect("target"));
                            *r.uri_mut() = http::Uri::from_parts(parts).expect("uri");
                        }
                        None => {
                            let headers = r.headers_mut();
                            headers.reserve(additions.len());
                            for (name, value) in &additions {
                                let value = http::HeaderValue::from_str(value).expect("value");
                                headers.insert(name.clone(), value);
                            }
                        }
                    }
                    crypto
                },
                BatchSize::SmallInput,
            )
        };
        let group = format!("shape-{}", shape.name);
        for n in 1..=ROUNDS {
            round(
                c,
                &group,
                n,
                short_rows,
                &mut [
                    ("keyhold-warm", &mut plain(&mut warm_row)),
                    ("keyhold-parts", &mut plain(&mut parts_row)),
                    ("aws-sigv4", &mut plain(&mut aws_row)),
                    ("limit", &mut plain(&mut limit_row)),
                    ("limit-with-http", &mut plain(&mut http_floor_row)),
                ],
            );
        }
    }
}

/// One round of a shape's crypto floor: SHA-256 of the body (when signed) and of the
/// canonical request, one HMAC with a fresh key.
fn limit_row_once(
    body: Option<&[u8]>,
    canonical: &[u8],
    string_to_sign: &[u8],
) -> (Option<[u8; 32]>, [u8; 32], [u8; 32]) {
    let body_hash = body.map(|body| Sha256::digest(black_box(body)).into());
    let digest = Sha256::digest(black_box(canonical)).into();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("key");
    mac.update(black_box(string_to_sign));
    (body_hash, digest, mac.finalize().into_bytes().into())
}

/// Shapes are many: half a second of warm-up, a second and a half per row and round.
fn short_rows(group: &mut Group<'_>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
}

fn bench_put_1mib(c: &mut Criterion) {
    let warm = signer(CachePolicy::PerScope);
    keyhold_sign(&warm, "s3", &mut put_1mib());
    let body = put_1mib().into_body();
    let identity = aws_identity();
    let mut warm_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            put_1mib,
            |r| keyhold_sign(&warm, "s3", r),
            BatchSize::LargeInput,
        )
    };
    let mut aws_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            put_1mib,
            |r| aws_sign(&identity, "s3", r),
            BatchSize::LargeInput,
        )
    };
    let mut sha_row = |b: &mut Bencher<'_>| b.iter(|| Sha256::digest(black_box(&body)));
    let configure = |group: &mut Group<'_>| {
        three_seconds(group);
        group.throughput(Throughput::Bytes(1 << 20));
        group.sample_size(30);
    };
    for n in 1..=ROUNDS {
        round(
            c,
            "put-1mib",
            n,
            configure,
            &mut [
                ("keyhold-warm", &mut plain(&mut warm_row)),
                ("aws-sigv4", &mut plain(&mut aws_row)),
                ("sha256-only", &mut plain(&mut sha_row)),
            ],
        );
    }
}

criterion_group!(benches, bench_get_vanilla, bench_shapes, bench_put_1mib);
criterion_main!(benches);
