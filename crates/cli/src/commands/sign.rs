//! `keyhold sign`: sign an HTTP request with the device key and print the headers to add,
//! or a presigned URL; with `--send`, send it and print the response like curl.

use std::io::{Read, Write};
use std::time::Duration;

use sigv4_core::{Payload, Signer, SigningParams, SigningSettings};

use crate::args::SignArgs;
use crate::backend;
use crate::error::CliError;

/// Signs (and maybe sends) the request.
pub fn run(args: &SignArgs, runtime: &tokio::runtime::Runtime) -> Result<(), CliError> {
    let region = args
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .ok_or_else(|| {
            CliError::Usage("sign needs --region (or AWS_REGION / AWS_DEFAULT_REGION)".into())
        })?;
    let mut request = build_request(args)?;
    if args.send {
        sigv4_core::transport::check_scheme(request.uri(), args.key.allow_insecure_http)
            .map_err(|why| CliError::Usage(format!("sign --send: {why}")))?;
    }
    let key = backend::open(&args.key)?;
    let settings = match args.service.as_str() {
        "s3" => SigningSettings::s3(),
        _ => SigningSettings::default(),
    };
    let signer =
        Signer::from_arc(key.access_key_id.clone(), key.root_key.clone()).with_settings(settings);
    let mut params = SigningParams::new(&region, &args.service);
    let unsigned = args.unsigned_payload || (args.presign && args.service == "s3");
    if unsigned {
        params = params.with_payload(Payload::Unsigned);
    }
    tracing::info!(method = %request.method(), uri = %request.uri(), %region, service = %args.service, presign = args.presign, "signing");
    let mut out = std::io::stdout().lock();
    if args.presign {
        signer
            .presign_request(&mut request, &params, Duration::from_secs(args.expires))
            .map_err(CliError::Sign)?;
        if !args.send {
            return writeln!(out, "{}", request.uri()).map_err(CliError::Output);
        }
    } else {
        let output = signer
            .sign_request(&mut request, &params)
            .map_err(CliError::Sign)?;
        if !args.send {
            for addition in output.additions() {
                writeln!(out, "{}: {}", addition.name(), addition.value())
                    .map_err(CliError::Output)?;
            }
            return Ok(());
        }
    }
    drop(out);
    runtime.block_on(send(request, args))
}

/// The request from the URL, method, headers and body on the command line.
fn build_request(args: &SignArgs) -> Result<http::Request<Vec<u8>>, CliError> {
    let uri: http::Uri = args
        .url
        .parse()
        .map_err(|e| CliError::Usage(format!("'{}' is not a URL: {e}", args.url)))?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(CliError::Usage(format!(
            "'{}' is not an absolute URL: use https://host/path",
            args.url
        )));
    }
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CliError::Usage(format!("'{}' is not an HTTP method", args.method)))?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("header '{header}' is not 'Name: value'")))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| CliError::Usage(format!("'{}' is not a header name", name.trim())))?;
        let value = http::HeaderValue::from_str(value.trim())
            .map_err(|_| CliError::Usage(format!("the value of header {name} is not valid")))?;
        builder = builder.header(name, value);
    }
    let body = match args.data.as_deref() {
        None => Vec::new(),
        Some("@-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|source| CliError::Io {
                    op: "read the body from",
                    path: "standard input".into(),
                    source,
                })?;
            body
        }
        Some(data) => match data.strip_prefix('@') {
            Some(path) => std::fs::read(path).map_err(|source| CliError::Io {
                op: "read the body from",
                path: path.into(),
                source,
            })?,
            None => data.as_bytes().to_vec(),
        },
    };
    builder
        .body(body)
        .map_err(|e| CliError::Usage(format!("could not build the request: {e}")))
}

/// Sends the signed request and prints the response like curl (`-i`: status and headers
/// first), streaming the body to stdout. Redirects are followed only with `--location`, and
/// then only to https (or loopback) URLs. Errors name the host, never a presigned URL: its
/// query is a bearer credential.
async fn send(request: http::Request<Vec<u8>>, args: &SignArgs) -> Result<(), CliError> {
    let shown = shown_url(request.uri());
    let http_error = |source| CliError::Http {
        url: shown.clone(),
        source,
    };
    let allow_http = args.key.allow_insecure_http;
    let redirects = if args.location {
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if let Ok(uri) = attempt.url().as_str().parse::<http::Uri>()
                && let Err(why) = sigv4_core::transport::check_scheme(&uri, allow_http)
            {
                attempt.error(why)
            } else {
                attempt.follow()
            }
        })
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(args.connect_timeout))
        .read_timeout(Duration::from_secs(args.connect_timeout.max(30)))
        .redirect(redirects);
    if let Some(max) = args.max_time {
        client = client.timeout(Duration::from_secs_f64(max));
    }
    let client = client.build().map_err(http_error)?;
    let request = reqwest::Request::try_from(request).map_err(http_error)?;
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| http_error(e.without_url()))?;
    let status = response.status();
    tracing::info!(status = status.as_u16(), "response");
    let mut out = std::io::stdout().lock();
    let write = |out: &mut std::io::StdoutLock<'_>, bytes: &[u8]| {
        out.write_all(bytes).map_err(CliError::Output)
    };
    if args.include {
        let version = format!("{:?}", response.version());
        write(&mut out, format!("{version} {status}\r\n").as_bytes())?;
        for (name, value) in response.headers() {
            write(&mut out, name.as_str().as_bytes())?;
            write(&mut out, b": ")?;
            write(&mut out, value.as_bytes())?;
            write(&mut out, b"\r\n")?;
        }
        write(&mut out, b"\r\n")?;
    }
    if status.is_redirection() && !args.location {
        tracing::warn!(
            status = status.as_u16(),
            "not following the redirect: pass --location (-L) to follow it"
        );
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| http_error(e.without_url()))?
    {
        write(&mut out, &chunk)?;
    }
    out.flush().map_err(CliError::Output)?;
    if args.fail && (status.is_client_error() || status.is_server_error()) {
        return Err(CliError::HttpStatus {
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// The most redirects `--location` follows, as curl's default of 50 is far more than AWS
/// ever sends.
const MAX_REDIRECTS: usize = 10;

/// The URL for messages: scheme, host and path, without the query (a presigned URL's
/// query holds its signature and, with temporary credentials, the session token).
fn shown_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", http::uri::Authority::as_str);
    let query = if uri.query().is_some() { "?..." } else { "" };
    format!("{scheme}://{authority}{}{query}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_a_query() {
        let uri: http::Uri =
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Security-Token=t"
                .parse()
                .unwrap();
        assert_eq!(shown_url(&uri), "https://b.s3.amazonaws.com/k?...");
    }
}
