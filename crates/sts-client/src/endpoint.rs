//! Where STS is: the regional endpoint in the region's partition, or an override URL.
//!
//! Region and override come from the builder first, then the environment
//! (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`).

use crate::error::StsError;

/// The DNS suffix of the partition a region belongs to.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        // aws and aws-us-gov (us-gov-west-1, us-gov-east-1) share this suffix.
        "amazonaws.com"
    }
}

/// Checks that a region looks like one (`us-east-1`): it becomes part of a host name and of
/// the signature's scope.
pub(crate) fn check_region(region: &str) -> Result<(), StsError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(StsError::Config(format!(
            "{region:?} is not an AWS region name (like us-east-1)"
        )))
    }
}

/// The regional STS endpoint for `region`: `https://sts.{region}.{partition suffix}`.
///
/// ```
/// assert_eq!(sts_client::regional_endpoint("eu-west-1"), "https://sts.eu-west-1.amazonaws.com");
/// assert_eq!(sts_client::regional_endpoint("cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
/// assert_eq!(sts_client::regional_endpoint("us-gov-west-1"), "https://sts.us-gov-west-1.amazonaws.com");
/// ```
pub fn regional_endpoint(region: &str) -> String {
    format!("https://sts.{region}.{}", dns_suffix(region))
}

/// Parses an endpoint URL given in place of the regional one: `http` or `https`, a host,
/// no query. (Whether plain http is allowed is [`sigv4_core::transport::check_scheme`]'s
/// call.)
pub fn parse_endpoint_url(url: &str) -> Result<http::Uri, StsError> {
    let bad = |why: &str| {
        StsError::Config(format!(
            "endpoint URL {url:?} {why}; give one like https://sts.example.com or http://127.0.0.1:5000"
        ))
    };
    let uri: http::Uri = url.trim().parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    Ok(uri)
}

/// The first non-empty environment variable of `names`, and its name.
pub(crate) fn env_first(names: &[&'static str]) -> Option<(String, &'static str)> {
    names.iter().find_map(|name| {
        let value = std::env::var(name).ok()?.trim().to_owned();
        (!value.is_empty()).then_some((value, *name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(
            regional_endpoint("us-east-1"),
            "https://sts.us-east-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("cn-northwest-1"),
            "https://sts.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            regional_endpoint("us-gov-east-1"),
            "https://sts.us-gov-east-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("us-iso-east-1"),
            "https://sts.us-iso-east-1.c2s.ic.gov"
        );
    }

    #[test]
    fn region_and_override_validation() {
        assert!(check_region("eu-central-2").is_ok());
        for bad in ["", "US-EAST-1", "us-east-1.evil.com", "-x", "a/b"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
        assert!(parse_endpoint_url("http://127.0.0.1:5000").is_ok());
        assert!(parse_endpoint_url("https://sts.example.com/base").is_ok());
        for bad in ["sts.example.com", "ftp://x", "https://x/?a=b", "http://"] {
            let err = parse_endpoint_url(bad).unwrap_err().to_string();
            assert!(err.contains("endpoint URL"), "{bad}: {err}");
        }
    }
}
