//! PKCS#11 URIs (RFC 7512): parse, print, and the pieces keyhold matches on.
//!
//! `pkcs11:token=sigv4;object=aws-prod;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so`
//! names one key. Path attributes select the library, slot, token and object; query attributes
//! say how to get there (module, PIN). Values are percent-decoded on parse and encoded on print.
//!
//! Parsing is strict: an attribute outside the RFC's grammar, a repeated attribute, a bad
//! percent-escape or an empty `;`-segment is an error, because a URI that silently means less
//! than it says could select the wrong key. ASCII whitespace is dropped first, so the RFC's
//! line-wrapped examples parse.
//!
//! [`Display`](fmt::Display) prints the URI *without* `pin-value`, so a URI can be logged or
//! shown; `Debug` redacts it.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::Error;

/// The `type` path attribute: which class of object the URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `public`: CKO_PUBLIC_KEY.
    Public,
    /// `private`: CKO_PRIVATE_KEY.
    Private,
    /// `cert`: CKO_CERTIFICATE.
    Cert,
    /// `secret-key`: CKO_SECRET_KEY, the class of keyhold's HMAC keys.
    SecretKey,
    /// `data`: CKO_DATA.
    Data,
}

impl ObjectType {
    /// The value as written in a URI (`secret-key`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// The `library-version` path attribute, `M` or `M.N` (a missing minor is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LibraryVersion {
    /// Major version (CK_VERSION.major).
    pub major: u8,
    /// Minor version (CK_VERSION.minor).
    pub minor: u8,
}

/// A parsed PKCS#11 URI. Absent attributes are `None` and match anything.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Pkcs11Uri {
    /// `token`: the token label (CK_TOKEN_INFO.label).
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer (CK_TOKEN_INFO.manufacturerID).
    pub manufacturer: Option<String>,
    /// `serial`: the token serial number (CK_TOKEN_INFO.serialNumber).
    pub serial: Option<String>,
    /// `model`: the token model (CK_TOKEN_INFO.model).
    pub model: Option<String>,
    /// `library-manufacturer` (CK_INFO.manufacturerID).
    pub library_manufacturer: Option<String>,
    /// `library-description` (CK_INFO.libraryDescription).
    pub library_description: Option<String>,
    /// `library-version` (CK_INFO.libraryVersion).
    pub library_version: Option<LibraryVersion>,
    /// `slot-description` (CK_SLOT_INFO.slotDescription).
    pub slot_description: Option<String>,
    /// `slot-manufacturer` (CK_SLOT_INFO.manufacturerID).
    pub slot_manufacturer: Option<String>,
    /// `slot-id`: the decimal CK_SLOT_ID.
    pub slot_id: Option<u64>,
    /// `object`: the object label (CKA_LABEL).
    pub object: Option<String>,
    /// `id`: the object id (CKA_ID), raw bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// Path attributes this parser does not know (RFC 7512 vendor attributes), decoded.
    /// keyhold refuses to match with these present: it cannot honour them.
    pub vendor_path: Vec<(String, String)>,
    /// `pin-value`: the PIN itself. Never printed.
    pub pin_value: Option<SecretString>,
    /// `pin-source`: where to read the PIN (a `file:` URI or a path).
    pub pin_source: Option<String>,
    /// `module-name`: a PKCS#11 module by name, found like p11-kit does.
    pub module_name: Option<String>,
    /// `module-path`: the absolute path of the PKCS#11 module.
    pub module_path: Option<String>,
    /// Query attributes this parser does not know, decoded; ignored as RFC 7512 allows.
    pub vendor_query: Vec<(String, String)>,
}

impl Pkcs11Uri {
    /// Parses a URI; same as [`str::parse`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        text.parse()
    }

    /// True if the URI carries a path attribute keyhold cannot honour when matching.
    pub(crate) fn unsupported_path_attribute(&self) -> Option<&str> {
        self.vendor_path.first().map(|(name, _)| name.as_str())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidUri {
        reason: reason.into(),
    }
}

/// Characters allowed unencoded in a path value (RFC 7512 `pk11-pchar`, less `%`).
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b)
}

/// Characters allowed unencoded in a query value (RFC 7512 `pk11-qchar`, less `%`).
fn is_query_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=/?|".contains(&b)
}

pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `value` of attribute `name`, checking every raw byte against `allowed`.
fn decode(name: &str, value: &str, allowed: fn(u8) -> bool) -> Result<Vec<u8>, Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let pair = bytes
                .get(i + 1..i + 3)
                .and_then(|p| Some((hex_digit(p[0])?, hex_digit(p[1])?)));
            let Some((hi, lo)) = pair else {
                return Err(invalid(format!(
                    "attribute '{name}' has a '%' not followed by two hex digits"
                )));
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else if name == "pin-value" {
            // Not even one character of a PIN goes into a message.
            return Err(invalid(
                "attribute 'pin-value' contains a character that must be percent-encoded",
            ));
        } else {
            return Err(invalid(format!(
                "attribute '{name}' contains '{}', which must be percent-encoded",
                char::from(b).escape_default()
            )));
        }
    }
    Ok(out)
}

fn decode_text(name: &str, value: &str, allowed: fn(u8) -> bool) -> Result<String, Error> {
    String::from_utf8(decode(name, value, allowed)?)
        .map_err(|_| invalid(format!("attribute '{name}' is not UTF-8 once decoded")))
}

fn decimal<T: FromStr>(name: &str, value: &str) -> Result<T, Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "attribute '{name}' must be a decimal number, got '{value}'"
        )));
    }
    value
        .parse()
        .map_err(|_| invalid(format!("attribute '{name}' is out of range: '{value}'")))
}

fn is_vendor_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(invalid(format!(
            "attribute '{name}' appears more than once"
        )));
    }
    *slot = Some(value);
    Ok(())
}

impl Pkcs11Uri {
    fn set_path(&mut self, name: &str, raw: &str) -> Result<(), Error> {
        let text = |raw| decode_text(name, raw, is_path_char);
        match name {
            "token" => set_once(&mut self.token, name, text(raw)?),
            "manufacturer" => set_once(&mut self.manufacturer, name, text(raw)?),
            "serial" => set_once(&mut self.serial, name, text(raw)?),
            "model" => set_once(&mut self.model, name, text(raw)?),
            "library-manufacturer" => set_once(&mut self.library_manufacturer, name, text(raw)?),
            "library-description" => set_once(&mut self.library_description, name, text(raw)?),
            "slot-description" => set_once(&mut self.slot_description, name, text(raw)?),
            "slot-manufacturer" => set_once(&mut self.slot_manufacturer, name, text(raw)?),
            "object" => set_once(&mut self.object, name, text(raw)?),
            "id" => set_once(&mut self.id, name, decode(name, raw, is_path_char)?),
            "slot-id" => set_once(&mut self.slot_id, name, decimal(name, raw)?),
            "library-version" => {
                let (major, minor) = raw.split_once('.').unwrap_or((raw, "0"));
                let version = LibraryVersion {
                    major: decimal(name, major)?,
                    minor: decimal(name, minor)?,
                };
                set_once(&mut self.library_version, name, version)
            }
            "type" => {
                let ty = [
                    ObjectType::Public,
                    ObjectType::Private,
                    ObjectType::Cert,
                    ObjectType::SecretKey,
                    ObjectType::Data,
                ]
                .into_iter()
                .find(|t| t.as_str() == raw)
                .ok_or_else(|| {
                    invalid(format!(
                        "attribute 'type' must be public, private, cert, secret-key or data, got '{raw}'"
                    ))
                })?;
                set_once(&mut self.object_type, name, ty)
            }
            _ if is_vendor_name(name) => {
                if self.vendor_path.iter().any(|(n, _)| n == name) {
                    return Err(invalid(format!(
                        "attribute '{name}' appears more than once"
                    )));
                }
                self.vendor_path.push((name.to_owned(), text(raw)?));
                Ok(())
            }
            _ => Err(invalid(format!("'{name}' is not a valid attribute name"))),
        }
    }

    fn set_query(&mut self, name: &str, raw: &str) -> Result<(), Error> {
        let text = |raw| decode_text(name, raw, is_query_char);
        match name {
            "pin-value" => {
                // Every copy of the PIN is zeroized; `From<&str>` allocates exactly once.
                let bytes = Zeroizing::new(decode(name, raw, is_query_char)?);
                let pin = std::str::from_utf8(&bytes)
                    .map_err(|_| invalid("attribute 'pin-value' is not UTF-8 once decoded"))?;
                set_once(&mut self.pin_value, name, SecretString::from(pin))
            }
            "pin-source" => set_once(&mut self.pin_source, name, text(raw)?),
            "module-name" => set_once(&mut self.module_name, name, text(raw)?),
            "module-path" => set_once(&mut self.module_path, name, text(raw)?),
            // Vendor query attributes may repeat (RFC 7512 section 2.3).
            _ if is_vendor_name(name) => {
                self.vendor_query.push((name.to_owned(), text(raw)?));
                Ok(())
            }
            _ => Err(invalid(format!("'{name}' is not a valid attribute name"))),
        }
    }
}

/// Splits `name=value`, naming the part of the URI in errors.
fn split_attribute<'a>(segment: &'a str, part: &str) -> Result<(&'a str, &'a str), Error> {
    if segment.is_empty() {
        return Err(invalid(format!(
            "empty attribute in the {part} (a doubled or trailing separator)"
        )));
    }
    segment.split_once('=').ok_or_else(|| {
        invalid(format!(
            "{part} attribute '{}' has no '='",
            segment.escape_default()
        ))
    })
}

impl FromStr for Pkcs11Uri {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        // The URI may hold a pin-value: the copy is sized up front and zeroized.
        let mut stripped = Zeroizing::new(String::with_capacity(text.len()));
        stripped.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
        let text = stripped.as_str();
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &text[7..],
            _ => return Err(invalid("a PKCS#11 URI starts with 'pkcs11:'")),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self::default();
        if !path.is_empty() {
            for segment in path.split(';') {
                let (name, value) = split_attribute(segment, "path")?;
                uri.set_path(name, value)?;
            }
        }
        if !query.is_empty() {
            for segment in query.split('&') {
                let (name, value) = split_attribute(segment, "query")?;
                uri.set_query(name, value)?;
            }
        }
        Ok(uri)
    }
}

/// Writes `bytes` percent-encoded, leaving `allowed` characters as they are.
fn encode(f: &mut fmt::Formatter<'_>, bytes: &[u8], allowed: fn(u8) -> bool) -> fmt::Result {
    for &b in bytes {
        if allowed(b) {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut sep = "";
        let mut path =
            |f: &mut fmt::Formatter<'_>, name: &str, value: &[u8], allowed: fn(u8) -> bool| {
                write!(f, "{sep}{name}=")?;
                sep = ";";
                encode(f, value, allowed)
            };
        let texts = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("model", &self.model),
            ("library-manufacturer", &self.library_manufacturer),
            ("library-description", &self.library_description),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                path(f, name, v.as_bytes(), is_path_char)?;
            }
        }
        if let Some(v) = self.library_version {
            path(
                f,
                "library-version",
                format!("{}.{}", v.major, v.minor).as_bytes(),
                is_path_char,
            )?;
        }
        for (name, value) in [
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ] {
            if let Some(v) = value {
                path(f, name, v.as_bytes(), is_path_char)?;
            }
        }
        if let Some(v) = self.slot_id {
            path(f, "slot-id", v.to_string().as_bytes(), is_path_char)?;
        }
        if let Some(v) = &self.object {
            path(f, "object", v.as_bytes(), is_path_char)?;
        }
        if let Some(v) = &self.id {
            // Every byte encoded: an id is binary, and `%01%02` reads better than a mix.
            path(f, "id", v, |_| false)?;
        }
        if let Some(v) = self.object_type {
            path(f, "type", v.as_str().as_bytes(), is_path_char)?;
        }
        for (name, value) in &self.vendor_path {
            path(f, name, value.as_bytes(), is_path_char)?;
        }
        let mut sep = "?";
        let mut query = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| {
            write!(f, "{sep}{name}=")?;
            sep = "&";
            encode(f, value.as_bytes(), is_query_char)
        };
        for (name, value) in [
            ("pin-source", &self.pin_source),
            ("module-name", &self.module_name),
            ("module-path", &self.module_path),
        ] {
            if let Some(v) = value {
                query(f, name, v)?;
            }
        }
        for (name, value) in &self.vendor_query {
            query(f, name, value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pin = self.pin_value.as_ref().map(|_| "** redacted **");
        f.debug_struct("Pkcs11Uri")
            .field("uri", &self.to_string())
            .field("pin_value", &pin)
            .finish()
    }
}

#[cfg(test)]
mod tests;
