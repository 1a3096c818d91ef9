//! [`VaultClient`]: the server, its namespace, and a token (given, or from an AppRole login),
//! renewed ahead of its expiry for long-running use; and the few transit and token API calls
//! keyhold makes.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::KeyPath;
use crate::error::{VaultError, server_message};
use crate::http::{Http, Reply, Resend};
use crate::reply::{Data, hmac_of_reply, parse};

/// How keyhold logs in to Vault.
pub enum Auth {
    /// A token (from `VAULT_TOKEN` or a token file such as `~/.vault-token`).
    Token(SecretString),
    /// AppRole: the role id and the secret id (from a file), at an auth mount (`approle`).
    AppRole {
        /// The auth method's mount path.
        mount: String,
        /// The role id (not a secret on its own).
        role_id: String,
        /// The secret id.
        secret_id: SecretString,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(** redacted **)"),
            Self::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Where the server is and how to log in.
#[derive(Debug)]
pub struct VaultConfig {
    /// `https://vault.example.com:8200` (`VAULT_ADDR`).
    pub addr: String,
    /// Vault Enterprise / OpenBao namespace (`VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// Extra CA certificates, PEM (the file `VAULT_CACERT` names).
    pub ca_pem: Option<Vec<u8>>,
    /// Plain http to another machine is refused unless this is set (loopback always works).
    pub allow_insecure_http: bool,
    /// How to log in.
    pub auth: Auth,
}

/// The token in use and when to renew it.
struct Session {
    token: SecretString,
    /// Renew (or log in again) after this; `None`: the token does not expire.
    renew_after: Option<Instant>,
    renewable: bool,
}

/// A logged-in client.
pub struct VaultClient {
    http: Http,
    addr: String,
    namespace: Option<String>,
    auth: Auth,
    session: Mutex<Session>,
    /// The stop line of the renewal thread ([`VaultClient::keep_renewed`]), once it runs:
    /// dropping the client drops it, which wakes and ends the thread.
    renewal: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.addr)
            .field("namespace", &self.namespace)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// What a token is (`auth/token/lookup-self`).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Seconds left (0: no expiry).
    pub ttl: u64,
    /// Its policies.
    pub policies: Vec<String>,
    /// Whether it can be renewed.
    pub renewable: bool,
}

/// What the key is (`MOUNT/keys/NAME`, when the token may read it).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyInfo {
    /// `hmac` for keyhold's keys.
    #[serde(rename = "type")]
    pub key_type: String,
    /// Whether the key may be exported.
    #[serde(default)]
    pub exportable: bool,
    /// Whether a plaintext backup may be taken.
    #[serde(default)]
    pub allow_plaintext_backup: bool,
    /// Whether it was imported.
    #[serde(default)]
    pub imported_key: bool,
}

impl VaultClient {
    /// Checks the address, logs in (AppRole), and learns the token's lifetime.
    pub fn connect(config: VaultConfig) -> Result<Self, VaultError> {
        let addr = config.addr.trim_end_matches('/').to_owned();
        let uri: http::Uri = addr
            .parse()
            .map_err(|_| VaultError::Config(format!("the Vault address {addr:?} is not a URL")))?;
        sigv4_core::transport::check_scheme(&uri, config.allow_insecure_http)
            .map_err(|why| VaultError::Config(format!("the Vault address {addr}: {why}")))?;
        let http = Http::new(&addr, config.ca_pem.as_deref(), Duration::from_secs(30))?;
        let token = match &config.auth {
            Auth::Token(token) => token.clone(),
            Auth::AppRole { .. } => SecretString::from(String::new()),
        };
        let client = Self {
            http,
            addr,
            namespace: config.namespace.filter(|n| !n.is_empty()),
            auth: config.auth,
            session: Mutex::new(Session {
                token,
                renew_after: None,
                renewable: false,
            }),
            renewal: std::sync::Mutex::new(None),
        };
        match &client.auth {
            Auth::AppRole { .. } => client.log_in()?,
            Auth::Token(_) => {
                let info = client.lookup_self()?;
                client.schedule(info.ttl, info.renewable);
            }
        }
        Ok(client)
    }

    /// Renews the token (or logs in again) in the background, two thirds into each lease,
    /// for as long as the client is in use: a signer asks Vault for kDate once a day, far
    /// less often than tokens expire. Idempotent; the thread ends soon after the client is
    /// dropped.
    pub fn keep_renewed(self: &std::sync::Arc<Self>) {
        use std::sync::mpsc::{RecvTimeoutError, channel};
        let mut renewal = self.renewal.lock().unwrap_or_else(|e| e.into_inner());
        if renewal.is_some() {
            return;
        }
        let (stop, stopped) = channel::<()>();
        let client = std::sync::Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("keyhold-vault-renew".into())
            .spawn(move || {
                loop {
                    let Some(wait) = client.upgrade().map(|c| c.until_renewal()) else {
                        return;
                    };
                    // Nothing is ever sent: the wait ends at its time, or at once when the
                    // client (holding the sender) is dropped.
                    if stopped.recv_timeout(wait) == Err(RecvTimeoutError::Disconnected) {
                        return;
                    }
                    let Some(client) = client.upgrade() else {
                        return;
                    };
                    if let Err(e) = client.refresh_token() {
                        tracing::warn!(error = %e, "renewing the Vault token failed; trying again at the next use");
                    }
                }
            });
        if spawned.is_ok() {
            *renewal = Some(stop);
        }
    }

    /// How long until the token is due for renewal (a minute when it never expires).
    fn until_renewal(&self) -> Duration {
        self.session()
            .renew_after
            .map_or(Duration::from_secs(60), |at| {
                at.saturating_duration_since(Instant::now())
            })
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Renews two thirds of the way through the token's lifetime.
    fn schedule(&self, ttl: u64, renewable: bool) {
        let mut session = self.session();
        session.renewable = renewable;
        session.renew_after = (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl * 2 / 3));
    }

    /// AppRole login: a new token.
    fn log_in(&self) -> Result<(), VaultError> {
        let Auth::AppRole {
            mount,
            role_id,
            secret_id,
        } = &self.auth
        else {
            return Ok(());
        };
        #[derive(Deserialize)]
        struct Login {
            auth: LoginAuth,
        }
        #[derive(Deserialize)]
        struct LoginAuth {
            client_token: String,
            #[serde(default)]
            lease_duration: u64,
            #[serde(default)]
            renewable: bool,
        }
        let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose_secret()});
        let what = format!("the AppRole login at auth/{mount}/login");
        // Never resent: each login makes a new token, and may use up one of a secret id's
        // limited uses.
        let path = format!("auth/{mount}/login");
        let reply = self.send(Method::POST, &path, None, Some(&body), Resend::Never)?;
        match reply.status {
            200 => {}
            400 | 403 => {
                return Err(VaultError::Server {
                    what,
                    status: reply.status,
                    message: format!(
                        "{} (check the role id and the secret id file)",
                        server_message(&reply.body)
                    ),
                });
            }
            _ => return Err(self.unexpected(&what, &reply)),
        }
        let login: Login = parse(&what, &reply)?;
        {
            let mut session = self.session();
            session.token = SecretString::from(login.auth.client_token);
        }
        self.schedule(login.auth.lease_duration, login.auth.renewable);
        tracing::info!(
            lease_secs = login.auth.lease_duration,
            "logged in to Vault with AppRole"
        );
        Ok(())
    }

    /// Renews the token (or logs in again) if it is due.
    fn refresh_token(&self) -> Result<(), VaultError> {
        let (due, renewable) = {
            let session = self.session();
            (
                session.renew_after.is_some_and(|at| Instant::now() >= at),
                session.renewable,
            )
        };
        if !due {
            return Ok(());
        }
        if matches!(self.auth, Auth::AppRole { .. }) && !renewable {
            return self.log_in();
        }
        #[derive(Deserialize)]
        struct Renewed {
            auth: RenewedAuth,
        }
        #[derive(Deserialize)]
        struct RenewedAuth {
            #[serde(default)]
            lease_duration: u64,
            #[serde(default)]
            renewable: bool,
        }
        // Resent: a second renewal sets the lease the first set (the token's TTL from now).
        let reply = self.authed(
            Method::POST,
            "auth/token/renew-self",
            Some(&serde_json::json!({})),
            Resend::Safe,
        )?;
        match reply.status {
            200 => {
                let renewed: Renewed = parse("renewing the token", &reply)?;
                self.schedule(renewed.auth.lease_duration, renewed.auth.renewable);
                tracing::info!(
                    lease_secs = renewed.auth.lease_duration,
                    "renewed the Vault token"
                );
                Ok(())
            }
            // Past its maximum TTL, or not renewable after all: AppRole logs in again; a
            // given token is used until Vault refuses it.
            _ if matches!(self.auth, Auth::AppRole { .. }) => self.log_in(),
            _ => {
                self.schedule(0, false);
                Ok(())
            }
        }
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&serde_json::Value>,
        resend: Resend,
    ) -> Result<Reply, VaultError> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(Zeroizing::new))
            .transpose()
            .map_err(|e| VaultError::Config(format!("a request could not be written: {e}")))?;
        let url = format!("{}/v1/{path}", self.addr);
        let namespace = self.namespace.as_deref();
        self.http.call(method, url, token, namespace, body, resend)
    }

    /// A call with the current token.
    fn authed(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        resend: Resend,
    ) -> Result<Reply, VaultError> {
        let token = self.session().token.clone();
        let reply = self.send(method, path, Some(&token), body, resend)?;
        if reply.status == 503 && server_message(&reply.body).contains("sealed") {
            return Err(VaultError::Sealed {
                addr: self.addr.clone(),
            });
        }
        Ok(reply)
    }

    /// A call with the current token, renewed first if due. A 403 is settled here, with one
    /// token lookup: [`VaultError::Denied`] if the token is valid (it lacks the capability
    /// `method` needs on `path`), else [`VaultError::TokenInvalid`]; but an AppRole token
    /// Vault no longer honours is first replaced by a new login, once, and the call made again.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        resend: Resend,
    ) -> Result<Reply, VaultError> {
        self.refresh_token()?;
        let mut may_log_in = matches!(self.auth, Auth::AppRole { .. });
        loop {
            let reply = self.authed(method.clone(), path, body, resend)?;
            if reply.status != 403 {
                return Ok(reply);
            }
            let lookup = self.authed(Method::GET, "auth/token/lookup-self", None, Resend::Safe)?;
            if lookup.status == 200 {
                // Vault asks for `read` on a GET, and `update` on a POST to a path that does
                // not check whether it exists (none of keyhold's does).
                let capability = if method == Method::GET {
                    "read"
                } else {
                    "update"
                };
                return Err(VaultError::Denied {
                    capability,
                    path: path.to_owned(),
                });
            }
            if !may_log_in {
                return Err(VaultError::TokenInvalid);
            }
            self.log_in()?;
            may_log_in = false;
        }
    }

    fn unexpected(&self, what: &str, reply: &Reply) -> VaultError {
        VaultError::Server {
            what: what.to_owned(),
            status: reply.status,
            message: server_message(&reply.body),
        }
    }

    /// The token's remaining lifetime and policies.
    pub fn lookup_self(&self) -> Result<TokenInfo, VaultError> {
        #[derive(Deserialize)]
        struct Lookup {
            #[serde(default)]
            ttl: u64,
            #[serde(default)]
            policies: Vec<String>,
            #[serde(default)]
            renewable: bool,
        }
        let reply = self.authed(Method::GET, "auth/token/lookup-self", None, Resend::Safe)?;
        match reply.status {
            200 => {
                let Data { data }: Data<Lookup> = parse("the token lookup", &reply)?;
                Ok(TokenInfo {
                    ttl: data.ttl,
                    policies: data.policies,
                    renewable: data.renewable,
                })
            }
            403 => Err(VaultError::TokenInvalid),
            _ => Err(self.unexpected("the token lookup", &reply)),
        }
    }

    /// The token's capabilities on `path` (`sys/capabilities-self`); empty if it may not ask.
    pub fn capabilities(&self, path: &str) -> Result<Vec<String>, VaultError> {
        #[derive(Deserialize)]
        struct Capabilities {
            #[serde(default)]
            capabilities: Vec<String>,
        }
        let body = serde_json::json!({"paths": [path]});
        // Resent: a query changes nothing.
        let query = self.call(
            Method::POST,
            "sys/capabilities-self",
            Some(&body),
            Resend::Safe,
        );
        let reply = match query {
            Err(VaultError::Denied { .. }) => return Ok(Vec::new()),
            reply => reply?,
        };
        match reply.status {
            200 => parse::<Capabilities>("the capabilities query", &reply).map(|c| c.capabilities),
            _ => Err(self.unexpected("the capabilities query", &reply)),
        }
    }

    /// HMAC-SHA256 of `input` with the key: the 32 bytes.
    pub fn hmac(&self, key: &KeyPath, input: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let path = format!("{}/hmac/{}/sha2-256", key.mount, key.name);
        let body = serde_json::json!({"input": BASE64.encode(input)});
        // Resent: an HMAC is a function of its input and changes nothing.
        let reply = self.call(Method::POST, &path, Some(&body), Resend::Safe)?;
        match reply.status {
            200 => {}
            400 if server_message(&reply.body).contains("not found") => {
                return Err(VaultError::NotFound {
                    what: format!(
                        "no transit key {key}: import one (keyhold import --key vault:{key})"
                    ),
                });
            }
            404 => {
                return Err(VaultError::NotFound {
                    what: format!(
                        "no transit engine at {}/: check the mount of --key vault:{key}",
                        key.mount
                    ),
                });
            }
            _ => return Err(self.unexpected("the HMAC call", &reply)),
        }
        hmac_of_reply(&reply.body)
    }

    /// The key's settings, `None` if there is no such key.
    pub fn key_info(&self, key: &KeyPath) -> Result<Option<KeyInfo>, VaultError> {
        let path = format!("{}/keys/{}", key.mount, key.name);
        let reply = self.call(Method::GET, &path, None, Resend::Safe)?;
        match reply.status {
            200 => parse::<Data<KeyInfo>>("reading the key", &reply).map(|d| Some(d.data)),
            404 => Ok(None),
            _ => Err(self.unexpected("reading the key", &reply)),
        }
    }

    /// The transit engine's wrapping key (RSA-4096), PEM.
    pub fn wrapping_key(&self, mount: &str) -> Result<String, VaultError> {
        #[derive(Deserialize)]
        struct Wrapping {
            public_key: String,
        }
        let path = format!("{mount}/wrapping_key");
        let reply = self.call(Method::GET, &path, None, Resend::Safe)?;
        match reply.status {
            200 => parse::<Data<Wrapping>>("the wrapping key", &reply).map(|d| d.data.public_key),
            404 => Err(VaultError::NotFound {
                what: format!(
                    "no transit engine at {mount}/: enable one (bao secrets enable transit)"
                ),
            }),
            _ => Err(self.unexpected("reading the wrapping key", &reply)),
        }
    }

    /// Imports `ciphertext` (the wrapped key material) as a non-exportable HMAC key.
    pub fn import(&self, key: &KeyPath, ciphertext: &str) -> Result<(), VaultError> {
        let path = format!("{}/keys/{}/import", key.mount, key.name);
        let body = serde_json::json!({
            "type": "hmac",
            "ciphertext": ciphertext,
            "hash_function": "SHA256",
            "exportable": false,
            "allow_plaintext_backup": false,
        });
        // Never resent: a second import of a key the first created fails as "exists already".
        let reply = self.call(Method::POST, &path, Some(&body), Resend::Never)?;
        match reply.status {
            200 | 204 => Ok(()),
            _ if server_message(&reply.body).contains("existing key") => {
                Err(VaultError::KeyExists {
                    key: key.to_string(),
                })
            }
            _ => Err(self.unexpected("the import", &reply)),
        }
    }
}
