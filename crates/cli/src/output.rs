//! JSON on stdout the way the AWS CLI prints it (four-space indent, a final newline), from
//! a buffer that is zeroized afterwards, since credential_process output holds secrets.

use std::io::Write;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Serializes `value` as the AWS CLI would and writes it to stdout in one write.
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut *buffer, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    buffer.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&buffer)
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// Writes `text` to stdout in one write.
pub fn print_text(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}
