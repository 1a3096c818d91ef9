//! Ctrl-C and `kill` wait for device writes to finish.
//!
//! SoftHSM rewrites its token file in place at every login, and an import writes several
//! objects or files: a SIGINT or SIGTERM in the middle truncated whole token files. So
//! keyhold takes those signals itself ([`install`]): outside a [`critical`] section one ends
//! the process at once, as the default action would (the exit status says which signal);
//! inside one, it waits until the section ends. SIGKILL cannot be caught: the imports are
//! written so that a kill at any point leaves the old key or the new one (see each backend).

use std::sync::{Condvar, Mutex, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// How many critical sections are running (they may nest), and the signal thread's wait.
static SECTIONS: Mutex<usize> = Mutex::new(0);
static ENDED: Condvar = Condvar::new();

/// Takes SIGINT, SIGTERM and SIGHUP over for the rest of the process. Call once, first.
pub fn install() -> std::io::Result<()> {
    start(&[SIGINT, SIGTERM, SIGHUP], None)
}

/// For the long-running commands (`serve`, `exec`, `update`): SIGINT, SIGTERM, SIGHUP and
/// `extra` are delivered on the returned channel instead of ending the process (still only
/// between device operations). Call once, first.
pub fn install_delivering(
    extra: &[i32],
) -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<i32>> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut wanted = vec![SIGINT, SIGTERM, SIGHUP];
    wanted.extend_from_slice(extra);
    start(&wanted, Some(sender))?;
    Ok(receiver)
}

fn start(
    wanted: &[i32],
    deliver: Option<tokio::sync::mpsc::UnboundedSender<i32>>,
) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new(wanted)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                // Holding the lock until the end: no new section can start.
                let mut running = SECTIONS.lock().unwrap_or_else(PoisonError::into_inner);
                if *running > 0 {
                    tracing::warn!(signal, "finishing the device operation first");
                }
                while *running > 0 {
                    running = ENDED.wait(running).unwrap_or_else(PoisonError::into_inner);
                }
                if deliver.as_ref().is_some_and(|d| d.send(signal).is_ok()) {
                    continue;
                }
                if let Some(undo) = *BEFORE_EXIT.lock().unwrap_or_else(PoisonError::into_inner) {
                    undo();
                }
                // Resets the default action and raises the signal again: the process ends
                // as it would have without keyhold's handler.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// The next signal delivered to a long-running command (never, without a channel).
pub async fn next(signals: &mut crate::Signals) -> Option<i32> {
    match signals.as_mut() {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// What to undo before the process ends by a signal (the terminal's echo).
static BEFORE_EXIT: Mutex<Option<fn()>> = Mutex::new(None);

/// Runs `undo` before a signal ends the process (one at a time: the last one given).
pub fn before_exit(undo: fn()) {
    *BEFORE_EXIT.lock().unwrap_or_else(PoisonError::into_inner) = Some(undo);
}

/// Runs `f` (a device login or write) with SIGINT, SIGTERM and SIGHUP deferred until it
/// returns.
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    struct Section;
    impl Drop for Section {
        fn drop(&mut self) {
            let mut running = SECTIONS.lock().unwrap_or_else(PoisonError::into_inner);
            *running -= 1;
            ENDED.notify_all();
        }
    }
    *SECTIONS.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    let _section = Section;
    f()
}
