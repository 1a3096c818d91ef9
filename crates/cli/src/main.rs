//! `keyhold`: use AWS with a secret access key that never leaves a PKCS#11 token, a TPM or a
//! Tink keyset.
//!
//! `keyhold import` puts `"AWS4" + secret` into the device once; every other command opens
//! the key by its `--key` reference and lets the device compute only
//! `kDate = HMAC-SHA256("AWS4" + secret, yyyymmdd)`, the rest of SigV4 being done here by
//! `sigv4-core`. See the crate README for every command with an example.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a command-line tool: its output is the point

mod args;
mod atomic_file;
mod backend;
mod bytes;
mod cache;
mod commands;
mod credential_source;
mod credentials_file;
mod doctor;
mod doctor_roles_anywhere;
mod error;
mod key_ref;
mod logging;
mod output;
mod process;
mod report;
mod secret_input;
mod serve;
mod signals;
mod sts;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::{CliError, one_line};
use crate::key_ref::KeyRef;

fn main() -> ExitCode {
    process::disable_core_dumps();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Usage errors exit 2. clap quotes the values it rejects: a --key value may
            // hold a pin-value.
            eprint!("{}", key_ref::redact_pin_values(&e.render().to_string()));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version print to stdout and exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    logging::init(if cli.debug {
        cli.verbose.max(2)
    } else {
        cli.verbose
    });
    if cli
        .command
        .key_args()
        .and_then(|k| k.key.as_ref())
        .is_some_and(KeyRef::has_visible_secret)
    {
        eprintln!(
            "keyhold: warning: the --key URI holds the PIN (pin-value=), which every user of \
             this machine can read in the process list; use pin-source=file:PATH or \
             KEYHOLD_PKCS11_PIN instead"
        );
    }
    if let Command::CredentialProcess(args) = &cli.command {
        match commands::credential_process::answer_from_cache(args) {
            Ok(false) => {}
            answered => return exit_with(answered.map(|_| 0)),
        }
    }
    let needs = cli.command.process_needs();
    if let Some(parent) = process::nesting_parent(&needs) {
        eprintln!(
            "keyhold: keyhold started itself: keyhold process {parent}, whose Tink key needs \
             AWS credentials for KMS, got them from an AWS profile whose credential_process \
             is keyhold with a Tink key again (this one). Give the KMS client credentials \
             that do not come from keyhold with a Tink key: unset AWS_PROFILE, or point it \
             at another profile, for the keyhold that uses the Tink key"
        );
        return ExitCode::from(2);
    }
    process::ensure_environment(&needs);
    let signals = if cli.command.long_running() {
        match signals::install_delivering(commands::exec::FORWARDED) {
            Ok(receiver) => Some(receiver),
            Err(e) => {
                eprintln!("keyhold: could not take over SIGINT, SIGTERM and SIGHUP: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        if let Err(e) = signals::install() {
            tracing::warn!(error = %e, "could not take over SIGINT and SIGTERM");
        }
        None
    };
    exit_with(run(&cli.command, signals))
}

/// The exit code for a command's result; a failure is one line on stderr.
fn exit_with(result: Result<u8, CliError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::debug!(error = ?e, "failed");
            eprintln!("keyhold: {}", one_line(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// The async runtime for one command's network calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// The async runtime of a server: two worker threads, so that a device call during a
/// refresh does not stop the replies.
pub fn server_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Signals delivered to a long-running command.
pub type Signals = Option<tokio::sync::mpsc::UnboundedReceiver<i32>>;

/// Runs the command; the process's exit code (`exec`: the command's).
fn run(command: &Command, signals: Signals) -> Result<u8, CliError> {
    let done = match command {
        Command::Exec(args) => return commands::exec::run(args, signals),
        Command::Import(args) => commands::import::run(args, &runtime()?),
        Command::Sign(args) => commands::sign::run(args, &runtime()?),
        Command::Whoami(args) => commands::whoami::run(args, &runtime()?),
        Command::CredentialProcess(args) => commands::credential_process::run(args),
        Command::Serve(args) => serve::run(args, signals),
        Command::Export(args) => commands::export::run(args),
        Command::Update(args) => commands::update::run(args, signals),
        Command::Doctor(args) => doctor::run(args, &runtime()?),
        Command::Cert(args) => commands::cert::run(args),
        Command::SignString(args) => commands::sign_string::run(args),
        Command::ReadCertificateData(args) => commands::cert::show(args),
    };
    done.map(|()| 0)
}
