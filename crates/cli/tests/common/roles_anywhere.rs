//! Helpers of the IAM Roles Anywhere CLI tests: keyhold commands that must succeed, a key
//! pair made in a SoftHSM token and certified by a test CA, and keyhold run on a
//! pseudo-terminal to type a PIN.

use std::path::Path;

use test_support::rolesanywhere::Pki;

use super::*;

/// The `AccessKeyId` of a successful run's JSON, which must be a temporary one (`ASIA...`).
pub fn temporary_key_id(out: &Run) -> String {
    assert_eq!(out.code, 0, "{}", out.stderr);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let id = document["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ASIA"), "{id}");
    id
}

/// `keyhold ARGS...`, which must succeed; its stdout.
pub fn keyhold_ok(args: &[&str]) -> String {
    let mut cmd = keyhold();
    cmd.args(args);
    run(&mut cmd).ok().stdout
}

/// `cert csr` for the key `private` with `subject`, certified by a fresh test CA in
/// `dir/pki` (which checks the request's signature); `extra` goes to the CA (`--expired`).
pub fn certify(dir: &Path, private: &str, subject: &str, extra: &[&str]) -> Pki {
    let csr = dir.join("client.csr");
    let csr = csr.to_str().unwrap();
    keyhold_ok(&[
        "cert",
        "csr",
        "--key",
        private,
        "--subject",
        subject,
        "-o",
        csr,
    ]);
    let mut args = vec!["--csr", csr];
    args.extend(extra);
    Pki::make(&dir.join("pki"), &args)
}

/// `cert import` of `pki`'s leaf for the key `private`; the certificate's URI.
pub fn import_certificate(private: &str, pki: &Pki) -> String {
    let leaf = pki.path("leaf.pem");
    let stored = keyhold_ok(&[
        "cert",
        "import",
        "--key",
        private,
        "--certificate",
        leaf.to_str().unwrap(),
    ]);
    stored.trim().to_owned()
}

/// A P-256 key pair made by `cert keygen` in a fresh token of this test's own (its PIN from
/// a pin-source file in `dir`), certified by a test CA, the certificate on the token: the
/// PKI, the private key's URI and the certificate's URI.
pub fn token_key_and_certificate(name: &str, dir: &Path) -> (Pki, String, String) {
    let token = softhsm_key(name, "client", dir);
    let private = keyhold_ok(&["cert", "keygen", "--key", &token])
        .trim()
        .to_owned();
    let pki = certify(dir, &private, &format!("CN={name}"), &[]);
    let certificate = import_certificate(&private, &pki);
    (pki, private, certificate)
}

/// `uri` without its query attribute `name` (`pin-source`, `module-path`).
pub fn without_param(uri: &str, name: &str) -> String {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let prefix = format!("{name}=");
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with(&prefix))
        .collect();
    match kept.is_empty() {
        true => path.to_owned(),
        false => format!("{path}?{}", kept.join("&")),
    }
}

/// What keyhold run on a pseudo-terminal showed, and how it ended.
pub struct OnTerminal {
    /// Everything written to the terminal (prompts, stderr; stdout unless captured).
    pub terminal: String,
    /// Standard output, when it went to a file instead of the terminal.
    pub stdout: String,
    /// The exit code.
    pub code: i32,
}

/// Runs keyhold with `args` on a pseudo-terminal (its controlling terminal) in
/// [`keyhold_environment`], answers the first prompt containing `PIN` with `pin`, and gives
/// up after 60 s (a second prompt would wait for ever). With `capture_stdout`, keyhold's
/// standard output goes to a file, as a `credential_process` caller's pipe, and the terminal
/// shows only the prompt and stderr.
pub fn on_a_terminal(args: &[&str], pin: &str, capture_stdout: bool) -> OnTerminal {
    let script = r#"
import os, pty, signal, sys
out_path = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    if out_path:
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
    os.execv(sys.argv[2], sys.argv[2:])
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(60)
seen = b""
while b"PIN" not in seen:
    data = os.read(fd, 1024)
    if not data:
        break
    seen += data
os.write(fd, sys.stdin.buffer.read())
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out_path = std::env::temp_dir().join(format!(
        "keyhold-cli-tty-{}-{}.out",
        std::process::id(),
        args.len()
    ));
    let captured = if capture_stdout {
        out_path.to_str().unwrap().to_owned()
    } else {
        String::new()
    };
    let mut cmd = std::process::Command::new(python_bin().join("python"));
    keyhold_environment(&mut cmd)
        .args(["-c", script, &captured, env!("CARGO_BIN_EXE_keyhold")])
        .args(args);
    let out = run_with_stdin(&mut cmd, &format!("{pin}\n"));
    let stdout = match capture_stdout {
        true => std::fs::read_to_string(&out_path).unwrap_or_default(),
        false => String::new(),
    };
    let _ = std::fs::remove_file(&out_path);
    OnTerminal {
        terminal: out.stdout,
        stdout,
        code: out.code,
    }
}
