//! Duplication between machines: wrap `"AWS4" + secret` for one target TPM, knowing only its
//! endorsement key's public area, on a machine with no TPM at all; the target imports it
//! under its EK with TPM2_Import.
//!
//! This is the TPM's own duplication format (TPM 2.0 Part 1, "Protected Storage" and
//! "Duplication"), built in software with an outer wrapper and no inner wrapper:
//!
//! ```text
//! seed      = random(32), sent as: RSA EK -> OAEP-SHA256(seed, label "DUPLICATE\0")
//!                                  ECC EK -> ephemeral point Q_e, seed = KDFe(Z, "DUPLICATE", Q_e.x, EK.x)
//! symKey    = KDFa(seed, "STORAGE", name, "", 128)      encSens = AES-128-CFB(symKey, IV 0, TPM2B_SENSITIVE)
//! hmacKey   = KDFa(seed, "INTEGRITY", "", "", 256)      dup     = TPM2B(HMAC(hmacKey, encSens || name)) || encSens
//! ```
//!
//! Only the TPM holding the EK's private key recovers the seed, so the blob is useless
//! anywhere else; the outer HMAC makes any alteration fail. The blob travels as a TSS2
//! "importable key" file (2.23.133.10.1.4) whose parent is the EK's TCG handle.

use aes::Aes128;
use cfb_mode::Encryptor;
use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};
use sigv4_core::RootSecret;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{EncryptedSecret, Public, SymmetricDefinitionObject};
use tss_esapi::traits::Marshall;
use zeroize::Zeroizing;

use crate::error::TpmError;
use crate::key::{
    DUPLICATION_BLOB, MAX_PASSWORD, load_under, private_from_tpm2b, public_from_tpm2b,
    public_to_tpm2b, tpm2b, tpm2b_body, wrong_tpm_on_integrity,
};
use crate::keyfile::{KeyKind, TpmKeyFile};
use crate::templates::{self, check_hmac_key};
use crate::tpm::{EkAlgorithm, Tpm};

const TPM_ALG_KEYEDHASH: u16 = 0x0008;
const TPM_ALG_SHA256: u16 = 0x000b;

/// A target TPM's endorsement key public area: all a sender needs to wrap a secret for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EkPublic {
    public: Public,
    algorithm: EkAlgorithm,
}

impl EkPublic {
    /// Parses a TPM2B_PUBLIC (as [`EkPublic::to_tpm2b`] or `tpm2_readpublic -f tss` write it)
    /// and checks that it is an EK keyhold can wrap for: RSA 2048 or ECC P-256, SHA-256 name,
    /// AES-128-CFB storage key.
    pub fn from_tpm2b(bytes: &[u8]) -> Result<Self, TpmError> {
        let public = public_from_tpm2b(bytes)?;
        Self::new(public)
    }

    fn new(public: Public) -> Result<Self, TpmError> {
        let unsuitable = |reason: &str| TpmError::InvalidArgument {
            reason: format!("not a usable endorsement key: {reason}"),
        };
        let (algorithm, attributes, name_alg, symmetric) = match &public {
            Public::Rsa {
                object_attributes,
                name_hashing_algorithm,
                parameters,
                ..
            } if parameters.key_bits() == RsaKeyBits::Rsa2048 => (
                EkAlgorithm::Rsa2048,
                object_attributes,
                name_hashing_algorithm,
                parameters.symmetric_definition_object(),
            ),
            Public::Ecc {
                object_attributes,
                name_hashing_algorithm,
                parameters,
                ..
            } if parameters.ecc_curve() == EccCurve::NistP256 => (
                EkAlgorithm::EccP256,
                object_attributes,
                name_hashing_algorithm,
                parameters.symmetric_definition_object(),
            ),
            _ => return Err(unsuitable("it is neither RSA 2048 nor ECC P-256")),
        };
        if *name_alg != HashingAlgorithm::Sha256
            || symmetric != SymmetricDefinitionObject::AES_128_CFB
            || !attributes.restricted()
            || !attributes.decrypt()
        {
            return Err(unsuitable(
                "it is not a SHA-256, AES-128-CFB restricted decryption (storage) key",
            ));
        }
        Ok(Self { public, algorithm })
    }

    /// The TPM2B_PUBLIC encoding, to send to whoever wraps secrets for this TPM.
    pub fn to_tpm2b(&self) -> Result<Vec<u8>, TpmError> {
        public_to_tpm2b(&self.public)
    }

    /// The EK's name (0x000b || SHA-256 of its public area), as pinned by
    /// [`crate::SessionEncryption::SaltedWithEk`].
    pub fn name(&self) -> Result<Vec<u8>, TpmError> {
        object_name(&self.public)
    }

    /// RSA 2048 or ECC P-256.
    pub fn algorithm(&self) -> EkAlgorithm {
        self.algorithm
    }
}

impl Tpm {
    /// This TPM's EK public area, to hand to a sender that will wrap a secret for it.
    pub fn endorsement_key_public(&self, algorithm: EkAlgorithm) -> Result<EkPublic, TpmError> {
        let public = self.run(|c| {
            let (handle, public, _) = c.create_ek(algorithm)?;
            c.flush(handle);
            Ok(public)
        })?;
        EkPublic::new(public)
    }

    /// Imports a duplication blob made by [`wrap_for_tpm`] for this TPM's EK. Returns a
    /// loadable key file (parent: the EK's TCG handle) for [`Tpm::load_key_file`].
    pub fn import_duplicate(&self, blob: &TpmKeyFile) -> Result<TpmKeyFile, TpmError> {
        let (KeyKind::Importable, Some(secret)) = (blob.kind, &blob.secret) else {
            return Err(TpmError::KeyFile {
                reason: "not an importable duplication blob (2.23.133.10.1.4 with a secret)".into(),
            });
        };
        let public = public_from_tpm2b(&blob.public)?;
        check_hmac_key(&public)?;
        let duplicate = private_from_tpm2b(&blob.private)?;
        let seed =
            EncryptedSecret::try_from(tpm2b_body(secret, "secret")?.to_vec()).map_err(|_| {
                TpmError::KeyFile {
                    reason: "secret is larger than a TPM2B_ENCRYPTED_SECRET".into(),
                }
            })?;
        let op = "TPM2_Import (under the endorsement key)";
        let private = self
            .run(|c| {
                load_under(c, blob.parent, op, |ctx, parent| {
                    ctx.import(
                        parent.into(),
                        None,
                        public.clone(),
                        duplicate.clone(),
                        seed.clone(),
                        SymmetricDefinitionObject::Null,
                    )
                })
            })
            .map_err(|e| wrong_tpm_on_integrity(e, DUPLICATION_BLOB))?;
        Ok(TpmKeyFile {
            kind: KeyKind::Loadable,
            secret: None,
            private: tpm2b(private.value()),
            ..blob.clone()
        })
    }
}

/// Wraps `"AWS4" + secret` for the TPM owning `target`; no TPM is needed here. The result is
/// an importable key file for [`Tpm::import_duplicate`] on that TPM only. The key can never be
/// duplicated again (empty authPolicy); `password`, if given, is required to use it.
pub fn wrap_for_tpm(
    secret: &RootSecret,
    target: &EkPublic,
    password: Option<&Zeroizing<Vec<u8>>>,
    access_key_id: &str,
) -> Result<TpmKeyFile, TpmError> {
    let auth = password.map_or(&[][..], |p| &p[..]);
    if auth.len() > MAX_PASSWORD {
        return Err(TpmError::InvalidArgument {
            reason: format!("a key password is at most {MAX_PASSWORD} bytes"),
        });
    }
    let mut obfuscation = [0u8; 32];
    OsRng.fill_bytes(&mut obfuscation);
    let unique: [u8; 32] = Sha256::new()
        .chain_update(obfuscation)
        .chain_update(secret.expose())
        .finalize()
        .into();
    let op = "build the duplicated key's public area";
    let public = templates::duplicable_hmac_key(unique, password.is_some())
        .map_err(|e| TpmError::tpm(op, e))?;
    let name = object_name(&public)?;

    // TPM2B_SENSITIVE { TPMT_SENSITIVE { type, authValue, seedValue, sensitive } }
    let mut sensitive = Zeroizing::new(Vec::with_capacity(128));
    sensitive.extend_from_slice(&TPM_ALG_KEYEDHASH.to_be_bytes());
    sensitive.extend_from_slice(&tpm2b(auth));
    sensitive.extend_from_slice(&tpm2b(&obfuscation));
    sensitive.extend_from_slice(&tpm2b(secret.expose()));
    let mut enc_sensitive = Zeroizing::new(tpm2b(&sensitive));

    let (seed, encrypted_seed) = make_seed(target)?;
    let sym_key = kdfa(&seed, b"STORAGE", &name, &[], 128);
    let iv = [0u8; 16];
    Encryptor::<Aes128>::new_from_slices(&sym_key, &iv)
        .map_err(|_| TpmError::InvalidArgument {
            reason: "internal: AES-128 key size".into(),
        })?
        .encrypt(&mut enc_sensitive);
    let hmac_key = kdfa(&seed, b"INTEGRITY", &[], &[], 256);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key).map_err(|_| {
        TpmError::InvalidArgument {
            reason: "internal: HMAC key".into(),
        }
    })?;
    mac.update(&enc_sensitive);
    mac.update(&name);
    let mut duplicate = tpm2b(&mac.finalize().into_bytes());
    duplicate.extend_from_slice(&enc_sensitive);

    let mut file = TpmKeyFile {
        kind: KeyKind::Importable,
        secret: Some(tpm2b(&encrypted_seed)),
        empty_auth: password.is_none(),
        policy: Vec::new(),
        description: None,
        access_key_id: None,
        parent: target.algorithm.handle(),
        public: public_to_tpm2b(&public)?,
        private: tpm2b(&duplicate),
    };
    file.set_access_key_id(access_key_id)?;
    Ok(file)
}

/// A fresh seed and its encryption to the EK (TPM2B_ENCRYPTED_SECRET contents).
fn make_seed(target: &EkPublic) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), TpmError> {
    let invalid = |reason: &str| TpmError::InvalidArgument {
        reason: format!("cannot wrap for this endorsement key: {reason}"),
    };
    match &target.public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            let exponent = match parameters.exponent().value() {
                0 => 65_537,
                e => e,
            };
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(unique.value()),
                rsa::BigUint::from(exponent),
            )
            .map_err(|_| invalid("the RSA public key is malformed"))?;
            let mut seed = Zeroizing::new(vec![0u8; 32]);
            OsRng.fill_bytes(&mut seed);
            let padding = rsa::Oaep::new_with_label::<Sha256, _>("DUPLICATE\0");
            let encrypted = key
                .encrypt(&mut OsRng, padding, &seed)
                .map_err(|_| invalid("RSA-OAEP encryption failed"))?;
            Ok((seed, encrypted))
        }
        Public::Ecc { unique, .. } => {
            let mut sec1 = vec![0x04];
            sec1.extend_from_slice(
                &pad32(unique.x().value()).ok_or_else(|| invalid("x too long"))?,
            );
            sec1.extend_from_slice(
                &pad32(unique.y().value()).ok_or_else(|| invalid("y too long"))?,
            );
            let ek = p256::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| invalid("the EK point is not on P-256"))?;
            let ephemeral = p256::ecdh::EphemeralSecret::random(&mut OsRng);
            let shared = ephemeral.diffie_hellman(&ek);
            let point = ephemeral.public_key().to_encoded_point(false);
            let (Some(ex), Some(ey)) = (point.x(), point.y()) else {
                return Err(invalid("ephemeral point encoding"));
            };
            let seed = kdfe(
                shared.raw_secret_bytes(),
                b"DUPLICATE",
                ex,
                &sec1[1..33],
                256,
            );
            let mut encrypted = tpm2b(ex);
            encrypted.extend_from_slice(&tpm2b(ey));
            Ok((seed, encrypted))
        }
        _ => Err(invalid("unsupported algorithm")),
    }
}

fn pad32(bytes: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    out.get_mut(32usize.checked_sub(bytes.len())?..)?
        .copy_from_slice(bytes);
    Some(out)
}

/// An object's name: nameAlg (SHA-256) || SHA-256(TPMT_PUBLIC).
pub(crate) fn object_name(public: &Public) -> Result<Vec<u8>, TpmError> {
    let marshalled = public
        .marshall()
        .map_err(|e| TpmError::tpm("marshal TPMT_PUBLIC", e))?;
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&Sha256::digest(marshalled));
    Ok(name)
}

/// KDFa (SP 800-108 counter mode with HMAC-SHA256), TPM 2.0 Part 1 §11.4.10.2.
fn kdfa(
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Zeroizing<Vec<u8>> {
    let bytes = (bits / 8) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(bytes + 32));
    let mut counter = 1u32;
    while out.len() < bytes {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(&counter.to_be_bytes());
        mac.update(label);
        mac.update(&[0]);
        mac.update(context_u);
        mac.update(context_v);
        mac.update(&bits.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        counter += 1;
    }
    out.truncate(bytes);
    out
}

/// KDFe (SP 800-56A concatenation KDF with SHA-256), TPM 2.0 Part 1 §11.4.10.3.
fn kdfe(z: &[u8], label: &[u8], party_u: &[u8], party_v: &[u8], bits: u32) -> Zeroizing<Vec<u8>> {
    let bytes = (bits / 8) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(bytes + 32));
    let mut counter = 1u32;
    while out.len() < bytes {
        let block = Sha256::new()
            .chain_update(counter.to_be_bytes())
            .chain_update(z)
            .chain_update(label)
            .chain_update([0])
            .chain_update(party_u)
            .chain_update(party_v)
            .finalize();
        out.extend_from_slice(&block);
        counter += 1;
    }
    out.truncate(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::hex;

    // Known answers from a separate Python transcription of the spec's formulas; the e2e
    // test (a real TPM accepting the blob) is what proves them right.
    #[test]
    fn kdfa_known_answers() {
        let out = kdfa(b"key", b"STORAGE", b"name", b"", 128);
        assert_eq!(hex(&out), "f326323083f0cc07d4b962f7f32d91b3");
        let out = kdfa(b"seed", b"INTEGRITY", b"", b"", 512);
        assert_eq!(
            hex(&out),
            "0202c2c089e49c8103012ee3bf01f1d596677349b492a3ce739c85c6afd86ff7\
             946dc0eccdf0662b411233a293f21b39375d86f3ab12debb9a6b2752fe7d322a"
        );
    }

    #[test]
    fn kdfe_known_answer() {
        let out = kdfe(&[b'z'; 32], b"DUPLICATE", &[b'u'; 32], &[b'v'; 32], 256);
        assert_eq!(
            hex(&out),
            "286e253066b7883f3a9dc71ebc16a12a3d4f146f7ebd882497e61bf4311d6aa4"
        );
    }

    #[test]
    fn pad32_left_pads_and_refuses_long_input() {
        let padded = pad32(&[1, 2]).unwrap();
        assert_eq!(padded[..30], [0; 30]);
        assert_eq!(padded[30..], [1, 2]);
        assert!(pad32(&[0; 33]).is_none());
    }
}
