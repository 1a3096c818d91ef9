//! The objects keyhold keeps on a token, and the checks made before using them.
//!
//! A key is a CKO_SECRET_KEY holding `"AWS4" + secret`. Next to it, keyhold stores the AWS
//! access key id in a CKO_DATA object (the *record*) with the key's CKA_LABEL,
//! CKA_APPLICATION [`ACCESS_KEY_ID_APPLICATION`] and CKA_VALUE `AKID;check=HEX;generation=N`,
//! so the key's URI alone is enough to sign. Data objects carry no CKA_ID in PKCS#11, so the
//! label links them. HEX, the key's check value (eight bytes of its HMAC of
//! [`KEY_CHECK_MESSAGE`]), says which of two keys with one label a record belongs to, and N,
//! one more than the record it replaces, which of two records is newer: the states an
//! interrupted replace leaves. Records written before these existed hold the bare access
//! key id.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::Error;
use crate::error::Step;
use crate::uri::{ObjectType, Pkcs11Uri, hex_digit};

/// CKA_APPLICATION of the CKO_DATA object that holds a key's access key id.
pub const ACCESS_KEY_ID_APPLICATION: &str = "keyhold aws-access-key-id";

/// A key found on a token, with the label and id that find it again.
#[derive(Clone, Debug)]
pub(crate) struct FoundKey {
    pub(crate) handle: ObjectHandle,
    pub(crate) label: Vec<u8>,
    pub(crate) id: Vec<u8>,
}

impl FoundKey {
    /// `'aws-prod' (id 01ab)`, for messages.
    pub(crate) fn describe(&self) -> String {
        describe(&self.label, &self.id)
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn describe(label: &[u8], id: &[u8]) -> String {
    let hex = hex(id);
    match (label.is_empty(), id.is_empty()) {
        (_, true) => format!("'{}'", String::from_utf8_lossy(label)),
        (true, false) => format!("with id {hex}"),
        (false, false) => format!("'{}' (id {hex})", String::from_utf8_lossy(label)),
    }
}

/// The URI's object attributes as a URI, for messages.
fn object_selector(label: Option<&[u8]>, id: Option<&[u8]>) -> String {
    Pkcs11Uri {
        object: label.map(|l| String::from_utf8_lossy(l).into_owned()),
        id: id.map(<[u8]>::to_vec),
        object_type: Some(ObjectType::SecretKey),
        ..Pkcs11Uri::default()
    }
    .to_string()
}

pub(crate) fn find(
    session: &Session,
    token: &str,
    template: &[Attribute],
) -> Result<Vec<ObjectHandle>, Error> {
    session
        .find_objects(template)
        .map_err(|e| Error::token(token, Step::FindObjects, e))
}

/// What identifies an object: its class, label, id and (for data objects) application.
pub(crate) struct Identity {
    pub(crate) class: ObjectClass,
    pub(crate) label: Vec<u8>,
    pub(crate) id: Vec<u8>,
    pub(crate) application: Vec<u8>,
}

/// Reads an object's [`Identity`]; an attribute the object lacks reads as empty.
pub(crate) fn identity(
    session: &Session,
    token: &str,
    object: ObjectHandle,
) -> Result<Identity, Error> {
    let attrs = session
        .get_attributes(
            object,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::Application,
            ],
        )
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?;
    let mut found = Identity {
        class: ObjectClass::DATA,
        label: vec![],
        id: vec![],
        application: vec![],
    };
    for attr in attrs {
        match attr {
            Attribute::Class(c) => found.class = c,
            Attribute::Label(v) => found.label = v,
            Attribute::Id(v) => found.id = v,
            Attribute::Application(v) => found.application = v,
            _ => {}
        }
    }
    Ok(found)
}

/// The message whose HMAC under a key is that key's check value. It is no date, so the
/// value is no SigV4 key for any day; eight bytes of it tell keys apart and nothing more.
pub(crate) const KEY_CHECK_MESSAGE: &[u8] = b"keyhold key check value";

/// The first eight bytes of HMAC-SHA256(key, [`KEY_CHECK_MESSAGE`]).
pub(crate) type KeyCheck = [u8; 8];

/// The first eight bytes of a full HMAC of [`KEY_CHECK_MESSAGE`].
pub(crate) fn key_check(mac: &[u8]) -> Option<KeyCheck> {
    mac.get(..8)?.try_into().ok()
}

/// The token's check value for `key`; `None` when the key will not compute an HMAC.
fn device_check(
    session: &Session,
    token: &str,
    key: ObjectHandle,
) -> Result<Option<KeyCheck>, Error> {
    match session.sign(&Mechanism::Sha256Hmac, key, KEY_CHECK_MESSAGE) {
        Ok(mac) => Ok(key_check(&mac)),
        Err(e)
            if matches!(
                crate::error::rv(&e),
                Some(
                    RvError::KeyFunctionNotPermitted
                        | RvError::KeyTypeInconsistent
                        | RvError::KeySizeRange
                        | RvError::MechanismInvalid
                )
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::token(token, Step::SignKeyCheckValue, e)),
    }
}

/// keyhold's data object next to a key: the access key id, the check value of the key it
/// belongs to, and its generation (the last two absent, 0, in records written before them).
#[derive(Debug, PartialEq)]
pub(crate) struct Record {
    pub(crate) access_key_id: Option<String>,
    pub(crate) check: Option<KeyCheck>,
    pub(crate) generation: u64,
}

/// A record's CKA_VALUE: `AKID;check=<16 hex digits>;generation=N`.
pub(crate) fn encode_record(access_key_id: &str, check: &KeyCheck, generation: u64) -> Vec<u8> {
    let check = hex(check);
    format!("{access_key_id};check={check};generation={generation}").into_bytes()
}

/// Reads a record's CKA_VALUE, or a bare `AKID` (older imports). A part that does not
/// parse reads as absent.
fn decode_record(value: &[u8]) -> Record {
    let mut record = Record {
        access_key_id: None,
        check: None,
        generation: 0,
    };
    let Ok(text) = std::str::from_utf8(value) else {
        return record;
    };
    let mut parts = text.split(';');
    let id = parts.next().unwrap_or_default();
    record.access_key_id = valid_access_key_id(id).then(|| id.to_owned());
    for part in parts {
        match part.split_once('=') {
            Some(("check", hex)) => record.check = parse_check(hex),
            Some(("generation", n)) => record.generation = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    record
}

fn parse_check(text: &str) -> Option<KeyCheck> {
    let digits = text.as_bytes();
    if digits.len() != 16 {
        return None;
    }
    let mut check = [0u8; 8];
    for (byte, pair) in check.iter_mut().zip(digits.chunks(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(check)
}

/// keyhold's records labelled `label`.
fn records(session: &Session, token: &str, label: &[u8]) -> Result<Vec<Record>, Error> {
    let handles = find(
        session,
        token,
        &[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(ACCESS_KEY_ID_APPLICATION.as_bytes().to_vec()),
            Attribute::Label(label.to_vec()),
        ],
    )?;
    handles
        .into_iter()
        .map(|handle| read_record(session, token, handle))
        .collect()
}

/// Reads the record at `handle` (a value that does not parse reads as absent parts).
pub(crate) fn read_record(
    session: &Session,
    token: &str,
    handle: ObjectHandle,
) -> Result<Record, Error> {
    let value = session
        .get_attributes(handle, &[AttributeType::Value])
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .unwrap_or_default();
    Ok(decode_record(&value))
}

/// The secret keys on the token matching `label` and `id` (each `None` = any).
fn matching_keys(
    session: &Session,
    token: &str,
    label: Option<&[u8]>,
    id: Option<&[u8]>,
) -> Result<Vec<FoundKey>, Error> {
    let mut template = vec![Attribute::Class(ObjectClass::SECRET_KEY)];
    template.extend(label.map(|l| Attribute::Label(l.to_vec())));
    template.extend(id.map(|i| Attribute::Id(i.to_vec())));
    let handles = find(session, token, &template)?;
    let mut keys = Vec::with_capacity(handles.len());
    for handle in handles {
        let Identity { label, id, .. } = identity(session, token, handle)?;
        keys.push(FoundKey { handle, label, id });
    }
    Ok(keys)
}

/// A key as [`resolve_key`] found it.
pub(crate) struct Resolved {
    pub(crate) key: FoundKey,
    /// The access key id keyhold stored next to it, if any.
    pub(crate) access_key_id: Option<String>,
}

/// The one key `label` and `id` name (each `None` = any), with its access key id.
///
/// An import writes the new key, then a new record naming it, then deletes the old record
/// and key (see the `import` module), so a crash can leave two keys and two records, or a
/// key without a record. The key that counts is the one whose check value the newest record
/// holds; anything else is a leftover (named in a warning) or, when no key and record pair
/// up, an error naming the repair.
pub(crate) fn resolve_key(
    session: &Session,
    token: &str,
    label: Option<&[u8]>,
    id: Option<&[u8]>,
) -> Result<Resolved, Error> {
    let mut keys = matching_keys(session, token, label, id)?;
    let Some(first) = keys.first() else {
        return Err(Error::KeyNotFound {
            token: token.to_owned(),
            selector: object_selector(label, id),
        });
    };
    let key_label = first.label.clone();
    // Keys that differ in label or id are different keys, for the URI to choose between;
    // only an interrupted import leaves two with the same label and id.
    let twins = !key_label.is_empty()
        && keys
            .iter()
            .all(|k| k.label == first.label && k.id == first.id);
    if keys.len() > 1 && !twins {
        return Err(Error::AmbiguousKey {
            token: token.to_owned(),
            selector: object_selector(label, id),
            count: keys.len(),
            matches: keys
                .iter()
                .map(FoundKey::describe)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let records = match key_label.is_empty() {
        true => Vec::new(),
        false => records(session, token, &key_label)?,
    };
    let unpaired = || Error::Unpaired {
        token: token.to_owned(),
        label: String::from_utf8_lossy(&key_label).into_owned(),
        keys: keys.len(),
        records: records.len(),
    };
    // The common case: one key, at most one record.
    if keys.len() == 1 && records.len() <= 1 {
        let record = records.first();
        if let Some(check) = record.and_then(|r| r.check)
            && device_check(session, token, keys[0].handle)? != Some(check)
        {
            return Err(unpaired());
        }
        return Ok(Resolved {
            key: keys.remove(0),
            access_key_id: record.and_then(|r| r.access_key_id.clone()),
        });
    }
    let mut pairs = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let check = device_check(session, token, key.handle)?;
        for record in &records {
            if check.is_some() && record.check == check {
                pairs.push((record.generation, k, record.access_key_id.clone()));
            }
        }
    }
    pairs.sort_by_key(|(generation, ..)| std::cmp::Reverse(*generation));
    let (k, access_key_id) = match &pairs[..] {
        [(newest, k, id), rest @ ..] if rest.first().is_none_or(|(g, ..)| g < newest) => (*k, id),
        _ => return Err(unpaired()),
    };
    let leftovers = keys.len() + records.len() - 2;
    tracing::warn!(
        token,
        key = %keys[k].describe(),
        leftovers,
        "the token holds objects with this key's label left by an interrupted import; \
         `keyhold import --replace` removes them"
    );
    Ok(Resolved {
        access_key_id: access_key_id.clone(),
        key: keys.swap_remove(k),
    })
}

/// The key a URI names: its object attributes, limited to secret keys.
pub(crate) fn resolve_uri_key(
    session: &Session,
    token: &str,
    uri: &Pkcs11Uri,
) -> Result<Resolved, Error> {
    if let Some(other) = uri.object_type.filter(|t| *t != ObjectType::SecretKey) {
        return Err(Error::InvalidUri {
            reason: format!(
                "the URI asks for type={}, but keyhold's keys are secret keys (type=secret-key)",
                other.as_str()
            ),
        });
    }
    resolve_key(
        session,
        token,
        uri.object.as_deref().map(str::as_bytes),
        uri.id.as_deref(),
    )
}

/// Refuses a key that cannot compute HMAC-SHA256 for us, or whose value can leave the token
/// by any route (unless `allow_extractable`): read out, or moved into a key or ciphertext
/// that can (DERIVE, ENCRYPT, DECRYPT, WRAP, UNWRAP). Asks the token, not a cache:
/// attributes can change.
pub(crate) fn check_key(
    session: &Session,
    token: &str,
    key: &FoundKey,
    allow_extractable: bool,
) -> Result<(), Error> {
    const UNSAFE_IF_TRUE: [(AttributeType, &str); 6] = [
        (AttributeType::Extractable, "CKA_EXTRACTABLE is true"),
        (AttributeType::Derive, "CKA_DERIVE is true"),
        (AttributeType::Encrypt, "CKA_ENCRYPT is true"),
        (AttributeType::Decrypt, "CKA_DECRYPT is true"),
        (AttributeType::Wrap, "CKA_WRAP is true"),
        (AttributeType::Unwrap, "CKA_UNWRAP is true"),
    ];
    const WANTED: [AttributeType; 9] = [
        AttributeType::KeyType,
        AttributeType::Sign,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::Derive,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Wrap,
        AttributeType::Unwrap,
    ];
    let attrs = session
        .get_attributes(key.handle, &WANTED)
        .map_err(|e| Error::token(token, Step::GetAttributeValue, e))?;
    let (mut key_type, mut sign, mut sensitive) = (None, None, None);
    // The usages the token reported as off.
    let mut off = Vec::new();
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Sign(b) => sign = Some(b),
            Attribute::Sensitive(b) => sensitive = Some(b),
            Attribute::Extractable(false)
            | Attribute::Derive(false)
            | Attribute::Encrypt(false)
            | Attribute::Decrypt(false)
            | Attribute::Wrap(false)
            | Attribute::Unwrap(false) => off.push(attr.attribute_type()),
            _ => {}
        }
    }
    let unsuitable = |reason: String| Error::KeyUnsuitable {
        token: token.to_owned(),
        key: key.describe(),
        reason,
    };
    match key_type {
        Some(t) if t == KeyType::GENERIC_SECRET || t == KeyType::SHA256_HMAC => {}
        Some(t) => {
            return Err(unsuitable(format!(
                "its CKA_KEY_TYPE is {t}, not CKK_GENERIC_SECRET"
            )));
        }
        None => {
            return Err(unsuitable(
                "the token did not report its CKA_KEY_TYPE".into(),
            ));
        }
    }
    if sign != Some(true) {
        return Err(unsuitable(
            "CKA_SIGN is false, so the token will not compute an HMAC with it".into(),
        ));
    }
    warn_if_changeable(session, token, key);
    if allow_extractable {
        return Ok(());
    }
    // An attribute the token does not report counts as unsafe.
    let reason = if sensitive != Some(true) {
        "CKA_SENSITIVE is not true"
    } else if let Some((_, why)) = UNSAFE_IF_TRUE.iter().find(|(t, _)| !off.contains(t)) {
        why
    } else {
        return Ok(());
    };
    Err(Error::KeyExtractable {
        token: token.to_owned(),
        key: key.describe(),
        reason,
    })
}

/// Warns when a key (imported by another tool: keyhold's own have both false) is modifiable
/// or copyable: whoever holds the PIN could then switch a usage such as CKA_DERIVE on, or
/// copy the key with CKA_EXTRACTABLE true, and move its value out. Not refused, since many
/// tools create keys so, but named with the repair. A token that does not report these
/// attributes (CKA_COPYABLE is PKCS#11 2.40) is taken at its word.
fn warn_if_changeable(session: &Session, token: &str, key: &FoundKey) {
    let wanted = [AttributeType::Modifiable, AttributeType::Copyable];
    let Ok(attrs) = session.get_attributes(key.handle, &wanted) else {
        return;
    };
    let changeable: Vec<&str> = attrs
        .iter()
        .filter_map(|attr| match attr {
            Attribute::Modifiable(true) => Some("CKA_MODIFIABLE"),
            Attribute::Copyable(true) => Some("CKA_COPYABLE"),
            _ => None,
        })
        .collect();
    if !changeable.is_empty() {
        tracing::warn!(
            token,
            key = %key.describe(),
            attributes = %changeable.join(", "),
            "the key is modifiable or copyable: whoever holds the PIN could switch CKA_DERIVE \
             or CKA_EXTRACTABLE on and move its value out; import the secret again with \
             `keyhold import --replace`, which makes keys that are neither"
        );
    }
}

/// AWS access key ids are word characters (`[A-Za-z0-9_]`), at most 128 of them.
pub(crate) fn valid_access_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_described_by_label_and_id() {
        assert_eq!(describe(b"aws", &[0x01, 0xab]), "'aws' (id 01ab)");
        assert_eq!(describe(b"aws", &[]), "'aws'");
        assert_eq!(describe(b"", &[0xff]), "with id ff");
        assert_eq!(
            object_selector(Some(b"a;b"), Some(&[1])),
            "pkcs11:object=a%3Bb;id=%01;type=secret-key"
        );
    }

    #[test]
    fn records_hold_the_access_key_id_the_check_value_and_a_generation() {
        let check = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        let value = encode_record("AKIDEXAMPLE", &check, 7);
        assert_eq!(value, b"AKIDEXAMPLE;check=0123456789abcdef;generation=7");
        let record = |id: Option<&str>, check: Option<KeyCheck>, generation| Record {
            access_key_id: id.map(str::to_owned),
            check,
            generation,
        };
        assert_eq!(
            decode_record(&value),
            record(Some("AKIDEXAMPLE"), Some(check), 7)
        );
        // Records written before check values existed.
        assert_eq!(
            decode_record(b"AKIDEXAMPLE"),
            record(Some("AKIDEXAMPLE"), None, 0)
        );
        // Damaged ones: the part that does not parse reads as absent.
        assert_eq!(decode_record(b"AKID EXAMPLE"), record(None, None, 0));
        assert_eq!(decode_record(b"\xff"), record(None, None, 0));
        assert_eq!(
            decode_record(b"AKIDEXAMPLE;check=0123;generation=x"),
            record(Some("AKIDEXAMPLE"), None, 0)
        );
        assert_eq!(
            decode_record("AKIDEXAMPLE;check=01234567Ü9abcde".as_bytes()),
            record(Some("AKIDEXAMPLE"), None, 0)
        );
    }

    #[test]
    fn access_key_ids_are_word_characters() {
        assert!(valid_access_key_id("AKIDEXAMPLE"));
        assert!(valid_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(!valid_access_key_id(""));
        assert!(!valid_access_key_id("AKIA EXAMPLE"));
        assert!(!valid_access_key_id(&"A".repeat(129)));
    }
}
