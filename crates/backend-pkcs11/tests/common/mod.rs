//! Helpers of the Roles Anywhere key tests: key pairs made in a SoftHSM token, their
//! public keys as a certificate carries them, and certificate objects.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use backend_pkcs11::Pkcs11Uri;
use backend_pkcs11::uri::ObjectType;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use test_support::softhsm::TestToken;

/// DER OIDs of the named curves (RFC 5480).
pub const P256: &[u8] = sigv4_core::X509PublicKey::P256_OID;
/// P-384's.
pub const P384: &[u8] = sigv4_core::X509PublicKey::P384_OID;

/// A key pair made inside the token, label `label`, id `id`; returns the public key.
pub fn keypair(
    session: &Session,
    label: &str,
    id: &[u8],
    ec_params: Option<&[u8]>,
    sign: bool,
) -> ObjectHandle {
    let common = |private: bool| {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        if private {
            t.extend([
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(sign),
            ]);
        } else {
            t.push(Attribute::Verify(true));
        }
        t
    };
    let (mechanism, mut public) = match ec_params {
        Some(params) => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(params.to_vec())],
        ),
        None => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
        ),
    };
    public.extend(common(false));
    let (public, _) = session
        .generate_key_pair(&mechanism, &public, &common(true))
        .unwrap();
    public
}

pub fn attribute(session: &Session, object: ObjectHandle, wanted: AttributeType) -> Vec<u8> {
    match session.get_attributes(object, &[wanted]).unwrap().remove(0) {
        Attribute::EcPoint(v) | Attribute::Modulus(v) | Attribute::PublicExponent(v) => v,
        other => panic!("{other:?}"),
    }
}

/// A DER element.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// A certificate's DER carrying `spki` (the backend reads nothing else of it; the endpoint
/// tests use real ones): version, serial, algorithm, empty names and validity, the key.
pub fn certificate_with(spki: Vec<u8>) -> Vec<u8> {
    let algorithm = der(
        0x30,
        &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let tbs = [
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &[1]),
        algorithm.clone(),
        der(0x30, &[]),
        der(0x30, &[]),
        der(0x30, &[]),
        spki,
    ]
    .concat();
    der(
        0x30,
        &[der(0x30, &tbs), algorithm, der(0x03, &[0])].concat(),
    )
}

/// The SubjectPublicKeyInfo of the token's public key `public` (RSA or P-256).
pub fn spki_of(session: &Session, public: ObjectHandle, kind: &str) -> Vec<u8> {
    let bits = |key: &[u8]| der(0x03, &[&[0][..], key].concat());
    if kind == "rsa" {
        let integer = |mut v: Vec<u8>| {
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            der(0x02, &v)
        };
        let n = integer(attribute(session, public, AttributeType::Modulus));
        let e = integer(attribute(session, public, AttributeType::PublicExponent));
        let rsa_encryption = [
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            der(0x05, &[]),
        ]
        .concat();
        return der(
            0x30,
            &[
                der(0x30, &rsa_encryption),
                bits(&der(0x30, &[n, e].concat())),
            ]
            .concat(),
        );
    }
    let point = attribute(session, public, AttributeType::EcPoint);
    let ec = [
        der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
        P256.to_vec(),
    ]
    .concat();
    der(0x30, &[der(0x30, &ec), bits(&point[2..])].concat())
}

/// A certificate object on the token: `label`, `id`, the DER `value`.
pub fn store_certificate(session: &Session, label: &str, id: &[u8], value: Vec<u8>) {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Subject(vec![0x30, 0x00]),
            Attribute::Value(value),
        ])
        .unwrap();
}

/// What the tests sign.
pub const MESSAGE: &[u8] = b"AWS4-X509-ECDSA-SHA256\n20261204T120000Z\n...";

/// Checks `signature` over MESSAGE with the token's public key.
pub fn verify(session: &Session, public: ObjectHandle, kind: &str, signature: &[u8]) {
    let digest = Sha256::digest(MESSAGE);
    match kind {
        "rsa" => {
            let n =
                rsa::BigUint::from_bytes_be(&attribute(session, public, AttributeType::Modulus));
            let e = rsa::BigUint::from_bytes_be(&attribute(
                session,
                public,
                AttributeType::PublicExponent,
            ));
            rsa::RsaPublicKey::new(n, e)
                .unwrap()
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .unwrap();
        }
        curve => {
            // CKA_EC_POINT is a DER OCTET STRING around the point.
            let point = attribute(session, public, AttributeType::EcPoint);
            let point = &point[2..];
            if curve == "p256" {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
                let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
                key.verify_prehash(&digest, &sig).unwrap();
            } else {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
                let sig = p384::ecdsa::Signature::from_der(signature).unwrap();
                key.verify_prehash(&digest, &sig).unwrap();
            }
        }
    }
}

/// A URI for `object` of `object_type` on `token`, with the module and the user PIN.
pub fn uri(token: &TestToken, object: &str, object_type: ObjectType) -> Pkcs11Uri {
    let mut uri = token.uri(object);
    uri.object_type = Some(object_type);
    uri
}
