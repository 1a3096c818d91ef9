//! Reaching the TPM: which TCTI to use, a check that something answers there before
//! libtss2 tries (its own failure prints several log lines and ends in a bare response
//! code), and TSS stack errors as one line.

use crate::error::{StackCode, response_code};

/// The TCTI to use: the one given, else `TPM2TOOLS_TCTI`, else `TCTI`, else the kernel's
/// resource manager `device:/dev/tpmrm0`.
pub fn resolve_tcti(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("TPM2TOOLS_TCTI").ok())
        .or_else(|| std::env::var("TCTI").ok())
        .unwrap_or_else(|| "device:/dev/tpmrm0".to_owned())
}

/// What to check when nothing answers at `tcti`, by kind of TCTI.
pub(crate) fn transport_hint(tcti: &str) -> &'static str {
    match tcti.split_once(':').map_or(tcti, |(name, _)| name) {
        "swtpm" | "mssim" => "is it running?",
        "device" => "is there a TPM, and may this user open it (group tss)?",
        _ => "is it running, and may this user use it?",
    }
}

/// Checks that something answers at a socket TCTI's host and port, or that a device TCTI's
/// device opens, before libtss2 tries: its own failure would print several log lines to
/// stderr and end in a bare response code. Other TCTIs are left to libtss2.
pub(crate) fn probe_transport(tcti: &str) -> std::io::Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (name, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
    match name {
        "swtpm" | "mssim" => {
            // libtss2's defaults for both: localhost, port 2321.
            let (mut host, mut port) = ("localhost", "2321");
            for pair in conf.split(',') {
                match pair.split_once('=') {
                    Some(("host", h)) => host = h,
                    Some(("port", p)) => port = p,
                    _ => {}
                }
            }
            let Ok(port) = port.parse::<u16>() else {
                return Ok(()); // libtss2 reports its own parse error
            };
            let mut last = None;
            for addr in (host, port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
            }))
        }
        "device" => {
            let path = if conf.is_empty() { "/dev/tpm0" } else { conf };
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map(drop)
        }
        _ => Ok(()),
    }
}

/// A TSS stack error as the cause of [`TpmError::Unreachable`]: its response code in one
/// line when it has one, else the error itself.
pub(crate) fn stack_error(error: tss_esapi::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match response_code(&error) {
        Some(code) => Box::new(StackCode(code)),
        None => Box::new(error),
    }
}
