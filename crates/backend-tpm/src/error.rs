//! The crate's one error type, and the reading of TSS2 response codes into it.
//!
//! A TSS2 response code is a 32-bit value whose bits 16..24 name the layer that produced it
//! (0 = the TPM itself, 10 = the TCTI transport, ...). Only TPM-layer codes say something about
//! keys and policies; TCTI-layer codes mean the connection is gone, which [`crate::Tpm`] treats
//! as "reconnect once and retry".

use sigv4_core::{KeyError, KeyErrorKind};
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};

/// Everything that can go wrong talking to a TPM. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The TCTI string could not be parsed.
    #[error("TCTI '{tcti}' is not valid: use swtpm:host=H,port=P, device:/dev/tpmrm0 or tabrmd")]
    InvalidTcti {
        /// The string given.
        tcti: String,
        /// What tss-esapi said.
        #[source]
        source: tss_esapi::Error,
    },

    /// No TPM answered at the TCTI (not running, wrong port, no such device, no permission).
    #[error("could not connect to the TPM at {tcti}: {hint}")]
    Unreachable {
        /// The TCTI used.
        tcti: String,
        /// What to check, for this kind of TCTI.
        hint: &'static str,
        /// What the transport said: the socket's or device's I/O error, or libtss2's TCTI
        /// response code.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The key's password (auth value) is wrong.
    #[error(
        "the TPM refused the key's password during {op} (TPM_RC_AUTH_FAIL/BAD_AUTH): give the password set at import with --tpm-password-file or KEYHOLD_TPM_PASSWORD; repeated failures lock the key out"
    )]
    WrongPassword {
        /// What was being done.
        op: &'static str,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// A PCR named by the key's policy no longer holds the value it had at import.
    #[error(
        "the key is bound to PCRs {pcrs:?} (sha256 bank) and their values changed since import: the machine's measured state differs; re-import the key (keyhold import --replace --tpm-pcrs ...) to bind it to the new state"
    )]
    PcrChanged {
        /// The PCR indices of the policy.
        pcrs: Vec<u8>,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// A policy session did not satisfy the key's authPolicy.
    #[error(
        "the key's policy was not satisfied during {op} (TPM_RC_POLICY_FAIL): give the same --tpm-pcrs (and password, if any) the key was imported with"
    )]
    PolicyFailed {
        /// What was being done.
        op: &'static str,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// The key needs a policy session and none was given (userWithAuth is clear).
    #[error(
        "the key accepts only its policy, not a password alone (TPM_RC_AUTH_UNAVAILABLE during {op}): use its key file (tpm:file=, which records the policy), or give the PCRs it was imported with (--tpm-pcrs)"
    )]
    PolicyRequired {
        /// What was being done.
        op: &'static str,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// The TPM is in dictionary-attack lockout after too many wrong passwords.
    #[error(
        "the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT): wait for the lockout interval, or clear it with the lockout authorization (tpm2_dictionarylockout -c)"
    )]
    Lockout {
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// The endorsement key does not have the name the caller pinned: possibly another TPM.
    #[error(
        "the TPM's endorsement key name is {found} but {expected} was pinned: this is not the expected TPM (or something sits between us and it); refusing to send secrets"
    )]
    EkNameMismatch {
        /// The pinned name, hex.
        expected: String,
        /// The name the TPM's EK has, hex.
        found: String,
    },

    /// The object is not an RSA or ECC signing key Roles Anywhere takes.
    #[error("the TPM object is not usable as a Roles Anywhere signing key: {reason}")]
    UnsuitableSigningKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The object is not a keyhold HMAC key (type, scheme or attributes are wrong).
    #[error("the TPM object is not usable as a SigV4 root key: {reason}")]
    UnsuitableKey {
        /// What is wrong with it.
        reason: String,
    },

    /// Nothing is stored at the persistent handle.
    #[error(
        "no object at persistent handle {handle:#010x}: check the handle (tpm2_getcap handles-persistent) or import the key there (keyhold import --key tpm:handle={handle:#010x})"
    )]
    KeyNotFound {
        /// The handle asked for.
        handle: u32,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// A persistent handle already holds an object, and replacing it was not asked for.
    #[error(
        "persistent handle {handle:#010x} already holds a key: pass --replace to replace it, or choose another handle"
    )]
    HandleInUse {
        /// The handle asked for.
        handle: u32,
        /// The TPM's answer, when the TPM refused (TPM_RC_NV_DEFINED); none when keyhold
        /// found the handle taken before asking.
        #[source]
        source: Option<tss_esapi::Error>,
    },

    /// A TSS2 PEM key file could not be read.
    #[error("not a usable TSS2 key file: {reason}")]
    KeyFile {
        /// What is wrong with it.
        reason: String,
    },

    /// A key file or duplication blob was made for another TPM (or another parent).
    #[error(
        "the {what} was made for another TPM or parent (or altered, or this TPM was cleared since): a key file works only on the TPM that created it; a duplication blob only on the TPM whose EK public key it was wrapped for"
    )]
    WrongTpm {
        /// "key file" or "duplication blob".
        what: &'static str,
        /// The TPM's answer.
        #[source]
        source: tss_esapi::Error,
    },

    /// Input the caller passed is out of range.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("could not {op} '{path}'")]
    Io {
        /// "read" or "write".
        op: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// Any other TPM failure, named by the operation.
    #[error("TPM command {op} failed")]
    Command {
        /// The command or step that failed.
        op: &'static str,
        /// The TSS2 response code.
        #[source]
        source: tss_esapi::Error,
    },
}

/// Where in the use of a TPM key a failure happened, typed so that callers act on it (a
/// diagnosis, a fix to suggest) without matching every [`TpmError`] variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmStage {
    /// Naming the TPM: the TCTI string.
    Tcti,
    /// Reaching the TPM and trusting it: the connection, the EK name.
    Connect,
    /// Finding and loading the key: the file or handle, its attributes, its parent.
    Key,
    /// Authorizing the key's use: password, PCR policy, dictionary-attack lockout.
    Authorize,
    /// A TPM command after that.
    Command,
}

impl TpmError {
    /// The stage that failed.
    pub fn stage(&self) -> TpmStage {
        match self {
            Self::InvalidTcti { .. } => TpmStage::Tcti,
            Self::Unreachable { .. } | Self::EkNameMismatch { .. } => TpmStage::Connect,
            Self::WrongPassword { .. }
            | Self::PcrChanged { .. }
            | Self::PolicyFailed { .. }
            | Self::PolicyRequired { .. }
            | Self::Lockout { .. } => TpmStage::Authorize,
            Self::UnsuitableSigningKey { .. }
            | Self::UnsuitableKey { .. }
            | Self::KeyNotFound { .. }
            | Self::HandleInUse { .. }
            | Self::KeyFile { .. }
            | Self::WrongTpm { .. }
            | Self::InvalidArgument { .. }
            | Self::Io { .. } => TpmStage::Key,
            Self::Command { .. } => TpmStage::Command,
        }
    }

    /// Wraps a tss-esapi error from `op`, recognizing the answers callers act on.
    pub(crate) fn tpm(op: &'static str, source: tss_esapi::Error) -> Self {
        match tpm_kind(&source) {
            Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
                TpmError::WrongPassword { op, source }
            }
            Some(Tss2ResponseCodeKind::PolicyFail) => TpmError::PolicyFailed { op, source },
            Some(Tss2ResponseCodeKind::AuthUnavailable) => TpmError::PolicyRequired { op, source },
            Some(Tss2ResponseCodeKind::Lockout) => TpmError::Lockout { source },
            _ => TpmError::Command { op, source },
        }
    }

    /// True when the transport failed or the TPM restarted: reconnecting may help.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            TpmError::Unreachable { .. } => true,
            TpmError::Command { source, .. } => {
                is_transport_error(source) || is_tpm_restart(source)
            }
            _ => false,
        }
    }

    /// True when the TPM has no free object or session slot (TPM_RC_OBJECT_MEMORY,
    /// TPM_RC_SESSION_MEMORY).
    pub(crate) fn is_out_of_slots(&self) -> bool {
        match self {
            TpmError::Command { source, .. } => matches!(
                tpm_kind(source),
                Some(Tss2ResponseCodeKind::ObjectMemory | Tss2ResponseCodeKind::SessionMemory)
            ),
            _ => false,
        }
    }

    pub(crate) fn kind(&self) -> KeyErrorKind {
        match self {
            TpmError::Unreachable { .. } => KeyErrorKind::Unavailable,
            TpmError::WrongPassword { .. }
            | TpmError::PcrChanged { .. }
            | TpmError::PolicyFailed { .. }
            | TpmError::PolicyRequired { .. }
            | TpmError::Lockout { .. }
            | TpmError::EkNameMismatch { .. } => KeyErrorKind::Denied,
            TpmError::UnsuitableKey { .. }
            | TpmError::UnsuitableSigningKey { .. }
            | TpmError::KeyFile { .. } => KeyErrorKind::Unsuitable,
            TpmError::KeyNotFound { .. } => KeyErrorKind::NotFound,
            TpmError::Command { source, .. } if is_transport_error(source) => {
                KeyErrorKind::Unavailable
            }
            _ => KeyErrorKind::Device,
        }
    }
}

impl From<TpmError> for KeyError {
    fn from(error: TpmError) -> Self {
        let kind = error.kind();
        KeyError::with_source(kind, "the TPM could not compute kDate", error)
    }
}

/// A libtss2 response code from below the TPM (the TCTI or ESAPI layer), printed as the
/// code and the meaning of its base code rather than tss-esapi's "response code not
/// recognized".
#[derive(Debug)]
pub(crate) struct StackCode(pub(crate) u32);

impl std::fmt::Display for StackCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // TSS2_BASE_RC_* of tss2_common.h that a connection can meet.
        let meaning = match self.0 & 0xffff {
            8 => "no connection",
            9 => "try again",
            10 => "input/output error",
            12 => "not permitted",
            17 => "malformed response",
            _ => "see tss2_common.h",
        };
        let layer = match (self.0 >> 16) & 0xff {
            LAYER_TCTI => "TCTI",
            7 => "ESAPI",
            8 => "SAPI",
            _ => "TSS",
        };
        write!(f, "libtss2 {layer} response code {:#x}: {meaning}", self.0)
    }
}

impl std::error::Error for StackCode {}

/// The full 32-bit TSS2 response code, when the error came from the TSS stack.
pub(crate) fn response_code(error: &tss_esapi::Error) -> Option<u32> {
    use bitfield::BitRange;
    match error {
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatZero(rc)) => {
            Some(BitRange::<u32>::bit_range(rc, 31, 0))
        }
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(rc)) => {
            Some(BitRange::<u32>::bit_range(rc, 31, 0))
        }
        _ => None,
    }
}

/// The TSS2 layer of a response code (0 = TPM, 10 = TCTI, 7 = ESAPI, ...).
fn layer(error: &tss_esapi::Error) -> Option<u32> {
    response_code(error).map(|rc| (rc >> 16) & 0xff)
}

const LAYER_TPM: u32 = 0;
const LAYER_TCTI: u32 = 10;

/// The kind of a response code that came from the TPM itself (not the software stack).
pub(crate) fn tpm_kind(error: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match error {
        tss_esapi::Error::Tss2Error(rc) if layer(error) == Some(LAYER_TPM) => rc.kind(),
        _ => None,
    }
}

/// True when the TPM no longer knows a handle keyhold loaded (TPM_RC_REFERENCE_H*/S*), or
/// was not started (TPM_RC_INITIALIZE): it restarted under us. The swtpm TCTI reconnects
/// its socket by itself, so a restart shows up as these rather than as a transport error.
fn is_tpm_restart(error: &tss_esapi::Error) -> bool {
    use Tss2ResponseCodeKind as K;
    matches!(
        tpm_kind(error),
        Some(
            K::ReferenceH0
                | K::ReferenceH1
                | K::ReferenceH2
                | K::ReferenceH3
                | K::ReferenceH4
                | K::ReferenceH5
                | K::ReferenceH6
                | K::ReferenceS0
                | K::ReferenceS1
                | K::ReferenceS2
                | K::ReferenceS3
                | K::ReferenceS4
                | K::ReferenceS5
                | K::ReferenceS6
                | K::Initialize
        )
    )
}

/// True for failures of the transport (socket closed, device gone).
pub(crate) fn is_transport_error(error: &tss_esapi::Error) -> bool {
    layer(error) == Some(LAYER_TCTI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_key_error_kinds() {
        let e = TpmError::EkNameMismatch {
            expected: "00".into(),
            found: "11".into(),
        };
        assert_eq!(KeyError::from(e).kind(), KeyErrorKind::Denied);
        let e = TpmError::UnsuitableKey { reason: "x".into() };
        assert_eq!(KeyError::from(e).kind(), KeyErrorKind::Unsuitable);
    }

    #[test]
    fn every_error_names_its_stage() {
        let mismatch = TpmError::EkNameMismatch {
            expected: "00".into(),
            found: "11".into(),
        };
        assert_eq!(mismatch.stage(), TpmStage::Connect);
        let file = TpmError::KeyFile { reason: "x".into() };
        assert_eq!(file.stage(), TpmStage::Key);
        let argument = TpmError::InvalidArgument { reason: "x".into() };
        assert_eq!(argument.stage(), TpmStage::Key);
    }
}
