//! Reading Vault's replies: the JSON `data` of a success, and an HMAC's 32 bytes. Errors name
//! what was asked and what is wrong, never the reply's text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::http::Reply;

/// The `data` of a reply.
#[derive(Deserialize)]
pub(crate) struct Data<T> {
    pub(crate) data: T,
}

/// The 32 bytes of an HMAC reply (`{"data":{"hmac":"vault:vN:BASE64"}}`).
pub(crate) fn hmac_of_reply(body: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    #[derive(Deserialize)]
    struct Hmac {
        hmac: String,
    }
    let what = "the HMAC call";
    let Data { data }: Data<Hmac> = parse_json(what, body)?;
    let bad = |why: &str| VaultError::Reply {
        what: what.into(),
        why: why.into(),
    };
    let encoded = data
        .hmac
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split_once(':'))
        .map(|(_version, b64)| b64)
        .ok_or_else(|| bad("the HMAC is not vault:vN:BASE64"))?;
    let bytes = Zeroizing::new(
        BASE64
            .decode(encoded)
            .map_err(|_| bad("the HMAC is not base64"))?,
    );
    if bytes.len() != 32 {
        return Err(bad("the HMAC is not 32 bytes"));
    }
    let mut tag = Zeroizing::new([0u8; 32]);
    tag.copy_from_slice(&bytes);
    Ok(tag)
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    reply: &Reply,
) -> Result<T, VaultError> {
    parse_json(what, &reply.body)
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| VaultError::Reply {
        what: what.to_owned(),
        why: format!(
            "{} at line {} column {}",
            e.classify_name(),
            e.line(),
            e.column()
        ),
    })
}

/// serde_json's error category, named.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or mistyped fields",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `vault-reply` fuzz target: no reply body, however malformed, panics the HMAC
    /// reply's parser or the error-text reader, and an error never quotes the body.
    #[test]
    fn fuzz_vault_replies() {
        let dictionary: &[&[u8]] = &[
            b"{\"data\":{\"hmac\":\"",
            b"vault:v1:",
            b"vault:v",
            b"\"}}",
            b"{\"errors\":[\"",
            b"1 error occurred:\\n\\t* ",
            b"AAAA",
            b"=",
            b"\\u0000",
        ];
        let runs = test_support::fuzz::runs(20_000);
        let parsed =
            test_support::fuzz::run("vault-reply", 0x5eed_0012, runs, dictionary, |body| {
                let _ = crate::error::server_message(body);
                match hmac_of_reply(body) {
                    Ok(tag) => tag.len() == 32,
                    Err(e) => {
                        let text = e.to_string();
                        assert!(text.len() < 400, "{text}");
                        false
                    }
                }
            });
        assert!(parsed > 0, "the seed reply parses");
    }
}
