//! The X.509 seam against known answers: an IAM Roles Anywhere `CreateSession` request
//! signed with a fixed RSA key and certificate at a fixed time gives, byte for byte, the
//! canonical request, string to sign and `Authorization` header that
//! `testdata/sigv4-core/x509/make-expected.py` built by hand from AWS's documentation and
//! signed with `openssl dgst -sha256 -sign` (PKCS#1 v1.5 is deterministic). An ECDSA
//! signature is not, so the P-256 one is checked with the public key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::DecodePrivateKey as _;
use sigv4_core::{
    Algorithm, KeyError, KeyErrorKind, SigningParams, X509Key, X509KeyKind, X509PublicKey,
    X509Signer,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../testdata/sigv4-core/x509/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

#[derive(Debug)]
struct RsaKey(rsa::pkcs1v15::SigningKey<sha2::Sha256>);

impl X509Key for RsaKey {
    fn kind(&self) -> X509KeyKind {
        X509KeyKind::Rsa
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        Ok(self.0.sign(message).to_vec())
    }
}

#[derive(Debug)]
struct EcKey(p256::ecdsa::SigningKey);

impl X509Key for EcKey {
    fn kind(&self) -> X509KeyKind {
        X509KeyKind::Ecdsa
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature: p256::ecdsa::Signature = self.0.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// A key whose device refuses, counting the calls.
#[derive(Debug, Default)]
struct Refusing(AtomicUsize);

impl X509Key for Refusing {
    fn kind(&self) -> X509KeyKind {
        X509KeyKind::Rsa
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(KeyError::new(
            KeyErrorKind::Denied,
            "the token wants its PIN",
        ))
    }
}

fn create_session() -> http::Request<&'static [u8]> {
    let target = text("request-target.txt");
    http::Request::post(format!(
        "https://rolesanywhere.us-east-1.amazonaws.com{target}"
    ))
    .header("content-type", "application/json")
    .header("user-agent", "keyhold-test (not signed)")
    .body(&b"{\"durationSeconds\":3600}"[..])
    .unwrap()
}

fn params() -> SigningParams<'static> {
    SigningParams::new("us-east-1", "rolesanywhere")
        .at(time::macros::datetime!(2026-12-04 12:00:00 UTC))
}

#[test]
fn an_rsa_signature_is_the_known_answer_byte_for_byte() {
    let pem = text("rsa-key.pem");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let signer = X509Signer::new(
        &fixture("rsa-cert.der"),
        RsaKey(rsa::pkcs1v15::SigningKey::new(key)),
    )
    .unwrap();
    assert_eq!(signer.serial_number(), "17429726349691885448");
    let mut request = create_session();
    let out = signer.sign_request(&mut request, &params()).unwrap();
    assert_eq!(
        out.canonical_request().to_string(),
        text("rsa-canonical-request.txt")
    );
    assert_eq!(
        out.string_to_sign().to_string(),
        text("rsa-string-to-sign.txt")
    );
    assert_eq!(out.string_to_sign().algorithm(), Algorithm::X509RsaSha256);
    let authorization = text("rsa-authorization.txt");
    assert_eq!(out.authorization().unwrap(), authorization);
    let headers = request.headers();
    assert_eq!(headers["authorization"], authorization.as_str());
    assert_eq!(headers["x-amz-date"], "20261204T120000Z");
    let certificate = base64_der("rsa-cert.der");
    assert_eq!(headers["x-amz-x509"], certificate.as_str());
    assert!(headers.get("x-amz-x509-chain").is_none());
}

fn base64_der(name: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(fixture(name))
}

#[test]
fn an_ecdsa_signature_verifies_with_the_certificate_key_and_the_chain_is_signed() {
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&text("ec-key.pem")).unwrap();
    let public = *key.verifying_key();
    let intermediate = fixture("rsa-cert.der"); // any DER stands in for an intermediate
    let signer = X509Signer::new(&fixture("ec-cert.der"), EcKey(key))
        .unwrap()
        .with_chain(&[&intermediate, &intermediate]);
    assert_eq!(signer.serial_number(), "1234567890123456789");
    let mut request = create_session();
    let out = signer.sign_request(&mut request, &params()).unwrap();
    assert_eq!(out.string_to_sign().algorithm(), Algorithm::X509EcdsaSha256);
    let signature = p256::ecdsa::Signature::from_der(out.signature().as_bytes()).unwrap();
    public
        .verify(out.string_to_sign().to_string().as_bytes(), &signature)
        .expect("the signature verifies with the certificate's public key");
    let authorization = out.authorization().unwrap();
    assert!(
        authorization.starts_with(
            "AWS4-X509-ECDSA-SHA256 Credential=1234567890123456789/20261204/us-east-1/rolesanywhere/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature="
        ),
        "{authorization}"
    );
    let chain = format!(
        "{},{}",
        base64_der("rsa-cert.der"),
        base64_der("rsa-cert.der")
    );
    assert_eq!(request.headers()["x-amz-x509-chain"], chain.as_str());
    let canonical = out.canonical_request().to_string();
    assert!(
        canonical.contains(&format!("\nx-amz-x509-chain:{chain}\n")),
        "{canonical}"
    );
}

#[test]
fn a_refusing_key_is_a_typed_error_and_garbage_is_no_certificate() {
    let signer = X509Signer::new(&fixture("rsa-cert.der"), Refusing::default()).unwrap();
    let err = signer
        .sign_request(&mut create_session(), &params())
        .unwrap_err();
    assert!(matches!(err, sigv4_core::SignError::Key(_)), "{err:?}");
    let pem_not_der = fixture("rsa-cert.pem");
    assert!(X509Signer::new(&pem_not_der, Refusing::default()).is_err());
}

#[test]
fn a_certificates_public_key_is_its_keys() {
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&text("rsa-key.pem")).unwrap();
    assert_eq!(
        X509PublicKey::of_certificate(&fixture("rsa-cert.der")),
        Some(X509PublicKey::Rsa {
            modulus: key.n().to_bytes_be(),
            exponent: key.e().to_bytes_be(),
        })
    );
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&text("ec-key.pem")).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    assert_eq!(
        X509PublicKey::of_certificate(&fixture("ec-cert.der")),
        Some(X509PublicKey::P256(point.as_bytes().to_vec()))
    );
    assert_eq!(
        X509PublicKey::of_certificate(&fixture("rsa-cert.pem")),
        None
    );
    let der = fixture("ec-cert.der");
    assert_eq!(X509PublicKey::of_certificate(&der[..der.len() / 2]), None);
}
