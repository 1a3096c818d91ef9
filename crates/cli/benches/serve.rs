//! `keyhold serve` under load next to a bare hyper server on the same machine answering a
//! fixed body of the same size, in one run: group `serve`, rows `bare-hyper`, `keyhold-ecs`
//! (the ECS endpoint: token check, cached credentials, JSON) and `keyhold-imds` (the IMDSv2
//! credentials path: token lookup, the same JSON with three more fields).
//!
//! Each iteration is one request; the requests of a sample are spread over 16 client
//! threads, each on its own kept-alive connection, so the rows compare requests per second
//! at the same concurrency. keyhold's credentials come from IAM Roles Anywhere (a file key,
//! the local endpoint answering fixed credentials): once, at start; the load never reaches
//! it. Needs the Python virtualenv: `cargo xtask bench serve` sets it up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, scratch};
use test_support::rounds::{ROUNDS, plain, round, three_seconds};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench";
const CLIENTS: usize = 16;

/// Sends `request` on `connection` and reads the reply (which must be 200); its body.
fn exchange(connection: &mut BufReader<TcpStream>, request: &[u8]) -> Vec<u8> {
    connection.get_mut().write_all(request).expect("send");
    let mut line = String::new();
    connection.read_line(&mut line).expect("status");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut length = 0;
    loop {
        line.clear();
        connection.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    connection.read_exact(&mut body).expect("body");
    body
}

/// `iters` requests to `address`, spread over the client threads; the time they took.
fn load(address: &str, request: &Arc<Vec<u8>>, iters: u64) -> Duration {
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = (0..CLIENTS as u64)
        .map(|n| {
            let count = iters / CLIENTS as u64 + u64::from(n < iters % CLIENTS as u64);
            let mut connection = BufReader::new(TcpStream::connect(address).expect("connect"));
            connection.get_mut().set_nodelay(true).expect("nodelay");
            let (request, start) = (request.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..count {
                    std::hint::black_box(exchange(&mut connection, &request));
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for thread in threads {
        thread.join().expect("client");
    }
    began.elapsed()
}

fn get(address: &str, path: &str, header: (&str, &str)) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{}: {}\r\n\r\n",
        header.0, header.1
    )
    .into_bytes()
}

/// A hyper server on two worker threads (as `keyhold serve` runs) answering `body` as
/// JSON to every request.
fn bare_hyper(body: Vec<u8>) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            sender
                .send(listener.local_addr().expect("address"))
                .expect("send");
            let body = bytes::Bytes::from(body);
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let body = body.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let mut response =
                            http::Response::new(http_body_util::Full::new(body.clone()));
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    receiver.recv().expect("bare server address").to_string()
}

/// `keyhold serve` with Roles Anywhere credentials from `endpoint`; it, its address and the
/// ECS token it printed.
fn keyhold_serve(pki: &Pki, endpoint: &Endpoint) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .args(["serve", "--listen", "127.0.0.1:0", "--certificate"])
        .arg(pki.path("leaf.pem"))
        .arg("--private-key")
        .arg(pki.path("leaf.key"))
        .args([
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
            "--profile-arn",
            PROFILE_ARN,
        ])
        .args(["--role-arn", ROLE_ARN, "--endpoint-url", &endpoint.url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("keyhold serve");
    let (mut address, mut token) = (String::new(), String::new());
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        if let Some(v) = line.strip_prefix("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://") {
            address = v.trim_end_matches('/').to_owned();
        }
        if let Some(v) = line.strip_prefix("export AWS_CONTAINER_AUTHORIZATION_TOKEN=") {
            token = v.to_owned();
            break;
        }
    }
    assert!(
        !address.is_empty() && !token.is_empty(),
        "keyhold serve did not start"
    );
    (child, address, token)
}

fn benches(c: &mut Criterion) {
    let dir = scratch("bench-serve");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256", "--server"]);
    let endpoint = Endpoint::start_static(&pki, ROLE_ARN);
    let (mut server, address, token) = keyhold_serve(&pki, &endpoint);

    let ecs = Arc::new(get(&address, "/ecs/credentials", ("Authorization", &token)));
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {address}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n"
    );
    let mut connection = BufReader::new(TcpStream::connect(&address).expect("connect"));
    let imds_token = String::from_utf8(exchange(&mut connection, put.as_bytes())).expect("token");
    let imds = Arc::new(get(
        &address,
        &format!(
            "/latest/meta-data/iam/security-credentials/{}",
            ROLE_ARN.rsplit('/').next().unwrap_or("bench")
        ),
        ("X-aws-ec2-metadata-token", &imds_token),
    ));
    // The bare server answers as many bytes as keyhold's ECS reply.
    let mut probe = BufReader::new(TcpStream::connect(&address).expect("connect"));
    let body_length = exchange(&mut probe, &ecs).len();
    let bare = bare_hyper(vec![b'x'; body_length]);
    let bare_request = Arc::new(get(&bare, "/ecs/credentials", ("Authorization", &token)));

    for n in 0..ROUNDS {
        round(
            c,
            "serve",
            n,
            three_seconds,
            &mut [
                (
                    "bare-hyper",
                    &mut plain(&mut |b| b.iter_custom(|iters| load(&bare, &bare_request, iters))),
                ),
                (
                    "keyhold-ecs",
                    &mut plain(&mut |b| b.iter_custom(|iters| load(&address, &ecs, iters))),
                ),
                (
                    "keyhold-imds",
                    &mut plain(&mut |b| b.iter_custom(|iters| load(&address, &imds, iters))),
                ),
            ],
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

criterion_group!(serve, benches);
criterion_main!(serve);
