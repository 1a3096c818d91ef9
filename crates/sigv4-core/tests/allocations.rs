//! Heap allocations per signature, counted by a counting global allocator, so that a
//! regression fails CI rather than a bench: for every request shape of the benches, one
//! `Signer::sign_signable` with a warm key cache allocates only the buffers of the
//! `SigningOutput` it hands back (the canonical request's text; where its secrets lie is
//! kept inline), nothing that is thrown away.

use sigv4_core::testing::shapes;
use sigv4_core::{CachePolicy, Payload, SignableRequest, SignatureLocation, SigningParams};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The heap buffers an output owns that a signature allocates: the canonical request's
/// text alone. The places of its sensitive values (a session token) are inline, a warm key
/// cache hands out the scope's names, and the payload hash is hashed into the text, not
/// kept apart.
const OWNED_BUFFERS: usize = 1;

#[test]
fn a_warm_signature_allocates_only_what_it_hands_back() {
    let time = time::macros::datetime!(2015-08-30 12:36:00 UTC);
    let mut report = Vec::new();
    for shape in shapes() {
        let signer = shape.signer(CachePolicy::PerScope);
        let http = shape.request.to_http();
        let (parts, body) = http.into_parts();
        let request = SignableRequest::from_http(&parts);
        let payload = match shape.unsigned_payload {
            true => Payload::Unsigned,
            false => Payload::Bytes(&body),
        };
        let params = SigningParams::new("us-east-1", shape.service).at(time);
        let location = match shape.presign_secs {
            Some(secs) => SignatureLocation::QueryParams {
                expires_in: std::time::Duration::from_secs(secs),
            },
            None => SignatureLocation::Headers,
        };
        let sign = || {
            signer
                .sign_signable(&request, payload, &params, location)
                .expect("sign")
        };
        drop(sign()); // warms the key cache
        let region = Region::new(GLOBAL);
        let out = sign();
        let stats = region.change();
        let expected = OWNED_BUFFERS;
        report.push(format!(
            "{}: {} allocations, {} reallocations; the output owns {expected}",
            shape.name, stats.allocations, stats.reallocations
        ));
        drop(out);
        assert!(
            stats.allocations == expected && stats.reallocations == 0,
            "{}: {} allocations and {} reallocations for {expected} buffers handed back\n{}",
            shape.name,
            stats.allocations,
            stats.reallocations,
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}
