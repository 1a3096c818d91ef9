//! [`Pkcs11RootKey`]: the RootKey seam on a PKCS#11 token, with a session pool that heals.
//!
//! Each `date_key` borrows a session from the pool (opening one if all are busy, so concurrent
//! signers never wait on each other's session), runs one `CKM_SHA256_HMAC`, and returns it.
//! Login state belongs to the application, not the session, so one `C_Login` covers every
//! session of the token.
//!
//! When the token says the ground moved, the key repairs itself and retries, and the caller
//! sees no error if the retry works:
//!
//! | the token says                                  | what happened               | repair |
//! |-------------------------------------------------|-----------------------------|--------|
//! | `CKR_USER_NOT_LOGGED_IN`                        | someone logged out          | log in, find the key again |
//! | `CKR_KEY_HANDLE_INVALID`, `CKR_OBJECT_HANDLE_INVALID` | handles were renumbered | log in, find the key again |
//! | `CKR_TOKEN_NOT_PRESENT`, `CKR_DEVICE_REMOVED`, `CKR_SLOT_ID_INVALID`, `CKR_TOKEN_NOT_RECOGNIZED` | the token was pulled (and maybe re-inserted elsewhere) | drop the pool, find the token again by label and serial, then as above |
//! | `CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED` | sessions were closed (a re-insert or library reset renumbers slots too) | as for a pulled token |
//! | `CKR_CRYPTOKI_NOT_INITIALIZED`                  | someone finalised the library | initialise it, then as for a pulled token |
//!
//! Sessions whose handles went stale are forgotten, never closed: after a library reset their
//! numbers may already belong to someone else's new sessions.
//!
//! The PIN is kept in memory (zeroized on drop) for as long as the key lives, because logging
//! in again after a logout or re-insert needs it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use secrecy::SecretString;
use sigv4_core::{DateKey, DateStamp, KeyError, RootKey};
use zeroize::Zeroizing;

use crate::Error;
use crate::error::{Step, rv};
use crate::module::Module;
use crate::objects::{self, FoundKey};
use crate::token::{self, Token};
use crate::uri::{ObjectType, Pkcs11Uri};

/// Attempts per `date_key`: the first, plus a repair and retry for each of up to three
/// faults in a row (a logout during a repair, say). More means the token keeps changing.
const ATTEMPTS: usize = 4;

/// How a key is opened. The default: PIN from the URI, access key id from the token,
/// extractable keys refused.
#[derive(Default)]
#[non_exhaustive]
pub struct OpenOptions {
    pin: Option<SecretString>,
    access_key_id: Option<String>,
    insecure_allow_extractable_key: bool,
    max_idle_sessions: Option<usize>,
}

impl OpenOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user PIN, instead of the URI's `pin-value` or `pin-source`.
    pub fn pin(mut self, pin: SecretString) -> Self {
        self.pin = Some(pin);
        self
    }

    /// The access key id, for a key imported by another tool (keyhold's own imports store it
    /// on the token).
    pub fn access_key_id(mut self, access_key_id: impl Into<String>) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self
    }

    /// Use the key even if its value can be read out of the token (CKA_SENSITIVE false or
    /// CKA_EXTRACTABLE true). Then the token does not protect the secret.
    pub fn insecure_allow_extractable_key(mut self) -> Self {
        self.insecure_allow_extractable_key = true;
        self
    }

    /// How many idle sessions to keep open (default: twice the machine's parallelism).
    /// More are opened while more threads sign at once, and closed when they come back.
    pub fn max_idle_sessions(mut self, n: usize) -> Self {
        self.max_idle_sessions = Some(n.max(1));
        self
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("pin", &self.pin.as_ref().map(|_| "** redacted **"))
            .field("access_key_id", &self.access_key_id)
            .field(
                "insecure_allow_extractable_key",
                &self.insecure_allow_extractable_key,
            )
            .field("max_idle_sessions", &self.max_idle_sessions)
            .finish()
    }
}

/// An HMAC key in a PKCS#11 token that computes `kDate` for SigV4. The secret never leaves
/// the token; see the module docs for how sessions are pooled and repaired.
pub struct Pkcs11RootKey {
    module: Module,
    /// Finds this key's token again after a re-insert.
    token_uri: Pkcs11Uri,
    pin: Option<SecretString>,
    key_label: Vec<u8>,
    key_id: Vec<u8>,
    access_key_id: String,
    allow_extractable: bool,
    max_idle: usize,
    uri: Pkcs11Uri,
    state: Mutex<State>,
    repairs: AtomicU64,
}

struct State {
    token: Token,
    key: ObjectHandle,
    /// Bumped whenever the key handle may have changed.
    key_epoch: u64,
    /// Bumped whenever every session handle went stale.
    session_epoch: u64,
    idle: Vec<Session>,
}

/// What a borrowed session saw of the state, to tell a repair already made by another thread.
#[derive(Clone, Copy)]
struct Seen {
    key_epoch: u64,
    session_epoch: u64,
}

struct Lease {
    session: Session,
    key: ObjectHandle,
    seen: Seen,
}

/// Why one signing attempt did not produce a trusted result.
enum Failure {
    /// The token returned an error.
    Device(Seen, CryptokiError),
    /// Another thread repaired the state while this attempt ran.
    Overtaken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    LoggedOut,
    KeyStale,
    SessionsGone,
    LibraryReset,
    TokenGone,
}

fn classify(error: &CryptokiError) -> Option<Fault> {
    Some(match rv(error)? {
        RvError::UserNotLoggedIn => Fault::LoggedOut,
        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => Fault::KeyStale,
        RvError::SessionHandleInvalid | RvError::SessionClosed => Fault::SessionsGone,
        RvError::CryptokiNotInitialized => Fault::LibraryReset,
        RvError::TokenNotPresent
        | RvError::DeviceRemoved
        | RvError::SlotIdInvalid
        | RvError::TokenNotRecognized => Fault::TokenGone,
        _ => return None,
    })
}

impl Fault {
    fn sessions_lost(self) -> bool {
        matches!(
            self,
            Self::SessionsGone | Self::LibraryReset | Self::TokenGone
        )
    }
}

/// Closes a pooled session, logging (not raising) a failure: it is cleanup.
fn close(session: Session, token: &str) {
    if let Err(e) = session.close() {
        tracing::warn!(token, error = %e, "closing a PKCS#11 session failed");
    }
}

impl Pkcs11RootKey {
    /// Opens the key a URI names with default options (PIN from the URI).
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Error> {
        Self::open_with(uri, OpenOptions::default())
    }

    /// Opens the key a URI names: loads the module, picks the token, logs in, finds exactly
    /// one secret key, checks through the token that it can sign and cannot be read out, and
    /// reads its access key id.
    pub fn open_with(uri: &Pkcs11Uri, options: OpenOptions) -> Result<Self, Error> {
        if let Some(id) = &options.access_key_id
            && !objects::valid_access_key_id(id)
        {
            return Err(Error::InvalidAccessKeyId);
        }
        let module = Module::for_uri(uri)?;
        let token = token::find_token(&module, uri)?;
        let pin = token::pin_for(uri, options.pin, &token.label)?;
        let session = module
            .ctx
            .open_ro_session_no_drop(token.slot)
            .map_err(|e| Error::token(&token.label, Step::OpenSession, e))?;
        let setup = (|| {
            token::login(&session, &token, pin.as_ref())?;
            let found = objects::resolve_uri_key(&session, &token.label, uri)?;
            let key = found.key;
            objects::check_key(
                &session,
                &token.label,
                &key,
                options.insecure_allow_extractable_key,
            )?;
            let access_key_id = match (options.access_key_id, found.access_key_id) {
                (Some(id), _) | (None, Some(id)) => id,
                (None, None) => {
                    return Err(Error::AccessKeyIdMissing {
                        token: token.label.clone(),
                        key: key.describe(),
                        application: objects::ACCESS_KEY_ID_APPLICATION,
                    });
                }
            };
            Ok::<_, Error>((key, access_key_id))
        })();
        let (key, access_key_id) = match setup {
            Ok(found) => found,
            Err(e) => {
                close(session, &token.label);
                return Err(e);
            }
        };
        let max_idle = options
            .max_idle_sessions
            .unwrap_or_else(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut public_uri = token::reselect_uri(uri, &token);
        public_uri.object = Some(String::from_utf8_lossy(&key.label).into_owned());
        public_uri.id = (!key.id.is_empty()).then(|| key.id.clone());
        public_uri.object_type = Some(ObjectType::SecretKey);
        public_uri.module_name = uri.module_name.clone();
        public_uri.module_path = uri.module_path.clone();
        public_uri.pin_source = uri.pin_source.clone();
        Ok(Self {
            token_uri: token::reselect_uri(uri, &token),
            module,
            pin,
            key_label: key.label,
            key_id: key.id,
            access_key_id,
            allow_extractable: options.insecure_allow_extractable_key,
            max_idle,
            uri: public_uri,
            state: Mutex::new(State {
                token,
                key: key.handle,
                key_epoch: 0,
                session_epoch: 0,
                idle: vec![session],
            }),
            repairs: AtomicU64::new(0),
        })
    }

    /// The AWS access key id that goes with this secret.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// A URI naming exactly this key (token label and serial, key label and id, the module and
    /// pin-source as given; never a pin-value).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// How many times this key has repaired its sessions, login or key handle (see the
    /// module docs). For monitoring: a number that keeps rising means an unstable token.
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    /// Sessions now idle in the pool.
    pub fn idle_sessions(&self) -> usize {
        self.lock().idle.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock in a way that leaves the state inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `kDate`, as a typed error. [`RootKey::date_key`] is this, for the seam.
    pub fn try_date_key(&self, date: &DateStamp) -> Result<DateKey, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (seen, error) = match self.sign_once(date.as_bytes()) {
                Ok(mac) => {
                    return DateKey::from_slice(&mac).map_err(|_| Error::KeyUnsuitable {
                        token: self.token_label(),
                        key: objects::describe(&self.key_label, &self.key_id),
                        reason: format!("the token's HMAC was {} bytes, not 32", mac.len()),
                    });
                }
                Err(Failure::Overtaken) if attempt < ATTEMPTS => continue,
                Err(Failure::Overtaken) => {
                    return Err(Error::Unstable {
                        token: self.token_label(),
                        attempts: ATTEMPTS,
                    });
                }
                Err(Failure::Device(seen, error)) => (seen, error),
            };
            match classify(&error) {
                Some(fault) if attempt < ATTEMPTS => {
                    tracing::debug!(token = %self.token_label(), ?fault, error = %error, "repairing PKCS#11 state");
                    self.repair(fault, seen)?;
                }
                _ => return Err(Error::token(&self.token_label(), Step::Sign, error)),
            }
        }
    }

    fn token_label(&self) -> String {
        self.lock().token.label.clone()
    }

    fn sign_once(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let lease = self
            .checkout()
            .map_err(|(seen, error)| Failure::Device(seen, error))?;
        match lease.session.sign(&Mechanism::Sha256Hmac, lease.key, data) {
            // A result from a session or key handle that another thread has since found
            // stale is not trusted: after a library reset the handle may have been reused.
            Ok(mac) => match self.checkin(lease) {
                true => Ok(Zeroizing::new(mac)),
                false => Err(Failure::Overtaken),
            },
            Err(error) => {
                let seen = lease.seen;
                if classify(&error).is_some_and(Fault::sessions_lost) {
                    drop(lease); // stale handle: forget it, never close it
                } else {
                    self.checkin(lease);
                }
                Err(Failure::Device(seen, error))
            }
        }
    }

    fn checkout(&self) -> Result<Lease, (Seen, CryptokiError)> {
        let mut state = self.lock();
        let seen = Seen {
            key_epoch: state.key_epoch,
            session_epoch: state.session_epoch,
        };
        let key = state.key;
        if let Some(session) = state.idle.pop() {
            return Ok(Lease { session, key, seen });
        }
        let slot = state.token.slot;
        drop(state);
        // Opened outside the lock so that a slow C_OpenSession does not stall other signers.
        match self.module.ctx.open_ro_session_no_drop(slot) {
            Ok(session) => Ok(Lease { session, key, seen }),
            Err(e) => Err((seen, e)),
        }
    }

    /// Returns a session to the pool; false if the state moved on while it was out.
    fn checkin(&self, lease: Lease) -> bool {
        let mut state = self.lock();
        if lease.seen.session_epoch != state.session_epoch {
            return false; // opened before the sessions were lost: its handle is stale
        }
        let current = lease.seen.key_epoch == state.key_epoch;
        if state.idle.len() < self.max_idle {
            state.idle.push(lease.session);
            return current;
        }
        let label = state.token.label.clone();
        drop(state);
        close(lease.session, &label);
        current
    }

    /// Repairs after `fault`, unless another thread already did since `seen`.
    fn repair(&self, fault: Fault, seen: Seen) -> Result<(), Error> {
        let mut state = self.lock();
        let already = if fault.sessions_lost() {
            state.session_epoch != seen.session_epoch
        } else {
            state.key_epoch != seen.key_epoch
        };
        if already {
            return Ok(());
        }
        self.repairs.fetch_add(1, Ordering::Relaxed);
        if fault.sessions_lost() {
            state.session_epoch += 1;
            state.idle.clear(); // forget, never close: see the module docs
        }
        if fault == Fault::LibraryReset {
            self.module
                .initialize()
                .map_err(|e| Error::module(&self.module.path, Step::Initialize, e))?;
        }
        if fault.sessions_lost() {
            // Sessions vanish together when the library was reset or the token re-inserted,
            // and either can renumber slots: find the token again by label and serial.
            state.token = token::find_token(&self.module, &self.token_uri)?;
        }
        let session = match state.idle.pop() {
            Some(session) => session,
            None => self
                .module
                .ctx
                .open_ro_session_no_drop(state.token.slot)
                .map_err(|e| Error::token(&state.token.label, Step::OpenSession, e))?,
        };
        let found = (|| {
            token::login(&session, &state.token, self.pin.as_ref())?;
            let key = objects::resolve_key(
                &session,
                &state.token.label,
                Some(&self.key_label),
                Some(&self.key_id),
            )?
            .key;
            objects::check_key(&session, &state.token.label, &key, self.allow_extractable)?;
            Ok::<FoundKey, Error>(key)
        })();
        state.idle.push(session);
        let key = found?;
        state.key = key.handle;
        state.key_epoch += 1;
        Ok(())
    }
}

impl RootKey for Pkcs11RootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        self.try_date_key(date).map_err(KeyError::from)
    }
}

impl Drop for Pkcs11RootKey {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for session in state.idle.drain(..) {
            close(session, &state.token.label);
        }
    }
}

impl fmt::Debug for Pkcs11RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11RootKey")
            .field("uri", &self.uri.to_string())
            .field("access_key_id", &self.access_key_id)
            .field("module", &self.module.path)
            .finish_non_exhaustive()
    }
}
