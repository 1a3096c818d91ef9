//! Many signers at once, and a TPM that dies and comes back while a signer is alive.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_tpm::{ImportOptions, KeyAuth};
use common::*;
use sigv4_core::RootKey;

#[test]
fn eight_threads_signing_at_once_all_get_the_right_key() {
    let _one = serial();
    let tpm = connect();
    // Two keys on one TPM, so threads also fight over the one cached object slot.
    let load = || {
        let imported = tpm
            .import(&root_secret(), &ImportOptions::new(ACCESS_KEY_ID))
            .expect("import");
        Arc::new(
            tpm.load_key_file(&imported.key_file, KeyAuth::none())
                .expect("load"),
        )
    };
    let keys = [load(), load()];
    let days: Vec<String> = (1..=28).map(|d| format!("202402{d:02}")).collect();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let key = Arc::clone(&keys[t % 2]);
            let days = &days;
            scope.spawn(move || {
                for day in days.iter().skip(t).step_by(3) {
                    let d = date(day);
                    assert_eq!(
                        key.date_key(&d).expect("TPM2_HMAC").as_bytes(),
                        software_key().date_key(&d).expect("software").as_bytes(),
                        "thread {t}, {day}"
                    );
                }
            });
        }
    });
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the main swtpm with SIGKILL and starts it again on the same state and ports, the
/// way xtask's swtpm service starts it (but as a daemon; xtask stops it by its control port).
fn kill_and_restart_swtpm() {
    let state = env(test_support::env::TPM_STATE);
    let port: u16 = env(test_support::env::TPM_PORT)
        .parse()
        .expect("port number");
    let pid_file = format!("{state}/swtpm.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("swtpm pid file");
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid}");
    wait_until("swtpm to die", || !port_open(port + 1));
    let status = Command::new("swtpm")
        .args(["socket", "--tpm2", "--daemon"])
        .arg(format!("--tpmstate=dir={state}"))
        .arg(format!("--server=type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg(format!(
            "--ctrl=type=tcp,port={},bindaddr=127.0.0.1",
            port + 1
        ))
        .arg("--flags=not-need-init,startup-clear")
        .arg(format!("--pid=file={pid_file}"))
        .status()
        .expect("run swtpm");
    assert!(status.success(), "swtpm restart failed");
    wait_until("swtpm to listen", || port_open(port + 1));
}

#[test]
fn signer_survives_a_tpm_restart() {
    let _one = serial();
    let tpm = connect();
    let imported = tpm
        .import(&root_secret(), &ImportOptions::new(ACCESS_KEY_ID))
        .expect("import");
    let key = tpm
        .load_key_file(&imported.key_file, KeyAuth::none())
        .expect("load");
    let d = date("20150830");
    let expected = software_key().date_key(&d).expect("software");
    assert_eq!(
        key.date_key(&d).expect("before").as_bytes(),
        expected.as_bytes()
    );

    kill_and_restart_swtpm();

    // The old connection is dead; the next call reconnects, re-creates the salted session
    // and the parent, reloads the key file, and succeeds.
    assert_eq!(
        key.date_key(&d).expect("after restart").as_bytes(),
        expected.as_bytes()
    );
    assert_eq!(
        key.date_key(&d).expect("and again").as_bytes(),
        expected.as_bytes()
    );
}
