//! [`Pkcs11X509Key`]: sigv4-core's X.509 seam on a private key in a PKCS#11 token, for IAM
//! Roles Anywhere. The key signs in the token; the certificate can come from the token too.
//!
//! - RSA signs with `CKM_SHA256_RSA_PKCS` (RSASSA-PKCS1-v1_5 over SHA-256, hashed in the
//!   token).
//! - EC signs with `CKM_ECDSA` over a SHA-256 computed here (SoftHSM, like many tokens, has
//!   no `CKM_ECDSA_SHA256`), and the token's raw `r‖s` is written as the DER
//!   `ECDSA-Sig-Value` Roles Anywhere reads (RFC 3279 2.2.3).
//!
//! A URI of `type=private` names the key; `type=cert` names the certificate, and the key is
//! the private key with the certificate's `CKA_ID`, else the one whose public key is the
//! certificate's. A URI that names no token picks the one token holding what it names
//! (`x509_find`).
//!
//! A key with `CKA_ALWAYS_AUTHENTICATE` (a YubiKey's PIV slot 9c) takes the user PIN again
//! between `C_SignInit` and the signature (a context-specific login). cryptoki 0.12 offers
//! that order only with the multi-part calls, so such a key signs RSA through
//! `CKM_SHA256_RSA_PKCS` and EC through `CKM_ECDSA_SHA256`; an EC key on a token without
//! `CKM_ECDSA_SHA256` (SoftHSM) is refused when it opens, saying so: `CKM_ECDSA` is
//! single-part only, and a single-part `C_Sign` after `C_SignInit` and the login is a call
//! cryptoki 0.12 does not have (its `Session::sign` always starts with `C_SignInit`, which
//! resets the login the key demands).

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sigv4_core::{KeyError, X509Key, X509KeyKind, X509PublicKey};

use crate::Error;
use crate::error::{Step, rv};
use crate::module::Module;
use crate::objects;
use crate::token::{self, Token};
use crate::uri::{ObjectType, Pkcs11Uri};

/// A private key in a PKCS#11 token that signs Roles Anywhere requests.
pub struct Pkcs11X509Key {
    module: Module,
    token: Token,
    pin: Option<SecretString>,
    kind: X509KeyKind,
    /// The key as found: label and id, for messages.
    describe: String,
    /// Its `CKA_LABEL` and `CKA_ID`, to find it again in a new session.
    key_label: String,
    key_id: Vec<u8>,
    public: Option<X509PublicKey>,
    /// `CKA_ALWAYS_AUTHENTICATE`: the PIN is needed for every signature.
    always_authenticate: bool,
    certificate: Option<Vec<u8>>,
    /// One session: a Roles Anywhere key signs once per credential refresh.
    state: Mutex<(Session, ObjectHandle)>,
    uri: String,
    repairs: AtomicU64,
}

impl fmt::Debug for Pkcs11X509Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11X509Key")
            .field("uri", &self.uri)
            .field("key", &self.describe)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One attribute of `object` as bytes (empty when the object lacks it).
fn bytes_attribute(
    session: &Session,
    token: &str,
    object: ObjectHandle,
    wanted: AttributeType,
) -> Result<Vec<u8>, Error> {
    let attributes = session
        .get_attributes(object, &[wanted])
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?;
    Ok(attributes
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) | Attribute::Id(v) | Attribute::EcParams(v) => Some(v),
            _ => None,
        })
        .unwrap_or_default())
}

/// The single object of `class` matching `label` and `id` (each `None` = any).
fn one_object(
    session: &Session,
    token: &str,
    class: ObjectClass,
    label: Option<&str>,
    id: Option<&[u8]>,
    what: &str,
) -> Result<ObjectHandle, Error> {
    let mut template = vec![Attribute::Class(class)];
    template.extend(label.map(|l| Attribute::Label(l.as_bytes().to_vec())));
    template.extend(id.map(|i| Attribute::Id(i.to_vec())));
    let found = objects::find(session, token, &template)?;
    let selector = Pkcs11Uri {
        object: label.map(str::to_owned),
        id: id.map(<[u8]>::to_vec),
        ..Pkcs11Uri::default()
    }
    .to_string();
    match found[..] {
        [one] => Ok(one),
        [] => Err(Error::KeyNotFound {
            token: token.to_owned(),
            selector: format!("{what} {selector}"),
        }),
        _ => Err(Error::AmbiguousKey {
            token: token.to_owned(),
            selector: format!("{what} {selector}"),
            count: found.len(),
            matches: "add id= or object= to the URI".into(),
        }),
    }
}

impl Pkcs11X509Key {
    /// Opens the private key a URI names (`type=private`, or `type=cert` for the key of
    /// that certificate), logging in with `pin` or the URI's PIN, and reads the token's
    /// certificate with the same `CKA_ID` when there is one.
    pub fn open(uri: &Pkcs11Uri, pin: Option<SecretString>) -> Result<Self, Error> {
        let module = Module::for_uri(uri)?;
        let what = crate::x509_find::object_selector(uri);
        let token = token::find_token_holding(&module, uri, &what, |token| {
            crate::x509_find::holds(&module, token, uri)
        })?;
        let pin = token::pin_for(uri, pin, &token.label)?;
        let session = module
            .ctx
            .open_ro_session_no_drop(token.slot)
            .map_err(|e| Error::token(&token.label, Step::OpenSession, e))?;
        token::login(&session, &token, pin.as_ref())?;
        let label = uri.object.as_deref();
        let (key, certificate) = match uri.object_type {
            Some(ObjectType::Cert) => {
                let cert = one_object(
                    &session,
                    &token.label,
                    ObjectClass::CERTIFICATE,
                    label,
                    uri.id.as_deref(),
                    "certificate",
                )?;
                let id = bytes_attribute(&session, &token.label, cert, AttributeType::Id)?;
                let der = bytes_attribute(&session, &token.label, cert, AttributeType::Value)?;
                let key = crate::x509_find::private_key_of_certificate(
                    &session,
                    &token.label,
                    &id,
                    &der,
                )?;
                (key, Some(der))
            }
            Some(ObjectType::Private) | None => {
                let key = one_object(
                    &session,
                    &token.label,
                    ObjectClass::PRIVATE_KEY,
                    label,
                    uri.id.as_deref(),
                    "private key",
                )?;
                let id = bytes_attribute(&session, &token.label, key, AttributeType::Id)?;
                let certificate = match id.is_empty() {
                    true => None,
                    false => objects::find(
                        &session,
                        &token.label,
                        &[
                            Attribute::Class(ObjectClass::CERTIFICATE),
                            Attribute::Id(id),
                        ],
                    )?
                    .first()
                    .map(|&cert| {
                        bytes_attribute(&session, &token.label, cert, AttributeType::Value)
                    })
                    .transpose()?,
                };
                (key, certificate)
            }
            Some(other) => {
                return Err(Error::InvalidUri {
                    reason: format!(
                        "a Roles Anywhere key is named by type=private (or type=cert for its \
                         certificate), not type={}",
                        other.as_str()
                    ),
                });
            }
        };
        let identity = objects::identity(&session, &token.label, key)?;
        let describe = objects::describe(&identity.label, &identity.id);
        let (kind, always_authenticate) = key_kind(&session, &token.label, key, &describe)?;
        if always_authenticate && pin.is_none() {
            return Err(Error::PinRequired {
                token: token.label.clone(),
            });
        }
        if always_authenticate && kind == X509KeyKind::Ecdsa {
            let mechanisms = module
                .ctx
                .get_mechanism_list(token.slot)
                .map_err(|e| Error::token(&token.label, Step::ListMechanisms, e))?;
            if !mechanisms.contains(&MechanismType::ECDSA_SHA256) {
                return Err(Error::KeyUnsuitable {
                    token: token.label.clone(),
                    key: describe,
                    reason: "it is an EC key that always authenticates \
                             (CKA_ALWAYS_AUTHENTICATE), and the token has no CKM_ECDSA_SHA256: \
                             its CKM_ECDSA needs the context-specific login before a \
                             single-part C_Sign, which keyhold's PKCS#11 library (cryptoki 0.12) \
                             cannot make; use a key without CKA_ALWAYS_AUTHENTICATE (YubiKey PIV \
                             slot 9a rather than 9c) or an RSA key"
                        .into(),
                });
            }
        }
        let public = crate::x509_objects::public_key(&session, &token.label, key, &identity.id)?;
        Ok(Self {
            uri: token::reselect_uri(uri, &token).to_string(),
            module,
            token,
            pin,
            kind,
            describe,
            key_label: String::from_utf8_lossy(&identity.label).into_owned(),
            key_id: identity.id,
            public,
            always_authenticate,
            certificate: certificate.filter(|c| !c.is_empty()),
            state: Mutex::new((session, key)),
            repairs: AtomicU64::new(0),
        })
    }

    /// The PIN the key was opened with.
    pub(crate) fn pin(&self) -> Option<&SecretString> {
        self.pin.as_ref()
    }

    /// The key's `CKA_LABEL`.
    pub(crate) fn label(&self) -> &str {
        &self.key_label
    }

    /// The key's `CKA_ID`.
    pub(crate) fn id(&self) -> &[u8] {
        &self.key_id
    }

    /// How many times a signature needed a repair (a login again, or a new session).
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    /// The certificate stored on the token with the key's `CKA_ID`, DER, if any.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }

    /// Signs with the token: see the module docs for the mechanisms. A logout by another
    /// program is repaired by logging in again; closed sessions and renumbered handles by a
    /// new session and finding the key again; then the signature is tried once more.
    pub fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let error = match self.sign_with(&state.0, state.1, message) {
            Ok(signature) => return self.encode(signature),
            Err(error) => error,
        };
        let repairable = matches!(
            rv(&error),
            Some(
                RvError::UserNotLoggedIn
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::ObjectHandleInvalid
                    | RvError::KeyHandleInvalid
            )
        );
        if repairable {
            tracing::debug!(token = %self.token.label, error = %error, "repairing the PKCS#11 session");
            self.repairs.fetch_add(1, Ordering::Relaxed);
        }
        match rv(&error) {
            Some(RvError::UserNotLoggedIn) => {
                token::login(&state.0, &self.token, self.pin.as_ref())?;
            }
            Some(
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid,
            ) => {
                let session = self
                    .module
                    .ctx
                    .open_ro_session_no_drop(self.token.slot)
                    .map_err(|e| Error::token(&self.token.label, Step::OpenSession, e))?;
                token::login(&session, &self.token, self.pin.as_ref())?;
                let key = one_object(
                    &session,
                    &self.token.label,
                    ObjectClass::PRIVATE_KEY,
                    Some(&self.key_label),
                    Some(&self.key_id),
                    "private key",
                )?;
                *state = (session, key);
            }
            _ => return Err(Error::token(&self.token.label, Step::Sign, error)),
        }
        let signature = self
            .sign_with(&state.0, state.1, message)
            .map_err(|e| Error::token(&self.token.label, Step::Sign, e))?;
        self.encode(signature)
    }

    /// One `C_Sign`: RSA over the message, EC over its SHA-256. A key that always
    /// authenticates gets the context-specific login after `C_SignInit`, through the
    /// multi-part calls (see the module docs; `open` checked the token has the mechanism).
    fn sign_with(
        &self,
        session: &Session,
        key: ObjectHandle,
        message: &[u8],
    ) -> Result<Vec<u8>, cryptoki::error::Error> {
        if !self.always_authenticate {
            return match self.kind {
                X509KeyKind::Rsa => session.sign(&Mechanism::Sha256RsaPkcs, key, message),
                _ => session.sign(&Mechanism::Ecdsa, key, &Sha256::digest(message)),
            };
        }
        let mechanism = match self.kind {
            X509KeyKind::Rsa => Mechanism::Sha256RsaPkcs,
            _ => Mechanism::EcdsaSha256,
        };
        session.sign_init(&mechanism, key)?;
        session.login(UserType::ContextSpecific, self.pin.as_ref())?;
        session.sign_update(message)?;
        session.sign_final()
    }

    /// The signature as Roles Anywhere reads it: RSA as is, ECDSA's raw `r‖s` as DER.
    fn encode(&self, signature: Vec<u8>) -> Result<Vec<u8>, Error> {
        match self.kind {
            X509KeyKind::Rsa => Ok(signature),
            _ => ecdsa_der(&signature).ok_or_else(|| Error::KeyUnsuitable {
                token: self.token.label.clone(),
                key: self.describe.clone(),
                reason: format!(
                    "the token's ECDSA signature is {} bytes, not r‖s",
                    signature.len()
                ),
            }),
        }
    }
}

/// RSA or EC, from `CKA_KEY_TYPE`, and `CKA_ALWAYS_AUTHENTICATE`; refuses keys that cannot
/// sign or are of another type.
fn key_kind(
    session: &Session,
    token: &str,
    key: ObjectHandle,
    describe: &str,
) -> Result<(X509KeyKind, bool), Error> {
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::Sign,
                AttributeType::AlwaysAuthenticate,
                AttributeType::Extractable,
            ],
        )
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?;
    let unsuitable = |reason: String| Error::KeyUnsuitable {
        token: token.to_owned(),
        key: describe.to_owned(),
        reason,
    };
    let mut kind = None;
    let mut always_authenticate = false;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(KeyType::RSA) => kind = Some(X509KeyKind::Rsa),
            Attribute::KeyType(KeyType::EC) => kind = Some(X509KeyKind::Ecdsa),
            Attribute::KeyType(other) => {
                return Err(unsuitable(format!(
                    "it is a {other} key; Roles Anywhere takes RSA or EC"
                )));
            }
            Attribute::Sign(false) => return Err(unsuitable("its CKA_SIGN is false".into())),
            Attribute::AlwaysAuthenticate(always) => always_authenticate = always,
            Attribute::Extractable(true) => tracing::warn!(
                token,
                key = describe,
                "the private key is extractable (CKA_EXTRACTABLE true): whoever holds the PIN \
                 can read it out of the token"
            ),
            _ => {}
        }
    }
    kind.map(|kind| (kind, always_authenticate))
        .ok_or_else(|| unsuitable("the token did not say its CKA_KEY_TYPE".into()))
}

/// The DER signature of a raw `r‖s` (each half the length); `None` for an odd or empty
/// input.
fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Some(sigv4_core::ecdsa_signature_der(r, s))
}

impl X509Key for Pkcs11X509Key {
    fn kind(&self) -> X509KeyKind {
        self.kind
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.try_sign(message).map_err(|e| {
            KeyError::with_source(
                e.kind(),
                "the PKCS#11 token could not sign with the private key",
                e,
            )
        })
    }

    /// From the token's public key object with the key's `CKA_ID`, read when the key opened.
    fn public_key(&self) -> Option<X509PublicKey> {
        self.public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_are_split_in_halves() {
        let der = ecdsa_der(&[1, 2, 3, 4]).unwrap();
        assert_eq!(der, [0x30, 8, 0x02, 2, 1, 2, 0x02, 2, 3, 4]);
        assert!(ecdsa_der(&[1, 2, 3]).is_none() && ecdsa_der(&[]).is_none());
    }
}
