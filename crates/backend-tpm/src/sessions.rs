//! The TPM sessions of a [`Connection`]: the salted HMAC session that encrypts parameters,
//! policy sessions (salted when they prove a password), the EK's PolicySecret session, and
//! which sessions a command that uses a secret runs under.

use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{Digest, Nonce, SymmetricDefinition};

use crate::error::TpmError;
use crate::tpm::{Connection, hex, wrapper_error};

impl Connection {
    /// Starts an auth session; `encrypting` sessions carry decrypt+encrypt, all continue.
    pub(crate) fn start_session(
        &mut self,
        salt_key: Option<KeyHandle>,
        kind: SessionType,
        encrypting: bool,
    ) -> Result<AuthSession, TpmError> {
        let op = "TPM2_StartAuthSession";
        let symmetric = if encrypting {
            SymmetricDefinition::AES_128_CFB
        } else {
            SymmetricDefinition::Null
        };
        let session = self
            .ctx
            .execute_without_session(|ctx| {
                ctx.start_auth_session(
                    salt_key,
                    None,
                    None,
                    kind,
                    symmetric,
                    HashingAlgorithm::Sha256,
                )
            })
            .map_err(|e| TpmError::tpm(op, e))?
            .ok_or_else(|| TpmError::tpm(op, wrapper_error()))?;
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(encrypting)
            .with_encrypt(encrypting)
            .build();
        self.ctx
            .tr_sess_set_attributes(session, attributes, mask)
            .map_err(|e| TpmError::tpm(op, e))?;
        Ok(session)
    }

    /// The EK to salt a session with, created from its template and checked against the
    /// pinned name (flush it after starting the session).
    pub(crate) fn salt_key(&mut self) -> Result<KeyHandle, TpmError> {
        let Some((ek, pinned_name)) = self.salt.clone() else {
            return Err(TpmError::InvalidArgument {
                reason: "sessions are not salted on this connection".into(),
            });
        };
        let (handle, _, name) = self.create_ek(ek)?;
        if let Some(expected) = pinned_name
            && expected != name
        {
            self.flush(handle);
            return Err(TpmError::EkNameMismatch {
                expected: hex(&expected),
                found: hex(&name),
            });
        }
        Ok(handle)
    }

    /// A policy session for a key with a password, salted with the EK when sessions are
    /// salted: TPM2_PolicyAuthValue proves the password by an HMAC keyed with the session
    /// key, which for an unsalted session is the password alone, so whoever sees the bus
    /// could test guesses against it offline. Costs one EK creation per policy session (once
    /// per day and scope, with the derived-key cache).
    pub(crate) fn secret_policy_session(&mut self) -> Result<PolicySession, TpmError> {
        if self.salt.is_none() {
            return self.policy_session();
        }
        let ek = self.salt_key()?;
        let session = self.start_session(Some(ek), SessionType::Policy, false);
        self.flush(ek);
        PolicySession::try_from(session?).map_err(|e| TpmError::tpm("TPM2_StartAuthSession", e))
    }

    /// A fresh SHA-256 policy session (flush it with [`Connection::flush_session`]).
    pub(crate) fn policy_session(&mut self) -> Result<PolicySession, TpmError> {
        let session = self.start_session(None, SessionType::Policy, false)?;
        PolicySession::try_from(session).map_err(|e| TpmError::tpm("TPM2_StartAuthSession", e))
    }

    /// A policy session satisfying the endorsement key's policy, PolicySecret(endorsement).
    pub(crate) fn ek_policy_session(&mut self) -> Result<PolicySession, TpmError> {
        let session = self.policy_session()?;
        let result = self
            .ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.policy_secret(
                    session,
                    AuthHandle::Endorsement,
                    Nonce::default(),
                    Digest::default(),
                    Nonce::default(),
                    None,
                )
            });
        if let Err(e) = result {
            self.flush_session(session);
            return Err(TpmError::tpm("TPM2_PolicySecret (endorsement)", e));
        }
        Ok(session)
    }

    /// The sessions for a command with one authorized handle that carries secrets: the
    /// authorizing session (`policy`, else the salted session, else a password session)
    /// plus the salted session for encryption when a policy session authorizes.
    pub(crate) fn secret_sessions(
        &self,
        policy: Option<PolicySession>,
    ) -> (
        Option<AuthSession>,
        Option<AuthSession>,
        Option<AuthSession>,
    ) {
        match policy {
            Some(p) => (Some(p.into()), self.salted, None),
            None => (
                Some(self.salted.unwrap_or(AuthSession::Password)),
                None,
                None,
            ),
        }
    }
}
