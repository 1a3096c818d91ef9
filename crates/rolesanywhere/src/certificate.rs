//! The certificate and its chain, read from PEM (a bundle: the leaf first, then the
//! intermediates, as ACME clients write it) or DER, and what they say: subject, issuer,
//! serial, validity, the kind of public key.

use std::fmt;

use sigv4_core::{X509Key, X509KeyKind, X509PublicKey, X509Signer};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};

/// `rsaEncryption` (RFC 8017 appendix C).
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 2.1.1).
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480 2.1.1.1).
pub(crate) const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480 2.1.1.1).
pub(crate) const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Why a certificate (or chain) can't be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Neither PEM certificates nor one DER certificate.
    #[error("{what} is not a PEM or DER X.509 certificate")]
    Unreadable {
        /// Which input (`the certificate`, `the intermediates`).
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: x509_cert::der::Error,
    },
    /// A PEM input without any `CERTIFICATE` block.
    #[error("{what} holds no certificate")]
    Empty {
        /// Which input.
        what: &'static str,
    },
    /// The public key is neither RSA nor EC on P-256 or P-384.
    #[error(
        "the certificate's public key is {0}; IAM Roles Anywhere takes RSA, or EC on P-256 or P-384"
    )]
    UnsupportedKey(String),
    /// The private key is of the other kind than the certificate's public key.
    #[error(
        "the private key is not the certificate's: it is {} but the certificate holds {} public key",
        kind_name(*key),
        kind_name(*certificate)
    )]
    KeyKindMismatch {
        /// The private key's kind.
        key: X509KeyKind,
        /// The certificate's kind.
        certificate: X509KeyKind,
    },
    /// The private key is not the certificate's (its public half, or its signature, differs).
    #[error(
        "the private key is not the certificate's: the certificate holds another {public_key} key"
    )]
    KeyMismatch {
        /// The certificate's key.
        public_key: PublicKeyKind,
    },
    /// The private key could not sign the test message.
    #[error("the private key could not sign (checking that it is the certificate's)")]
    KeySign(#[source] sigv4_core::KeyError),
    /// The leaf's serial number can't be written in `Credential=`.
    #[error("the certificate's serial number can't be used")]
    Serial(#[source] sigv4_core::X509Error),
    /// Outside its validity period.
    #[error("the certificate {state} ({subject})")]
    OutsideValidity {
        /// `expired on ...` or `is not valid before ...`.
        state: String,
        /// Its subject.
        subject: String,
    },
}

/// "an RSA key" or "an ECDSA key", for messages.
fn kind_name(kind: X509KeyKind) -> &'static str {
    match kind {
        X509KeyKind::Rsa => "an RSA key",
        _ => "an ECDSA key",
    }
}

/// The kind and size of a certificate's public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyKind {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
}

impl PublicKeyKind {
    /// The signing algorithm family it needs.
    pub fn x509_kind(self) -> X509KeyKind {
        match self {
            Self::Rsa(_) => X509KeyKind::Rsa,
            Self::P256 | Self::P384 => X509KeyKind::Ecdsa,
        }
    }
}

impl fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "RSA-{bits}"),
            Self::P256 => f.write_str("EC P-256"),
            Self::P384 => f.write_str("EC P-384"),
        }
    }
}

/// What a certificate says, as `keyhold cert show` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject (RFC 4514).
    pub subject: String,
    /// The issuer (RFC 4514).
    pub issuer: String,
    /// The serial number in decimal (as `Credential=` carries it).
    pub serial_number: String,
    /// Valid from.
    pub not_before: OffsetDateTime,
    /// Valid until.
    pub not_after: OffsetDateTime,
    /// The public key.
    pub public_key: PublicKeyKind,
}

/// A leaf certificate and the intermediates sent with it (`X-Amz-X509-Chain`).
#[derive(Clone)]
pub struct CertificateChain {
    leaf: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    info: CertificateInfo,
    public_key: Vec<u8>,
    subject: Vec<u8>,
}

impl fmt::Debug for CertificateChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateChain")
            .field("leaf", &self.info.subject)
            .field("intermediates", &self.intermediates.len())
            .finish()
    }
}

/// The certificates of a PEM bundle, or of one DER certificate.
fn read_certificates(bytes: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, CertificateError> {
    let unreadable = |source| CertificateError::Unreadable { what, source };
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let is_pem = text_start.is_some_and(|at| bytes[at..].starts_with(b"-----BEGIN"));
    let certificates = if is_pem {
        Certificate::load_pem_chain(bytes).map_err(unreadable)?
    } else {
        vec![Certificate::from_der(bytes).map_err(unreadable)?]
    };
    if certificates.is_empty() {
        return Err(CertificateError::Empty { what });
    }
    certificates
        .iter()
        .map(|c| c.to_der().map_err(unreadable))
        .collect()
}

fn public_key_kind(certificate: &Certificate) -> Result<PublicKeyKind, CertificateError> {
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid == RSA_ENCRYPTION {
        let key = spki.subject_public_key.raw_bytes();
        let modulus = rsa_modulus_bits(key)
            .ok_or_else(|| CertificateError::UnsupportedKey("a malformed RSA key".into()))?;
        return Ok(PublicKeyKind::Rsa(modulus));
    }
    if spki.algorithm.oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        return match curve {
            Some(P256) => Ok(PublicKeyKind::P256),
            Some(P384) => Ok(PublicKeyKind::P384),
            Some(other) => Err(CertificateError::UnsupportedKey(format!(
                "EC on curve {other}"
            ))),
            None => Err(CertificateError::UnsupportedKey(
                "EC without a named curve".into(),
            )),
        };
    }
    Err(CertificateError::UnsupportedKey(format!(
        "of algorithm {}",
        spki.algorithm.oid
    )))
}

/// The bit length of an RSAPublicKey's modulus (`SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let key = pkcs1::RsaPublicKey::from_der(der).ok()?;
    let n = key.modulus.as_bytes();
    let first = *n.first()?;
    Some(8 * n.len() - first.leading_zeros() as usize)
}

fn time(t: x509_cert::time::Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl CertificateChain {
    /// Reads the certificate: a PEM bundle (the leaf first, then its intermediates) or one
    /// DER certificate.
    pub fn from_pem(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut certificates = read_certificates(bytes, "the certificate")?.into_iter();
        let leaf = certificates.next().ok_or(CertificateError::Empty {
            what: "the certificate",
        })?;
        Self::from_der(leaf, certificates.collect())
    }

    /// The leaf and its intermediates, all DER.
    pub fn from_der(leaf: Vec<u8>, intermediates: Vec<Vec<u8>>) -> Result<Self, CertificateError> {
        let parsed =
            Certificate::from_der(&leaf).map_err(|source| CertificateError::Unreadable {
                what: "the certificate",
                source,
            })?;
        let tbs = &parsed.tbs_certificate;
        let public_key_kind = public_key_kind(&parsed)?;
        // Checked now so that signing can't fail on it later.
        let serial_number =
            X509Signer::serial_number_of(&leaf).map_err(CertificateError::Serial)?;
        let info = CertificateInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_number,
            not_before: time(tbs.validity.not_before),
            not_after: time(tbs.validity.not_after),
            public_key: public_key_kind,
        };
        let public_key = tbs.subject_public_key_info.to_der().map_err(|source| {
            CertificateError::Unreadable {
                what: "the certificate",
                source,
            }
        })?;
        let subject = tbs
            .subject
            .to_der()
            .map_err(|source| CertificateError::Unreadable {
                what: "the certificate",
                source,
            })?;
        Ok(Self {
            leaf,
            intermediates,
            info,
            public_key,
            subject,
        })
    }

    /// Adds the intermediates of a PEM bundle (or one DER certificate), sent after any the
    /// certificate file already had.
    pub fn with_intermediates(mut self, bytes: &[u8]) -> Result<Self, CertificateError> {
        self.intermediates
            .extend(read_certificates(bytes, "the intermediates")?);
        Ok(self)
    }

    /// What the leaf says.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// The leaf, DER.
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf
    }

    /// The intermediates, DER, in the order they are sent.
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        &self.intermediates
    }

    /// The leaf's subject Name, DER (a PKCS#11 certificate object's CKA_SUBJECT).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject
    }

    /// The leaf's SubjectPublicKeyInfo, DER: compare it with a private key's public half.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    /// Checks that each certificate names the next as its issuer (the leaf, then the
    /// intermediates in the order they are sent), and returns the last issuer: the CA the
    /// trust anchor must hold. Signatures are the service's to check, against the anchor.
    pub fn issuers_in_order(&self) -> Result<String, String> {
        let mut issuer = self.info.issuer.clone();
        for (i, der) in self.intermediates.iter().enumerate() {
            let certificate = Certificate::from_der(der)
                .map_err(|_| format!("intermediate {} is not a DER certificate", i + 1))?;
            let subject = certificate.tbs_certificate.subject.to_string();
            if subject != issuer {
                return Err(format!(
                    "intermediate {} is {subject}, but the certificate before it was issued by \
                     {issuer}: send the intermediates in order, the leaf's issuer first",
                    i + 1
                ));
            }
            issuer = certificate.tbs_certificate.issuer.to_string();
        }
        Ok(issuer)
    }

    /// Fails when `now` is outside the leaf's validity period (the service would refuse).
    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), CertificateError> {
        let state = if now > self.info.not_after {
            format!("expired on {}", self.info.not_after)
        } else if now < self.info.not_before {
            format!("is not valid before {}", self.info.not_before)
        } else {
            return Ok(());
        };
        Err(CertificateError::OutsideValidity {
            state,
            subject: self.info.subject.clone(),
        })
    }

    /// Proves that `key` is the certificate's private key: by its public half when the key
    /// knows it ([`X509Key::public_key`], no device call), else by a signature of a fixed
    /// message that the certificate's public key must verify.
    pub fn check_key(&self, key: &dyn X509Key) -> Result<(), CertificateError> {
        const MESSAGE: &[u8] = b"keyhold: is this the certificate's private key?";
        let kind = self.info.public_key;
        if key.kind() != kind.x509_kind() {
            return Err(CertificateError::KeyKindMismatch {
                key: key.kind(),
                certificate: kind.x509_kind(),
            });
        }
        let pair = match key.public_key() {
            Some(public) => self.holds(&public),
            None => {
                let signature = key.sign(MESSAGE).map_err(CertificateError::KeySign)?;
                self.verifies(MESSAGE, &signature)
            }
        };
        match pair {
            true => Ok(()),
            false => Err(CertificateError::KeyMismatch { public_key: kind }),
        }
    }

    /// Whether the certificate's public key is `public` (compared as keys, not encodings).
    fn holds(&self, public: &X509PublicKey) -> bool {
        use rsa::pkcs8::DecodePublicKey;

        let spki = &self.public_key[..];
        match public {
            X509PublicKey::Rsa { modulus, exponent } => {
                rsa::RsaPublicKey::from_public_key_der(spki).is_ok_and(|certified| {
                    rsa::RsaPublicKey::new(
                        rsa::BigUint::from_bytes_be(modulus),
                        rsa::BigUint::from_bytes_be(exponent),
                    )
                    .is_ok_and(|key| key == certified)
                })
            }
            X509PublicKey::P256(point) => p256::PublicKey::from_public_key_der(spki)
                .is_ok_and(|certified| p256::PublicKey::from_sec1_bytes(point) == Ok(certified)),
            X509PublicKey::P384(point) => p384::PublicKey::from_public_key_der(spki)
                .is_ok_and(|certified| p384::PublicKey::from_sec1_bytes(point) == Ok(certified)),
            _ => false,
        }
    }

    /// Whether `signature` is the certificate's key's signature of `message`, as an
    /// [`X509Key`] signs: RSASSA-PKCS1-v1_5 or DER ECDSA over its SHA-256.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ecdsa::signature::hazmat::PrehashVerifier;
        use pkcs1::der::Decode as _;
        use rsa::pkcs8::DecodePublicKey;
        use sha2::{Digest, Sha256};

        let digest = Sha256::digest(message);
        let spki = &self.public_key[..];
        match self.info.public_key {
            PublicKeyKind::Rsa(_) => {
                rsa::RsaPublicKey::from_public_key_der(spki).is_ok_and(|key| {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                        .is_ok()
                })
            }
            PublicKeyKind::P256 => {
                let Ok(verifier) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) else {
                    return false;
                };
                p256::ecdsa::DerSignature::from_der(signature)
                    .ok()
                    .and_then(|s| p256::ecdsa::Signature::try_from(s).ok())
                    .is_some_and(|s| verifier.verify_prehash(&digest, &s).is_ok())
            }
            PublicKeyKind::P384 => {
                let Ok(verifier) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) else {
                    return false;
                };
                p384::ecdsa::DerSignature::from_der(signature)
                    .ok()
                    .and_then(|s| p384::ecdsa::Signature::try_from(s).ok())
                    .is_some_and(|s| verifier.verify_prehash(&digest, &s).is_ok())
            }
        }
    }

    /// A signer for this chain with its private key `key` (of the certificate's kind).
    pub fn signer(&self, key: impl X509Key + 'static) -> Result<X509Signer, CertificateError> {
        let certificate = self.info.public_key.x509_kind();
        if key.kind() != certificate {
            return Err(CertificateError::KeyKindMismatch {
                key: key.kind(),
                certificate,
            });
        }
        Ok(X509Signer::new(&self.leaf, key)
            .map_err(CertificateError::Serial)?
            .with_chain(&self.intermediates))
    }
}
