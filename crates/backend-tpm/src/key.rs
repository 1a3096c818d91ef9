//! The SigV4 root key held by a TPM: loading it (persistent handle or TSS2 key file), checking
//! it, and computing `kDate` with TPM2_HMAC under the right sessions.

use std::fmt;
use std::sync::Arc;

use sigv4_core::{DateKey, DateStamp, KeyError, RootKey};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{Auth, Digest, MaxBuffer, Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};
use zeroize::Zeroizing;

use crate::error::TpmError;
use crate::keyfile::{KeyKind, TpmKeyFile};
use crate::policy::{PcrSelection, PolicyAuthorizer, PolicyStep, policy_digest, run_steps};
use crate::templates::check_hmac_key;
use crate::tpm::{Connection, Tpm};

/// The largest password a SHA-256 key accepts (the TPM caps auth values at the digest size).
pub(crate) const MAX_PASSWORD: usize = 32;

/// How to authorize use of a key: its password, and for a persistent key the PCR policy it
/// was imported with (key files carry their policy), or a policy of the caller's own.
#[derive(Clone, Default)]
pub struct KeyAuth {
    password: Option<Zeroizing<Vec<u8>>>,
    pcrs: Option<PcrSelection>,
    custom: Option<Arc<dyn PolicyAuthorizer>>,
}

impl KeyAuth {
    /// No password (an empty auth value).
    pub fn none() -> Self {
        Self::default()
    }

    /// The key's password (auth value), at most 32 bytes.
    pub fn password(password: Zeroizing<Vec<u8>>) -> Self {
        Self {
            password: Some(password),
            ..Self::default()
        }
    }

    /// For a persistent key imported with a PCR policy: the PCRs it is bound to. (A key file
    /// records its policy itself.) With a password too, the policy is PCR then auth value,
    /// as [`crate::ImportOptions`] creates it.
    pub fn with_pcr_policy(mut self, pcrs: PcrSelection) -> Self {
        self.pcrs = Some(pcrs);
        self
    }

    /// A policy of the caller's own; it replaces any policy recorded in a key file.
    pub fn with_custom_policy(mut self, policy: Arc<dyn PolicyAuthorizer>) -> Self {
        self.custom = Some(policy);
        self
    }
}

impl fmt::Debug for KeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAuth")
            .field(
                "password",
                &self.password.as_ref().map(|_| "** redacted **"),
            )
            .field("pcrs", &self.pcrs)
            .field("custom", &self.custom)
            .finish()
    }
}

/// Where the key lives.
enum KeySource {
    Persistent(u32),
    File {
        parent: u32,
        public: Public,
        private: Private,
    },
}

/// What session authorizes TPM2_HMAC.
enum Authorization {
    /// userWithAuth: the password (possibly empty) through an HMAC or password session.
    AuthValue,
    /// Built-in policy steps replayed on a policy session.
    Steps(Vec<PolicyStep>),
    /// The caller's own policy.
    Custom(Arc<dyn PolicyAuthorizer>),
}

/// A key of this TPM, where it lives and how its use is authorized: the part an HMAC root
/// key and a Roles Anywhere signing key share.
pub(crate) struct LoadedKey {
    tpm: Tpm,
    id: u64,
    source: KeySource,
    authorization: Authorization,
    password: Option<Zeroizing<Vec<u8>>>,
}

/// `"AWS4" + secret` inside a TPM. Implements [`RootKey`]: each `date_key` is one TPM2_HMAC.
pub struct TpmRootKey {
    key: LoadedKey,
    access_key_id: Option<String>,
}

impl Tpm {
    /// Loads a key from a TSS2 key file (as [`Tpm::import`] or `tpm2_encodeobject` write it),
    /// checking that it is an HMAC-SHA256 key that cannot leave the TPM.
    pub fn load_key_file(&self, file: &TpmKeyFile, auth: KeyAuth) -> Result<TpmRootKey, TpmError> {
        if file.kind != KeyKind::Loadable {
            return Err(TpmError::KeyFile {
                reason: "this is an importable duplication blob: import it first (Tpm::import_duplicate, feature `duplicate`)".into(),
            });
        }
        let public = public_from_tpm2b(&file.public)?;
        check_hmac_key(&public)?;
        let private = private_from_tpm2b(&file.private)?;
        let steps = file_policy(file, &public, &auth)?;
        let key = TpmRootKey {
            key: self.file_key(file, public, private, steps, auth)?,
            access_key_id: file.access_key_id().map(str::to_owned),
        };
        // Load now so a key file from another TPM fails here, not at the first signature.
        self.run(|c| key.key.handle_in(c).map(|_| ()))?;
        Ok(key)
    }

    /// A key file's key, with its policy steps (checked against its authPolicy unless the
    /// caller brings a policy of its own).
    pub(crate) fn file_key(
        &self,
        file: &TpmKeyFile,
        public: Public,
        private: Private,
        steps: Vec<PolicyStep>,
        auth: KeyAuth,
    ) -> Result<LoadedKey, TpmError> {
        self.new_key(
            KeySource::File {
                parent: file.parent,
                public,
                private,
            },
            steps,
            auth,
        )
    }

    /// Reads a TSS2 PEM key file from disk and loads it ([`Tpm::load_key_file`]).
    pub fn load_pem_file(
        &self,
        path: impl AsRef<std::path::Path>,
        auth: KeyAuth,
    ) -> Result<TpmRootKey, TpmError> {
        self.load_key_file(&read_key_file(path.as_ref())?, auth)
    }

    /// Uses a key at a persistent handle (0x81000000..=0x81ffffff), after checking its public
    /// area. Its authorization is not recorded in the TPM: pass the PCR policy it was
    /// imported with, if any.
    pub fn load_persistent(&self, handle: u32, auth: KeyAuth) -> Result<TpmRootKey, TpmError> {
        let public = self.read_persistent_public(handle)?;
        check_hmac_key(&public)?;
        Ok(TpmRootKey {
            key: self.persistent_key(handle, auth)?,
            access_key_id: None,
        })
    }

    /// The public area of the key at a persistent handle.
    pub(crate) fn read_persistent_public(&self, handle: u32) -> Result<Public, TpmError> {
        self.run(|c| {
            let object = c.persistent(handle)?;
            // Without a session: ReadPublic refuses a password session (TPM_RC_AUTH_CONTEXT).
            c.ctx
                .execute_without_session(|ctx| ctx.read_public(object.into()))
                .map(|(public, _, _)| public)
                .map_err(|e| TpmError::tpm("TPM2_ReadPublic", e))
        })
    }

    /// A persistent key, authorized by its password and the PCR policy `auth` names.
    pub(crate) fn persistent_key(&self, handle: u32, auth: KeyAuth) -> Result<LoadedKey, TpmError> {
        let mut steps = Vec::new();
        if let Some(selection) = &auth.pcrs {
            steps.push(PolicyStep::Pcr {
                selection: selection.clone(),
                digest: None,
            });
            if auth.password.is_some() {
                steps.push(PolicyStep::AuthValue);
            }
        }
        self.new_key(KeySource::Persistent(handle), steps, auth)
    }

    fn new_key(
        &self,
        source: KeySource,
        steps: Vec<PolicyStep>,
        auth: KeyAuth,
    ) -> Result<LoadedKey, TpmError> {
        if auth
            .password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PASSWORD)
        {
            return Err(TpmError::InvalidArgument {
                reason: format!("a key password is at most {MAX_PASSWORD} bytes"),
            });
        }
        let authorization = match (auth.custom, steps.is_empty()) {
            (Some(custom), _) => Authorization::Custom(custom),
            (None, false) => Authorization::Steps(steps),
            (None, true) => Authorization::AuthValue,
        };
        Ok(LoadedKey {
            tpm: self.clone(),
            id: self.next_key_id(),
            source,
            authorization,
            password: auth.password,
        })
    }
}

/// Reads and parses a TSS2 PEM key file.
pub(crate) fn read_key_file(path: &std::path::Path) -> Result<TpmKeyFile, TpmError> {
    let pem = std::fs::read_to_string(path).map_err(|source| TpmError::Io {
        op: "read",
        path: path.display().to_string(),
        source,
    })?;
    TpmKeyFile::from_pem(&pem)
}

/// A key file's policy steps, checked against the key's authPolicy unless the caller brings
/// a policy of its own.
pub(crate) fn file_policy(
    file: &TpmKeyFile,
    public: &Public,
    auth: &KeyAuth,
) -> Result<Vec<PolicyStep>, TpmError> {
    let steps = file
        .policy
        .iter()
        .map(PolicyStep::from_command)
        .collect::<Result<Vec<_>, _>>()?;
    if auth.custom.is_none() && !steps.is_empty() {
        check_policy_matches(public, &steps)?;
    }
    Ok(steps)
}

impl TpmRootKey {
    /// The access key id recorded with the key (the key file's description), if any.
    pub fn access_key_id(&self) -> Option<&str> {
        self.access_key_id.as_deref()
    }

    fn hmac_in(&self, c: &mut Connection, data: &[u8]) -> Result<Digest, TpmError> {
        let buffer =
            MaxBuffer::try_from(data.to_vec()).map_err(|e| TpmError::tpm("TPM2_HMAC", e))?;
        self.key.authorized(c, "TPM2_HMAC", |ctx, handle| {
            ctx.hmac(handle.into(), buffer, HashingAlgorithm::Sha256)
        })
    }
}

impl LoadedKey {
    /// The TPM it is in.
    pub(crate) fn tpm(&self) -> &Tpm {
        &self.tpm
    }

    /// The loaded key's handle: a persistent handle, or the key file loaded under its parent
    /// (kept loaded until another key needs the slot).
    pub(crate) fn handle_in(&self, c: &mut Connection) -> Result<KeyHandle, TpmError> {
        let (parent, public, private) = match &self.source {
            KeySource::Persistent(handle) => return c.persistent(*handle).map(KeyHandle::from),
            KeySource::File {
                parent,
                public,
                private,
            } => (*parent, public, private),
        };
        if let Some(handle) = c.cached_key(self.id) {
            return Ok(handle);
        }
        c.evict_cached_key();
        let handle = load_under(c, parent, "TPM2_Load", |ctx, parent| {
            ctx.load(parent, private.clone(), public.clone())
        })
        .map_err(|e| wrong_tpm_on_integrity(e, "key file"))?;
        c.cache_key(self.id, handle);
        Ok(handle)
    }

    /// Runs `command` (`op`, for errors) on the key under the sessions its authorization
    /// needs: its password, or its policy replayed on a policy session; the salted session
    /// encrypts the parameters.
    pub(crate) fn authorized<T>(
        &self,
        c: &mut Connection,
        op: &'static str,
        command: impl FnOnce(&mut tss_esapi::Context, KeyHandle) -> tss_esapi::Result<T>,
    ) -> Result<T, TpmError> {
        let handle = self.handle_in(c)?;
        let password = self.password.as_ref().map_or(&[][..], |p| &p[..]);
        let auth = Auth::try_from(password.to_vec()).map_err(|e| TpmError::tpm("key auth", e))?;
        c.ctx
            .tr_set_auth(handle.into(), auth)
            .map_err(|e| TpmError::tpm("Esys_TR_SetAuth", e))?;
        // With a password, the policy's TPM2_PolicyAuthValue HMAC must not be testable
        // offline: the session is salted (when sessions are).
        let new_session = |c: &mut Connection| match password.is_empty() {
            true => c.policy_session(),
            false => c.secret_policy_session(),
        };
        let policy = match &self.authorization {
            Authorization::AuthValue => None,
            Authorization::Steps(steps) => {
                let session = new_session(c)?;
                if let Err(e) = run_steps(&mut c.ctx, session, steps) {
                    c.flush_session(session);
                    return Err(e);
                }
                Some(session)
            }
            Authorization::Custom(custom) => {
                let session = new_session(c)?;
                if let Err(e) = custom.authorize(&mut c.ctx, session) {
                    c.flush_session(session);
                    return Err(TpmError::tpm("custom policy", e));
                }
                Some(session)
            }
        };
        let sessions = c.secret_sessions(policy);
        let result = c
            .ctx
            .execute_with_sessions(sessions, |ctx| command(ctx, handle));
        if let Some(session) = policy {
            c.flush_session(session);
        }
        result.map_err(|e| TpmError::tpm(op, e))
    }

    /// Where the key is and how it is authorized, for `Debug`.
    pub(crate) fn describe(&self) -> (String, String) {
        let source = match &self.source {
            KeySource::Persistent(h) => format!("persistent {h:#010x}"),
            KeySource::File { parent, .. } => format!("key file under {parent:#010x}"),
        };
        let authorization = match &self.authorization {
            Authorization::AuthValue if self.password.is_some() => "password".to_owned(),
            Authorization::AuthValue => "empty auth".to_owned(),
            Authorization::Steps(steps) => format!("policy {steps:?}"),
            Authorization::Custom(custom) => format!("custom policy {custom:?}"),
        };
        (source, authorization)
    }
}

impl RootKey for TpmRootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        let digest = self.key.tpm.run(|c| self.hmac_in(c, date.as_bytes()))?;
        DateKey::from_slice(digest.value())
    }
}

impl Drop for LoadedKey {
    fn drop(&mut self) {
        if matches!(self.source, KeySource::File { .. }) {
            self.tpm.forget_key(self.id);
        }
    }
}

impl fmt::Debug for TpmRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, authorization) = self.key.describe();
        f.debug_struct("TpmRootKey")
            .field("tpm", &self.key.tpm.tcti())
            .field("key", &source)
            .field("authorization", &authorization)
            .field("access_key_id", &self.access_key_id)
            .finish()
    }
}

impl Tpm {
    fn forget_key(&self, id: u64) {
        // Never reconnect just to flush: a fresh connection has nothing loaded.
        self.with_open_connection(|c| c.forget_key(id));
    }
}

/// Runs a command that needs the parent `parent` loaded and authorized: the owner's
/// standard primary and persistent parents by their (empty) auth value, an EK by its policy
/// (PolicySecret of the endorsement hierarchy). Parameter encryption when it is on.
pub(crate) fn load_under<T>(
    c: &mut Connection,
    parent: u32,
    op: &'static str,
    command: impl FnOnce(&mut tss_esapi::Context, KeyHandle) -> tss_esapi::Result<T>,
) -> Result<T, TpmError> {
    let loaded = c.load_parent(parent)?;
    let policy = if loaded.is_ek {
        match c.ek_policy_session() {
            Ok(session) => Some(session),
            Err(e) => {
                if loaded.transient {
                    c.flush(loaded.handle);
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    let sessions = c.secret_sessions(policy);
    let result = c
        .ctx
        .execute_with_sessions(sessions, |ctx| command(ctx, loaded.handle));
    if let Some(session) = policy {
        c.flush_session(session);
    }
    if loaded.transient {
        c.flush(loaded.handle);
    }
    result.map_err(|e| TpmError::tpm(op, e))
}

/// Recognizes "this blob was encrypted for another parent": TPM_RC_INTEGRITY (the outer
/// HMAC fails) or TPM_RC_VALUE/SIZE/KEY (the seed or sensitive area decrypts to garbage).
/// For a duplication blob, libtpms also answers an RSA-OAEP failure to recover the seed with
/// TPM_RC_FAILURE; only there is that code read as "wrong TPM".
pub(crate) fn wrong_tpm_on_integrity(error: TpmError, what: &'static str) -> TpmError {
    use tss_esapi::constants::response_code::Tss2ResponseCodeKind as K;
    match error {
        TpmError::Command { source, .. }
            if matches!(
                crate::error::tpm_kind(&source),
                Some(K::Integrity | K::Value | K::Size | K::Key)
            ) || (what == DUPLICATION_BLOB
                && crate::error::tpm_kind(&source) == Some(K::Failure)) =>
        {
            TpmError::WrongTpm { what, source }
        }
        other => other,
    }
}

pub(crate) const DUPLICATION_BLOB: &str = "duplication blob";

fn check_policy_matches(public: &Public, steps: &[PolicyStep]) -> Result<(), TpmError> {
    let all_digests = steps
        .iter()
        .all(|s| !matches!(s, PolicyStep::Pcr { digest: None, .. }));
    if let Public::KeyedHash { auth_policy, .. } = public
        && all_digests
        && auth_policy.value() != policy_digest(steps)
    {
        return Err(TpmError::KeyFile {
            reason: "the policy listed in the key file does not produce the key's authPolicy"
                .into(),
        });
    }
    Ok(())
}

/// TPM2B_PUBLIC (size-prefixed) to a public area.
pub(crate) fn public_from_tpm2b(bytes: &[u8]) -> Result<Public, TpmError> {
    let body = tpm2b_body(bytes, "pubkey")?;
    Public::unmarshall(body).map_err(|_| TpmError::KeyFile {
        reason: "pubkey is not a TPMT_PUBLIC".into(),
    })
}

/// A public area as TPM2B_PUBLIC.
pub(crate) fn public_to_tpm2b(public: &Public) -> Result<Vec<u8>, TpmError> {
    let body = public
        .marshall()
        .map_err(|e| TpmError::tpm("marshal TPMT_PUBLIC", e))?;
    Ok(tpm2b(&body))
}

/// TPM2B_PRIVATE (size-prefixed) to the private blob.
pub(crate) fn private_from_tpm2b(bytes: &[u8]) -> Result<Private, TpmError> {
    let body = tpm2b_body(bytes, "privkey")?;
    Private::try_from(body.to_vec()).map_err(|_| TpmError::KeyFile {
        reason: "privkey is larger than a TPM2B_PRIVATE".into(),
    })
}

pub(crate) fn tpm2b(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

pub(crate) fn tpm2b_body<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], TpmError> {
    match bytes {
        [hi, lo, body @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == body.len() => {
            Ok(body)
        }
        _ => Err(TpmError::KeyFile {
            reason: format!("{what} is not a size-prefixed TPM2B structure"),
        }),
    }
}
