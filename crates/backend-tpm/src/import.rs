//! Import ("checks in"): `"AWS4" + secret` becomes a keyedhash HMAC key under a storage
//! parent, written out as a TSS2 key file and/or made persistent.
//!
//! TPM2_Create with caller-supplied sensitive data is used rather than TPM2_Import: the TPM
//! encrypts the key to the parent itself, so the key keeps fixedTPM and fixedParent (which
//! TPM2_Import refuses). With session encryption on, the secret crosses the transport inside
//! an AES-CFB-encrypted parameter of a session salted to the EK.

use sha2::{Digest as _, Sha256};
use sigv4_core::RootSecret;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::PersistentTpmHandle;
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::resource_handles::Provision;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Auth, CapabilityData, Digest, SensitiveData};
use zeroize::Zeroizing;

use crate::error::{TpmError, tpm_kind};
use crate::key::{
    MAX_PASSWORD, load_under, private_from_tpm2b, public_from_tpm2b, public_to_tpm2b, tpm2b,
    wrong_tpm_on_integrity,
};
use crate::keyfile::{KeyKind, OWNER_STANDARD_PRIMARY, TpmKeyFile};
use crate::policy::{PcrSelection, PolicyStep, policy_digest};
use crate::templates::{self, check_hmac_key};
use crate::tpm::{Connection, Tpm};

/// What to import and how the key will be authorized.
#[derive(Clone)]
pub struct ImportOptions {
    access_key_id: String,
    password: Option<Zeroizing<Vec<u8>>>,
    pcrs: Option<PcrSelection>,
    parent: u32,
    persist_at: Option<u32>,
    replace: bool,
}

impl ImportOptions {
    /// Import for this access key id (recorded in the key file), under the owner's standard
    /// storage primary, with no password and no policy.
    pub fn new(access_key_id: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            password: None,
            pcrs: None,
            parent: OWNER_STANDARD_PRIMARY,
            persist_at: None,
            replace: false,
        }
    }

    /// Require this password (auth value, at most 32 bytes) to use the key.
    pub fn password(mut self, password: Zeroizing<Vec<u8>>) -> Self {
        self.password = Some(password);
        self
    }

    /// Bind the key to the current values of these PCRs (SHA-256 bank): it works only while
    /// they hold those values. With a password too, both are required.
    pub fn pcr_policy(mut self, pcrs: PcrSelection) -> Self {
        self.pcrs = Some(pcrs);
        self
    }

    /// Create the key under this persistent storage key instead of the standard primary.
    pub fn parent(mut self, handle: u32) -> Self {
        self.parent = handle;
        self
    }

    /// Also make the key persistent at this handle (0x81000000..=0x817fffff, owner range).
    pub fn persist_at(mut self, handle: u32) -> Self {
        self.persist_at = Some(handle);
        self
    }

    /// If the [`ImportOptions::persist_at`] handle already holds an object, evict it and
    /// persist the new key there (see [`Tpm::persist_key_file`]). Without this, an occupied
    /// handle is [`TpmError::HandleInUse`].
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("access_key_id", &self.access_key_id)
            .field(
                "password",
                &self.password.as_ref().map(|_| "** redacted **"),
            )
            .field("pcrs", &self.pcrs)
            .field("parent", &format_args!("{:#010x}", self.parent))
            .field("persist_at", &self.persist_at)
            .field("replace", &self.replace)
            .finish()
    }
}

/// The result of an import: the key file (always) and the persistent handle (if asked).
#[derive(Clone, Debug)]
pub struct ImportedKey {
    /// The TSS2 key file; contains no secret in the clear. Save it with
    /// [`TpmKeyFile::to_pem`].
    pub key_file: TpmKeyFile,
    /// Where the key was made persistent, if [`ImportOptions::persist_at`] was given.
    pub persistent_handle: Option<u32>,
}

impl Tpm {
    /// Imports `"AWS4" + secret` as an HMAC-SHA256 key. The secret never leaves the TPM again.
    pub fn import(
        &self,
        secret: &RootSecret,
        options: &ImportOptions,
    ) -> Result<ImportedKey, TpmError> {
        if options
            .password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PASSWORD)
        {
            return Err(TpmError::InvalidArgument {
                reason: format!("a key password is at most {MAX_PASSWORD} bytes"),
            });
        }
        self.run(|c| import_in(c, secret, options))
    }
}

fn import_in(
    c: &mut Connection,
    secret: &RootSecret,
    options: &ImportOptions,
) -> Result<ImportedKey, TpmError> {
    let mut steps = Vec::new();
    if let Some(selection) = &options.pcrs {
        steps.push(PolicyStep::Pcr {
            selection: selection.clone(),
            digest: Some(pcr_values_digest(c, selection)?),
        });
        if options.password.is_some() {
            steps.push(PolicyStep::AuthValue);
        }
    }
    let op = "TPM2_Create (HMAC key)";
    let auth_policy = if steps.is_empty() {
        None
    } else {
        Some(Digest::try_from(policy_digest(&steps).to_vec()).map_err(|e| TpmError::tpm(op, e))?)
    };
    let template = templates::hmac_key(auth_policy, options.password.is_some())
        .map_err(|e| TpmError::tpm(op, e))?;
    let auth = options
        .password
        .as_ref()
        .map(|p| Auth::try_from(p.to_vec()))
        .transpose()
        .map_err(|e| TpmError::tpm(op, e))?;
    let sensitive =
        SensitiveData::try_from(secret.expose().to_vec()).map_err(|e| TpmError::tpm(op, e))?;
    let created = load_under(c, options.parent, op, |ctx, parent| {
        ctx.create(parent, template, auth, Some(sensitive), None, None)
    })?;

    let mut key_file = TpmKeyFile {
        kind: KeyKind::Loadable,
        secret: None,
        empty_auth: options.password.is_none(),
        policy: steps.iter().map(PolicyStep::to_command).collect(),
        description: None,
        access_key_id: None,
        parent: options.parent,
        public: public_to_tpm2b(&created.out_public)?,
        private: tpm2b(created.out_private.value()),
    };
    key_file.set_access_key_id(&options.access_key_id)?;

    if let Some(handle) = options.persist_at {
        persist(
            c,
            options.parent,
            &created.out_public,
            created.out_private,
            handle,
            options.replace,
        )?;
    }
    Ok(ImportedKey {
        key_file,
        persistent_handle: options.persist_at,
    })
}

/// SHA-256 over the selected PCRs' current values, in ascending PCR order (as PolicyPCR).
fn pcr_values_digest(c: &mut Connection, selection: &PcrSelection) -> Result<[u8; 32], TpmError> {
    let op = "TPM2_PCR_Read";
    let list = selection.to_list()?;
    let (_, read, values) = c
        .ctx
        .execute_without_session(|ctx| ctx.pcr_read(list.clone()))
        .map_err(|e| TpmError::tpm(op, e))?;
    if read != list || values.value().len() != selection.indices().len() {
        return Err(TpmError::InvalidArgument {
            reason: format!(
                "the TPM did not return all of PCRs {:?} in the sha256 bank (is the bank allocated?)",
                selection.indices()
            ),
        });
    }
    let mut h = Sha256::new();
    for value in values.value() {
        h.update(value.value());
    }
    Ok(h.finalize().into())
}

/// Makes the key persistent at `handle`. An occupied handle is evicted first when
/// `replace`, else refused. TPM 2.0 has no atomic replace: a crash between the eviction and
/// TPM2_EvictControl of the new key leaves the handle empty, which the next `replace` (from
/// any state: empty, old key, new key) fills.
fn persist(
    c: &mut Connection,
    parent: u32,
    public: &tss_esapi::structures::Public,
    private: tss_esapi::structures::Private,
    handle: u32,
    replace: bool,
) -> Result<(), TpmError> {
    let persistent = persistent_handle(handle)?;
    if in_use(c, handle)? {
        if !replace {
            return Err(TpmError::HandleInUse {
                handle,
                source: None,
            });
        }
        evict_in(c, handle)?;
    }
    c.evict_cached_key();
    let loaded = load_under(c, parent, "TPM2_Load", |ctx, parent| {
        ctx.load(parent, private, public.clone())
    })
    .map_err(|e| wrong_tpm_on_integrity(e, "key file"))?;
    let result = c
        .ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.evict_control(
                Provision::Owner,
                loaded.into(),
                Persistent::Persistent(persistent),
            )
        });
    c.flush(loaded);
    c.forget_persistent(handle);
    result.map(|_| ()).map_err(|e| {
        use tss_esapi::constants::response_code::Tss2ResponseCodeKind as K;
        match tpm_kind(&e) {
            // Taken between the check and now (another client).
            Some(K::NvDefined) => TpmError::HandleInUse {
                handle,
                source: Some(e),
            },
            _ => TpmError::tpm("TPM2_EvictControl", e),
        }
    })
}

fn persistent_handle(handle: u32) -> Result<PersistentTpmHandle, TpmError> {
    PersistentTpmHandle::new(handle).map_err(|_| TpmError::InvalidArgument {
        reason: format!("{handle:#010x} is not a persistent handle (0x81000000..=0x81ffffff)"),
    })
}

/// Whether `handle` holds an object, asked with TPM2_GetCapability (which, unlike looking
/// the handle up, does not fail, so libtss2 logs nothing).
fn in_use(c: &mut Connection, handle: u32) -> Result<bool, TpmError> {
    persistent_handle(handle)?;
    let op = "TPM2_GetCapability (persistent handles)";
    let (data, _) = c
        .ctx
        .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, handle, 1))
        .map_err(|e| TpmError::tpm(op, e))?;
    Ok(match data {
        CapabilityData::Handles(list) => list
            .into_inner()
            .into_iter()
            .any(|h| u32::from(h) == handle),
        _ => false,
    })
}

fn evict_in(c: &mut Connection, handle: u32) -> Result<(), TpmError> {
    let persistent = persistent_handle(handle)?;
    let object = c.persistent(handle)?;
    let result = c
        .ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.evict_control(Provision::Owner, object, Persistent::Persistent(persistent))
        });
    c.forget_persistent(handle);
    result
        .map(|_| ())
        .map_err(|e| TpmError::tpm("TPM2_EvictControl", e))
}

impl Tpm {
    /// Removes the key at a persistent handle (TPM2_EvictControl, owner authorization empty).
    pub fn evict_persistent(&self, handle: u32) -> Result<(), TpmError> {
        self.run(|c| evict_in(c, handle))
    }

    /// Whether a persistent handle holds an object (any object, not only keyhold keys).
    pub fn persistent_in_use(&self, handle: u32) -> Result<bool, TpmError> {
        self.run(|c| in_use(c, handle))
    }

    /// Makes the key of a loadable key file (as [`Tpm::import`] or
    /// [`Tpm::create_signing_key`] return it: an HMAC root key or a Roles Anywhere signing
    /// key) persistent at `handle`. An occupied handle is evicted first when `replace`, else refused with
    /// [`TpmError::HandleInUse`]. With `replace`, a crash between the eviction and the
    /// persisting leaves the handle empty; calling this again with `replace` succeeds.
    pub fn persist_key_file(
        &self,
        file: &TpmKeyFile,
        handle: u32,
        replace: bool,
    ) -> Result<(), TpmError> {
        if file.kind != KeyKind::Loadable {
            return Err(TpmError::KeyFile {
                reason: "an importable duplication blob cannot be made persistent: import it first"
                    .into(),
            });
        }
        let public = public_from_tpm2b(&file.public)?;
        if let Err(not_hmac) = check_hmac_key(&public) {
            crate::signing::check_signing_key(&public).map_err(|_| not_hmac)?;
        }
        let private = private_from_tpm2b(&file.private)?;
        self.run(|c| persist(c, file.parent, &public, private.clone(), handle, replace))
    }
}
