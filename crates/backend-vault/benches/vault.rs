//! The Vault backend against the OpenBao `cargo xtask bench vault` starts, in one run:
//!
//! - group `vault-date-key`: `bare-http` (the same HMAC request, `POST
//!   transit/hmac/NAME/sha2-256`, sent by a reqwest client on a current-thread runtime and its
//!   JSON reply's HMAC decoded, as a program that talks to Vault directly would) against
//!   `keyhold` (`VaultRootKey::date_key`: the same through backend-vault's HTTP thread, which
//!   lets a synchronous `RootKey` be called from inside an async runtime);
//!   Row `thread-hop` times that hop alone (a message to a parked thread and back).
//! - group `vault-warm`: a whole signature (GET, header signing) with the derived-key cache
//!   warm, `keyhold` against `software` (the same signer on a software key): the device is
//!   asked once per scope per day, so a warm signature never reaches Vault.

use std::hint::black_box;
use std::sync::Arc;

use backend_vault::{Auth, VaultClient, VaultConfig, VaultRootKey};
use base64::Engine as _;
use criterion::{BatchSize, Bencher, Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, Signer, SigningParams, SoftwareRootKey};
use test_support::rounds::{ROUNDS, plain, round, three_seconds};
use zeroize::Zeroizing;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through `cargo xtask bench vault`"))
}

fn request() -> http::Request<Vec<u8>> {
    http::Request::get("https://example.amazonaws.com/")
        .body(Vec::new())
        .expect("request")
}

fn benches(c: &mut Criterion) {
    let addr = var(test_support::env::VAULT_ADDR);
    let token = var(test_support::env::VAULT_ROOT_TOKEN);
    let client = Arc::new(
        VaultClient::connect(VaultConfig {
            addr: addr.clone(),
            namespace: None,
            ca_pem: None,
            allow_insecure_http: false,
            auth: Auth::Token(SecretString::from(token.clone())),
        })
        .expect("connect"),
    );
    let name = format!("bench-{}", std::process::id());
    let key = name.parse().expect("key name");
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(SECRET.as_bytes().to_vec()));
    backend_vault::import(&client, &key, &secret).expect("import");
    let root = VaultRootKey::open(client, key).expect("open");
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));

    // The bare floor: the same request from a plain reqwest client.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::new();
    let url = format!("{addr}/v1/transit/hmac/{name}/sha2-256");
    let body = format!(
        "{{\"input\":\"{}\"}}",
        base64::engine::general_purpose::STANDARD.encode(date.as_bytes())
    );
    let bare = || {
        runtime.block_on(async {
            let reply = http
                .post(&url)
                .header("X-Vault-Token", &token)
                .body(body.clone())
                .send()
                .await
                .expect("send");
            assert!(reply.status().is_success());
            // What any client does with the reply: the JSON's HMAC, decoded.
            let json: serde_json::Value =
                serde_json::from_slice(&reply.bytes().await.expect("body")).expect("JSON");
            let tag = json["data"]["hmac"].as_str().expect("hmac");
            let b64 = tag.rsplit(':').next().expect("vault:v1:...");
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64")
        })
    };
    assert_eq!(
        root.date_key(&date).expect("kDate").as_bytes(),
        SoftwareRootKey::from_secret_access_key(SECRET)
            .date_key(&date)
            .expect("software")
            .as_bytes()
    );

    // What the hop to backend-vault's HTTP thread costs alone: a message to a parked thread
    // and its answer back, as date_key sends each request and waits for its reply.
    let (to_echo, echo_in) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<()>>();
    std::thread::spawn(move || {
        while let Ok(back) = echo_in.recv() {
            let _ = back.send(());
        }
    });
    let hop = || {
        let (back, answer) = std::sync::mpsc::channel();
        to_echo.send(back).expect("echo thread");
        answer.recv().expect("echo")
    };

    let params = SigningParams::new("us-east-1", "service")
        .at(time::OffsetDateTime::from_unix_timestamp(1_440_938_160).expect("time"));
    let warm = Signer::new(ACCESS_KEY_ID, root.clone());
    let software = Signer::new(
        ACCESS_KEY_ID,
        SoftwareRootKey::from_secret_access_key(SECRET),
    );
    for signer in [&warm, &software] {
        signer.sign_request(&mut request(), &params).expect("sign");
    }
    let sign = |signer: &Signer, b: &mut Bencher<'_>| {
        b.iter_batched_ref(
            request,
            |r| signer.sign_request(r, &params).expect("sign"),
            BatchSize::SmallInput,
        )
    };

    for n in 0..ROUNDS {
        round(
            c,
            "vault-date-key",
            n,
            three_seconds,
            &mut [
                (
                    "bare-http",
                    &mut plain(&mut |b| b.iter(|| black_box(bare()))),
                ),
                (
                    "keyhold",
                    &mut plain(&mut |b| b.iter(|| root.date_key(black_box(&date)).expect("kDate"))),
                ),
                ("thread-hop", &mut plain(&mut |b| b.iter(hop))),
            ],
        );
        round(
            c,
            "vault-warm",
            n,
            three_seconds,
            &mut [
                ("software", &mut plain(&mut |b| sign(&software, b))),
                ("keyhold", &mut plain(&mut |b| sign(&warm, b))),
            ],
        );
    }
}

criterion_group!(vault, benches);
criterion_main!(vault);
