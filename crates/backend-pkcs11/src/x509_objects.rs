//! Roles Anywhere objects a token keeps: key pairs made inside it (`keyhold cert keygen`),
//! their public keys (for a certificate request) and their certificates (`keyhold cert
//! import`). Writes take the module's write turn, as imports do.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secrecy::SecretString;
use sigv4_core::{X509KeyType, X509PublicKey};

use crate::Error;
use crate::error::Step;
use crate::module::{self, Module};
use crate::objects;
use crate::token::{self, Token};
use crate::uri::{ObjectType, Pkcs11Uri};
use crate::x509::Pkcs11X509Key;

/// DER OIDs of the named curves (RFC 5480), as CKA_EC_PARAMS holds them.
pub(crate) const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// A logged-in read-write session on the token a URI names, in this machine's write turn.
struct Writer {
    _turn: std::fs::File,
    token: Token,
    session: Session,
}

fn writer(uri: &Pkcs11Uri, pin: Option<SecretString>) -> Result<Writer, Error> {
    let path = module::resolve(uri)?;
    let turn = Module::write_turn(&path)?;
    let module = Module::load(&path)?;
    let token = token::find_token(&module, uri)?;
    let pin = token::pin_for(uri, pin, &token.label)?;
    let session = module
        .ctx
        .open_rw_session(token.slot)
        .map_err(|e| Error::token(&token.label, Step::OpenSession, e))?;
    token::login(&session, &token, pin.as_ref())?;
    Ok(Writer {
        _turn: turn,
        token,
        session,
    })
}

/// Refuses when objects of `classes` with this label or id exist.
fn refuse_existing(
    w: &Writer,
    classes: &[ObjectClass],
    label: &str,
    id: &[u8],
) -> Result<(), Error> {
    let mut existing = Vec::new();
    for class in classes {
        for template in [
            vec![
                Attribute::Class(*class),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
            vec![Attribute::Class(*class), Attribute::Id(id.to_vec())],
        ] {
            for handle in objects::find(&w.session, &w.token.label, &template)? {
                let identity = objects::identity(&w.session, &w.token.label, handle)?;
                let shown = format!(
                    "{class} {}",
                    objects::describe(&identity.label, &identity.id)
                );
                if !existing.contains(&shown) {
                    existing.push(shown);
                }
            }
        }
    }
    match existing.is_empty() {
        true => Ok(()),
        false => Err(Error::ObjectExists {
            token: w.token.label.clone(),
            existing: existing.join(", "),
        }),
    }
}

/// Makes a key pair of `key_type` inside the token the URI names, labelled with its
/// `object=` (required) and a fresh random `CKA_ID` (or the URI's `id=`). The private key is
/// sensitive, never extractable, and can only sign; the public key can only verify. Returns
/// a URI naming the private key (`type=private`, no PIN).
pub fn generate_key_pair(
    uri: &Pkcs11Uri,
    pin: Option<SecretString>,
    key_type: X509KeyType,
) -> Result<Pkcs11Uri, Error> {
    let label = uri.object.clone().ok_or_else(|| Error::InvalidUri {
        reason: "name the new key pair with object=LABEL".into(),
    })?;
    let w = writer(uri, pin)?;
    let t = w.token.label.as_str();
    let id = match &uri.id {
        Some(id) => id.clone(),
        None => w
            .session
            .generate_random_vec(8)
            .map_err(|e| Error::token(t, Step::CreateKey, e))?,
    };
    refuse_existing(
        &w,
        &[
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::CERTIFICATE,
        ],
        &label,
        &id,
    )?;
    let common = [
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let private = [
        &common[..],
        &[
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            Attribute::Unwrap(false),
        ],
    ]
    .concat();
    let mut public = [
        &common[..],
        &[
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ],
    ]
    .concat();
    let mechanism = match key_type.rsa_bits() {
        Some(bits) => {
            public.extend([
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
        None => {
            let params = if key_type == X509KeyType::P384 {
                P384
            } else {
                P256
            };
            public.push(Attribute::EcParams(params.to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    w.session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| Error::token(t, Step::CreateKey, e))?;
    let mut made = token::reselect_uri(uri, &w.token);
    made.object = Some(label);
    made.id = Some(id);
    made.object_type = Some(ObjectType::Private);
    made.module_name = uri.module_name.clone();
    made.module_path = uri.module_path.clone();
    made.pin_source = uri.pin_source.clone();
    Ok(made)
}

/// The public key of the pair whose private key is `key` (same CKA_ID): from the public key
/// object, else (RSA) from the private key's own modulus and exponent.
pub(crate) fn public_key(
    session: &Session,
    token: &str,
    key: ObjectHandle,
    id: &[u8],
) -> Result<Option<X509PublicKey>, Error> {
    let public = objects::find(
        session,
        token,
        &[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ],
    )?;
    let object = public.first().copied().unwrap_or(key);
    let attributes = session
        .get_attributes(
            object,
            &[
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcPoint,
                AttributeType::EcParams,
            ],
        )
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?;
    let (mut modulus, mut exponent, mut point, mut params) = (None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            _ => {}
        }
    }
    Ok(match (modulus, exponent, point, params) {
        (Some(modulus), Some(exponent), _, _) => Some(X509PublicKey::Rsa { modulus, exponent }),
        // CKA_EC_POINT is a DER OCTET STRING around the point.
        (_, _, Some(point), Some(params)) => {
            let point = match point.as_slice() {
                [0x04, length, rest @ ..] if usize::from(*length) == rest.len() => rest.to_vec(),
                [0x04, 0x81, length, rest @ ..] if usize::from(*length) == rest.len() => {
                    rest.to_vec()
                }
                raw => raw.to_vec(),
            };
            match params.as_slice() {
                P256 => Some(X509PublicKey::P256(point)),
                P384 => Some(X509PublicKey::P384(point)),
                _ => None,
            }
        }
        _ => None,
    })
}

impl Pkcs11X509Key {
    /// Puts `certificate` (DER; `subject` is its subject Name, DER) on the token as an X.509
    /// certificate object with this key's label and `CKA_ID`, so that `type=cert` URIs find
    /// the key. Refuses if the token already has a certificate of that label or id.
    pub fn store_certificate(
        &self,
        uri: &Pkcs11Uri,
        certificate: &[u8],
        subject: &[u8],
    ) -> Result<(), Error> {
        let w = writer(uri, self.pin().cloned())?;
        refuse_existing(&w, &[ObjectClass::CERTIFICATE], self.label(), self.id())?;
        w.session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(self.label().as_bytes().to_vec()),
                Attribute::Id(self.id().to_vec()),
                Attribute::Subject(subject.to_vec()),
                Attribute::Value(certificate.to_vec()),
            ])
            .map_err(|e| Error::token(&w.token.label, Step::CreateRecord, e))?;
        Ok(())
    }
}
