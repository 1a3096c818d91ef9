//! Importing `"AWS4" + secret` into a token: the key "checks in" and never checks out.
//!
//! The key is created with every attribute that matters stated explicitly (tokens such as
//! SoftHSM switch several usages on when not told otherwise) and none of them changeable,
//! its access key id is stored next to it, and the token is asked for one HMAC that must
//! equal the software reference before the import counts.
//!
//! ## What an interrupted import leaves
//! The token is written in an order where every prefix is a state that the next `open` or
//! import understands:
//!
//! 1. the new key, with the label and id asked for;
//! 2. (no write) the token's HMAC with it, checked against the software one, and its check
//!    value (see the `objects` module);
//! 3. a new record: the access key id, the new key's check value, and a generation one
//!    higher than any record with the label (SoftHSM will not change a data object's value
//!    in place, so the switch is a second record, not an update);
//! 4. the replaced records and keys are deleted.
//!
//! Killed after 1 or 2, a replace leaves the old key in use (the only record names it) and
//! the new one as a leftover; a first import leaves a key without a record, which `open`
//! refuses, naming `keyhold import --replace`. Killed during 3 or 4, the new key is in use
//! (its record is the newest) and the old objects are leftovers. `open` uses the key the
//! newest record names and warns about leftovers; `import --replace` removes them. A
//! failure (not a kill) deletes the new key again.
//!
//! Two imports on one machine take turns (an exclusive `flock` on the module file, see
//! `Module::write_turn`), so concurrent imports of one label leave one key, not two.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::error::Step;
use crate::module::{self, Module};
use crate::objects::{self, ACCESS_KEY_ID_APPLICATION, KEY_CHECK_MESSAGE, KeyCheck};
use crate::token::{self, Token};
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

/// Imports `secret` (`"AWS4"` + the secret access key) as the key the URI names:
/// [`prepare_import`], then [`PreparedImport::import`].
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
    prepare_import(uri, access_key_id, options)?.import(secret)
}

/// An import checked as far as it can be without the secret: the token is found, the PIN
/// works, and the label and id are free (or may be replaced). It holds this machine's turn
/// to write through the module until it is dropped: keep it while the new key is opened
/// and proved, since those log in, and a login rewrites SoftHSM's token file.
pub struct PreparedImport {
    token: Token,
    session: Session,
    label: String,
    id: Vec<u8>,
    access_key_id: String,
    existing: Vec<Conflict>,
    uri: Pkcs11Uri,
    _turn: std::fs::File,
}

impl std::fmt::Debug for PreparedImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedImport")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("replacing", &self.existing.len())
            .finish_non_exhaustive()
    }
}

/// Everything an import checks before it needs the secret (so that a mistake does not cost
/// the user a second paste): the request, the module, the token, the PIN, and what is
/// already on the token under the label or id.
pub fn prepare_import(
    uri: &Pkcs11Uri,
    access_key_id: &str,
    options: ImportOptions,
) -> Result<PreparedImport, Error> {
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
    let id = uri.id.clone().unwrap_or_default();

    // Taken before the module is loaded: SoftHSM reads its token files then, and another
    // import's login rewrites them; a token read mid-rewrite stays unreadable for the life
    // of this process, not just for a moment.
    let path = module::resolve(uri)?;
    let turn = Module::write_turn(&path)?;
    let module = Module::load(&path)?;
    let token = token::find_token(&module, uri)?;
    let pin = token::pin_for(uri, options.pin, &token.label)?;
    let session = module
        .ctx
        .open_rw_session(token.slot)
        .map_err(|e| Error::token(&token.label, Step::OpenSession, e))?;
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
        if let Some(c) = existing.iter().find(|c| c.kind == Kind::Other) {
            return Err(Error::ReplaceRefused {
                token: t.to_owned(),
                object: c.shown.clone(),
            });
        }
    }
    let mut key_uri = uri.clone();
    key_uri.pin_value = None;
    key_uri.object_type = Some(ObjectType::SecretKey);
    key_uri.token.get_or_insert_with(|| token.label.clone());
    Ok(PreparedImport {
        token,
        session,
        label,
        id,
        access_key_id: access_key_id.to_owned(),
        existing,
        uri: key_uri,
        _turn: turn,
    })
}

impl PreparedImport {
    /// Writes the key in the order the module docs give, checks it, and returns the URI that
    /// opens it (with no `pin-value`).
    pub fn import(&self, secret: &RootSecret) -> Result<Pkcs11Uri, Error> {
        if secret.expose().len() <= 4 {
            return Err(Error::InvalidImport {
                reason: "the secret access key is empty".to_owned(),
            });
        }
        let (session, t) = (&self.session, self.token.label.as_str());
        let key = create_key(session, t, &self.label, &self.id, secret)?;
        let outcome = check_import(session, t, key, secret).and_then(|check| self.commit(&check));
        if let Err(cause) = outcome {
            return Err(roll_back(session, t, key, &self.label, cause));
        }
        // The newest record names the new key now; the old objects are only in the way.
        // Should a deletion fail, the new key still works and `open` names what is left.
        let records_first = |c: &&Conflict| c.kind == Kind::Record;
        let keys = |c: &&Conflict| c.kind == Kind::Key;
        let old = self.existing.iter();
        for old in old.clone().filter(records_first).chain(old.filter(keys)) {
            if let Err(e) = session.destroy_object(old.handle) {
                tracing::warn!(token = t, object = %old.shown, error = %e, "could not delete a replaced object");
            }
        }
        Ok(self.uri.clone())
    }

    /// Step 3 of the module docs: a record naming the new key, newer than any in place.
    fn commit(&self, check: &KeyCheck) -> Result<(), Error> {
        let (session, t) = (&self.session, self.token.label.as_str());
        // Read under this machine's turn to write: no keyhold import adds a record meanwhile.
        let newest = self.existing.iter().map(|c| c.generation).max();
        let value = objects::encode_record(&self.access_key_id, check, newest.unwrap_or(0) + 1);
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(self.label.as_bytes().to_vec()),
                Attribute::Application(ACCESS_KEY_ID_APPLICATION.as_bytes().to_vec()),
                Attribute::Value(value),
            ])
            .map(drop)
            .map_err(|e| Error::token(t, Step::CreateRecord, e))
    }
}

/// Step 1 of the module docs: the key, every attribute that matters stated, none of them
/// changeable later.
fn create_key(
    session: &Session,
    t: &str,
    label: &str,
    id: &[u8],
    secret: &RootSecret,
) -> Result<ObjectHandle, Error> {
    let template = SecretTemplate(vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        // Not modifiable: a PIN holder cannot switch DERIVE, ENCRYPT or WRAP on later (the
        // classic route to a secret key's value). Not copyable: no copy with other
        // attributes either.
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Destroyable(true),
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
    session
        .create_object(&template.0)
        .map_err(|e| Error::token(t, Step::CreateKey, e))
}

/// Step 2 of the module docs: the token's HMAC with the new key must equal the software one.
/// Returns the key's check value, for the record.
fn check_import(
    session: &Session,
    t: &str,
    key: ObjectHandle,
    secret: &RootSecret,
) -> Result<KeyCheck, Error> {
    let failed = || Error::ImportCheckFailed {
        token: t.to_owned(),
    };
    // Any fixed date will do: the point is that the token holds exactly these bytes.
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    let device = Zeroizing::new(
        session
            .sign(&Mechanism::Sha256Hmac, key, date.as_bytes())
            .map_err(|e| Error::token(t, Step::SignImportCheck, e))?,
    );
    let reference = SoftwareRootKey::new(secret.clone())
        .date_key(&date)
        .map_err(|_| failed())?;
    let differs = device.len() != 32
        || device
            .iter()
            .zip(reference.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if differs {
        return Err(failed());
    }
    let mac = session
        .sign(&Mechanism::Sha256Hmac, key, KEY_CHECK_MESSAGE)
        .map_err(|e| Error::token(t, Step::SignKeyCheckValue, e))?;
    objects::key_check(&mac).ok_or_else(failed)
}

/// Deletes the new key of a failed import and returns `cause`, or says what is left over.
fn roll_back(session: &Session, t: &str, key: ObjectHandle, label: &str, cause: Error) -> Error {
    match session.destroy_object(key) {
        Ok(()) => cause,
        Err(e) => Error::ImportCleanupFailed {
            token: t.to_owned(),
            cause: cause.to_string(),
            cleanup: crate::error::ckr_name(&e),
            leftover: format!("the secret key labelled '{label}' created just now"),
        },
    }
}

/// An object already on the token with the label or id of the new key.
struct Conflict {
    handle: ObjectHandle,
    shown: String,
    kind: Kind,
    /// A record's generation (0 for anything else).
    generation: u64,
}

/// What an object in the way is, for replacing it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A secret key: deleted once the new key is in place.
    Key,
    /// keyhold's access-key-id record: switched to the new key.
    Record,
    /// Anything else, or an object the token will not delete: never touched.
    Other,
}

fn conflicts(session: &Session, t: &str, label: &[u8], id: &[u8]) -> Result<Vec<Conflict>, Error> {
    let find = |template: &[Attribute]| {
        session
            .find_objects(template)
            .map_err(|e| Error::token(t, Step::FindObjects, e))
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
        let mut generation = 0;
        let (shown, kind) = if found.class == ObjectClass::SECRET_KEY {
            (format!("a secret key {what}"), Kind::Key)
        } else if found.class == ObjectClass::DATA && ours {
            generation = objects::read_record(session, t, handle)?.generation;
            (format!("keyhold's access key id for {what}"), Kind::Record)
        } else {
            (format!("a {} object {what}", found.class), Kind::Other)
        };
        // Replacing must not stop half-way on an object the token will not delete.
        let destroyable = session
            .get_attributes(handle, &[AttributeType::Destroyable])
            .map_err(|e| Error::token(t, Step::GetAttributeValue, e))?
            .into_iter()
            .all(|a| !matches!(a, Attribute::Destroyable(false)));
        out.push(Conflict {
            handle,
            shown: if destroyable {
                shown
            } else {
                format!("{shown} (not destroyable)")
            },
            kind: if destroyable { kind } else { Kind::Other },
            generation,
        });
    }
    Ok(out)
}
