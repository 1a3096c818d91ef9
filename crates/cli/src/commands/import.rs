//! `keyhold import`: read the secret (stdin, a file or a named environment variable), put
//! `"AWS4" + secret` into the device, prove it with one HMAC against the software HMAC, drop
//! the secret, and print the `--key` value to use from now on.

use std::io::Write;

use crate::args::{ImportArgs, KeyArgs};
use crate::backend;
use crate::error::CliError;
use crate::key_ref::KeyRef;
use crate::secret_input::SecretSource;
use crate::sts;

/// Runs the import.
pub fn run(args: &ImportArgs, runtime: &tokio::runtime::Runtime) -> Result<(), CliError> {
    let akid = args.key.access_key_id.clone().ok_or_else(|| {
        CliError::Usage(
            "import needs the access key id of the secret: --access-key-id AKID (or AWS_ACCESS_KEY_ID)"
                .into(),
        )
    })?;
    check_access_key_id(&akid)?;
    let endpoint = match args.verify {
        true => Some(sts::endpoint(&args.sts, &args.key)?),
        false => None,
    };
    let prepared = backend::preflight_import(args, &akid)?;
    let source = match (&args.secret_file, &args.secret_env) {
        (Some(path), _) => SecretSource::File(path.clone()),
        (None, Some(name)) => SecretSource::Env(name.clone()),
        (None, None) => SecretSource::Stdin,
    };
    tracing::info!(from = %source, "reading the secret access key");
    let secret = source.read()?;
    let reference = backend::import(args, prepared, &secret, &akid)?;
    drop(secret);
    if let Some(endpoint) = endpoint {
        verify(&reference, args, &endpoint, runtime)?;
    }
    eprintln!(
        "imported the secret for {akid} ({}): the device's HMAC matches the software HMAC of \
         the secret.\nUse this --key value from now on (printed on stdout):",
        reference.backend()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{reference}").map_err(CliError::Output)
}

/// An access key id is 16 to 128 characters of A-Z and 0-9 (AWS's own are 20, starting
/// AKIA for a user's long-term key).
fn check_access_key_id(akid: &str) -> Result<(), CliError> {
    let shaped = (16..=128).contains(&akid.len())
        && akid
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if shaped {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--access-key-id {:?} is not an access key id (like AKIAIOSFODNN7EXAMPLE: 20 \
             capital letters and digits)",
            akid.chars().take(32).collect::<String>()
        )))
    }
}

/// `--verify`: GetCallerIdentity signed by the new key, opened as later commands will.
fn verify(
    reference: &KeyRef,
    args: &ImportArgs,
    endpoint: &sts::Endpoint,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), CliError> {
    let key_args = KeyArgs {
        key: Some(reference.clone()),
        ..args.key.clone()
    };
    let key = backend::open(&key_args)?;
    let client = sts::client(&key, endpoint)?;
    let identity = runtime
        .block_on(client.get_caller_identity())
        .map_err(|e| CliError::VerifyFailed {
            key: reference.to_string(),
            source: Box::new(sts::failure(e, &key, &key_args)),
        })?;
    eprintln!("verified with STS: the key signs as {}", identity.arn);
    Ok(())
}
