//! The objects keyhold keeps on a token, and the checks made before using them.
//!
//! A key is a CKO_SECRET_KEY holding `"AWS4" + secret`. Next to it, keyhold stores the AWS
//! access key id in a CKO_DATA object with the key's CKA_LABEL, CKA_APPLICATION
//! [`ACCESS_KEY_ID_APPLICATION`] and the id's ASCII bytes as CKA_VALUE, so the key's URI
//! alone is enough to sign. Data objects carry no CKA_ID in PKCS#11, so the label links them.

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::Error;
use crate::uri::{ObjectType, Pkcs11Uri};

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

pub(crate) fn describe(label: &[u8], id: &[u8]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
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

fn find(
    session: &Session,
    token: &str,
    template: &[Attribute],
) -> Result<Vec<ObjectHandle>, Error> {
    session
        .find_objects(template)
        .map_err(|e| Error::token(token, "C_FindObjects", e))
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
        .map_err(|e| Error::token(token, "C_GetAttributeValue", e))?;
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

/// The one secret key on the token matching `label` and `id` (each `None` = any).
pub(crate) fn find_key(
    session: &Session,
    token: &str,
    label: Option<&[u8]>,
    id: Option<&[u8]>,
) -> Result<FoundKey, Error> {
    let mut template = vec![Attribute::Class(ObjectClass::SECRET_KEY)];
    template.extend(label.map(|l| Attribute::Label(l.to_vec())));
    template.extend(id.map(|i| Attribute::Id(i.to_vec())));
    let handles = find(session, token, &template)?;
    let mut keys = Vec::with_capacity(handles.len());
    for handle in handles {
        let Identity { label, id, .. } = identity(session, token, handle)?;
        keys.push(FoundKey { handle, label, id });
    }
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(Error::KeyNotFound {
            token: token.to_owned(),
            selector: object_selector(label, id),
        }),
        count => Err(Error::AmbiguousKey {
            token: token.to_owned(),
            selector: object_selector(label, id),
            count,
            matches: keys
                .iter()
                .map(FoundKey::describe)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The key a URI names: its object attributes, limited to secret keys.
pub(crate) fn find_uri_key(
    session: &Session,
    token: &str,
    uri: &Pkcs11Uri,
) -> Result<FoundKey, Error> {
    if let Some(other) = uri.object_type.filter(|t| *t != ObjectType::SecretKey) {
        return Err(Error::InvalidUri {
            reason: format!(
                "the URI asks for type={}, but keyhold's keys are secret keys (type=secret-key)",
                other.as_str()
            ),
        });
    }
    find_key(
        session,
        token,
        uri.object.as_deref().map(str::as_bytes),
        uri.id.as_deref(),
    )
}

/// Refuses a key that cannot compute HMAC-SHA256 for us, or whose value can leave the token
/// (unless `allow_extractable`). Asks the token, not a cache: attributes can change.
pub(crate) fn check_key(
    session: &Session,
    token: &str,
    key: &FoundKey,
    allow_extractable: bool,
) -> Result<(), Error> {
    let attrs = session
        .get_attributes(
            key.handle,
            &[
                AttributeType::KeyType,
                AttributeType::Sign,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )
        .map_err(|e| Error::token(token, "C_GetAttributeValue", e))?;
    let (mut key_type, mut sign, mut sensitive, mut extractable) = (None, None, None, None);
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Sign(b) => sign = Some(b),
            Attribute::Sensitive(b) => sensitive = Some(b),
            Attribute::Extractable(b) => extractable = Some(b),
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
    if allow_extractable {
        return Ok(());
    }
    // An attribute the token does not report counts as unsafe.
    let reason = if sensitive != Some(true) {
        "CKA_SENSITIVE is not true"
    } else if extractable != Some(false) {
        "CKA_EXTRACTABLE is not false"
    } else {
        return Ok(());
    };
    Err(Error::KeyExtractable {
        token: token.to_owned(),
        key: key.describe(),
        reason,
    })
}

/// The data objects holding the access key id of the key labelled `label`.
pub(crate) fn access_key_id_objects(
    session: &Session,
    token: &str,
    label: &[u8],
) -> Result<Vec<ObjectHandle>, Error> {
    find(
        session,
        token,
        &[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(ACCESS_KEY_ID_APPLICATION.as_bytes().to_vec()),
            Attribute::Label(label.to_vec()),
        ],
    )
}

/// The access key id stored next to `key`.
pub(crate) fn read_access_key_id(
    session: &Session,
    token: &str,
    key: &FoundKey,
) -> Result<String, Error> {
    let missing = || Error::AccessKeyIdMissing {
        token: token.to_owned(),
        key: key.describe(),
        application: ACCESS_KEY_ID_APPLICATION,
    };
    if key.label.is_empty() {
        return Err(missing());
    }
    let handles = access_key_id_objects(session, token, &key.label)?;
    let [handle] = handles[..] else {
        return Err(missing());
    };
    let value = session
        .get_attributes(handle, &[AttributeType::Value])
        .map_err(|e| Error::token(token, "C_GetAttributeValue", e))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        });
    value
        .and_then(|v| String::from_utf8(v).ok())
        .filter(|v| valid_access_key_id(v))
        .ok_or_else(missing)
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
    fn access_key_ids_are_word_characters() {
        assert!(valid_access_key_id("AKIDEXAMPLE"));
        assert!(valid_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(!valid_access_key_id(""));
        assert!(!valid_access_key_id("AKIA EXAMPLE"));
        assert!(!valid_access_key_id(&"A".repeat(129)));
    }
}
