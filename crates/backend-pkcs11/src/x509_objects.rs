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
                X509PublicKey::P384_OID
            } else {
                X509PublicKey::P256_OID
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

/// The public key of the pair whose private key is `key` (whose `CKA_ID` is `id`): the key's
/// own (an RSA private key shows its modulus and public exponent; some tokens show an EC
/// key's point), else the public key object with the same `CKA_ID`. An empty `id` pairs
/// nothing: then only the key's own will do.
pub(crate) fn public_key(
    session: &Session,
    token: &str,
    key: ObjectHandle,
    id: &[u8],
) -> Result<Option<X509PublicKey>, Error> {
    match public_key_attributes(session, token, key) {
        Ok(Some(own)) => return Ok(Some(own)),
        Ok(None) => {}
        // A token may refuse a private key's public attributes: its public key object
        // may still tell.
        Err(e) => tracing::debug!(token, error = %e, "the private key's public half is unreadable"),
    }
    if id.is_empty() {
        return Ok(None);
    }
    let public = objects::find(
        session,
        token,
        &[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ],
    )?;
    match public.first() {
        Some(&object) => public_key_attributes(session, token, object),
        None => Ok(None),
    }
}

/// The public key `object`'s attributes make, if they make one (RSA, or EC on P-256/P-384).
fn public_key_attributes(
    session: &Session,
    token: &str,
    object: ObjectHandle,
) -> Result<Option<X509PublicKey>, Error> {
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
        (Some(modulus), Some(exponent), _, _) if !modulus.is_empty() => {
            Some(X509PublicKey::rsa(&modulus, &exponent))
        }
        (_, _, Some(point), Some(params)) => ec_public_key(&params, &point),
        _ => None,
    })
}

/// An EC public key from `CKA_EC_PARAMS` and `CKA_EC_POINT`. PKCS#11 says the point is a DER
/// OCTET STRING around the uncompressed point (`04 len 04 x y`); some tokens give the point
/// alone (`04 x y`). Which one is told by the length the curve gives the point (65 bytes on
/// P-256, 97 on P-384; 2 more for the OCTET STRING's tag and length), not by its first
/// bytes: a point's first coordinate byte may equal its remaining length.
fn ec_public_key(params: &[u8], point: &[u8]) -> Option<X509PublicKey> {
    let (length, key): (usize, fn(Vec<u8>) -> X509PublicKey) = match params {
        X509PublicKey::P256_OID => (65, X509PublicKey::P256),
        X509PublicKey::P384_OID => (97, X509PublicKey::P384),
        _ => return None,
    };
    let raw = match point {
        raw if raw.len() == length => raw,
        [0x04, wrapped, raw @ ..] if usize::from(*wrapped) == length && raw.len() == length => raw,
        _ => return None,
    };
    (raw.first() == Some(&0x04)).then(|| key(raw.to_vec()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ec_point_is_read_raw_or_der_wrapped_by_its_length_for_the_curve() {
        for (params, length) in [(X509PublicKey::P256_OID, 65), (X509PublicKey::P384_OID, 97)] {
            let wanted = |raw: &[u8]| match params {
                X509PublicKey::P256_OID => X509PublicKey::P256(raw.to_vec()),
                _ => X509PublicKey::P384(raw.to_vec()),
            };
            // A raw point whose first coordinate byte is its remaining length (as a DER
            // length would be): still the raw point, all of it.
            let mut raw = vec![0x04; length];
            raw[1] = u8::try_from(length - 2).unwrap();
            assert_eq!(ec_public_key(params, &raw), Some(wanted(&raw)));
            raw[1] = 0x2a;
            assert_eq!(ec_public_key(params, &raw), Some(wanted(&raw)));
            // The same point in a DER OCTET STRING, as PKCS#11 has it.
            let wrapped = [&[0x04, u8::try_from(length).unwrap()][..], &raw].concat();
            assert_eq!(ec_public_key(params, &wrapped), Some(wanted(&raw)));
            // Anything else is no point of this curve: a compressed one, a wrong length or
            // tag, a point of the other curve.
            let compressed = [&[0x02][..], &raw[1..length / 2 + 1]].concat();
            for bad in [
                &compressed[..],
                &raw[..length - 1],
                &wrapped[..wrapped.len() - 1],
                &[&[0x03, u8::try_from(length).unwrap()][..], &raw].concat()[..],
            ] {
                assert_eq!(ec_public_key(params, bad), None, "{bad:02x?}");
            }
        }
        let p256 = [0x04; 65];
        assert_eq!(ec_public_key(X509PublicKey::P384_OID, &p256), None);
        assert_eq!(ec_public_key(&[0x06, 0x01, 0x00], &p256), None);
    }
}
