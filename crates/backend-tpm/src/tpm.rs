//! The connection to one TPM: a single ESAPI context behind a lock, re-opened by itself when
//! the transport fails (the TPM restarted), and the sessions every command runs under.
//!
//! swtpm serves one client at a time and has no resource manager, so keyhold keeps one
//! context per TPM, flushes transient objects after use, and keeps at most one keyhold key
//! loaded between calls (plus, with encryption on, one salted session).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tss_esapi::Context;
use tss_esapi::abstraction::ek;
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::AsymmetricAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{CapabilityData, Public};
use tss_esapi::tcti_ldr::TctiNameConf;

use crate::error::{TpmError, is_transport_error};
use crate::keyfile::OWNER_STANDARD_PRIMARY;
use crate::templates;
use crate::transport::{probe_transport, resolve_tcti, stack_error, transport_hint};

/// The TCG's recommended persistent handle of the RSA 2048 endorsement key.
pub const EK_RSA2048_HANDLE: u32 = 0x8101_0001;
/// The TCG's recommended persistent handle of the ECC P-256 endorsement key.
pub const EK_ECCP256_HANDLE: u32 = 0x8101_0002;

/// Which endorsement key (from the TCG EK Credential Profile's default templates) to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EkAlgorithm {
    /// Template L-1, RSA 2048.
    Rsa2048,
    /// Template L-2, ECC NIST P-256.
    EccP256,
}

impl EkAlgorithm {
    /// The persistent handle the TCG recommends for this EK.
    pub fn handle(self) -> u32 {
        match self {
            EkAlgorithm::Rsa2048 => EK_RSA2048_HANDLE,
            EkAlgorithm::EccP256 => EK_ECCP256_HANDLE,
        }
    }

    fn asymmetric(self) -> AsymmetricAlgorithm {
        match self {
            EkAlgorithm::Rsa2048 => AsymmetricAlgorithm::Rsa,
            EkAlgorithm::EccP256 => AsymmetricAlgorithm::Ecc,
        }
    }
}

/// How commands that carry secrets (the key at import, the HMAC input and kDate at use,
/// passwords) travel between this process and the TPM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEncryption {
    /// An HMAC session salted with the endorsement key, with AES-128-CFB parameter encryption
    /// both ways. A pinned EK name makes keyhold refuse a TPM whose EK differs.
    SaltedWithEk {
        /// The EK to salt with.
        ek: EkAlgorithm,
        /// The expected EK name (nameAlg || SHA-256 of its public area), if pinned.
        pinned_name: Option<Vec<u8>>,
    },
    /// No encryption: the secret at import, kDate and passwords cross the transport in the
    /// clear. Acceptable for swtpm on loopback; not against someone on the bus.
    Cleartext,
}

impl Default for SessionEncryption {
    fn default() -> Self {
        SessionEncryption::SaltedWithEk {
            ek: EkAlgorithm::EccP256,
            pinned_name: None,
        }
    }
}

/// A TPM, shared: clone it freely, all clones use one connection.
#[derive(Clone)]
pub struct Tpm {
    shared: Arc<Shared>,
}

struct Shared {
    tcti: TctiNameConf,
    tcti_text: String,
    encryption: SessionEncryption,
    connection: Mutex<Option<Connection>>,
    next_key_id: AtomicU64,
}

impl Tpm {
    /// Connects with encrypted sessions salted by the ECC P-256 EK (see [`resolve_tcti`]).
    pub fn connect(tcti: Option<&str>) -> Result<Self, TpmError> {
        Self::connect_with(tcti, SessionEncryption::default())
    }

    /// Connects with the given session encryption. Fails at once if the TPM is unreachable
    /// or its EK does not have the pinned name.
    pub fn connect_with(
        tcti: Option<&str>,
        encryption: SessionEncryption,
    ) -> Result<Self, TpmError> {
        let tcti_text = resolve_tcti(tcti);
        let tcti = TctiNameConf::from_str(&tcti_text).map_err(|source| TpmError::InvalidTcti {
            tcti: tcti_text.clone(),
            source,
        })?;
        let shared = Shared {
            tcti,
            tcti_text,
            encryption,
            connection: Mutex::new(None),
            next_key_id: AtomicU64::new(1),
        };
        let tpm = Tpm {
            shared: Arc::new(shared),
        };
        tpm.run(|_| Ok(()))?;
        Ok(tpm)
    }

    /// The TCTI this TPM is reached through.
    pub fn tcti(&self) -> &str {
        &self.shared.tcti_text
    }

    /// The name of the endorsement key (what [`SessionEncryption::SaltedWithEk`] pins).
    pub fn endorsement_key_name(&self, algorithm: EkAlgorithm) -> Result<Vec<u8>, TpmError> {
        self.run(|c| {
            let (handle, _, name) = c.create_ek(algorithm)?;
            c.flush(handle);
            Ok(name)
        })
    }

    /// Closes the connection now (it is re-opened on next use). Lets another client, such as
    /// tpm2-tools, talk to a TPM that serves one client at a time.
    pub fn disconnect(&self) {
        drop(self.lock().take());
    }

    /// Runs `f` only if a connection is open (for cleanup that must not reconnect).
    pub(crate) fn with_open_connection(&self, f: impl FnOnce(&mut Connection)) {
        if let Some(connection) = self.lock().as_mut() {
            f(connection);
            connection.ctx.clear_sessions();
        }
    }

    pub(crate) fn next_key_id(&self) -> u64 {
        self.shared.next_key_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.shared
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, opening it if needed. If the transport failed (the TPM
    /// restarted or went away), the connection is re-opened and `f` retried once: everything
    /// `f` relies on (loaded keys, sessions) is rebuilt from key files and templates.
    pub(crate) fn run<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let mut slot = self.lock();
        let (mut reconnected, mut flushed_leftovers) = (false, false);
        loop {
            let result = match slot.as_mut() {
                Some(connection) => {
                    let result = f(connection);
                    connection.ctx.clear_sessions();
                    result
                }
                None => match Connection::open(&self.shared) {
                    Ok(connection) => {
                        *slot = Some(connection);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Err(e) if !reconnected && e.is_connection_lost() => {
                    *slot = None;
                    reconnected = true;
                }
                Err(e) if !flushed_leftovers && e.is_out_of_slots() => {
                    // Closing ours first leaves only other clients' leftovers to flush.
                    *slot = None;
                    flush_leftovers(&self.shared);
                    flushed_leftovers = true;
                }
                other => return other,
            }
        }
    }
}

impl fmt::Debug for Tpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.shared.tcti_text)
            .field("encryption", &self.shared.encryption)
            .finish()
    }
}

/// Flushes every transient object and loaded session on the TPM. Only called when the TPM
/// ran out of slots while keyhold holds none: on a TPM without a resource manager (swtpm,
/// /dev/tpm0) these are leftovers of clients that exited without flushing (tpm2-tools
/// leaves sessions behind, for one); behind a resource manager the list is empty.
fn flush_leftovers(shared: &Shared) {
    let Ok(mut ctx) = Context::new(shared.tcti.clone()) else {
        return;
    };
    // TRANSIENT_FIRST, LOADED_SESSION_FIRST, ACTIVE_SESSION_FIRST (saved sessions).
    for first in [0x8000_0000u32, 0x0200_0000, 0x0300_0000] {
        let Ok((CapabilityData::Handles(handles), _)) = ctx
            .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, first, 64))
        else {
            continue;
        };
        for handle in handles.into_inner() {
            if let Ok(object) = ctx.execute_without_session(|ctx| ctx.tr_from_tpm_public(handle)) {
                let _ = ctx.flush_context(object);
            }
        }
    }
}

/// An open ESAPI context and what is loaded in it.
pub(crate) struct Connection {
    pub(crate) ctx: Context,
    /// The long-lived salted session used to encrypt parameters, when encryption is on.
    pub(crate) salted: Option<AuthSession>,
    /// The one keyhold key kept loaded between calls: (key id, handle).
    loaded: Option<(u64, KeyHandle)>,
    /// ESAPI objects for persistent handles, looked up once per connection.
    persistent: HashMap<u32, ObjectHandle>,
    /// The EK sessions are salted with (and its pinned name), when they are.
    pub(crate) salt: Option<(EkAlgorithm, Option<Vec<u8>>)>,
}

impl Connection {
    fn open(shared: &Shared) -> Result<Self, TpmError> {
        let hint = transport_hint(&shared.tcti_text);
        let unreachable =
            |source: Box<dyn std::error::Error + Send + Sync>| TpmError::Unreachable {
                tcti: shared.tcti_text.clone(),
                hint,
                source,
            };
        probe_transport(&shared.tcti_text).map_err(|e| unreachable(Box::new(e)))?;
        let ctx = Context::new(shared.tcti.clone()).map_err(|e| unreachable(stack_error(e)))?;
        let mut connection = Connection {
            ctx,
            salted: None,
            loaded: None,
            persistent: HashMap::new(),
            salt: None,
        };
        if let SessionEncryption::SaltedWithEk { ek, pinned_name } = &shared.encryption {
            connection.salt = Some((*ek, pinned_name.clone()));
            let handle = connection.salt_key().map_err(|e| match e {
                TpmError::Command { source, .. } if is_transport_error(&source) => {
                    unreachable(stack_error(source))
                }
                other => other,
            })?;
            let session = connection.start_session(Some(handle), SessionType::Hmac, true);
            connection.flush(handle);
            connection.salted = Some(session?);
        }
        Ok(connection)
    }

    /// Creates the EK from its default template; returns (handle, public, name).
    pub(crate) fn create_ek(
        &mut self,
        algorithm: EkAlgorithm,
    ) -> Result<(KeyHandle, Public, Vec<u8>), TpmError> {
        let op = "TPM2_CreatePrimary (endorsement key)";
        let template = ek::create_ek_public_from_default_template(algorithm.asymmetric(), None)
            .map_err(|e| TpmError::tpm(op, e))?;
        let created = self
            .ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.create_primary(Hierarchy::Endorsement, template, None, None, None, None)
            })
            .map_err(|e| TpmError::tpm(op, e))?;
        let name = self.name(created.key_handle.into())?;
        Ok((created.key_handle, created.out_public, name))
    }

    /// The ESAPI name of a loaded object.
    pub(crate) fn name(&mut self, handle: ObjectHandle) -> Result<Vec<u8>, TpmError> {
        self.ctx
            .tr_get_name(handle)
            .map(|n| n.value().to_vec())
            .map_err(|e| TpmError::tpm("Esys_TR_GetName", e))
    }

    /// Loads a parent: the owner's standard primary, a persistent handle, or (for the TCG EK
    /// handles, when nothing is persisted there) the EK from its template. Returns the handle,
    /// whether to flush it after use, and whether it is an EK (which needs a policy session).
    pub(crate) fn load_parent(&mut self, parent: u32) -> Result<LoadedParent, TpmError> {
        if parent == OWNER_STANDARD_PRIMARY {
            let op = "TPM2_CreatePrimary (owner storage primary)";
            let template = templates::storage_primary().map_err(|e| TpmError::tpm(op, e))?;
            let created = self
                .ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
                })
                .map_err(|e| TpmError::tpm(op, e))?;
            return Ok(LoadedParent {
                handle: created.key_handle,
                transient: true,
                is_ek: false,
            });
        }
        let ek = match parent {
            EK_RSA2048_HANDLE => Some(EkAlgorithm::Rsa2048),
            EK_ECCP256_HANDLE => Some(EkAlgorithm::EccP256),
            _ => None,
        };
        match (self.persistent(parent), ek) {
            (Ok(handle), _) => Ok(LoadedParent {
                handle: handle.into(),
                transient: false,
                is_ek: ek.is_some(),
            }),
            (Err(TpmError::KeyNotFound { .. }), Some(algorithm)) => {
                let (handle, _, _) = self.create_ek(algorithm)?;
                Ok(LoadedParent {
                    handle,
                    transient: true,
                    is_ek: true,
                })
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The ESAPI object for a persistent handle (looked up once per connection).
    pub(crate) fn persistent(&mut self, handle: u32) -> Result<ObjectHandle, TpmError> {
        if let Some(object) = self.persistent.get(&handle) {
            return Ok(*object);
        }
        let not_found = |source| TpmError::KeyNotFound { handle, source };
        let tpm_handle =
            PersistentTpmHandle::new(handle).map_err(|_| TpmError::InvalidArgument {
                reason: format!(
                    "{handle:#010x} is not a persistent handle (0x81000000..=0x81ffffff)"
                ),
            })?;
        let object = self
            .ctx
            .execute_without_session(|ctx| {
                ctx.tr_from_tpm_public(TpmHandle::Persistent(tpm_handle))
            })
            .map_err(|e| {
                if is_transport_error(&e) {
                    TpmError::tpm("Esys_TR_FromTPMPublic", e)
                } else {
                    not_found(e)
                }
            })?;
        self.persistent.insert(handle, object);
        Ok(object)
    }

    /// Forgets a persistent handle (after it was evicted).
    pub(crate) fn forget_persistent(&mut self, handle: u32) {
        self.persistent.remove(&handle);
    }

    /// The cached key handle for key `id`, if it is the one loaded.
    pub(crate) fn cached_key(&self, id: u64) -> Option<KeyHandle> {
        self.loaded
            .filter(|(loaded, _)| *loaded == id)
            .map(|(_, h)| h)
    }

    /// Makes room for a key: swtpm has three object slots, and a load needs two.
    pub(crate) fn evict_cached_key(&mut self) {
        if let Some((_, handle)) = self.loaded.take() {
            self.flush(handle);
        }
    }

    pub(crate) fn cache_key(&mut self, id: u64, handle: KeyHandle) {
        self.evict_cached_key();
        self.loaded = Some((id, handle));
    }

    /// Flushes the key with this id if it is loaded.
    pub(crate) fn forget_key(&mut self, id: u64) {
        if self.cached_key(id).is_some() {
            self.evict_cached_key();
        }
    }

    /// Flushes a transient object; failures are ignored (the object dies with the context).
    pub(crate) fn flush(&mut self, handle: KeyHandle) {
        let _ = self.ctx.flush_context(handle.into());
    }

    pub(crate) fn flush_session(&mut self, session: PolicySession) {
        let _ = self.ctx.flush_context(SessionHandle::from(session).into());
    }
}

/// A parent loaded for TPM2_Load or TPM2_Import.
pub(crate) struct LoadedParent {
    pub(crate) handle: KeyHandle,
    pub(crate) transient: bool,
    pub(crate) is_ek: bool,
}

pub(crate) fn wrapper_error() -> tss_esapi::Error {
    tss_esapi::Error::WrapperError(tss_esapi::WrapperErrorKind::WrongValueFromTpm)
}

/// Lower-case hex, for names in messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex (an EK name given on a command line or in config).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, TpmError> {
    let text = text.trim();
    let invalid = || TpmError::InvalidArgument {
        reason: format!("'{text}' is not hex"),
    };
    if !text.len().is_multiple_of(2) {
        return Err(invalid());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(text.get(i..i + 2).ok_or_else(invalid)?, 16).map_err(|_| invalid())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_tcti_strings_parse() {
        for tcti in [
            "swtpm:host=127.0.0.1,port=2321",
            "device:/dev/tpmrm0",
            "tabrmd",
            "mssim:host=localhost,port=2321",
        ] {
            TctiNameConf::from_str(tcti).unwrap_or_else(|e| panic!("{tcti}: {e}"));
        }
        assert_eq!(resolve_tcti(Some("tabrmd")), "tabrmd");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(parse_hex(" 000bA1ff ").unwrap(), [0x00, 0x0b, 0xa1, 0xff]);
        assert_eq!(hex(&[0x00, 0x0b, 0xa1]), "000ba1");
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
