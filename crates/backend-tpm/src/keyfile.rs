//! TSS2 PEM key files ("-----BEGIN TSS2 PRIVATE KEY-----"), the format tpm2-tools'
//! `tpm2_encodeobject`, the OpenSSL tpm2 provider and the Linux kernel share:
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!     type        OBJECT IDENTIFIER,                        -- 2.23.133.10.1.3 loadable key
//!     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!     policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!     secret      [2] EXPLICIT OCTET STRING OPTIONAL,       -- importable keys only
//!     authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,
//!     description [4] EXPLICIT UTF8String OPTIONAL,
//!     rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!     parent      INTEGER,                                   -- 0x40000001: the owner's standard primary
//!     pubkey      OCTET STRING,                              -- TPM2B_PUBLIC
//!     privkey     OCTET STRING }                             -- TPM2B_PRIVATE
//! TPMPolicy ::= SEQUENCE { commandCode [0] EXPLICIT INTEGER, commandPolicy [1] EXPLICIT OCTET STRING }
//! ```
//!
//! keyhold writes the access key id as a line of explanatory text before the armor
//! (`aws_access_key_id = AKIA...`, RFC 7468 §2 lets parsers skip it), so one file is the whole
//! key reference and tpm2-tools and OpenSSL still load it. (tpm2-tools 5.4 refuses a
//! `description` field, so the id is not put there.) The DER code here is deliberately small:
//! it writes exactly this structure and reads it strictly (definite lengths, no trailing bytes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::TpmError;

/// DER of OBJECT IDENTIFIER 2.23.133.10.1 (id-tpmkey); the key type is one more arc.
const OID_TPMKEY_PREFIX: &[u8] = &[0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01];
const ARC_LOADABLE: u8 = 3;
const ARC_IMPORTABLE: u8 = 4;
const PEM_BEGIN: &str = "-----BEGIN TSS2 PRIVATE KEY-----";
const PEM_END: &str = "-----END TSS2 PRIVATE KEY-----";
const ACCESS_KEY_ID_LABEL: &str = "aws_access_key_id";

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTF8_STRING: u8 = 0x0c;
/// `[n] EXPLICIT` is a constructed context-specific tag.
const fn explicit(n: u8) -> u8 {
    0xa0 | n
}

/// The parent handle TSS2 key files use for "the standard storage primary of the owner
/// hierarchy" (re-created from its template when the key is loaded).
pub const OWNER_STANDARD_PRIMARY: u32 = 0x4000_0001;

/// One policy command of a key file: a command code and its marshalled parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCommand {
    /// The TPM_CC of the policy command (TPM2_PolicyPCR = 0x17f, TPM2_PolicyAuthValue = 0x16b).
    pub command_code: u32,
    /// The command's parameters after the session handle, TPM-marshalled.
    pub command_policy: Vec<u8>,
}

/// What a key file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// 2.23.133.10.1.3: a key created under `parent`, loaded with TPM2_Load.
    Loadable,
    /// 2.23.133.10.1.4: a duplication blob wrapped for `parent`, imported with TPM2_Import;
    /// `secret` holds the encrypted seed.
    Importable,
}

/// A TSS2 key file: a key's public and (parent-encrypted) private area and how to load it.
/// Contains no secret in the clear: the private area is encrypted to the parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmKeyFile {
    /// Loadable key or importable duplication blob.
    pub kind: KeyKind,
    /// True when the key needs no password.
    pub empty_auth: bool,
    /// Policy commands that must be run before using the key (empty: no policy).
    pub policy: Vec<PolicyCommand>,
    /// TPM2B_ENCRYPTED_SECRET, the seed of an importable key (None for loadable keys).
    pub secret: Option<Vec<u8>>,
    /// The `description` field, if the file has one (keyhold does not write it).
    pub description: Option<String>,
    /// The AWS access key id, carried as explanatory text before the PEM armor.
    pub access_key_id: Option<String>,
    /// The parent handle: [`OWNER_STANDARD_PRIMARY`] or a persistent handle.
    pub parent: u32,
    /// TPM2B_PUBLIC, with its size prefix.
    pub public: Vec<u8>,
    /// TPM2B_PRIVATE, with its size prefix.
    pub private: Vec<u8>,
}

impl TpmKeyFile {
    /// The access key id that travels with the key, if any.
    pub fn access_key_id(&self) -> Option<&str> {
        self.access_key_id.as_deref()
    }

    /// Sets the access key id (ASCII letters and digits, as AWS issues them).
    pub fn set_access_key_id(&mut self, access_key_id: &str) -> Result<(), TpmError> {
        if access_key_id.is_empty() || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TpmError::InvalidArgument {
                reason: format!(
                    "'{access_key_id}' is not an access key id (ASCII letters and digits)"
                ),
            });
        }
        self.access_key_id = Some(access_key_id.to_owned());
        Ok(())
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Vec<u8> {
        let mut body = OID_TPMKEY_PREFIX.to_vec();
        body.push(match self.kind {
            KeyKind::Loadable => ARC_LOADABLE,
            KeyKind::Importable => ARC_IMPORTABLE,
        });
        if self.empty_auth {
            // OPTIONAL (not DEFAULT): TRUE is written, "needs auth" is left out.
            body.extend(tlv(explicit(0), &tlv(BOOLEAN, &[0xff])));
        }
        if !self.policy.is_empty() {
            let mut list = Vec::new();
            for p in &self.policy {
                let mut item = tlv(explicit(0), &tlv(INTEGER, &integer(p.command_code)));
                item.extend(tlv(explicit(1), &tlv(OCTET_STRING, &p.command_policy)));
                list.extend(tlv(SEQUENCE, &item));
            }
            body.extend(tlv(explicit(1), &tlv(SEQUENCE, &list)));
        }
        if let Some(secret) = &self.secret {
            body.extend(tlv(explicit(2), &tlv(OCTET_STRING, secret)));
        }
        if let Some(description) = &self.description {
            body.extend(tlv(explicit(4), &tlv(UTF8_STRING, description.as_bytes())));
        }
        body.extend(tlv(INTEGER, &integer(self.parent)));
        body.extend(tlv(OCTET_STRING, &self.public));
        body.extend(tlv(OCTET_STRING, &self.private));
        tlv(SEQUENCE, &body)
    }

    /// The PEM encoding ("-----BEGIN TSS2 PRIVATE KEY-----", 64-column base64), preceded by
    /// the `aws_access_key_id = ...` line when there is one.
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(self.to_der());
        let mut out = String::with_capacity(b64.len() + 120);
        if let Some(id) = &self.access_key_id {
            out.push_str(&format!("{ACCESS_KEY_ID_LABEL} = {id}\n"));
        }
        out.push_str(PEM_BEGIN);
        out.push('\n');
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(PEM_END);
        out.push('\n');
        out
    }

    /// Parses a PEM file (text around the armor is ignored, as OpenSSL does).
    pub fn from_pem(pem: &str) -> Result<Self, TpmError> {
        let start = pem
            .find(PEM_BEGIN)
            .ok_or_else(|| bad(format!("no '{PEM_BEGIN}' line")))?;
        let rest = &pem[start + PEM_BEGIN.len()..];
        let end = rest
            .find(PEM_END)
            .ok_or_else(|| bad(format!("no '{PEM_END}' line")))?;
        let b64: String = rest[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("the base64 body does not decode ({e})")))?;
        let mut file = Self::from_der(&der)?;
        file.access_key_id = pem[..start].lines().find_map(|line| {
            let (label, value) = line.split_once('=')?;
            (label.trim() == ACCESS_KEY_ID_LABEL).then(|| value.trim().to_owned())
        });
        Ok(file)
    }

    /// Parses the DER encoding.
    pub fn from_der(der: &[u8]) -> Result<Self, TpmError> {
        let mut outer = Reader(der);
        let mut r = Reader(outer.expect(SEQUENCE, "TPMKey")?);
        outer.finish("TPMKey")?;
        let kind = match r.expect(0x06, "type")? {
            [prefix @ .., ARC_LOADABLE] if prefix == &OID_TPMKEY_PREFIX[2..] => KeyKind::Loadable,
            [prefix @ .., ARC_IMPORTABLE] if prefix == &OID_TPMKEY_PREFIX[2..] => {
                KeyKind::Importable
            }
            _ => {
                return Err(bad(
                    "the key type is neither 2.23.133.10.1.3 (loadable) nor 2.23.133.10.1.4 (importable); sealed data is not a SigV4 key".into(),
                ));
            }
        };
        let mut file = TpmKeyFile {
            kind,
            secret: None,
            empty_auth: false,
            policy: Vec::new(),
            description: None,
            access_key_id: None,
            parent: 0,
            public: Vec::new(),
            private: Vec::new(),
        };
        while let Some(tag) = r.peek().filter(|t| t & 0xe0 == 0xa0) {
            let mut inner = Reader(r.expect(tag, "optional field")?);
            match tag & 0x1f {
                0 => file.empty_auth = parse_bool(inner.expect(BOOLEAN, "emptyAuth")?)?,
                1 => file.policy = parse_policies(inner.expect(SEQUENCE, "policy")?)?,
                2 => file.secret = Some(inner.expect(OCTET_STRING, "secret")?.to_vec()),
                3 => {
                    return Err(bad(
                        "signed policies (authPolicy) are not supported; import the key without them".into(),
                    ));
                }
                4 => {
                    let text = inner.expect(UTF8_STRING, "description")?;
                    file.description = Some(
                        String::from_utf8(text.to_vec())
                            .map_err(|_| bad("the description is not UTF-8".into()))?,
                    );
                }
                5 => {
                    if parse_bool(inner.expect(BOOLEAN, "rsaParent")?)? {
                        return Err(bad(
                            "the key's parent is an RSA primary (rsaParent); keyhold uses the ECC P-256 standard primary".into(),
                        ));
                    }
                }
                // Later fields (parentName, ...) carry nothing a loader needs.
                _ => inner.0 = &[],
            }
            inner.finish("optional field")?;
        }
        file.parent = parse_u32(r.expect(INTEGER, "parent")?)?;
        file.public = r.expect(OCTET_STRING, "pubkey")?.to_vec();
        file.private = r.expect(OCTET_STRING, "privkey")?.to_vec();
        r.finish("TPMKey")?;
        match (kind, &file.secret) {
            (KeyKind::Loadable, None) | (KeyKind::Importable, Some(_)) => Ok(file),
            (KeyKind::Loadable, Some(_)) => {
                Err(bad("a loadable key carries an import secret".into()))
            }
            (KeyKind::Importable, None) => Err(bad("an importable key lacks its secret".into())),
        }
    }
}

fn bad(reason: String) -> TpmError {
    TpmError::KeyFile { reason }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER's minimal two's-complement content octets.
fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    let mut out = Vec::with_capacity(5);
    if bytes[skip] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[skip..]);
    out
}

fn parse_u32(content: &[u8]) -> Result<u32, TpmError> {
    let digits = match content {
        [] => return Err(bad("an INTEGER is empty".into())),
        [first, ..] if first & 0x80 != 0 => return Err(bad("an INTEGER is negative".into())),
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if digits.len() > 4 {
        return Err(bad("an INTEGER does not fit in 32 bits".into()));
    }
    Ok(digits
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

fn parse_bool(content: &[u8]) -> Result<bool, TpmError> {
    match content {
        [0] => Ok(false),
        // DER says 0xff; tools have written other non-zero bytes, which BER reads as TRUE.
        [_] => Ok(true),
        _ => Err(bad("a BOOLEAN is not one byte".into())),
    }
}

fn parse_policies(content: &[u8]) -> Result<Vec<PolicyCommand>, TpmError> {
    let mut list = Reader(content);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let mut item = Reader(list.expect(SEQUENCE, "TPMPolicy")?);
        let code = parse_u32(
            Reader(item.expect(explicit(0), "commandCode")?).expect(INTEGER, "commandCode")?,
        )?;
        let body = Reader(item.expect(explicit(1), "commandPolicy")?)
            .expect(OCTET_STRING, "commandPolicy")?;
        item.finish("TPMPolicy")?;
        out.push(PolicyCommand {
            command_code: code,
            command_policy: body.to_vec(),
        });
    }
    Ok(out)
}

/// Reads DER elements off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Takes one element with tag `tag` and returns its content.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], TpmError> {
        let truncated = || bad(format!("{what}: truncated"));
        let (&got, rest) = self.0.split_first().ok_or_else(truncated)?;
        if got != tag {
            return Err(bad(format!(
                "{what}: expected tag {tag:#04x}, found {got:#04x}"
            )));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad(format!("{what}: unsupported length encoding")));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(truncated());
        }
        let (content, after) = rest.split_at(len);
        self.0 = after;
        Ok(content)
    }

    fn finish(&self, what: &str) -> Result<(), TpmError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(bad(format!("{what}: unexpected trailing bytes")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `tpm2_import -G hmac` + `tpm2_encodeobject` (tpm2-tools 5.4) on swtpm.
    const TOOLS_PEM: &str = "-----BEGIN TSS2 PRIVATE KEY-----
MIH2BgZngQUKAQOgAwEBAAIEQAAAAQQyADAACAALAAQAQAAAAAUACwAgHwmoReRP
KW4erhAcRwl7y69FfQM5QKsu4GyukwswXqYEgawAqgAgKBzTudQDgfmj7ij7lm8J
aD6YloouovazP1FxJqXF0NwAEN6cJrdxkkUiBMQbXFga7rqbVjQ42v3IiBQp88Eh
dVV/b+N4igq7sG0brZ3Dx4PWGDX22kN2ZogpHyDyirEVqC2JPOXS1NdNw+yZmhQ1
vqpdrp0wgl4EEZYHcM4YGJZstkRKZHh9XkInBet8KTLqasLJyHmmlC+uVgEsSfWm
bEMctLd5S1aA
-----END TSS2 PRIVATE KEY-----
";

    #[test]
    fn reads_tpm2_tools_output() {
        let file = TpmKeyFile::from_pem(TOOLS_PEM).unwrap();
        assert_eq!(file.parent, OWNER_STANDARD_PRIMARY);
        assert!(!file.empty_auth, "tpm2-tools writes emptyAuth FALSE");
        assert_eq!(file.public.len(), 50);
        assert_eq!(&file.public[..2], &[0x00, 0x30], "TPM2B_PUBLIC size prefix");
        assert_eq!(file.private.len(), 172);
        assert!(file.policy.is_empty());
    }

    #[test]
    fn round_trips_every_field() {
        let mut file = TpmKeyFile {
            kind: KeyKind::Importable,
            secret: Some(vec![3; 256]),
            empty_auth: true,
            policy: vec![
                PolicyCommand {
                    command_code: 0x17f,
                    command_policy: vec![1; 200],
                },
                PolicyCommand {
                    command_code: 0x16b,
                    command_policy: vec![],
                },
            ],
            description: Some("a test key".into()),
            access_key_id: None,
            parent: 0x8101_0001,
            public: vec![7; 300],
            private: vec![9; 70_000],
        };
        file.set_access_key_id("AKIDEXAMPLE").unwrap();
        assert!(file.set_access_key_id("AKID\n-----").is_err());
        let pem = file.to_pem();
        assert!(pem.starts_with("aws_access_key_id = AKIDEXAMPLE\n-----BEGIN"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = TpmKeyFile::from_pem(&pem).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.access_key_id(), Some("AKIDEXAMPLE"));
    }

    #[test]
    fn writes_what_openssl_asn1parse_expects() {
        let file = TpmKeyFile {
            kind: KeyKind::Loadable,
            secret: None,
            empty_auth: true,
            policy: vec![],
            description: None,
            access_key_id: None,
            parent: OWNER_STANDARD_PRIMARY,
            public: vec![0xaa],
            private: vec![0xbb],
        };
        let expected = [
            0x30, 0x19, 0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03, 0xa0, 0x03, 0x01, 0x01,
            0xff, 0x02, 0x04, 0x40, 0x00, 0x00, 0x01, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb,
        ];
        assert_eq!(file.to_der(), expected);
        assert_eq!(integer(0x8101_0001), [0x00, 0x81, 0x01, 0x00, 0x01]);
        assert_eq!(integer(0), [0x00]);
    }

    #[test]
    fn reads_empty_auth_written_as_boolean_0x01() {
        // tpm2-tools 5.4 (`tpm2_encodeobject -p`) and tpm2-openssl write TRUE as 0x01, which
        // strict DER (0xff only) would refuse: the file of writes_what_openssl_asn1parse_expects
        // with `01 01 01` for emptyAuth.
        let der = [
            0x30, 0x19, 0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03, 0xa0, 0x03, 0x01, 0x01,
            0x01, 0x02, 0x04, 0x40, 0x00, 0x00, 0x01, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb,
        ];
        let file = TpmKeyFile::from_der(&der).unwrap();
        assert!(file.empty_auth, "0x01 reads as TRUE");
        assert_eq!(file.parent, OWNER_STANDARD_PRIMARY);
        assert_eq!(
            (file.public.as_slice(), file.private.as_slice()),
            (&[0xaa][..], &[0xbb][..])
        );
        // Written back, it is DER's 0xff.
        assert_eq!(file.to_der()[14], 0xff);
        let mut zero = der;
        zero[14] = 0x00;
        assert!(!TpmKeyFile::from_der(&zero).unwrap().empty_auth);
    }

    #[test]
    fn refuses_other_key_types_and_garbage() {
        let mut der = TpmKeyFile::from_pem(TOOLS_PEM).unwrap().to_der();
        let sealed = der.clone();
        der[9] = 0x05; // 2.23.133.10.1.5, a sealed data object
        assert!(
            TpmKeyFile::from_der(&der)
                .unwrap_err()
                .to_string()
                .contains("sealed")
        );
        let mut trailing = sealed.clone();
        trailing.push(0);
        assert!(TpmKeyFile::from_der(&trailing).is_err());
        assert!(TpmKeyFile::from_der(&sealed[..sealed.len() - 1]).is_err());
        assert!(TpmKeyFile::from_pem("-----BEGIN PRIVATE KEY-----").is_err());
    }
}
