//! Public-area templates (the storage primary, the HMAC key) and the check a loaded key's
//! public area must pass before keyhold uses it.

use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    Digest, EccPoint, EccScheme, KeyDerivationFunctionScheme, KeyedHashScheme, Public,
    PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters,
    SymmetricDefinitionObject,
};

use crate::error::TpmError;

/// The owner hierarchy's standard storage primary (TCG "H-2", ECC P-256), exactly as
/// `tpm2_createprimary -C o -G ecc -g sha256 -a "fixedtpm|fixedparent|sensitivedataorigin|
/// userwithauth|noda|restricted|decrypt"` makes it, with an empty unique: same name, so key
/// files move between keyhold, tpm2-tools and the OpenSSL provider.
pub fn storage_primary() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .with_ecc_scheme(EccScheme::Null)
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The SigV4 root key: keyedhash, HMAC-SHA256, fixedTPM, fixedParent, sign; never decrypt,
/// never sensitiveDataOrigin (the value comes from outside). `userWithAuth` is cleared when a
/// policy is required, so the password alone cannot bypass it.
///
/// `has_password` decides dictionary-attack protection: a key with a password counts wrong
/// guesses toward lockout; a key without one has nothing to guess and is marked noDA, so a
/// lockout (which also follows an unclean TPM restart) does not stop it.
pub fn hmac_key(
    auth_policy: Option<Digest>,
    has_password: bool,
) -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(auth_policy.is_none())
        .with_no_da(!has_password)
        .with_sign_encrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(auth_policy.unwrap_or_default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
            KeyedHashScheme::HMAC_SHA_256,
        ))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

/// The public area of a key made outside any TPM and duplicated to one: TPM2_Import requires
/// fixedTPM and fixedParent clear; the empty authPolicy keeps it from being duplicated again.
/// `unique` is SHA-256(obfuscation value || key), as the TPM computes it for keyedhash objects.
#[cfg(feature = "duplicate")]
pub(crate) fn duplicable_hmac_key(
    unique: [u8; 32],
    has_password: bool,
) -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_user_with_auth(true)
        .with_no_da(!has_password)
        .with_sign_encrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(Digest::default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
            KeyedHashScheme::HMAC_SHA_256,
        ))
        .with_keyed_hash_unique_identifier(Digest::try_from(unique.to_vec())?)
        .build()
}

/// Refuses any object that is not an HMAC-SHA256 signing key that cannot leave this TPM.
///
/// Two shapes pass: the one keyhold creates (fixedTPM and fixedParent set), and the one
/// `TPM2_Import` requires (both clear: tpm2_import and duplication blobs) provided the
/// authPolicy is empty. The rule rests on the TPM 2.0 Library specification: TPM2_Duplicate
/// needs the object's DUP role (Part 3, 13.1 "TPM2_Duplicate", `@objectHandle`, Auth Role
/// DUP), the DUP role can only be given by a policy session (Part 1, "Authorization Roles"),
/// and a policy session satisfies an object only when its policyDigest equals the object's
/// authPolicy (Part 1, "Enhanced Authorization"), a digest of the session's hash size: an
/// empty authPolicy equals none, so such a key can never be duplicated out.
pub(crate) fn check_hmac_key(public: &Public) -> Result<(), TpmError> {
    let unsuitable = |reason: &str| TpmError::UnsuitableKey {
        reason: reason.to_owned(),
    };
    let Public::KeyedHash {
        object_attributes: a,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        ..
    } = public
    else {
        return Err(unsuitable(
            "it is not a keyedhash object (an RSA or ECC key cannot compute HMAC-SHA256)",
        ));
    };
    if *parameters != PublicKeyedHashParameters::new(KeyedHashScheme::HMAC_SHA_256) {
        return Err(unsuitable("its scheme is not HMAC with SHA-256"));
    }
    if *name_hashing_algorithm != HashingAlgorithm::Sha256 {
        return Err(unsuitable("its name algorithm is not SHA-256"));
    }
    if !a.sign_encrypt() || a.decrypt() || a.restricted() {
        return Err(unsuitable(
            "it must have 'sign' and neither 'decrypt' nor 'restricted'",
        ));
    }
    match (a.fixed_tpm(), a.fixed_parent()) {
        (true, true) => Ok(()),
        (false, false) if auth_policy.is_empty() => Ok(()),
        (false, false) => Err(unsuitable(
            "fixedTPM/fixedParent are clear and it has an authPolicy, which might allow TPM2_Duplicate to copy it out",
        )),
        _ => Err(unsuitable(
            "fixedTPM and fixedParent differ, so the key may be duplicated to another parent",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyhold_template_passes_its_own_check() {
        check_hmac_key(&hmac_key(None, false).unwrap()).unwrap();
        let policy = Digest::try_from(vec![1u8; 32]).unwrap();
        check_hmac_key(&hmac_key(Some(policy), true).unwrap()).unwrap();
        check_hmac_key(&duplicable_hmac_key([0; 32], true).unwrap()).unwrap();
    }

    /// An HMAC key with these fixedTPM/fixedParent bits and authPolicy.
    fn hmac_with(fixed_tpm: bool, fixed_parent: bool, policy: &[u8]) -> Public {
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(fixed_tpm)
            .with_fixed_parent(fixed_parent)
            .with_user_with_auth(true)
            .with_sign_encrypt(true)
            .build()
            .unwrap();
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_auth_policy(Digest::try_from(policy.to_vec()).unwrap())
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
                KeyedHashScheme::HMAC_SHA_256,
            ))
            .with_keyed_hash_unique_identifier(Digest::default())
            .build()
            .unwrap()
    }

    #[test]
    fn keys_that_could_be_duplicated_out_are_refused() {
        check_hmac_key(&hmac_with(true, true, &[7; 32])).unwrap();
        check_hmac_key(&hmac_with(false, false, &[])).unwrap();
        let err = check_hmac_key(&hmac_with(false, false, &[7; 32])).unwrap_err();
        assert!(err.to_string().contains("authPolicy"), "{err}");
        for (fixed_tpm, fixed_parent) in [(true, false), (false, true)] {
            let err = check_hmac_key(&hmac_with(fixed_tpm, fixed_parent, &[])).unwrap_err();
            assert!(err.to_string().contains("differ"), "{err}");
        }
    }

    #[test]
    fn storage_primary_is_not_an_hmac_key() {
        let err = check_hmac_key(&storage_primary().unwrap()).unwrap_err();
        assert!(err.to_string().contains("keyedhash"), "{err}");
    }
}
