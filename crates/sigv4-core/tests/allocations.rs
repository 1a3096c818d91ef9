//! Heap allocations per signature, counted by a counting global allocator, so that a
//! regression fails CI rather than a bench: for every request shape of the benches, one
//! `Signer::sign_signable` with a warm key cache allocates only the buffers of the
//! [`SigningOutput`] it hands back (the canonical request's parts and the scope's names),
//! nothing that is thrown away.

use sigv4_core::testing::shapes;
use sigv4_core::{
    CachePolicy, Payload, SignableRequest, SignatureLocation, SigningOutput, SigningParams,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The heap buffers an output owns that a signature allocates: the canonical request's
/// URI, query (when not empty), headers, signed header names and payload hash (unless a
/// literal), and the places of sensitive values (when there are any). A standard method
/// is a static name; the scope's names come from the key cache.
fn owned_buffers(out: &SigningOutput, literal_payload_hash: bool, sensitive: usize) -> usize {
    let uri_headers_signed_names = 3;
    let query = usize::from(!out.canonical_request().canonical_query().is_empty());
    let payload_hash = usize::from(!literal_payload_hash);
    uri_headers_signed_names + query + payload_hash + sensitive
}

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
        let literal = shape.unsigned_payload || body.is_empty();
        let sensitive = usize::from(shape.session_token);
        let expected = owned_buffers(&out, literal, sensitive);
        report.push(format!(
            "{}: {} allocations, {} reallocations; the output owns {expected}",
            shape.name, stats.allocations, stats.reallocations
        ));
        drop(out);
        assert!(
            stats.allocations <= expected && stats.reallocations == 0,
            "{}: {} allocations and {} reallocations for {expected} buffers handed back\n{}",
            shape.name,
            stats.allocations,
            stats.reallocations,
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}
