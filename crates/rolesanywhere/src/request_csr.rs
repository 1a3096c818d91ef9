//! A PKCS#10 certificate request (RFC 2986) signed by a key that never leaves its device:
//! what `keyhold cert csr` hands the user's CA. The request is built here; the device signs
//! its `CertificationRequestInfo` as it signs a Roles Anywhere request (SHA-256, then
//! RSASSA-PKCS1-v1_5 or ECDSA).

use std::str::FromStr;

use rsa::pkcs8::EncodePublicKey;
use sigv4_core::{X509Key, X509KeyKind, X509PublicKey};
use x509_cert::der::asn1::{BitString, ObjectIdentifier};
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// `sha256WithRSAEncryption` (RFC 4055 5).
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// `ecdsa-with-SHA256` (RFC 5758 3.2).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Why a certificate request could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// The subject is not an RFC 4514 name.
    #[error(
        "the subject {subject:?} is not a distinguished name like CN=host,O=Example (--subject)"
    )]
    Subject {
        /// As given.
        subject: String,
    },
    /// The device's public key is not a valid RSA or EC key.
    #[error("the device's public key is not a valid {0} key")]
    PublicKey(&'static str),
    /// The device could not sign.
    #[error("the key could not sign the certificate request")]
    Sign(#[source] sigv4_core::KeyError),
    /// DER encoding failed.
    #[error("could not encode the certificate request")]
    Encode(#[source] x509_cert::der::Error),
}

/// The SubjectPublicKeyInfo (DER) of a device's public key.
pub fn public_key_der(public: &X509PublicKey) -> Result<Vec<u8>, CsrError> {
    let document = match public {
        X509PublicKey::Rsa { modulus, exponent } => rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(modulus),
            rsa::BigUint::from_bytes_be(exponent),
        )
        .map_err(|_| CsrError::PublicKey("RSA"))?
        .to_public_key_der(),
        X509PublicKey::P256(point) => p256::PublicKey::from_sec1_bytes(point)
            .map_err(|_| CsrError::PublicKey("P-256"))?
            .to_public_key_der(),
        X509PublicKey::P384(point) => p384::PublicKey::from_sec1_bytes(point)
            .map_err(|_| CsrError::PublicKey("P-384"))?
            .to_public_key_der(),
        _ => return Err(CsrError::PublicKey("supported")),
    };
    Ok(document
        .map_err(|_| CsrError::PublicKey("encodable"))?
        .into_vec())
}

/// A PEM `CERTIFICATE REQUEST` for `subject` (RFC 4514, `CN=host,O=Example`) and the public
/// key `public`, signed by `key` (its private half).
pub fn certificate_request(
    subject: &str,
    public: &X509PublicKey,
    key: &dyn X509Key,
) -> Result<String, CsrError> {
    let name = Name::from_str(subject).map_err(|_| CsrError::Subject {
        subject: subject.to_owned(),
    })?;
    if name.0.is_empty() {
        return Err(CsrError::Subject {
            subject: subject.to_owned(),
        });
    }
    let spki =
        SubjectPublicKeyInfoOwned::from_der(&public_key_der(public)?).map_err(CsrError::Encode)?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: name,
        public_key: spki,
        attributes: Default::default(),
    };
    let signed = info.to_der().map_err(CsrError::Encode)?;
    let signature = key.sign(&signed).map_err(CsrError::Sign)?;
    let algorithm = match key.kind() {
        X509KeyKind::Rsa => AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: Some(x509_cert::der::asn1::Null.into()),
        },
        _ => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        },
    };
    let request = CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&signature).map_err(CsrError::Encode)?,
    };
    request
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(CsrError::Encode)
}

#[cfg(all(test, feature = "file-key"))]
mod tests {
    use super::*;
    use crate::FileKey;

    #[test]
    fn a_request_verifies_with_its_own_public_key() {
        use ecdsa::signature::Verifier;
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/sigv4-core/x509/ec-key.pem"
        ))
        .unwrap();
        let key = FileKey::from_pem(&pem, None).unwrap();
        let spki = key.public_key_der();
        let verifying =
            <p256::ecdsa::VerifyingKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
                .unwrap();
        let point = verifying.to_encoded_point(false).as_bytes().to_vec();
        let public = X509PublicKey::P256(point);
        assert_eq!(public_key_der(&public).unwrap(), spki);
        let csr = certificate_request("CN=host.example,O=Example Corp", &public, &key).unwrap();
        let (label, der) = x509_cert::der::pem::decode_vec(csr.as_bytes()).unwrap();
        assert_eq!(label, "CERTIFICATE REQUEST");
        let request = CertReq::from_der(&der).unwrap();
        assert_eq!(
            request.info.subject.to_string(),
            "CN=host.example,O=Example Corp"
        );
        let signature =
            p256::ecdsa::DerSignature::from_bytes(request.signature.raw_bytes()).unwrap();
        let signed = request.info.to_der().unwrap();
        verifying.verify(&signed, &signature).unwrap();
        assert!(certificate_request("not a name", &public, &key).is_err());
    }
}
