//! Signing speed, keyhold against aws-sigv4 in the same run, plus the two floors: the
//! irreducible crypto of one signature ("limit") and plain SHA-256 over a 1 MiB body.
//!
//! Every group runs in rounds (see `rounds`); `cargo xtask bench` prints the ratios the
//! README quotes.

mod rounds;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use criterion::{BatchSize, Bencher, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rounds::{Group, ROUNDS, plain, round, three_seconds};
use sha2::{Digest, Sha256};
use sigv4_core::{CachePolicy, Signer, SigningParams, SoftwareRootKey};

const AKID: &str = "AKIDEXAMPLE";
// The public example secret of AWS's documentation and test suite.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const UNIX_TIME: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the suite's time

fn get_vanilla() -> http::Request<Vec<u8>> {
    http::Request::get("https://example.amazonaws.com/")
        .body(Vec::new())
        .expect("request")
}

fn sts_post() -> http::Request<Vec<u8>> {
    http::Request::post("https://sts.us-east-1.amazonaws.com/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("user-agent", "keyhold-bench")
        .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
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

fn aws_sign(service: &str, request: &mut http::Request<Vec<u8>>) {
    let identity = aws_credential_types::Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(UNIX_TIME))
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii")));
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers,
        SignableBody::Bytes(request.body()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(request);
}

fn bench_get_vanilla(c: &mut Criterion) {
    let warm = signer(CachePolicy::PerScope);
    keyhold_sign(&warm, "service", &mut get_vanilla());
    let off = signer(CachePolicy::Off);
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
            |r| aws_sign("service", r),
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
    let canonical = out.canonical_request().as_bytes().to_vec();
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

fn bench_sts_post(c: &mut Criterion) {
    let warm = signer(CachePolicy::PerScope);
    keyhold_sign(&warm, "sts", &mut sts_post());
    let mut warm_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            sts_post,
            |r| keyhold_sign(&warm, "sts", r),
            BatchSize::SmallInput,
        )
    };
    let mut aws_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(sts_post, |r| aws_sign("sts", r), BatchSize::SmallInput)
    };
    for n in 1..=ROUNDS {
        round(
            c,
            "sts-post",
            n,
            three_seconds,
            &mut [
                ("keyhold-warm", &mut plain(&mut warm_row)),
                ("aws-sigv4", &mut plain(&mut aws_row)),
            ],
        );
    }
}

fn bench_put_1mib(c: &mut Criterion) {
    let warm = signer(CachePolicy::PerScope);
    keyhold_sign(&warm, "s3", &mut put_1mib());
    let body = put_1mib().into_body();
    let mut warm_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            put_1mib,
            |r| keyhold_sign(&warm, "s3", r),
            BatchSize::LargeInput,
        )
    };
    let mut aws_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(put_1mib, |r| aws_sign("s3", r), BatchSize::LargeInput)
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

criterion_group!(benches, bench_get_vanilla, bench_sts_post, bench_put_1mib);
criterion_main!(benches);
