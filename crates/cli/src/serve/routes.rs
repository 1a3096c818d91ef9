//! What the credential server answers: the IMDSv2 paths the SDKs read, and the ECS
//! container endpoint. Every request first passes the Host check (DNS rebinding) and is
//! refused if it carries `X-Forwarded-For` (it came through a proxy).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Server;

/// Where the ECS container endpoint answers.
pub const ECS_PATH: &str = "/ecs/credentials";
const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PREFIX: &str = "/latest/meta-data/iam/security-credentials";
const REGION_PATH: &str = "/latest/meta-data/placement/region";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// The reply body type.
pub type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(status, "text/plain", body)
}

/// An error reply with a reason, as JSON (`Code`, `Message`) the SDKs log.
fn refused(status: StatusCode, code: &str, message: &str) -> Reply {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Refusal<'a> {
        code: &'a str,
        message: &'a str,
    }
    let body = serde_json::to_vec(&Refusal { code, message }).unwrap_or_default();
    reply(status, "application/json", body)
}

/// Whether the Host header names this server without a DNS name an attacker could point
/// here: an IP address, `localhost`, or a name given with `--allowed-host`.
fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest.split_once(']').is_some_and(|(ip, port)| {
                ip.parse::<std::net::Ipv6Addr>().is_ok()
                    && (port.is_empty() || port.strip_prefix(':').is_some())
            });
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Answers one request.
pub async fn answer(server: &Server, method: &Method, path: &str, headers: &HeaderMap) -> Reply {
    if !host_allowed(headers, &server.allowed_hosts) {
        return refused(
            StatusCode::FORBIDDEN,
            "HostNotAllowed",
            "the Host header must be an IP address or localhost (or a name given with --allowed-host)",
        );
    }
    if headers.contains_key("x-forwarded-for") {
        return refused(
            StatusCode::FORBIDDEN,
            "Forwarded",
            "requests through a proxy (X-Forwarded-For) are refused",
        );
    }
    match (method, path) {
        (&Method::PUT, TOKEN_PATH) => issue_token(server, headers),
        (_, TOKEN_PATH) => text(StatusCode::METHOD_NOT_ALLOWED, "use PUT"),
        (&Method::GET, ECS_PATH) => ecs(server, headers).await,
        (_, ECS_PATH) => text(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        (&Method::GET, p) if p.starts_with("/latest/") => imds(server, p, headers).await,
        (_, p) if p.starts_with("/latest/") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn issue_token(server: &Server, headers: &HeaderMap) -> Reply {
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ttl| (1..=super::tokens::MAX_IMDS_TTL).contains(ttl));
    let Some(ttl) = ttl else {
        return text(
            StatusCode::BAD_REQUEST,
            "X-aws-ec2-metadata-token-ttl-seconds must be 1 to 21600",
        );
    };
    match server.imds_tokens.issue(Duration::from_secs(ttl)) {
        Ok(token) => {
            let mut response = text(StatusCode::OK, token.as_bytes().to_vec());
            if let Ok(value) = header::HeaderValue::from_str(&ttl.to_string()) {
                response.headers_mut().insert(TTL_HEADER, value);
            }
            response
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::one_line(&e),
        ),
    }
}

async fn imds(server: &Server, path: &str, headers: &HeaderMap) -> Reply {
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    if !token.is_some_and(|t| server.imds_tokens.valid(t)) {
        // IMDSv1 (no token) is not served.
        return text(
            StatusCode::UNAUTHORIZED,
            "a valid X-aws-ec2-metadata-token is required",
        );
    }
    if path == REGION_PATH {
        return match &server.region {
            Some(region) => text(StatusCode::OK, region.clone()),
            None => text(StatusCode::NOT_FOUND, "no region set (--region)"),
        };
    }
    let Some(rest) = path.strip_prefix(CREDENTIALS_PREFIX) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    match rest.strip_prefix('/') {
        None | Some("") => text(StatusCode::OK, server.role_name.clone()),
        Some(role) if role == server.role_name => credentials(server, true).await,
        Some(_) => text(StatusCode::NOT_FOUND, "no such role"),
    }
}

async fn ecs(server: &Server, headers: &HeaderMap) -> Reply {
    let given = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !given.is_some_and(|g| server.ecs_token.matches(g)) {
        return refused(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the Authorization header must be the token of AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)",
        );
    }
    credentials(server, false).await
}

/// The JSON both endpoints give (IMDS adds `Code`, `LastUpdated` and `Type`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_updated: Option<&'a str>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
}

/// Both replies for one set of credentials, written once: a request then costs a lookup and
/// a reference count. The bytes are zeroized when the last reply holding them is dropped.
pub struct Rendered {
    access_key_id: String,
    expires: OffsetDateTime,
    ecs: Bytes,
    imds: Bytes,
}

impl Rendered {
    fn new(expiring: &sdk_credentials::Expiring) -> Result<Self, &'static str> {
        let rfc3339 = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339);
        let (Ok(expiration), Ok(now)) = (
            rfc3339(expiring.expires),
            rfc3339(OffsetDateTime::now_utc()),
        ) else {
            return Err("a time cannot be written as RFC 3339");
        };
        let sdk = &expiring.credentials;
        let body = |imds: bool| {
            let document = Document {
                code: imds.then_some("Success"),
                last_updated: imds.then_some(now.as_str()),
                kind: imds.then_some("AWS-HMAC"),
                access_key_id: sdk.access_key_id(),
                secret_access_key: sdk.secret_access_key(),
                token: sdk.session_token().unwrap_or_default(),
                expiration: &expiration,
            };
            let mut buffer = zeroize::Zeroizing::new(Vec::with_capacity(2048));
            serde_json::to_writer(&mut *buffer, &document)
                .map(|()| Bytes::from_owner(buffer))
                .map_err(|_| "the reply could not be written")
        };
        Ok(Self {
            access_key_id: sdk.access_key_id().to_owned(),
            expires: expiring.expires,
            ecs: body(false)?,
            imds: body(true)?,
        })
    }

    fn is_for(&self, expiring: &sdk_credentials::Expiring) -> bool {
        self.expires == expiring.expires
            && self.access_key_id == expiring.credentials.access_key_id()
    }
}

async fn credentials(server: &Server, imds: bool) -> Reply {
    let expiring = match server.provider.expiring().await {
        Ok(expiring) => expiring,
        Err(e) => {
            let reason = crate::error::one_line(&e);
            tracing::warn!(%reason, "no usable credentials to serve");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable",
                &reason,
            );
        }
    };
    let read = |rendered: &Rendered| match imds {
        true => rendered.imds.clone(),
        false => rendered.ecs.clone(),
    };
    let cached = server
        .rendered
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .filter(|r| r.is_for(&expiring))
        .map(read);
    let body = match cached {
        Some(body) => body,
        None => match Rendered::new(&expiring) {
            Ok(rendered) => {
                let body = read(&rendered);
                *server
                    .rendered
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rendered);
                body
            }
            Err(why) => return text(StatusCode::INTERNAL_SERVER_ERROR, why),
        },
    };
    reply(StatusCode::OK, "application/json", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, header::HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_addresses_localhost_and_allowed_names_pass_the_host_check() {
        let allowed = vec!["creds.internal".to_owned()];
        for good in [
            "127.0.0.1:9911",
            "127.0.0.1",
            "169.254.169.254",
            "[::1]:80",
            "localhost:9911",
            "LOCALHOST",
            "creds.internal:80",
        ] {
            assert!(host_allowed(&host(good), &allowed), "{good}");
        }
        for bad in [
            "attacker.example:9911",
            "attacker.example",
            "127.0.0.1.nip.io",
            "[::1",
            "[evil]:80",
            "",
        ] {
            assert!(!host_allowed(&host(bad), &allowed), "{bad}");
        }
        assert!(!host_allowed(&HeaderMap::new(), &allowed), "no Host header");
    }
}
