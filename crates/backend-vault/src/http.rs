//! Blocking HTTP for a synchronous [`RootKey`](sigv4_core::RootKey): a private thread owns a
//! current-thread tokio runtime and a reqwest client, and runs one request at a time for
//! whoever asks. The caller blocks on the reply, wherever it runs (inside another runtime
//! too, where reqwest's own blocking client would panic), just as it blocks on a PKCS#11 or
//! TPM call.

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
    reply: mpsc::Sender<Result<Reply, Failed>>,
}

/// Why a call got no whole reply.
enum Failed {
    /// The connection failed.
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
                while let Ok(mut job) = queue.recv() {
                    let result = runtime.block_on(send(&client, &mut job));
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
    ) -> Result<Reply, VaultError> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            method,
            url,
            token: token.cloned(),
            namespace: namespace.map(str::to_owned),
            body,
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

/// Sends `job`, handing its body over (no copy of it is left behind).
async fn send(client: &reqwest::Client, job: &mut Job) -> Result<Reply, Failed> {
    let mut request = client
        .request(job.method.clone(), &job.url)
        .header("X-Vault-Request", "true");
    if let Some(token) = &job.token {
        request = request.header("X-Vault-Token", token.expose_secret());
    }
    if let Some(namespace) = &job.namespace {
        request = request.header("X-Vault-Namespace", namespace);
    }
    if let Some(body) = &mut job.body {
        request = request
            .header("Content-Type", "application/json")
            .body(std::mem::take(&mut **body));
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
