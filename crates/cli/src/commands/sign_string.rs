//! `keyhold sign-string`: signs what comes on stdin with a Roles Anywhere private key, as the
//! AWS signing helper's `sign-string` does, for self-tests of a key; with `--certificate`,
//! also checks the signature against the certificate's public key.

use std::io::{Read as _, Write as _};

use rolesanywhere::CertificateChain;
use serde::Serialize;
use sigv4_core::X509KeyKind;

use crate::args::{SignStringArgs, SignatureFormat};
use crate::error::{CliError, one_line};

/// The most stdin read: a self-test string, not a file to sign.
const MAX_INPUT: u64 = 1 << 20;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Signed<'a> {
    algorithm: &'a str,
    signature: String,
}

/// Signs stdin and prints the signature.
pub fn run(args: &SignStringArgs) -> Result<(), CliError> {
    if !args.digest.eq_ignore_ascii_case("SHA256") {
        return Err(CliError::Usage(format!(
            "--digest {}: keyhold signs with SHA-256 only, as Roles Anywhere does \
             (AWS4-X509-*-SHA256)",
            args.digest
        )));
    }
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|source| CliError::Io {
            op: "read",
            path: "standard input".into(),
            source,
        })?;
    if input.len() as u64 > MAX_INPUT {
        return Err(CliError::Usage(format!(
            "standard input is over {MAX_INPUT} bytes; sign-string signs a test string"
        )));
    }
    let key = super::roles_anywhere::open_private_key(
        &args.private_key,
        args.private_key_password_file.as_deref(),
        args.pkcs11_lib.as_deref(),
        &args.key,
    )?;
    let signature = key
        .sign(&input)
        .map_err(|e| CliError::Sign(sigv4_core::SignError::Key(e)))?;
    if let Some(path) = &args.certificate {
        let bytes = std::fs::read(path).map_err(|source| CliError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        let chain = CertificateChain::from_pem(&bytes)
            .map_err(|e| CliError::Usage(format!("--certificate: {}", one_line(&e))))?;
        if !chain.verifies(&input, &signature) {
            return Err(CliError::Usage(format!(
                "--certificate: the signature does not verify with {}'s public key: the key is \
                 not the certificate's",
                path.display()
            )));
        }
        eprintln!("keyhold: the signature verifies with the certificate's public key");
    }
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        SignatureFormat::Text => writeln!(out, "{hex}"),
        SignatureFormat::Bin => out.write_all(&signature),
        SignatureFormat::Json => {
            let algorithm = match key.kind() {
                X509KeyKind::Rsa => "RSASSA-PKCS1-v1_5 SHA-256",
                _ => "ECDSA SHA-256 (DER)",
            };
            return crate::output::print_json(&Signed {
                algorithm,
                signature: hex,
            });
        }
    };
    written.and_then(|()| out.flush()).map_err(CliError::Output)
}
