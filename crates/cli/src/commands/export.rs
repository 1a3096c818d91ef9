//! `keyhold export`: temporary credentials printed once, as shell `export` lines, the
//! credential_process JSON, or a `~/.aws/credentials` section.

use crate::args::{ExportArgs, ExportFormat};
use crate::commands::credential_process::{Document, fetch};
use crate::error::CliError;
use crate::output;

/// A value quoted for a POSIX shell: inside single quotes, each `'` written as `'\''`.
fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The text for `format`.
fn render(document: &Document, format: ExportFormat, profile: &str) -> zeroize::Zeroizing<String> {
    let mut out = zeroize::Zeroizing::new(String::new());
    match format {
        ExportFormat::Env => {
            for (name, value) in [
                ("AWS_ACCESS_KEY_ID", &document.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", &document.secret_access_key),
                ("AWS_SESSION_TOKEN", &document.session_token),
                ("AWS_CREDENTIAL_EXPIRATION", &document.expiration),
            ] {
                out.push_str(&format!("export {name}={}\n", shell_quoted(value)));
            }
        }
        ExportFormat::Ini => {
            out.push_str(&format!("[{profile}]\n"));
            for (name, value) in [
                ("aws_access_key_id", &document.access_key_id),
                ("aws_secret_access_key", &document.secret_access_key),
                ("aws_session_token", &document.session_token),
            ] {
                out.push_str(&format!("{name} = {value}\n"));
            }
        }
        ExportFormat::Json => {}
    }
    out
}

/// Fetches the credentials and prints them.
pub fn run(args: &ExportArgs) -> Result<(), CliError> {
    let document = fetch(&args.source)?;
    match args.format {
        ExportFormat::Json => output::print_json(&document),
        format => output::print_text(&render(&document, format, &args.profile)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_are_shell_quoted_and_ini_is_a_section() {
        let document = Document {
            version: 1,
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "se'cret/+=".into(),
            session_token: "tok$en".into(),
            expiration: "2026-12-04T20:00:00Z".into(),
        };
        assert_eq!(
            *render(&document, ExportFormat::Env, "x"),
            "export AWS_ACCESS_KEY_ID='ASIAEXAMPLE'\n\
             export AWS_SECRET_ACCESS_KEY='se'\\''cret/+='\n\
             export AWS_SESSION_TOKEN='tok$en'\n\
             export AWS_CREDENTIAL_EXPIRATION='2026-12-04T20:00:00Z'\n"
        );
        assert_eq!(
            *render(&document, ExportFormat::Ini, "ci"),
            "[ci]\naws_access_key_id = ASIAEXAMPLE\naws_secret_access_key = se'cret/+=\n\
             aws_session_token = tok$en\n"
        );
    }
}
