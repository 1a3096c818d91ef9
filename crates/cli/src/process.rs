//! What keyhold does to its own process before it touches a secret: no core dumps, and the
//! environment that libraries read once at start.

use std::ffi::OsString;

/// The variable that marks a keyhold process whose KMS client may start other programs
/// (an AWS profile's `credential_process`): its value is that process's pid.
pub const NESTING_MARKER: &str = "KEYHOLD_KMS_CLIENT_PID";

/// No core dumps for the life of the process: RLIMIT_CORE 0 and not dumpable (which also
/// keeps other processes of the same user from attaching a debugger). A SIGABRT during an
/// import once wrote a core file holding the secret.
pub fn disable_core_dumps() {
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        tracing::warn!(error = %e, "could not set RLIMIT_CORE to 0");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(error = %e, "could not make the process non-dumpable");
    }
}

/// What the process's environment must hold before any library reads it.
pub struct Needs {
    /// libtss2 logs to stderr unless `TSS2_LOG` says otherwise, and reads it only once.
    pub quiet_tss2: bool,
    /// A KMS client (Tink keys) may run an AWS profile's `credential_process`, which may be
    /// keyhold with a Tink key again: mark the process so that such a child can tell.
    pub nesting_marker: bool,
}

/// The environment variables to add for `needs` (none when they are there already).
fn missing(needs: &Needs) -> Vec<(&'static str, OsString)> {
    let mut add = Vec::new();
    if needs.quiet_tss2 && std::env::var_os("TSS2_LOG").is_none() {
        add.push(("TSS2_LOG", OsString::from("all+NONE")));
    }
    let me = std::process::id().to_string();
    if needs.nesting_marker && std::env::var_os(NESTING_MARKER).is_none_or(|pid| pid != *me) {
        add.push((NESTING_MARKER, OsString::from(me)));
    }
    add
}

/// The pid of the keyhold process with a Tink key that started this one, when this one is
/// about to start a KMS client too: that is keyhold starting itself through an AWS
/// profile, which would repeat until something gives out.
pub fn nesting_parent(needs: &Needs) -> Option<String> {
    let marker = std::env::var(NESTING_MARKER).ok()?;
    (needs.nesting_marker && marker != std::process::id().to_string()).then_some(marker)
}

/// Sets what `needs` asks for by executing keyhold again, in place (same pid, same
/// arguments) with those variables added: Rust has no safe way to change the environment
/// of a running process that libraries read. Returns only when nothing was missing or the
/// exec failed (then keyhold goes on, with libtss2's logs or without the marker).
pub fn ensure_environment(needs: &Needs) {
    let add = missing(needs);
    if add.is_empty() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            tracing::debug!(error = %e, "cannot find keyhold's own executable; going on");
            return;
        }
    };
    let names: Vec<&str> = add.iter().map(|(name, _)| *name).collect();
    tracing::debug!(
        ?names,
        "setting the libraries' environment: executing keyhold again"
    );
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1)).envs(add);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        tracing::debug!(error = %error, "could not re-execute keyhold; going on");
    }
}
