//! `keyhold whoami`: STS GetCallerIdentity signed by the device key, printed as the AWS CLI
//! prints `aws sts get-caller-identity`.

use serde::Serialize;

use crate::args::WhoamiArgs;
use crate::error::CliError;
use crate::{backend, output, sts};

/// The AWS CLI's field names and order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Identity<'a> {
    user_id: &'a str,
    account: &'a str,
    arn: &'a str,
}

/// Runs GetCallerIdentity and prints the result.
pub fn run(args: &WhoamiArgs, runtime: &tokio::runtime::Runtime) -> Result<(), CliError> {
    let endpoint = sts::endpoint(&args.sts, &args.key)?;
    let key = backend::open(&args.key)?;
    let client = sts::client(&key, &endpoint)?;
    let identity = runtime
        .block_on(client.get_caller_identity())
        .map_err(|e| sts::failure(e, &key, &args.key))?;
    output::print_json(&Identity {
        user_id: &identity.user_id,
        account: &identity.account,
        arn: &identity.arn,
    })
}
