//! `keyhold credential-process --certificate ...`: temporary credentials from IAM Roles
//! Anywhere (`CreateSession`, signed by the certificate's private key), printed as the same
//! `credential_process` JSON as the STS path.

use std::path::Path;
use std::sync::Arc;

use rolesanywhere::{CertificateChain, CreateSession, FileKey, RolesAnywhereClient};
use sigv4_core::X509Key;
use zeroize::Zeroizing;

use crate::args::{KeyArgs, RolesAnywhereArgs, SourceArgs, StsArgs};
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
fn password(file: Option<&Path>) -> Result<Option<Zeroizing<Vec<u8>>>, CliError> {
    if let Some(path) = file {
        return crate::secret_input::first_line_of_file("read", path).map(Some);
    }
    Ok(std::env::var_os(PASSWORD_ENV).map(|value| Zeroizing::new(value.into_encoded_bytes())))
}

/// Where a certificate or private key is: a file, or a PKCS#11 token.
enum Location<'a> {
    File(&'a Path),
    #[cfg(feature = "pkcs11")]
    Pkcs11(Box<backend_pkcs11::Pkcs11Uri>),
    #[cfg(feature = "tpm")]
    Tpm(crate::key_ref::KeyRef),
}

/// The first line of a TSS2 PEM key file.
const TSS2_BEGIN: &str = "-----BEGIN TSS2 PRIVATE KEY-----";

/// The `tpm:` reference a `--private-key` in the AWS signing helper's spelling stands for:
/// `handle:0x81...`, or the path of a TSS2 PEM key file (known by its BEGIN line), so that
/// the helper's `~/.aws/config` lines work unchanged. Only a regular file is looked into: a
/// pipe (`<(...)`, a FIFO, `/dev/fd/N`) can be read once, and that read is the file key's.
pub fn signing_helper_tpm_key(text: &str) -> Option<String> {
    if let Some(handle) = text.strip_prefix("handle:") {
        return Some(format!("tpm:handle={handle}"));
    }
    if text.starts_with("pkcs11:") || text.starts_with("tpm:") {
        return None;
    }
    // A missing or unreadable file is reported by the file-key path that follows.
    if !std::fs::metadata(text).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let contents = Zeroizing::new(std::fs::read(text).ok()?);
    let pem = std::str::from_utf8(&contents).ok()?;
    pem.lines()
        .any(|line| line.trim_end() == TSS2_BEGIN)
        .then(|| format!("tpm:file={text}"))
}

/// `uri` with `--pkcs11-lib` as its module when it names none (the AWS signing helper's
/// flag; the URI's own module-path or module-name wins).
#[cfg(feature = "pkcs11")]
pub fn with_module(
    mut uri: backend_pkcs11::Pkcs11Uri,
    pkcs11_lib: Option<&Path>,
) -> Result<backend_pkcs11::Pkcs11Uri, CliError> {
    if uri.module_path.is_none()
        && uri.module_name.is_none()
        && let Some(lib) = pkcs11_lib
    {
        uri.module_path = Some(module_file(lib)?.display().to_string());
    }
    Ok(uri)
}

/// The module `--pkcs11-lib` names, found as the AWS signing helper's loader (`dlopen`)
/// finds it: an absolute path as it is, a relative one from the current directory, a bare
/// file name (`opensc-pkcs11.so`) in the PKCS#11 module directories, then the loader's
/// standard ones.
#[cfg(feature = "pkcs11")]
fn module_file(lib: &Path) -> Result<std::path::PathBuf, CliError> {
    const GIVE: &str = "give the module's absolute path";
    if lib.is_absolute() {
        return Ok(lib.to_owned());
    }
    if lib.as_os_str().as_encoded_bytes().contains(&b'/') {
        return std::path::absolute(lib)
            .map_err(|e| usage("--pkcs11-lib", format!("{}: {e}; {GIVE}", lib.display())));
    }
    let name = lib
        .to_str()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| usage("--pkcs11-lib", format!("{:?} is no file name; {GIVE}", lib)))?;
    backend_pkcs11::find_module_file(name).map_err(|e| match e {
        backend_pkcs11::Error::ModuleNotFound { searched, .. } => usage(
            "--pkcs11-lib",
            format!("{name} not found (looked for {searched}); {GIVE}"),
        ),
        other => usage("--pkcs11-lib", crate::error::one_line(&other)),
    })
}

fn location<'a>(
    text: &'a str,
    flag: &str,
    pkcs11_lib: Option<&Path>,
) -> Result<Location<'a>, CliError> {
    let _ = pkcs11_lib; // with the pkcs11 feature
    // The AWS signing helper's TPM keys (a bare TSS2 PEM path, `handle:0x81...`) are
    // `tpm:` references here.
    let helper_tpm_key = match flag {
        "--private-key" => signing_helper_tpm_key(text),
        _ => None,
    };
    if text.starts_with("tpm:") || helper_tpm_key.is_some() {
        let reference = helper_tpm_key.as_deref().unwrap_or(text);
        #[cfg(feature = "tpm")]
        return reference
            .parse::<crate::key_ref::KeyRef>()
            .map(Location::Tpm)
            .map_err(|e| usage(flag, e));
        #[cfg(not(feature = "tpm"))]
        return Err(usage(
            flag,
            format!("{reference}: this keyhold was built without the tpm feature"),
        ));
    }
    if text.starts_with("pkcs11:") {
        #[cfg(feature = "pkcs11")]
        return backend_pkcs11::Pkcs11Uri::parse(text)
            .map_err(|e| usage(flag, e))
            .and_then(|uri| with_module(uri, pkcs11_lib))
            .map(|uri| Location::Pkcs11(Box::new(uri)));
        #[cfg(not(feature = "pkcs11"))]
        return Err(usage(
            flag,
            "this keyhold was built without the pkcs11 feature",
        ));
    }
    Ok(Location::File(Path::new(text)))
}

/// A private key from a PEM file, with its password (from `password_file` or the
/// environment) if it is encrypted.
fn file_key(password_file: Option<&Path>, path: &Path) -> Result<FileKey, CliError> {
    let pem = Zeroizing::new(read(path)?);
    let pem = std::str::from_utf8(&pem)
        .map_err(|_| usage("--private-key", "the file is not PEM text"))?;
    if pem.lines().any(|line| line.trim_end() == TSS2_BEGIN) {
        // Only a regular file is looked into for a TPM key (signing_helper_tpm_key).
        return Err(usage(
            "--private-key",
            format!(
                "{} holds a TPM key (TSS2 PEM), which keyhold takes from a regular file only: \
                 give it as one",
                path.display()
            ),
        ));
    }
    let password = password(password_file)?;
    FileKey::from_pem(pem, password.as_ref().map(|p| p.as_slice()))
        .map_err(|e| usage("--private-key", e))
}

/// The private key `text` names (`--private-key`: a PEM file, `pkcs11:` or `tpm:`), opened
/// as credential-process opens it.
pub fn open_private_key(
    text: &str,
    password_file: Option<&Path>,
    pkcs11_lib: Option<&Path>,
    key_args: &KeyArgs,
) -> Result<Arc<dyn X509Key>, CliError> {
    let _ = key_args; // TPM options, when built with the tpm feature
    Ok(match location(text, "--private-key", pkcs11_lib)? {
        Location::File(path) => Arc::new(file_key(password_file, path)?),
        #[cfg(feature = "pkcs11")]
        Location::Pkcs11(uri) => Arc::new(crate::backend::pkcs11::open_x509(&uri)?),
        #[cfg(feature = "tpm")]
        Location::Tpm(reference) => open_device_key(&reference, key_args)?,
    })
}

/// A Roles Anywhere private key in a device: a `pkcs11:` or `tpm:` key reference (`--key`
/// of `keyhold cert`), with the PIN and TPM options as for HMAC keys.
pub fn open_device_key(
    reference: &crate::key_ref::KeyRef,
    key_args: &KeyArgs,
) -> Result<Arc<dyn X509Key>, CliError> {
    #[cfg(any(feature = "pkcs11", feature = "tpm"))]
    use crate::key_ref::KeyRef;
    let _ = key_args; // TPM options, when built with the tpm feature
    match reference {
        #[cfg(feature = "pkcs11")]
        KeyRef::Pkcs11(uri) => Ok(Arc::new(crate::backend::pkcs11::open_x509(uri)?)),
        #[cfg(feature = "tpm")]
        KeyRef::TpmFile(_) | KeyRef::TpmHandle(_) => Ok(Arc::new(crate::backend::tpm::open_x509(
            reference, key_args,
        )?)),
        #[allow(unreachable_patterns)]
        other => Err(usage(
            "--key",
            format!("Roles Anywhere keys are pkcs11: or tpm: keys, not {other}"),
        )),
    }
}

/// The certificate (with its intermediates) and the private key, opened, not yet checked.
#[cfg_attr(not(feature = "tpm"), allow(unused_variables))] // key_args: TPM options
pub fn load(
    ra: &RolesAnywhereArgs,
    key_args: &KeyArgs,
) -> Result<(CertificateChain, Arc<dyn X509Key>), CliError> {
    let lib = ra.pkcs11_lib.as_deref();
    let certificate = location(
        required(&ra.certificate, "--certificate").as_str(),
        "--certificate",
        lib,
    )?;
    let private_key = ra
        .private_key
        .as_deref()
        .map(|text| location(text, "--private-key", lib))
        .transpose()?;
    let from_file = |path: &Path| {
        CertificateChain::from_pem(&read(path)?)
            .map_err(|e| usage("--certificate", crate::error::one_line(&e)))
    };
    let (mut chain, key): (CertificateChain, Arc<dyn X509Key>) = match (certificate, private_key) {
        (Location::File(certificate), Some(Location::File(key))) => {
            let password_file = ra.private_key_password_file.as_deref();
            (
                from_file(certificate)?,
                Arc::new(file_key(password_file, key)?),
            )
        }
        (Location::File(_), None) => {
            return Err(CliError::Usage(
                "--certificate is a file, so --private-key is needed: a PEM file or a pkcs11: \
                 URI"
                .into(),
            ));
        }
        #[cfg(feature = "tpm")]
        (Location::Tpm(_), _) => {
            return Err(usage(
                "--certificate",
                "a TPM holds keys, not certificates: give the certificate as a file and the key \
                 as --private-key tpm:file=PATH or tpm:handle=0x81...",
            ));
        }
        #[cfg(feature = "pkcs11")]
        (Location::File(certificate), Some(Location::Pkcs11(uri))) => {
            let key = crate::backend::pkcs11::open_x509(&uri)?;
            (from_file(certificate)?, Arc::new(key))
        }
        #[cfg(feature = "pkcs11")]
        (Location::Pkcs11(_), Some(Location::Pkcs11(uri))) => {
            let key = crate::backend::pkcs11::open_x509(&uri)?;
            (token_certificate(&key)?, Arc::new(key))
        }
        #[cfg(feature = "pkcs11")]
        (Location::Pkcs11(uri), None) => {
            let key = crate::backend::pkcs11::open_x509(&uri)?;
            (token_certificate(&key)?, Arc::new(key))
        }
        #[cfg(feature = "tpm")]
        (Location::File(certificate), Some(Location::Tpm(reference))) => {
            let key = crate::backend::tpm::open_x509(&reference, key_args)?;
            (from_file(certificate)?, Arc::new(key))
        }
        #[cfg(all(feature = "pkcs11", feature = "tpm"))]
        (Location::Pkcs11(_), Some(Location::Tpm(_))) => {
            return Err(CliError::Usage(
                "--certificate names a PKCS#11 token and --private-key a TPM; keep the \
                 certificate with its key"
                    .into(),
            ));
        }
        #[cfg(feature = "pkcs11")]
        (Location::Pkcs11(_), Some(Location::File(_))) => {
            return Err(CliError::Usage(
                "--certificate names a token and --private-key a file; keep the certificate \
                 with its key (both files, or both on the token)"
                    .into(),
            ));
        }
    };
    if let Some(path) = &ra.intermediates {
        chain = chain
            .with_intermediates(&read(path)?)
            .map_err(|e| usage("--intermediates", crate::error::one_line(&e)))?;
    }
    Ok((chain, key))
}

fn certificate_and_key(
    args: &SourceArgs,
) -> Result<(CertificateChain, Arc<dyn X509Key>), CliError> {
    let (chain, key) = load(&args.roles_anywhere, &args.key)?;
    chain
        .check_validity(time::OffsetDateTime::now_utc())
        .map_err(|e| usage("--certificate", e))?;
    chain
        .check_key(key.as_ref())
        .map_err(|e| usage("--private-key", crate::error::one_line(&e)))?;
    tracing::info!(
        subject = %chain.info().subject,
        serial = %chain.info().serial_number,
        key = %chain.info().public_key,
        intermediates = chain.intermediates_der().len(),
        "certificate"
    );
    Ok((chain, key))
}

/// The certificate the token keeps with the key.
#[cfg(feature = "pkcs11")]
fn token_certificate(key: &backend_pkcs11::Pkcs11X509Key) -> Result<CertificateChain, CliError> {
    let der = key.certificate_der().ok_or_else(|| {
        usage(
            "--certificate",
            "the token holds no certificate with the private key's CKA_ID; put it there \
             (pkcs11-tool --write-object cert.der --type cert --id ID) or give a file",
        )
    })?;
    CertificateChain::from_der(der.to_vec(), Vec::new())
        .map_err(|e| usage("--certificate", crate::error::one_line(&e)))
}

/// The CreateSession of the trust anchor, profile and role the flags name (one hour).
pub fn request(ra: &RolesAnywhereArgs, role_arn: Option<&str>) -> Result<CreateSession, CliError> {
    let trust_anchor = required(&ra.trust_anchor_arn, "--trust-anchor-arn")
        .parse()
        .map_err(|e| usage("--trust-anchor-arn", e))?;
    let profile = required(&ra.profile_arn, "--profile-arn")
        .parse()
        .map_err(|e| usage("--profile-arn", e))?;
    let role = role_arn
        .ok_or_else(|| {
            CliError::Usage("--certificate needs --role-arn, the role to assume".into())
        })?
        .parse()
        .map_err(|e| usage("--role-arn", e))?;
    Ok(CreateSession::new(trust_anchor, profile, role))
}

/// The client signing with `chain` and `key` for `--region` (unless empty), else the trust
/// anchor's region (as the AWS signing helper: `AWS_REGION` is not read), at the endpoint `--endpoint-url`,
/// `AWS_ENDPOINT_URL_ROLESANYWHERE`, `AWS_ENDPOINT_URL` or the region's.
pub fn client(
    request: &CreateSession,
    chain: &CertificateChain,
    key: Arc<dyn X509Key>,
    endpoint: &StsArgs,
    key_args: &KeyArgs,
) -> Result<RolesAnywhereClient, CliError> {
    let signer = chain.signer(key).map_err(|e| usage("--private-key", e))?;
    // `--region ""` is no region, as in the AWS signing helper: the trust anchor's is used.
    let (region, from) = match endpoint.region.as_deref().filter(|r| !r.is_empty()) {
        Some(region) => (region, "--region"),
        None => (request.trust_anchor_arn().region(), "the trust anchor"),
    };
    tracing::info!(region, from, "Roles Anywhere signing region");
    let mut builder = RolesAnywhereClient::builder(signer)
        .region(region)
        .from_env()
        .allow_insecure_http(key_args.allow_insecure_http);
    if let Some(url) = &endpoint.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    builder.build().map_err(|e| CliError::Usage(e.to_string()))
}

/// The CreateSession `credential-process`'s flags ask for, checked (duration, session name)
/// before any device call.
pub fn session_request(args: &SourceArgs) -> Result<CreateSession, CliError> {
    let mut request =
        request(&args.roles_anywhere, args.role_arn.as_deref())?.duration(args.duration);
    if let Some(name) = &args.role_session_name {
        request = request.role_session_name(name.clone());
    }
    request
        .check()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(request)
}

/// Opens the certificate and its key and builds the client for the session the flags ask
/// for (no network call).
pub fn open(args: &SourceArgs) -> Result<(RolesAnywhereClient, CreateSession), CliError> {
    let request = session_request(args)?;
    let (chain, key) = certificate_and_key(args)?;
    let client = client(&request, &chain, key, &args.sts, &args.key)?;
    tracing::info!(
        endpoint = %client.endpoint(),
        duration_secs = args.duration.as_secs(),
        "CreateSession"
    );
    Ok((client, request))
}
