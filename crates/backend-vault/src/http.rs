//! Blocking HTTP for a synchronous [`RootKey`](sigv4_core::RootKey): a private thread owns a
//! current-thread tokio runtime and a reqwest client, and runs one request at a time for
//! whoever asks. The caller blocks on the reply, wherever it runs (inside another runtime
//! too, where reqwest's own blocking client would panic), just as it blocks on a PKCS#11 or
//! TPM call. A request that may be sent twice ([`Resend::Safe`]) is sent once more on a new
//! connection when its kept-alive one turns out dead before any reply arrived.

use std::sync::mpsc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sigv4_core::transport::{BodyBuffer, BodyError};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// A request for the thread.
struct Job {
    method: reqwest::Method,
    url: String,
    token: Option<SecretString>,
    namespace: Option<String>,
    body: Option<Zeroizing<Vec<u8>>>,
    resend: Resend,
    reply: mpsc::Sender<Result<Reply, Failed>>,
}

/// Whether a request may be sent a second time. A kept-alive connection that the server (or
/// a proxy) has closed since its last use fails the next request before any reply arrives;
/// the server may or may not have read that request, so only a request whose second sending
/// changes nothing is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Sending it twice leaves the server as sending it once: a read, or an HMAC (a pure
    /// function of its input). A token with a use limit (`num_uses`) spends one use on each
    /// sending the server read.
    Safe,
    /// The server acts on each sending (an import, a login): sent once, whatever happens.
    Never,
}

/// Why a call got no whole reply.
enum Failed {
    /// No reply came: the connection could not be made, or failed before the reply's head.
    Connection(reqwest::Error),
    /// The reply was cut off, or larger than [`MAX_BODY`].
    Body(BodyError, Option<reqwest::Error>),
}

/// The most of a reply read: Vault's replies are a few KiB.
const MAX_BODY: usize = 1 << 20;

/// A reply: its status and body (zeroized when dropped: it may hold a token).
pub(crate) struct Reply {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// The HTTP client. Dropping it ends the thread.
pub(crate) struct Http {
    jobs: mpsc::Sender<Job>,
    /// The server, for errors.
    addr: String,
}

impl Http {
    /// A client trusting the system's usual roots plus `ca_pem` (VAULT_CACERT), following no
    /// redirects, giving up on a call after `timeout`.
    pub fn new(addr: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Self, VaultError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .user_agent(concat!("keyhold/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| {
                    VaultError::Config("the CA file (VAULT_CACERT) holds no PEM certificate".into())
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| VaultError::Config(format!("the HTTP client could not be made: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VaultError::Config(format!("the HTTP runtime could not start: {e}")))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("keyhold-vault-http".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let result = runtime.block_on(send(&client, &job));
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| VaultError::Config(format!("the HTTP thread could not start: {e}")))?;
        Ok(Self {
            jobs,
            addr: addr.to_owned(),
        })
    }

    /// Sends one request and waits for its reply.
    pub fn call(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&SecretString>,
        namespace: Option<&str>,
        body: Option<Zeroizing<Vec<u8>>>,
        resend: Resend,
    ) -> Result<Reply, VaultError> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            method,
            url,
            token: token.cloned(),
            namespace: namespace.map(str::to_owned),
            body,
            resend,
            reply,
        };
        let what = format!("{method} {url}", method = job.method, url = job.url);
        let failed = |error| match error {
            Failed::Connection(source) | Failed::Body(_, Some(source)) => VaultError::Unreachable {
                addr: self.addr.clone(),
                source,
            },
            Failed::Body(why, None) => VaultError::Reply {
                what,
                why: why.to_string(),
            },
        };
        match self.jobs.send(job).ok().and_then(|()| answer.recv().ok()) {
            Some(result) => result.map_err(failed),
            // The thread ends only when `self` is dropped, or if it panicked.
            None => Err(VaultError::Config(
                "the HTTP thread of the Vault client has stopped".into(),
            )),
        }
    }
}

/// Sends `job`; once more if it may be resent and its connection died before any reply.
async fn send(client: &reqwest::Client, job: &Job) -> Result<Reply, Failed> {
    match attempt(client, job).await {
        Err(Failed::Connection(e)) if job.resend == Resend::Safe && died_unanswered(&e) => {
            tracing::debug!(error = %e, "the connection to Vault died before a reply; sending again");
            attempt(client, job).await
        }
        result => result,
    }
}

/// Whether a request failed after its connection was made and before a whole reply head came
/// back (in practice a kept-alive connection the server had closed or reset; also a reply
/// head hyper could not parse): not a connection that could not be made (a second try would
/// meet the same), nor a timeout (it has waited its whole time already).
fn died_unanswered(error: &reqwest::Error) -> bool {
    error.is_request() && !error.is_connect() && !error.is_timeout()
}

/// Sends `job` once. reqwest gets a copy of the body; the job's own is zeroized when the job
/// is dropped.
async fn attempt(client: &reqwest::Client, job: &Job) -> Result<Reply, Failed> {
    let mut request = client
        .request(job.method.clone(), &job.url)
        .header("X-Vault-Request", "true");
    if let Some(token) = &job.token {
        request = request.header("X-Vault-Token", token.expose_secret());
    }
    if let Some(namespace) = &job.namespace {
        request = request.header("X-Vault-Namespace", namespace);
    }
    if let Some(body) = &job.body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_vec());
    }
    let mut response = request.send().await.map_err(Failed::Connection)?;
    let status = response.status().as_u16();
    let mut body = BodyBuffer::new(MAX_BODY);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.push(&chunk).map_err(|e| Failed::Body(e, None))?,
            Ok(None) => break,
            Err(e) => return Err(Failed::Body(body.cut_off(), Some(e))),
        }
    }
    Ok(Reply {
        status,
        body: body.finish(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Reads one request (head and body) from `conn`; false at the end of the stream.
    fn read_request(conn: &mut impl BufRead) -> bool {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        conn.read_exact(&mut vec![0; length]).is_ok()
    }

    /// A server whose every connection answers one request, then reads a second and closes
    /// unanswered, as a kept-alive connection dies when the server restarts or a proxy drops
    /// it. It counts the requests answered and those left unanswered.
    fn dying_server() -> (String, Arc<[AtomicUsize; 2]>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let counted = counts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let mut conn = BufReader::new(conn.unwrap());
                    if read_request(&mut conn) {
                        counted[0].fetch_add(1, Ordering::SeqCst);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        conn.get_mut().write_all(ok).unwrap();
                    }
                    if read_request(&mut conn) {
                        counted[1].fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (addr, counts)
    }

    /// The second request goes out on the kept-alive connection, which dies unanswered: one
    /// that may be resent is sent again (with its body) on a new connection and answered; one
    /// that may not fails as unreachable, sent once.
    #[test]
    fn only_a_resendable_request_is_sent_again_after_its_connection_died() {
        for resend in [Resend::Safe, Resend::Never] {
            let (addr, counts) = dying_server();
            let http = Http::new(&addr, None, Duration::from_secs(10)).unwrap();
            let call = || {
                let body = Zeroizing::new(br#"{"input":"aGk="}"#.to_vec());
                let url = format!("{addr}/v1/transit/hmac/k/sha2-256");
                http.call(reqwest::Method::POST, url, None, None, Some(body), resend)
            };
            assert_eq!(call().map(|r| r.status).unwrap(), 200);
            let second = call();
            let [answered, unanswered] = &*counts;
            assert_eq!(
                unanswered.load(Ordering::SeqCst),
                1,
                "{resend:?}: not kept alive"
            );
            match resend {
                Resend::Safe => {
                    assert_eq!(second.map(|r| r.status).unwrap(), 200);
                    assert_eq!(answered.load(Ordering::SeqCst), 2);
                }
                Resend::Never => {
                    let error = second.map(|r| r.status).unwrap_err();
                    assert!(matches!(error, VaultError::Unreachable { .. }), "{error:?}");
                    assert_eq!(answered.load(Ordering::SeqCst), 1);
                }
            }
        }
    }
}
