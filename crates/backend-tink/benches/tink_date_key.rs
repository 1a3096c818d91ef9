//! What building Tink's MAC primitive per `kDate` costs (the root key keeps the `Send + Sync`
//! keyset handle, not the non-`Send` primitive):
//!
//! - `tink-date-key/keyhold`: `TinkRootKey::date_key` (build the primitive, one HMAC).
//! - `tink-date-key/software`: `SoftwareRootKey::date_key`, the baseline.
//!
//! Needs no services: the keyset is opened from cleartext (the `insecure-cleartext-keyset`
//! feature, which the crate's tests and benches always have). KMS is only involved when a
//! keyset is opened, never per `kDate`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use backend_tink::{TinkRootKey, insecure_cleartext_keyset};
use criterion::{Criterion, criterion_group, criterion_main};
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use zeroize::Zeroizing;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn date_key(c: &mut Criterion) {
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(SECRET.as_bytes().to_vec()));
    let tink = TinkRootKey::insecure_open_cleartext(insecure_cleartext_keyset(&secret).as_bytes())
        .unwrap();
    let software = SoftwareRootKey::new(secret);
    let stamp = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    assert_eq!(
        tink.date_key(&stamp).unwrap().as_bytes(),
        software.date_key(&stamp).unwrap().as_bytes()
    );

    let mut group = c.benchmark_group("tink-date-key");
    group.bench_function("keyhold", |b| {
        b.iter(|| tink.date_key(black_box(&stamp)).unwrap())
    });
    group.bench_function("software", |b| {
        b.iter(|| software.date_key(black_box(&stamp)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, date_key);
criterion_main!(benches);
