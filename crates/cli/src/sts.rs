//! Building the STS client from `--region`/`--endpoint-url` and the AWS CLI's environment
//! variables, with the device key as its signer.

use crate::args::StsArgs;
use crate::backend::OpenedKey;

/// The region when none is given anywhere: STS's global endpoint lives there.
const DEFAULT_REGION: &str = "us-east-1";

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The region: the flag (or AWS_REGION), else AWS_DEFAULT_REGION, else us-east-1.
pub fn region(args: &StsArgs) -> String {
    args.region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| env(&["AWS_DEFAULT_REGION"]))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// The STS endpoint URL: the flag (or AWS_ENDPOINT_URL_STS), else AWS_ENDPOINT_URL, else
/// the region's.
pub fn endpoint(args: &StsArgs) -> String {
    args.endpoint_url
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| env(&["AWS_ENDPOINT_URL"]))
        .unwrap_or_else(|| sts_client::regional_endpoint(&region(args)))
}

/// An STS client that signs with `key`.
pub fn client(
    key: &OpenedKey,
    args: &StsArgs,
) -> Result<sts_client::StsClient, sts_client::StsError> {
    let region = region(args);
    let endpoint = endpoint(args);
    tracing::info!(%region, %endpoint, access_key_id = %key.access_key_id, "STS client");
    sts_client::StsClient::builder(key.access_key_id.clone(), key.root_key.clone())
        .region(region)
        .endpoint_url(endpoint)
        .build()
}
