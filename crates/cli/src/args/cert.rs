//! `keyhold cert`: Roles Anywhere key pairs made inside a device, their certificate
//! requests, their certificates on the token, and what a certificate says.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sigv4_core::X509KeyType;

use super::KeyArgs;

pub(super) const CERT_EXAMPLES: &str = "\
Examples (the whole flow, for a SoftHSM token; a TPM works the same with tpm:file=KEY.pem):
  # a P-256 key pair made in the token, never outside it
  keyhold cert keygen --key 'pkcs11:token=ra;object=client?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyhold/pin'
  # a certificate request for your CA, signed by that key
  keyhold cert csr --key 'pkcs11:token=ra;object=client;type=private?module-path=...' \\
      --subject 'CN=build-01,O=Example' > client.csr
  # the certificate your CA issued, onto the token beside its key
  keyhold cert import --key 'pkcs11:token=ra;object=client;type=private?module-path=...' \\
      --certificate client.pem
  keyhold cert show --certificate 'pkcs11:token=ra;object=client;type=cert?module-path=...'

Then credential_process = keyhold credential-process --certificate 'pkcs11:token=ra;object=client;type=cert?...' --trust-anchor-arn ... --profile-arn ... --role-arn ...";

/// `keyhold cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CertCommand,
}

/// The `cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a new RSA or EC key pair inside the token or TPM (never outside it); prints the
    /// key's reference.
    Keygen(CertKeygenArgs),
    /// Print a PKCS#10 certificate request for the key, signed by it, for your CA.
    Csr(CertCsrArgs),
    /// Put the certificate your CA issued onto the token, beside its key (PKCS#11 only; keep
    /// a TPM key's certificate as a file).
    Import(CertImportArgs),
    /// Print what a certificate says: subject, issuer, serial (decimal, as Roles Anywhere
    /// uses it), validity, key type, where the key lives.
    Show(CertShowArgs),
}

/// `keyhold cert keygen`.
#[derive(Debug, Args)]
pub struct CertKeygenArgs {
    /// Where to make the key: pkcs11:<URI with object=LABEL> (a random id unless id= is
    /// given), or tpm:file=<new key.pem> (under the owner's standard storage primary; a
    /// password from --tpm-password-file or KEYHOLD_TPM_PASSWORD).
    #[command(flatten)]
    pub key: KeyArgs,

    /// The kind of key: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long = "type", value_name = "TYPE", default_value = "ec-p256")]
    pub key_type: X509KeyType,
}

/// `keyhold cert csr`.
#[derive(Debug, Args)]
pub struct CertCsrArgs {
    /// The key: pkcs11:<URI of the private key> or tpm:file=<key.pem> / tpm:handle=0x81...
    #[command(flatten)]
    pub key: KeyArgs,

    /// The subject, as an RFC 4514 name: 'CN=build-01,O=Example'.
    #[arg(long, value_name = "DN")]
    pub subject: String,

    /// Write the request here (mode 0644) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `keyhold cert import`.
#[derive(Debug, Args)]
pub struct CertImportArgs {
    /// The key the certificate is for: pkcs11:<URI of the private key>.
    #[command(flatten)]
    pub key: KeyArgs,

    /// The certificate (PEM or DER); it must be the key's.
    #[arg(long, value_name = "FILE")]
    pub certificate: PathBuf,
}

/// `keyhold cert show`.
#[derive(Debug, Args)]
pub struct CertShowArgs {
    /// The certificate: a PEM or DER file, or pkcs11:<URI, type=cert>.
    #[arg(long, value_name = "FILE|URI")]
    pub certificate: String,

    /// The PKCS#11 module of a pkcs11: --certificate whose URI names none. Default: p11-kit's
    /// proxy.
    #[arg(long, value_name = "LIB")]
    pub pkcs11_lib: Option<PathBuf>,
}

/// How `sign-string` prints the signature.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SignatureFormat {
    /// Lowercase hex, one line.
    Text,
    /// `{"Algorithm": ..., "Signature": hex}`.
    Json,
    /// The raw signature bytes.
    Bin,
}

/// `keyhold sign-string`.
#[derive(Debug, Args)]
pub struct SignStringArgs {
    /// The private key: a PEM file, pkcs11:<URI, type=private> or tpm:file=<key.pem> /
    /// tpm:handle=0x81... (the PIN and TPM options as for credential-process).
    #[arg(long, value_name = "FILE|URI")]
    pub private_key: String,

    /// A file holding the password of an encrypted --private-key (else
    /// KEYHOLD_PRIVATE_KEY_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub private_key_password_file: Option<PathBuf>,

    /// Also check the signature with this certificate's public key (PEM or DER file).
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,

    /// How to print the signature.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SignatureFormat,

    /// The digest: SHA256 (the only one Roles Anywhere's algorithms use).
    #[arg(long, default_value = "SHA256")]
    pub digest: String,

    /// The PKCS#11 module of a pkcs11: --private-key whose URI names none. Default: p11-kit's
    /// proxy.
    #[arg(long, value_name = "LIB")]
    pub pkcs11_lib: Option<PathBuf>,

    /// The AWS signing helper's flags that change nothing here.
    #[command(flatten)]
    pub signing_helper: super::SigningHelperFlags,

    /// TPM options (--tcti, --tpm-password-file).
    #[command(flatten)]
    pub key: KeyArgs,
}
