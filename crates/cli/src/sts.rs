//! Where STS is, from `--region`/`--endpoint-url` and the AWS CLI's environment variables,
//! checked before any device or network call; and the STS client signing with the device.

use crate::args::{KeyArgs, StsArgs};
use crate::backend::OpenedKey;
use crate::error::CliError;

/// The region when none is given anywhere: STS's global endpoint lives there.
const DEFAULT_REGION: &str = "us-east-1";

/// The first non-empty environment variable of `names`, and its name.
fn env(names: &[&'static str]) -> Option<(String, &'static str)> {
    names.iter().find_map(|name| {
        let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
        Some((value.trim().to_owned(), *name))
    })
}

/// The region and endpoint to use, and where each came from.
#[derive(Debug)]
pub struct Endpoint {
    /// The signing region.
    pub region: String,
    /// The URL requests go to.
    pub url: String,
    /// Where the URL came from, for logs and errors.
    pub from: String,
    allow_insecure_http: bool,
}

/// Resolves and checks the region and the endpoint: the flags, else the AWS CLI's
/// variables (`AWS_REGION`, `AWS_DEFAULT_REGION`; `AWS_ENDPOINT_URL_STS`,
/// `AWS_ENDPOINT_URL`), else us-east-1 and its regional endpoint. A malformed URL, or plain
/// http to another machine without `--allow-insecure-http`, is a command-line error.
pub fn endpoint(args: &StsArgs, key: &KeyArgs) -> Result<Endpoint, CliError> {
    let region = args
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]).map(|(r, _)| r))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let (url, from) = match (
        &args.endpoint_url,
        env(&["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]),
    ) {
        (Some(url), _) if !url.is_empty() => (url.clone(), "--endpoint-url".to_owned()),
        (_, Some((url, var))) => (url, format!("{var} in the environment")),
        _ => (
            sts_client::regional_endpoint(&region),
            format!("the default for {region}"),
        ),
    };
    let uri = sts_client::parse_endpoint_url(&url)
        .map_err(|e| CliError::Usage(format!("the STS endpoint (from {from}): {e}")))?;
    sigv4_core::transport::check_scheme(&uri, key.allow_insecure_http)
        .map_err(|why| CliError::Usage(format!("the STS endpoint (from {from}): {why}")))?;
    tracing::info!(%region, endpoint = %url, from = %from, "STS endpoint");
    Ok(Endpoint {
        region,
        url,
        from,
        allow_insecure_http: key.allow_insecure_http,
    })
}

/// An STS client at `endpoint` that signs with `key`.
pub fn client(key: &OpenedKey, endpoint: &Endpoint) -> Result<sts_client::StsClient, CliError> {
    tracing::info!(access_key_id = %key.access_key_id, "STS client");
    sts_client::StsClient::builder(key.access_key_id.clone(), key.root_key.clone())
        .region(endpoint.region.clone())
        .endpoint_url(endpoint.url.clone())
        .allow_insecure_http(endpoint.allow_insecure_http)
        .build()
        .map_err(CliError::Sts)
}

/// An STS failure, saying where the access key id came from when STS rejected it.
pub fn failure(error: sts_client::StsError, key: &OpenedKey, args: &KeyArgs) -> CliError {
    use sts_client::ServiceErrorKind as K;
    match error.kind() {
        Some(K::InvalidClientTokenId | K::SignatureDoesNotMatch) => CliError::Rejected {
            access_key_id: key.access_key_id.clone(),
            from: access_key_id_source(args),
            source: Box::new(error),
        },
        _ => CliError::Sts(error),
    }
}

/// Where the access key id in use came from.
fn access_key_id_source(args: &KeyArgs) -> &'static str {
    match (&args.access_key_id, std::env::var("AWS_ACCESS_KEY_ID")) {
        (Some(given), Ok(env)) if *given == env => "from AWS_ACCESS_KEY_ID in the environment",
        (Some(_), _) => "from --access-key-id",
        (None, _) => "stored with the key at import",
    }
}

/// Checks the shape of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`), so
/// that a typo is a command-line error rather than an AccessDenied from STS.
pub fn check_role_arn(arn: &str) -> Result<(), CliError> {
    let bad = |why: &str| {
        CliError::Usage(format!(
            "--role-arn {arn:?} {why}; give one like arn:aws:iam::123456789012:role/deploy"
        ))
    };
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if scheme != "arn" || !partition.starts_with("aws") || service != "iam" || !region.is_empty() {
        return Err(bad("is not an IAM ARN"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("does not have a 12-digit account id"));
    }
    let name = resource
        .strip_prefix("role/")
        .ok_or_else(|| bad("is not a role"))?;
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b);
    if name.is_empty() || name.ends_with('/') || !name.bytes().all(valid) || name.len() > 512 {
        return Err(bad("does not end in a valid role name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_checked_for_shape() {
        for good in [
            "arn:aws:iam::123456789012:role/deploy",
            "arn:aws-us-gov:iam::123456789012:role/path/to/Deploy+Role=1,x.y@z_w-v",
            "arn:aws-cn:iam::123456789012:role/r",
        ] {
            assert!(check_role_arn(good).is_ok(), "{good}");
        }
        for (bad, expected) in [
            ("deploy", "not an IAM ARN"),
            ("arn:aws:sts::123456789012:role/x", "not an IAM ARN"),
            ("arn:aws:iam::12345:role/x", "12-digit"),
            ("arn:aws:iam::123456789012:user/x", "not a role"),
            ("arn:aws:iam::123456789012:role/", "valid role name"),
            ("arn:aws:iam::123456789012:role/a b", "valid role name"),
        ] {
            let err = check_role_arn(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(expected), "{bad}: {err}");
        }
    }
}
