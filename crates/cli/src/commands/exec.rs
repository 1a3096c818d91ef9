//! `keyhold exec -- COMMAND`: runs a command with temporary credentials. By default an ECS
//! container endpoint (the same server as `keyhold serve`) answers on a random loopback
//! port for as long as the command runs, with a random token, so that a command running for
//! hours keeps getting fresh credentials; `--env` hands over one set in the environment.
//!
//! Inherited variables that would shadow the credentials (static keys, profiles, other
//! endpoints) are removed; signals keyhold receives are passed on to the command; keyhold
//! exits with the command's status (128 + N if signal N ended it).

use std::process::ExitStatus;
use std::sync::Arc;

use signal_hook::consts::{SIGQUIT, SIGUSR1, SIGUSR2};

use crate::args::ExecArgs;
use crate::error::CliError;
use crate::serve::tokens::EcsToken;
use crate::serve::{self, ECS_PATH, Server};

/// Signals passed on to the command, besides SIGINT, SIGTERM and SIGHUP.
pub const FORWARDED: &[i32] = &[SIGQUIT, SIGUSR1, SIGUSR2];

/// Variables removed from the command's environment: each would make an SDK pick other
/// credentials (or another endpoint) before the ones keyhold gives.
const SHADOWING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// Runs the command; returns its exit code.
pub fn run(args: &ExecArgs, signals: crate::Signals) -> Result<u8, CliError> {
    let refresh = serve::refresh(&args.source, &args.refresh)?;
    // --env: one set of credentials, fetched before the server's runtime starts.
    let document = match args.env {
        true => Some(crate::commands::credential_process::fetch(&args.source)?),
        false => None,
    };
    let runtime = crate::server_runtime()?;
    runtime.block_on(async {
        let mut command = tokio::process::Command::new(&args.command[0]);
        command.args(&args.command[1..]);
        for name in SHADOWING {
            command.env_remove(name);
        }
        let _server = if let Some(document) = &document {
            command
                .env("AWS_ACCESS_KEY_ID", &document.access_key_id)
                .env("AWS_SECRET_ACCESS_KEY", &document.secret_access_key)
                .env("AWS_SESSION_TOKEN", &document.session_token)
                .env("AWS_CREDENTIAL_EXPIRATION", &document.expiration);
            None
        } else {
            let provider = serve::first_credentials(&args.source, &refresh).await?;
            let server = Arc::new(Server::new(
                provider,
                "keyhold".into(),
                args.source.sts.region_or_env(),
                EcsToken::create(None)?,
                Vec::new(),
            ));
            let listener = serve::listen(([127, 0, 0, 1], 0).into()).await?;
            let address = serve::local_address(&listener)?;
            command
                .env(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    format!("http://{address}{ECS_PATH}"),
                )
                .env(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    server.ecs_token.value().unwrap_or_default(),
                );
            tracing::info!(%address, "ECS endpoint for the command");
            Some(tokio::spawn(serve::serve(
                server,
                listener,
                false,
                None,
                |_| {},
            )))
        };
        let program = args.command[0].to_string_lossy().into_owned();
        let mut child = command.spawn().map_err(|source| CliError::Exec {
            command: program.clone(),
            source,
        })?;
        let status = wait_forwarding(&mut child, signals)
            .await
            .map_err(|source| CliError::Exec {
                command: program,
                source,
            })?;
        Ok(exit_code(status))
    })
}

/// Waits for the child, passing on every signal keyhold receives.
async fn wait_forwarding(
    child: &mut tokio::process::Child,
    mut signals: crate::Signals,
) -> std::io::Result<ExitStatus> {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    loop {
        let signal = crate::signals::next(&mut signals);
        tokio::select! {
            status = child.wait() => return status,
            Some(signal) = signal => {
                let target = rustix::process::Signal::from_named_raw(signal);
                if let (Some(pid), Some(target)) = (pid, target) {
                    tracing::debug!(signal, "passing the signal on to the command");
                    let _ = rustix::process::kill_process(pid, target);
                }
            }
        }
    }
}

/// The shell's convention: the exit code, or 128 + the signal that ended the command.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    #[test]
    fn exit_codes_follow_the_shell() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(SIGTERM)), 128 + 15);
        assert!(
            ![SIGINT, SIGTERM, SIGHUP]
                .iter()
                .any(|s| FORWARDED.contains(s))
        );
    }
}
