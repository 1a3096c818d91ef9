//! `keyhold credential-process`: temporary credentials from STS (AssumeRole or
//! GetSessionToken, signed by the device key) or IAM Roles Anywhere (CreateSession, signed
//! by the certificate's key), printed as the AWS `credential_process` JSON, version 1. The
//! AWS CLI and SDKs run it from `~/.aws/config` and show its stderr line when it fails.
//!
//! Cached across invocations (see [`crate::cache`]): a hit touches neither the device nor
//! the network.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroize;

use crate::args::{CredentialProcessArgs, SourceArgs};
use crate::cache;
use crate::credential_source;
use crate::error::CliError;
use crate::output;

/// The credential_process document (field names and order as the AWS docs give them).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    /// Always 1.
    pub version: u8,
    /// The temporary access key id.
    pub access_key_id: String,
    /// The temporary secret access key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// RFC 3339.
    pub expiration: String,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl Document {
    /// The document for credentials from a source.
    pub fn new(credentials: &sdk_credentials::Expiring) -> Result<Self, CliError> {
        let expiration = credentials.expires.format(&Rfc3339).map_err(|e| {
            CliError::Output(std::io::Error::other(format!(
                "the expiration received cannot be written as RFC 3339: {e}"
            )))
        })?;
        let sdk = &credentials.credentials;
        Ok(Self {
            version: 1,
            access_key_id: sdk.access_key_id().to_owned(),
            secret_access_key: sdk.secret_access_key().to_owned(),
            session_token: sdk.session_token().unwrap_or_default().to_owned(),
            expiration,
        })
    }
}

/// The flags checked and a cache hit printed, before anything else runs (keyhold
/// re-executes itself to set up libtss2's environment for TPM keys, which would double a
/// hit's cost); `Ok(false)` when the cache is off or has nothing good: then [`run`].
pub fn answer_from_cache(process_args: &CredentialProcessArgs) -> Result<bool, CliError> {
    let args = &process_args.source;
    credential_source::check(args)?;
    if process_args.no_cache {
        return Ok(false);
    }
    match cache::Entry::for_args(args, process_args.cache_margin).and_then(|e| e.read()) {
        Some(hit) => print(&hit).map(|()| true),
        None => Ok(false),
    }
}

/// Gets the credentials and prints them, after [`answer_from_cache`] found none: the cache
/// is read again under its lock (another invocation may have refreshed meanwhile), then
/// written.
pub fn run(process_args: &CredentialProcessArgs) -> Result<(), CliError> {
    let args = &process_args.source;
    let entry = match process_args.no_cache {
        true => None,
        false => cache::Entry::for_args(args, process_args.cache_margin),
    };
    let Some(entry) = entry else {
        return print(&fetch(args)?);
    };
    let _refreshing = entry.lock();
    if let Some(hit) = entry.read() {
        return print(&hit);
    }
    let document = fetch(args)?;
    entry.write(&document);
    print(&document)
}

/// Opens the key or certificate and calls the service once.
pub fn fetch(args: &SourceArgs) -> Result<Document, CliError> {
    let opened = credential_source::open(args)?;
    let runtime = crate::runtime()?;
    let credentials = runtime
        .block_on(opened.source.fetch())
        .map_err(|e| opened.failure(e, args))?;
    tracing::info!(access_key_id = %credentials.credentials.access_key_id(), expiration = %credentials.expires, "temporary credentials received");
    Document::new(&credentials)
}

/// Prints the document.
fn print(document: &Document) -> Result<(), CliError> {
    output::print_json(document)
}
