//! `keyhold import`: read the secret (stdin, a file or a named environment variable), put
//! `"AWS4" + secret` into the device, prove it with one HMAC against the software HMAC, drop
//! the secret, and print the `--key` value to use from now on.

use std::io::Write;

use crate::args::ImportArgs;
use crate::backend;
use crate::error::CliError;
use crate::secret_input::SecretSource;

/// Runs the import.
pub fn run(args: &ImportArgs) -> Result<(), CliError> {
    let akid = args.key.access_key_id.clone().ok_or_else(|| {
        CliError::Usage(
            "import needs the access key id of the secret: --access-key-id AKID (or AWS_ACCESS_KEY_ID)"
                .into(),
        )
    })?;
    backend::preflight_import(args)?;
    let source = match (&args.secret_file, &args.secret_env) {
        (Some(path), _) => SecretSource::File(path.clone()),
        (None, Some(name)) => SecretSource::Env(name.clone()),
        (None, None) => SecretSource::Stdin,
    };
    tracing::info!(from = %source, "reading the secret access key");
    let secret = source.read()?;
    let reference = backend::import(args, &secret, &akid)?;
    drop(secret);
    eprintln!(
        "imported the secret for {akid} ({}): the device's HMAC matches the software HMAC of \
         the secret.\nUse this --key value from now on (printed on stdout):",
        reference.backend()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{reference}").map_err(CliError::Output)
}
