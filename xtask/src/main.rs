//! keyhold's chores, as `cargo xtask <command>`:
//!
//! - `setup`: install the system packages the tests and demo need (Debian, apt-get).
//! - `ci`: everything CI checks: fmt, clippy (and the CLI with each backend alone), doc tests,
//!   then every test (unit, end-to-end against local services, tidy) in one cargo-nextest
//!   run whose summary ends the output.
//! - `e2e`: only the end-to-end tests (`tests/e2e_*.rs`), with the services started.
//! - `demo`: the main job, end to end.
//! - `bench`: the criterion benchmarks and a table of ratios.

#![allow(clippy::print_stdout)] // a command-line tool: its table goes to stdout

mod bench;
mod demo;
mod services;
mod setup;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup   install system packages the tests need (apt-get; prints the command if it can't)
  ci      fmt check, clippy (warnings denied; also the CLI with each backend alone), doc
          tests, then all tests incl. end-to-end
  e2e     end-to-end tests only, against SoftHSM, swtpm and moto started on loopback
  demo    the main job end to end (see README)
  bench   run the criterion benchmarks and print the table of ratios
  with-services CMD [ARGS...]
          start SoftHSM, swtpm and moto, run CMD with their environment, stop them
          (e.g. `cargo xtask with-services cargo nextest run -p backend-tink`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(&workspace_root()),
        Some("ci") => ci(),
        Some("e2e") => e2e(),
        Some("demo") => demo(),
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        Some("with-services") => with_services(&args[1..]),
        Some("-h" | "--help" | "help") => {
            eprint!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            if let Some(other) = other {
                eprintln!("xtask: unknown command {other:?}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's parent directory).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command, failing with its description when it fails.
fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("could not run {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The services end-to-end tests run against, started on loopback; stopped when dropped.
fn start_services(root: &Path) -> anyhow::Result<services::Services> {
    services::start(
        root,
        &[
            services::softhsm::start,
            services::swtpm::start,
            services::moto::start,
            services::openbao::start,
        ],
    )
}

/// `cargo nextest run` with the services' environment, over the tests `filter` selects.
fn nextest(services: &services::Services, filter: Option<&str>) -> anyhow::Result<()> {
    setup::ensure_nextest()?;
    let mut cmd = cargo();
    cmd.args([
        "nextest",
        "run",
        "--workspace",
        "--all-features",
        "--no-fail-fast",
    ]);
    if let Some(filter) = filter {
        cmd.args(["-E", filter]);
    }
    cmd.envs(services.env());
    run("running tests (cargo nextest)", &mut cmd)
}

fn ci() -> anyhow::Result<()> {
    let root = workspace_root();
    setup::run(&root)?;
    run(
        "checking formatting (cargo fmt --check)",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "linting (cargo clippy, warnings denied)",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The CLI built with one backend, as the facade's features allow: each must stand alone.
    for backend in ["pkcs11", "tpm", "tink", "vault"] {
        run(
            &format!("linting the CLI built with the {backend} backend alone"),
            cargo()
                .args(["clippy", "-p", "cli", "--no-default-features", "--features"])
                .args([backend, "--", "-D", "warnings"]),
        )?;
    }
    run(
        "doc tests",
        cargo().args(["test", "--workspace", "--all-features", "--doc"]),
    )?;
    let services = start_services(&root)?;
    // Unit, end-to-end and tidy tests in one run, so its summary is the last thing printed.
    nextest(&services, None)
}

fn e2e() -> anyhow::Result<()> {
    let root = workspace_root();
    setup::run(&root)?;
    let services = start_services(&root)?;
    nextest(&services, Some("binary(/^e2e_/)"))
}

fn with_services(command: &[String]) -> anyhow::Result<()> {
    let Some((program, args)) = command.split_first() else {
        bail!("with-services needs a command to run, e.g. `cargo xtask with-services env`");
    };
    let root = workspace_root();
    setup::run(&root)?;
    let services = start_services(&root)?;
    run(
        &format!("running {program} with the services' environment"),
        Command::new(program).args(args).envs(services.env()),
    )
}

fn demo() -> anyhow::Result<()> {
    demo::run()
}
