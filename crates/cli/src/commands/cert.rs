//! `keyhold cert keygen|csr|import|show`: IAM Roles Anywhere key pairs made inside a device
//! and their certificates. See `args::cert` for the flow.

use std::io::Write as _;

use rolesanywhere::CertificateChain;

use crate::args::{CertArgs, CertCommand, KeyArgs};
use crate::error::{CliError, one_line};
#[cfg(any(feature = "pkcs11", feature = "tpm"))]
use crate::key_ref::KeyRef;

fn usage(flag: &str, error: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{flag}: {error}"))
}

/// Runs a `cert` subcommand.
pub fn run(args: &CertArgs) -> Result<(), CliError> {
    match &args.command {
        CertCommand::Keygen(a) => keygen(&a.key, a.key_type),
        CertCommand::Csr(a) => csr(&a.key, &a.subject, a.output.as_deref()),
        CertCommand::Import(a) => import(&a.key, &a.certificate),
        CertCommand::Show(a) => show(a),
    }
}

fn print_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

#[cfg_attr(not(any(feature = "pkcs11", feature = "tpm")), allow(unused_variables))]
fn keygen(key: &KeyArgs, key_type: sigv4_core::X509KeyType) -> Result<(), CliError> {
    match key.key() {
        #[cfg(feature = "pkcs11")]
        KeyRef::Pkcs11(uri) => {
            let made =
                backend_pkcs11::generate_key_pair(uri, crate::backend::pkcs11::pin(uri), key_type)
                    .map_err(|e| CliError::Import {
                        backend: "PKCS#11 token",
                        source: Box::new(e),
                    })?;
            print_line(&made.to_string())
        }
        #[cfg(feature = "tpm")]
        KeyRef::TpmFile(path) => {
            crate::backend::tpm::create_signing_key_file(path, key, key_type)?;
            print_line(&format!("tpm:file={}", path.display()))
        }
        #[allow(unreachable_patterns)]
        other => Err(usage(
            "--key",
            format!(
                "cert keygen makes keys in a PKCS#11 token (pkcs11:...) or a TPM key file \
                 (tpm:file=PATH), not {other}"
            ),
        )),
    }
}

fn csr(key: &KeyArgs, subject: &str, output: Option<&std::path::Path>) -> Result<(), CliError> {
    let signer = super::roles_anywhere::open_device_key(key.key(), key)?;
    let public = signer.public_key().ok_or_else(|| {
        usage(
            "--key",
            "the device does not show this key's public half (no public key object with its \
             CKA_ID)",
        )
    })?;
    let request = rolesanywhere::certificate_request(subject, &public, signer.as_ref()).map_err(
        |e| match e {
            rolesanywhere::CsrError::Subject { .. } => CliError::Usage(e.to_string()),
            other => CliError::Sign(sigv4_core::SignError::Key(sigv4_core::KeyError::new(
                sigv4_core::KeyErrorKind::Device,
                one_line(&other),
            ))),
        },
    )?;
    match output {
        Some(path) => std::fs::write(path, &request).map_err(|source| CliError::Io {
            op: "write",
            path: path.to_owned(),
            source,
        }),
        None => print_line(request.trim_end()),
    }
}

fn import(key: &KeyArgs, certificate: &std::path::Path) -> Result<(), CliError> {
    #[cfg(feature = "pkcs11")]
    #[allow(irrefutable_let_patterns)] // a PKCS#11-only build has no other key type
    if let KeyRef::Pkcs11(uri) = key.key() {
        let bytes = std::fs::read(certificate).map_err(|source| CliError::Io {
            op: "read",
            path: certificate.to_owned(),
            source,
        })?;
        let chain =
            CertificateChain::from_pem(&bytes).map_err(|e| usage("--certificate", one_line(&e)))?;
        let opened = crate::backend::pkcs11::open_x509(uri)?;
        chain
            .check_key(&opened)
            .map_err(|e| usage("--certificate", one_line(&e)))?;
        opened
            .store_certificate(uri, chain.leaf_der(), chain.subject_der())
            .map_err(|e| CliError::Import {
                backend: "PKCS#11 token",
                source: Box::new(e),
            })?;
        let mut stored = (**uri).clone();
        stored.object_type = Some(backend_pkcs11::uri::ObjectType::Cert);
        stored.pin_value = None;
        return print_line(&stored.to_string());
    }
    let _ = certificate;
    Err(usage(
        "--key",
        format!(
            "only a PKCS#11 token keeps certificates; keep the certificate of {} as a file and \
             give it to credential-process as --certificate FILE",
            key.key()
        ),
    ))
}

/// `cert show` (and `read-certificate-data`, its AWS signing helper name).
pub fn show(args: &crate::args::CertShowArgs) -> Result<(), CliError> {
    let certificate = args.certificate.as_str();
    let (chain, lives) = if certificate.starts_with("pkcs11:") {
        #[cfg(feature = "pkcs11")]
        {
            let uri = backend_pkcs11::Pkcs11Uri::parse(certificate)
                .map_err(|e| usage("--certificate", e))?;
            let uri = super::roles_anywhere::with_module(uri, args.pkcs11_lib.as_deref())?;
            let key = crate::backend::pkcs11::open_x509(&uri)?;
            let der = key.certificate_der().ok_or_else(|| {
                usage(
                    "--certificate",
                    "the token holds no certificate with the key's CKA_ID",
                )
            })?;
            let chain = CertificateChain::from_der(der.to_vec(), Vec::new())
                .map_err(|e| usage("--certificate", one_line(&e)))?;
            let mut key_uri = uri.clone();
            key_uri.object_type = Some(backend_pkcs11::uri::ObjectType::Private);
            key_uri.pin_value = None;
            (chain, format!("PKCS#11 token, {key_uri}"))
        }
        #[cfg(not(feature = "pkcs11"))]
        return Err(usage(
            "--certificate",
            "this keyhold was built without the pkcs11 feature",
        ));
    } else {
        let bytes = std::fs::read(certificate).map_err(|source| CliError::Io {
            op: "read",
            path: certificate.into(),
            source,
        })?;
        let chain =
            CertificateChain::from_pem(&bytes).map_err(|e| usage("--certificate", one_line(&e)))?;
        (
            chain,
            "not known from a certificate file (give it as --private-key)".to_owned(),
        )
    };
    let info = chain.info();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let now = time::OffsetDateTime::now_utc();
    let state = match chain.check_validity(now) {
        Ok(()) => "valid now".to_owned(),
        Err(e) => e.to_string(),
    };
    for line in [
        format!("Subject: {}", info.subject),
        format!("Issuer: {}", info.issuer),
        format!(
            "Serial number (decimal, as Roles Anywhere uses it): {}",
            info.serial_number
        ),
        format!("Not before: {}", rfc3339(info.not_before)),
        format!("Not after: {} ({state})", rfc3339(info.not_after)),
        format!("Public key: {}", info.public_key),
        format!(
            "Intermediates sent with it: {}",
            chain.intermediates_der().len()
        ),
        format!("Private key: {lives}"),
    ] {
        print_line(&line)?;
    }
    Ok(())
}
