//! Importing `"AWS4" + secret` into a token: the key "checks in" and never checks out.
//!
//! The key is created with every attribute that matters stated explicitly (tokens such as
//! SoftHSM switch several usages on when not told otherwise), its access key id is stored
//! next to it, and the token is asked for one HMAC that must equal the software reference
//! before the import counts. Any failure after the first object exists removes what was
//! created. With `replace`, the old objects are deleted only after the new ones check out.

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::module::Module;
use crate::objects::{self, ACCESS_KEY_ID_APPLICATION};
use crate::token;
use crate::uri::{ObjectType, Pkcs11Uri};

/// How a key is imported. The default: PIN from the URI, refuse to overwrite.
#[derive(Default)]
#[non_exhaustive]
pub struct ImportOptions {
    pin: Option<SecretString>,
    replace: bool,
}

impl ImportOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user PIN, instead of the URI's `pin-value` or `pin-source`.
    pub fn pin(mut self, pin: SecretString) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Replace secret keys and keyhold access-key-id objects that have the same label or id.
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("pin", &self.pin.as_ref().map(|_| "** redacted **"))
            .field("replace", &self.replace)
            .finish()
    }
}

/// A key template holding the secret; the copy inside is zeroized on drop.
struct SecretTemplate(Vec<Attribute>);

impl Drop for SecretTemplate {
    fn drop(&mut self) {
        for attr in &mut self.0 {
            if let Attribute::Value(v) = attr {
                v.zeroize();
            }
        }
    }
}

/// Imports `secret` (`"AWS4"` + the secret access key) as the key the URI names.
///
/// The URI selects the token and gives the key's label (`object`, required) and id (`id`,
/// optional); `type` may only be `secret-key`. Returns the URI that opens the key later
/// (with no `pin-value`).
pub fn import_key(
    uri: &Pkcs11Uri,
    secret: &RootSecret,
    access_key_id: &str,
    options: ImportOptions,
) -> Result<Pkcs11Uri, Error> {
    let invalid = |reason: &str| Error::InvalidImport {
        reason: reason.to_owned(),
    };
    let label = uri
        .object
        .clone()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| invalid("the URI needs object=LABEL to name the new key"))?;
    if uri.object_type.is_some_and(|t| t != ObjectType::SecretKey) {
        return Err(invalid("the URI's type must be secret-key (or absent)"));
    }
    if !objects::valid_access_key_id(access_key_id) {
        return Err(Error::InvalidAccessKeyId);
    }
    if secret.expose().len() <= 4 {
        return Err(invalid("the secret access key is empty"));
    }
    let id = uri.id.clone().unwrap_or_default();

    let module = Module::for_uri(uri)?;
    let token = token::find_token(&module, uri)?;
    let pin = token::pin_for(uri, options.pin, &token.label)?;
    let session = module
        .ctx
        .open_rw_session(token.slot)
        .map_err(|e| Error::token(&token.label, "C_OpenSession", e))?;
    token::login(&session, &token, pin.as_ref())?;
    let t = token.label.as_str();

    let existing = conflicts(&session, t, label.as_bytes(), &id)?;
    if !existing.is_empty() {
        if !options.replace {
            let shown: Vec<&str> = existing.iter().map(|c| c.shown.as_str()).collect();
            return Err(Error::AlreadyExists {
                token: t.to_owned(),
                existing: shown.join(", "),
            });
        }
        if let Some(c) = existing.iter().find(|c| !c.replaceable) {
            return Err(Error::ReplaceRefused {
                token: t.to_owned(),
                object: c.shown.clone(),
            });
        }
    }

    let mut created = Vec::new();
    let outcome = create_and_check(
        &session,
        t,
        &label,
        &id,
        secret,
        access_key_id,
        &mut created,
    )
    .and_then(|()| {
        for c in &existing {
            session
                .destroy_object(c.handle)
                .map_err(|e| Error::token(t, "C_DestroyObject (replacing)", e))?;
        }
        Ok(())
    });
    if let Err(cause) = outcome {
        roll_back(&session, t, &created, &label, cause)?;
    }

    let mut key_uri = uri.clone();
    key_uri.pin_value = None;
    key_uri.object_type = Some(ObjectType::SecretKey);
    key_uri.token.get_or_insert_with(|| token.label.clone());
    Ok(key_uri)
}

/// Creates the key and its access-key-id object (recording each in `created`), then checks
/// that the token's HMAC equals the software one.
fn create_and_check(
    session: &Session,
    t: &str,
    label: &str,
    id: &[u8],
    secret: &RootSecret,
    access_key_id: &str,
    created: &mut Vec<ObjectHandle>,
) -> Result<(), Error> {
    let template = SecretTemplate(vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Value(secret.expose().to_vec()),
    ]);
    let key = session
        .create_object(&template.0)
        .map_err(|e| Error::token(t, "C_CreateObject (key)", e))?;
    drop(template);
    created.push(key);
    let data = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(ACCESS_KEY_ID_APPLICATION.as_bytes().to_vec()),
            Attribute::Value(access_key_id.as_bytes().to_vec()),
        ])
        .map_err(|e| Error::token(t, "C_CreateObject (access key id)", e))?;
    created.push(data);

    // Any fixed date will do: the point is that the token holds exactly these bytes.
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    let device = Zeroizing::new(
        session
            .sign(
                &cryptoki::mechanism::Mechanism::Sha256Hmac,
                key,
                date.as_bytes(),
            )
            .map_err(|e| Error::token(t, "C_Sign (checking the import)", e))?,
    );
    let reference = SoftwareRootKey::new(secret.clone())
        .date_key(&date)
        .map_err(|_| Error::ImportCheckFailed {
            token: t.to_owned(),
        })?;
    let differs = device.len() != 32
        || device
            .iter()
            .zip(reference.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if differs {
        return Err(Error::ImportCheckFailed {
            token: t.to_owned(),
        });
    }
    Ok(())
}

/// Deletes what a failed import created and returns `cause`, or says what is left over.
fn roll_back(
    session: &Session,
    t: &str,
    created: &[ObjectHandle],
    label: &str,
    cause: Error,
) -> Result<(), Error> {
    let mut failures = Vec::new();
    for &handle in created.iter().rev() {
        if let Err(e) = session.destroy_object(handle) {
            failures.push(crate::error::ckr_name(&e));
        }
    }
    if failures.is_empty() {
        return Err(cause);
    }
    Err(Error::ImportCleanupFailed {
        token: t.to_owned(),
        cause: cause.to_string(),
        cleanup: failures.join(", "),
        leftover: format!("the objects labelled '{label}' created just now"),
    })
}

/// An object already on the token with the label or id of the new key.
struct Conflict {
    handle: ObjectHandle,
    shown: String,
    replaceable: bool,
}

fn conflicts(session: &Session, t: &str, label: &[u8], id: &[u8]) -> Result<Vec<Conflict>, Error> {
    let find = |template: &[Attribute]| {
        session
            .find_objects(template)
            .map_err(|e| Error::token(t, "C_FindObjects", e))
    };
    let mut handles = find(&[Attribute::Label(label.to_vec())])?;
    if !id.is_empty() {
        for h in find(&[Attribute::Id(id.to_vec())])? {
            if !handles.contains(&h) {
                handles.push(h);
            }
        }
    }
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        let found = objects::identity(session, t, handle)?;
        let what = objects::describe(&found.label, &found.id);
        let ours = found.application == ACCESS_KEY_ID_APPLICATION.as_bytes();
        let (shown, replaceable) = if found.class == ObjectClass::SECRET_KEY {
            (format!("a secret key {what}"), true)
        } else if found.class == ObjectClass::DATA && ours {
            (format!("keyhold's access key id for {what}"), true)
        } else {
            (format!("a {} object {what}", found.class), false)
        };
        // Replacing must not stop half-way on an object the token will not delete.
        let destroyable = session
            .get_attributes(handle, &[AttributeType::Destroyable])
            .map_err(|e| Error::token(t, "C_GetAttributeValue", e))?
            .into_iter()
            .all(|a| !matches!(a, Attribute::Destroyable(false)));
        out.push(Conflict {
            handle,
            shown: if destroyable {
                shown
            } else {
                format!("{shown} (not destroyable)")
            },
            replaceable: replaceable && destroyable,
        });
    }
    Ok(out)
}
