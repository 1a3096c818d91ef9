//! Finding a Roles Anywhere key on a token: which token holds what a URI names when the URI
//! names no token (AWS's YubiKey line `pkcs11:type=cert?pin-value=...` behind p11-kit's
//! proxy, which also lists the system's trust store), and the private key of a certificate:
//! the one with the certificate's `CKA_ID`, else the one whose public key is the
//! certificate's (tools that write a certificate with an id of their own, compared by
//! [`X509PublicKey::of_certificate`]).

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sigv4_core::X509PublicKey;

use crate::Error;
use crate::error::Step;
use crate::module::Module;
use crate::objects;
use crate::token::Token;
use crate::uri::{ObjectType, Pkcs11Uri};

/// The URI's object attributes (type, label, id) as a URI, for messages.
pub(crate) fn object_selector(uri: &Pkcs11Uri) -> String {
    Pkcs11Uri {
        object: uri.object.clone(),
        id: uri.id.clone(),
        object_type: uri.object_type,
        ..Pkcs11Uri::default()
    }
    .to_string()
}

/// Whether `token` holds what `uri` names, among the objects it shows without a login: for
/// `type=cert` a certificate of the URI's label and id, for a private key the key or its
/// public key or certificate (private keys are hidden until login). Either way on a token
/// that can hold a private key: one that needs a login or shows a private key. A trust
/// store (p11-kit's) does neither, so its CA certificates never make it the holder.
pub(crate) fn holds(module: &Module, token: &Token, uri: &Pkcs11Uri) -> Result<bool, Error> {
    let session = module
        .ctx
        .open_ro_session(token.slot)
        .map_err(|e| Error::token(&token.label, Step::OpenSession, e))?;
    let find = |class: ObjectClass, named: bool| {
        let mut template = vec![Attribute::Class(class)];
        if named {
            template.extend(
                uri.object
                    .as_ref()
                    .map(|l| Attribute::Label(l.clone().into_bytes())),
            );
            template.extend(uri.id.as_ref().map(|id| Attribute::Id(id.clone())));
        }
        objects::find(&session, &token.label, &template).map(|found| !found.is_empty())
    };
    let classes: &[ObjectClass] = match uri.object_type {
        Some(ObjectType::Cert) => &[ObjectClass::CERTIFICATE],
        _ => &[
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::CERTIFICATE,
        ],
    };
    let mut named = false;
    for &class in classes {
        if find(class, true)? {
            named = true;
            break;
        }
    }
    Ok(named && (token.login_required || find(ObjectClass::PRIVATE_KEY, false)?))
}

/// The private key of the certificate `der` whose `CKA_ID` is `id`: the one private key with
/// that id, else the one whose public key ([`crate::x509_objects::public_key`]: an RSA key's
/// own modulus and exponent, else the public key object of the same non-empty `CKA_ID`) is
/// the certificate's.
pub(crate) fn private_key_of_certificate(
    session: &Session,
    token: &str,
    id: &[u8],
    der: &[u8],
) -> Result<ObjectHandle, Error> {
    let by_id = match id.is_empty() {
        true => Vec::new(),
        false => objects::find(
            session,
            token,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ],
        )?,
    };
    let with_id = Pkcs11Uri {
        id: Some(id.to_vec()),
        object_type: Some(ObjectType::Private),
        ..Pkcs11Uri::default()
    };
    match by_id[..] {
        [one] => return Ok(one),
        [] => {}
        _ => {
            return Err(Error::AmbiguousKey {
                token: token.to_owned(),
                selector: format!("private key {with_id} (the certificate's CKA_ID)"),
                count: by_id.len(),
                matches: "remove the extra keys, or name the key with --private-key".into(),
            });
        }
    }
    let not_found = || Error::KeyNotFound {
        token: token.to_owned(),
        selector: format!(
            "private key {with_id} (the certificate's CKA_ID), nor one whose public key is the \
             certificate's"
        ),
    };
    let wanted = X509PublicKey::of_certificate(der).ok_or_else(not_found)?;
    let mut matching = Vec::new();
    for key in objects::find(
        session,
        token,
        &[Attribute::Class(ObjectClass::PRIVATE_KEY)],
    )? {
        // A key that cannot be read (removed meanwhile, or a token's own restriction) is
        // not the certificate's as far as anyone can tell: the others are still compared.
        let public = objects::identity(session, token, key).and_then(|identity| {
            crate::x509_objects::public_key(session, token, key, &identity.id)
        });
        match public {
            Ok(public) if public.as_ref() == Some(&wanted) => matching.push(key),
            Ok(_) => {}
            Err(e) => tracing::debug!(token, error = %e, "skipped a private key it cannot read"),
        }
    }
    match matching[..] {
        [one] => {
            tracing::info!(
                token,
                "the certificate's private key has another CKA_ID; found by its public key"
            );
            Ok(one)
        }
        [] => Err(not_found()),
        _ => Err(Error::AmbiguousKey {
            token: token.to_owned(),
            selector: "the certificate's public key".into(),
            count: matching.len(),
            matches: "several private keys share it; name one with --private-key".into(),
        }),
    }
}
