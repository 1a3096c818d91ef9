//! One module per subcommand; each takes its parsed arguments and returns a [`CliError`]
//! on failure (main turns it into one stderr line and an exit code).
//!
//! [`CliError`]: crate::error::CliError

pub mod cert;
pub mod credential_process;
pub mod exec;
pub mod export;
pub mod import;
pub mod roles_anywhere;
pub mod sign;
pub mod sign_string;
pub mod update;
pub mod whoami;
