//! Authorization policies: PCR binding, auth value, and a trait for policies of the caller's own.
//!
//! A key's `authPolicy` is a hash chain over policy commands: for each command,
//! `digest = SHA-256(digest || TPM_CC || parameters)`. keyhold computes it in software at import
//! (from the PCR values the TPM reports) and writes the commands into the key file's `policy`
//! field, so a loader replays them in the same order on a policy session.

use std::fmt;

use sha2::{Digest as _, Sha256};
use tss_esapi::Context;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::PolicySession;
use tss_esapi::structures::{Digest, PcrSelectionList, PcrSlot};

use crate::error::{TpmError, tpm_kind};
use crate::keyfile::PolicyCommand;

const TPM_CC_POLICY_PCR: u32 = 0x0000_017f;
const TPM_CC_POLICY_AUTH_VALUE: u32 = 0x0000_016b;
const TPM_ALG_SHA256: u16 = 0x000b;
/// PCRs 0..=23: a three-byte selection bitmap, as every PC-client TPM uses.
const PCR_SELECT_BYTES: usize = 3;

/// A set of PCRs in the SHA-256 bank.
#[derive(Clone, PartialEq, Eq)]
pub struct PcrSelection {
    pcrs: Vec<u8>,
}

impl PcrSelection {
    /// PCRs of the SHA-256 bank, by index (0..=23). Order and repeats do not matter.
    pub fn sha256(pcrs: &[u8]) -> Result<Self, TpmError> {
        let mut pcrs = pcrs.to_vec();
        pcrs.sort_unstable();
        pcrs.dedup();
        if pcrs.is_empty() || pcrs.iter().any(|&p| usize::from(p) >= PCR_SELECT_BYTES * 8) {
            return Err(TpmError::InvalidArgument {
                reason: format!("a PCR selection needs one or more PCRs in 0..=23, got {pcrs:?}"),
            });
        }
        Ok(Self { pcrs })
    }

    /// The selected PCR indices, ascending.
    pub fn indices(&self) -> &[u8] {
        &self.pcrs
    }

    /// TPML_PCR_SELECTION with one SHA-256 entry.
    fn marshal(&self) -> Vec<u8> {
        let mut bitmap = [0u8; PCR_SELECT_BYTES];
        for &p in &self.pcrs {
            bitmap[usize::from(p / 8)] |= 1 << (p % 8);
        }
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend(TPM_ALG_SHA256.to_be_bytes());
        out.push(PCR_SELECT_BYTES as u8);
        out.extend(bitmap);
        out
    }

    fn unmarshal(bytes: &[u8]) -> Option<Self> {
        let [0, 0, 0, 1, 0x00, 0x0b, 3, b0, b1, b2] = *bytes else {
            return None;
        };
        let bitmap = u32::from_le_bytes([b0, b1, b2, 0]);
        let pcrs: Vec<u8> = (0u8..24).filter(|p| bitmap & (1 << p) != 0).collect();
        Self::sha256(&pcrs).ok()
    }

    /// The selection as tss-esapi wants it.
    pub(crate) fn to_list(&self) -> Result<PcrSelectionList, TpmError> {
        let slots = self
            .pcrs
            .iter()
            .map(|&p| PcrSlot::try_from(1u32 << p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TpmError::tpm("PCR selection", e))?;
        PcrSelectionList::builder()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(|e| TpmError::tpm("PCR selection", e))
    }
}

impl fmt::Debug for PcrSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{:?}", self.pcrs)
    }
}

/// One step of a built-in policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PolicyStep {
    /// TPM2_PolicyPCR. With a digest (of the PCR values at import) the TPM refuses at once if
    /// the PCRs moved; without one it uses the current values and the key refuses later.
    Pcr {
        selection: PcrSelection,
        digest: Option<[u8; 32]>,
    },
    /// TPM2_PolicyAuthValue: the key's password, proven by HMAC, is also required.
    AuthValue,
}

impl PolicyStep {
    pub(crate) fn to_command(&self) -> PolicyCommand {
        match self {
            PolicyStep::Pcr { selection, digest } => {
                let digest = digest.as_ref().map_or(&[][..], |d| &d[..]);
                let mut body = (digest.len() as u16).to_be_bytes().to_vec();
                body.extend_from_slice(digest);
                body.extend(selection.marshal());
                PolicyCommand {
                    command_code: TPM_CC_POLICY_PCR,
                    command_policy: body,
                }
            }
            PolicyStep::AuthValue => PolicyCommand {
                command_code: TPM_CC_POLICY_AUTH_VALUE,
                command_policy: Vec::new(),
            },
        }
    }

    pub(crate) fn from_command(command: &PolicyCommand) -> Result<Self, TpmError> {
        let unsupported = || TpmError::KeyFile {
            reason: format!(
                "policy command {:#x} is not supported (keyhold replays TPM2_PolicyPCR on the sha256 bank and TPM2_PolicyAuthValue); use a custom policy",
                command.command_code
            ),
        };
        match command.command_code {
            TPM_CC_POLICY_AUTH_VALUE if command.command_policy.is_empty() => {
                Ok(PolicyStep::AuthValue)
            }
            TPM_CC_POLICY_PCR => {
                let body = &command.command_policy;
                let (digest, selection) = match body.as_slice() {
                    [0, 32, rest @ ..] if rest.len() > 32 => {
                        let (d, s) = rest.split_at(32);
                        (Some(d.try_into().map_err(|_| unsupported())?), s)
                    }
                    [0, 0, rest @ ..] => (None, rest),
                    _ => return Err(unsupported()),
                };
                let selection = PcrSelection::unmarshal(selection).ok_or_else(unsupported)?;
                Ok(PolicyStep::Pcr { selection, digest })
            }
            _ => Err(unsupported()),
        }
    }

    /// Extends a policy digest by this step (TPM 2.0 Part 3, PolicyPCR and PolicyAuthValue).
    fn extend(&self, digest: &mut [u8; 32]) {
        let mut h = Sha256::new();
        h.update(*digest);
        match self {
            PolicyStep::Pcr { selection, digest } => {
                h.update(TPM_CC_POLICY_PCR.to_be_bytes());
                h.update(selection.marshal());
                h.update(digest.unwrap_or_default());
            }
            PolicyStep::AuthValue => h.update(TPM_CC_POLICY_AUTH_VALUE.to_be_bytes()),
        }
        *digest = h.finalize().into();
    }
}

/// The authPolicy a key must carry for `steps` to satisfy it.
pub(crate) fn policy_digest(steps: &[PolicyStep]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    for step in steps {
        step.extend(&mut digest);
    }
    digest
}

/// Replays `steps` on a policy session.
pub(crate) fn run_steps(
    ctx: &mut Context,
    session: PolicySession,
    steps: &[PolicyStep],
) -> Result<(), TpmError> {
    for step in steps {
        match step {
            PolicyStep::Pcr { selection, digest } => {
                let expected = Digest::try_from(digest.map(Vec::from).unwrap_or_default())
                    .map_err(|e| TpmError::tpm("TPM2_PolicyPCR", e))?;
                ctx.execute_without_session(|ctx| {
                    ctx.policy_pcr(session, expected, selection.to_list()?)
                        .map_err(|e| match tpm_kind(&e) {
                            Some(Tss2ResponseCodeKind::Value) => TpmError::PcrChanged {
                                pcrs: selection.indices().to_vec(),
                                source: e,
                            },
                            _ => TpmError::tpm("TPM2_PolicyPCR", e),
                        })
                })?;
            }
            PolicyStep::AuthValue => ctx
                .execute_without_session(|ctx| ctx.policy_auth_value(session))
                .map_err(|e| TpmError::tpm("TPM2_PolicyAuthValue", e))?,
        }
    }
    Ok(())
}

/// A policy of the caller's own, for keys whose authPolicy keyhold's built-in steps do not
/// cover (for example PolicySigned, PolicyOR, or PolicyPCR on another bank).
///
/// keyhold starts a fresh SHA-256 policy session, calls [`PolicyAuthorizer::authorize`] on
/// it, then runs TPM2_HMAC with it; the session is flushed afterwards. If the policy includes
/// TPM2_PolicyAuthValue, pass the password with [`crate::KeyAuth::password`] too: keyhold sets
/// it on the key so the session's HMAC covers it.
pub trait PolicyAuthorizer: Send + Sync + fmt::Debug {
    /// Runs the policy commands on `session` so its digest equals the key's authPolicy.
    fn authorize(
        &self,
        context: &mut Context,
        session: PolicySession,
    ) -> Result<(), tss_esapi::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_step_round_trips_through_a_key_file_command() {
        let step = PolicyStep::Pcr {
            selection: PcrSelection::sha256(&[16, 0, 7, 23, 7]).unwrap(),
            digest: Some([0xab; 32]),
        };
        let command = step.to_command();
        assert_eq!(command.command_code, 0x17f);
        assert_eq!(
            &command.command_policy[34..],
            &[0, 0, 0, 1, 0x00, 0x0b, 3, 0b1000_0001, 0, 0b1000_0001]
        );
        assert_eq!(PolicyStep::from_command(&command).unwrap(), step);
        let auth = PolicyStep::AuthValue;
        assert_eq!(PolicyStep::from_command(&auth.to_command()).unwrap(), auth);
    }

    #[test]
    fn auth_value_policy_digest_matches_the_spec_value() {
        // TPM2_PolicyAuthValue alone, SHA-256 (TPM 2.0 Part 3 / tpm2_policyauthvalue output).
        let hex: String = policy_digest(&[PolicyStep::AuthValue])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e"
        );
    }

    #[test]
    fn selections_are_validated() {
        assert!(PcrSelection::sha256(&[]).is_err());
        assert!(PcrSelection::sha256(&[24]).is_err());
        assert_eq!(PcrSelection::sha256(&[3, 1, 3]).unwrap().indices(), &[1, 3]);
    }
}
