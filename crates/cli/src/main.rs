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
mod backend;
mod commands;
mod doctor;
mod error;
mod key_ref;
mod logging;
mod output;
mod secret_input;
mod sts;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::{CliError, one_line};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    logging::init(cli.verbose);
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "failed");
            eprintln!("keyhold: {}", one_line(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(command: &Command) -> Result<(), CliError> {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                CliError::Output(std::io::Error::other(format!(
                    "could not start the async runtime: {e}"
                )))
            })
    };
    match command {
        Command::Import(args) => commands::import::run(args),
        Command::Sign(args) => commands::sign::run(args, &runtime()?),
        Command::Whoami(args) => commands::whoami::run(args, &runtime()?),
        Command::CredentialProcess(args) => commands::credential_process::run(args, &runtime()?),
        Command::Doctor(args) => doctor::run(args, &runtime()?),
    }
}
