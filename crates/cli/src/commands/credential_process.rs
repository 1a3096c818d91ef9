//! `keyhold credential-process`: temporary credentials from STS (AssumeRole or
//! GetSessionToken, signed by the device key) printed as the AWS `credential_process` JSON,
//! version 1. The AWS CLI and SDKs run it from `~/.aws/config` and show its stderr line when
//! it fails.

use secrecy::ExposeSecret;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::args::CredentialProcessArgs;
use crate::error::CliError;
use crate::{backend, output, sts};

/// The credential_process document (field names and order as the AWS docs give them).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

/// Checks `--duration-seconds` against STS's range for the call, before any device call.
fn check_duration(args: &CredentialProcessArgs) -> Result<(), CliError> {
    let (call, max) = match args.role_arn {
        Some(_) => ("AssumeRole", 43_200),
        None => ("GetSessionToken", 129_600),
    };
    let secs = args.duration.as_secs();
    if (900..=max).contains(&secs) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--duration-seconds {secs} is outside {call}'s range of 900 to {max} seconds \
             (AssumeRole is further limited by the role's maximum session duration)"
        )))
    }
}

/// Gets the credentials and prints them.
pub fn run(
    args: &CredentialProcessArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), CliError> {
    if args.roles_anywhere.certificate.is_some() {
        return super::roles_anywhere::run(args, runtime);
    }
    let endpoint = sts::endpoint(&args.sts, &args.key)?;
    check_duration(args)?;
    if let Some(role_arn) = &args.role_arn {
        sts::check_role_arn(role_arn)?;
    }
    let key = backend::open(&args.key)?;
    let client = sts::client(&key, &endpoint)?;
    let failure = |e| sts::failure(e, &key, &args.key);
    let credentials = match &args.role_arn {
        Some(role_arn) => {
            let session_name = args.role_session_name.clone().unwrap_or_else(|| {
                format!(
                    "keyhold-{}",
                    time::OffsetDateTime::now_utc().unix_timestamp()
                )
            });
            let mut request =
                sts_client::AssumeRole::new(role_arn.clone(), session_name).duration(args.duration);
            if let Some(external_id) = &args.external_id {
                request = request.external_id(external_id.clone());
            }
            tracing::info!(
                role_arn,
                duration_secs = args.duration.as_secs(),
                "AssumeRole"
            );
            runtime
                .block_on(client.assume_role(request))
                .map_err(failure)?
                .credentials
        }
        None => {
            let request = sts_client::GetSessionToken::new().duration(args.duration);
            tracing::info!(duration_secs = args.duration.as_secs(), "GetSessionToken");
            runtime
                .block_on(client.get_session_token(request))
                .map_err(failure)?
        }
    };
    print(
        &credentials.access_key_id,
        credentials.secret_access_key.expose_secret(),
        credentials.session_token.expose_secret(),
        credentials.expiration,
    )
}

/// Prints temporary credentials as the credential_process document.
pub fn print(
    access_key_id: &str,
    secret_access_key: &str,
    session_token: &str,
    expiration: time::OffsetDateTime,
) -> Result<(), CliError> {
    let expiration = expiration.format(&Rfc3339).map_err(|e| {
        CliError::Output(std::io::Error::other(format!(
            "the expiration received cannot be written as RFC 3339: {e}"
        )))
    })?;
    tracing::info!(%access_key_id, %expiration, "temporary credentials received");
    output::print_json(&ProcessCredentials {
        version: 1,
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    })
}
