//! `keyhold credential-process --certificate ...`: temporary credentials from IAM Roles
//! Anywhere (`CreateSession`, signed by the certificate's private key), printed as the same
//! `credential_process` JSON as the STS path.

use std::path::Path;

use rolesanywhere::{CertificateChain, CreateSession, FileKey, RolesAnywhereClient};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::args::CredentialProcessArgs;
use crate::error::CliError;

/// The environment variable that may hold an encrypted private key's password.
const PASSWORD_ENV: &str = "KEYHOLD_PRIVATE_KEY_PASSWORD";

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

/// A flag clap guarantees when `--certificate` is given (`requires_all`).
fn required<'a, T>(value: &'a Option<T>, flag: &str) -> &'a T {
    value
        .as_ref()
        .unwrap_or_else(|| panic!("clap requires {flag} with --certificate"))
}

fn usage(flag: &str, error: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{flag}: {error}"))
}

/// The password of an encrypted key: the file's first line, else the environment's value.
fn password(args: &CredentialProcessArgs) -> Result<Option<Zeroizing<Vec<u8>>>, CliError> {
    if let Some(path) = &args.roles_anywhere.private_key_password_file {
        let text = Zeroizing::new(read(path)?);
        let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        return Ok(Some(Zeroizing::new(line.to_vec())));
    }
    Ok(std::env::var_os(PASSWORD_ENV).map(|value| Zeroizing::new(value.into_encoded_bytes())))
}

/// Reads the certificate and key, checks they are a pair and in date, and returns the
/// signer's pieces.
fn certificate_and_key(
    args: &CredentialProcessArgs,
) -> Result<(CertificateChain, FileKey), CliError> {
    let ra = &args.roles_anywhere;
    let certificate_path = required(&ra.certificate, "--certificate");
    let mut chain = CertificateChain::from_pem(&read(certificate_path)?)
        .map_err(|e| usage("--certificate", crate::error::one_line(&e)))?;
    if let Some(path) = &ra.intermediates {
        chain = chain
            .with_intermediates(&read(path)?)
            .map_err(|e| usage("--intermediates", crate::error::one_line(&e)))?;
    }
    chain
        .check_validity(time::OffsetDateTime::now_utc())
        .map_err(|e| usage("--certificate", e))?;
    let key_path = required(&ra.private_key, "--private-key");
    let pem = Zeroizing::new(read(key_path)?);
    let pem = std::str::from_utf8(&pem)
        .map_err(|_| usage("--private-key", "the file is not PEM text"))?;
    let password = password(args)?;
    let key = FileKey::from_pem(pem, password.as_ref().map(|p| p.as_slice()))
        .map_err(|e| usage("--private-key", e))?;
    if key.public_key_der() != chain.public_key_der() {
        return Err(CliError::Usage(format!(
            "--private-key {} is not the private key of --certificate {} (their public keys \
             differ)",
            key_path.display(),
            certificate_path.display()
        )));
    }
    tracing::info!(
        subject = %chain.info().subject,
        serial = %chain.info().serial_number,
        key = %chain.info().public_key,
        intermediates = chain.intermediates_der().len(),
        "certificate"
    );
    Ok((chain, key))
}

/// Gets the credentials through Roles Anywhere and prints them.
pub fn run(
    args: &CredentialProcessArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), CliError> {
    let ra = &args.roles_anywhere;
    let trust_anchor = required(&ra.trust_anchor_arn, "--trust-anchor-arn")
        .parse()
        .map_err(|e| usage("--trust-anchor-arn", e))?;
    let profile = required(&ra.profile_arn, "--profile-arn")
        .parse()
        .map_err(|e| usage("--profile-arn", e))?;
    let role = required(&args.role_arn, "--role-arn")
        .parse()
        .map_err(|e| usage("--role-arn", e))?;
    let mut request = CreateSession::new(trust_anchor, profile, role).duration(args.duration);
    if let Some(name) = &args.role_session_name {
        request = request.role_session_name(name.clone());
    }
    request
        .check()
        .map_err(|e| CliError::Usage(e.to_string()))?;

    let (chain, key) = certificate_and_key(args)?;
    let signer = chain.signer(key).map_err(|e| usage("--private-key", e))?;
    let mut builder = RolesAnywhereClient::builder(signer)
        .region(request.trust_anchor_arn().region())
        .from_env()
        .allow_insecure_http(args.key.allow_insecure_http);
    if let Some(url) = &args.sts.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let client = builder
        .build()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    tracing::info!(
        endpoint = %client.endpoint(),
        duration_secs = args.duration.as_secs(),
        "CreateSession"
    );
    let credentials = runtime
        .block_on(client.create_session(&request))
        .map_err(CliError::RolesAnywhere)?;
    super::credential_process::print(
        &credentials.access_key_id,
        credentials.secret_access_key.expose_secret(),
        credentials.session_token.expose_secret(),
        credentials.expiration,
    )
}
