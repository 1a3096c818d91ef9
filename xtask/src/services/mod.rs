//! Local services the end-to-end tests run against (SoftHSM, swtpm, moto, OpenBao).
//!
//! Each service module has `pub fn start(ctx: &Ctx) -> anyhow::Result<Box<dyn Service>>`.
//! A started service tells the tests where it is through environment variables
//! ([`Service::env`]), and is stopped when the [`Services`] holding it is dropped, which also
//! happens when a test run fails or xtask returns early with an error.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod moto;
pub mod openbao;
pub mod softhsm;
pub mod swtpm;

/// Where services keep their files.
pub struct Ctx {
    /// The workspace root.
    pub root: PathBuf,
    /// This run's scratch directory (`target/xtask/run/<pid>`), removed at the end.
    pub work: PathBuf,
}

/// How a service is started.
pub type StartFn = fn(&Ctx) -> anyhow::Result<Box<dyn Service>>;

/// Starts `which` services, in order, with a fresh scratch directory; stopped when dropped.
///
/// Each xtask process gets its own directory, `target/xtask/run/<pid>`, so two runs at once
/// (a developer's and an agent's, say) never share tokens or TPM state. Directories left by
/// runs that no longer exist are removed first.
pub fn start(root: &Path, which: &[StartFn]) -> anyhow::Result<Services> {
    let runs = root.join("target/xtask/run");
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let work = runs.join(std::process::id().to_string());
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let ctx = Ctx {
        root: root.to_path_buf(),
        work: work.clone(),
    };
    let mut running = Services {
        running: Vec::new(),
        work: Some(work),
    };
    for start in which {
        running.start(&ctx, *start)?;
    }
    Ok(running)
}

/// A running local service.
pub trait Service {
    /// A short name for messages.
    fn name(&self) -> &'static str;
    /// Environment variables (name, value) through which tests find this service.
    fn env(&self) -> Vec<(String, String)>;
    /// Stops the service. Called exactly once, by [`Services`].
    fn stop(&mut self) -> anyhow::Result<()>;
}

/// The services of one run, stopped in reverse order when dropped.
pub struct Services {
    running: Vec<Box<dyn Service>>,
    work: Option<PathBuf>,
}

impl Services {
    /// Starts a service and keeps it until this value is dropped.
    pub fn start(&mut self, ctx: &Ctx, start: StartFn) -> anyhow::Result<()> {
        let service = start(ctx)?;
        eprintln!("xtask: started {}", service.name());
        self.running.push(service);
        Ok(())
    }

    /// All environment variables of all running services.
    pub fn env(&self) -> Vec<(String, String)> {
        self.running.iter().flat_map(|s| s.env()).collect()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        while let Some(mut service) = self.running.pop() {
            // Quiet on success, so that a run ends with the test runner's summary.
            if let Err(e) = service.stop() {
                eprintln!("xtask: stopping {} failed: {e:#}", service.name());
            }
        }
        if let Some(work) = self.work.take() {
            let _ = std::fs::remove_dir_all(work);
        }
    }
}

/// A child process killed (and reaped) when dropped, so no service outlives xtask.
pub struct ChildGuard {
    name: &'static str,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `cmd`, naming it for messages.
    pub fn spawn(name: &'static str, cmd: &mut Command) -> anyhow::Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name} ({cmd:?})"))?;
        Ok(Self {
            name,
            child: Some(child),
        })
    }

    /// Fails if the process has already exited, with its exit status.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("{} exited early with {status}", self.name);
        }
        Ok(())
    }

    /// Kills and reaps the process.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if child.try_wait()?.is_none() {
                child.kill().ok();
            }
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("xtask: could not stop {}: {e:#}", self.name);
        }
    }
}

/// A free TCP port on 127.0.0.1 (asked of the kernel; racy only against other programs).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Two consecutive free ports (swtpm puts its control channel on port + 1; OpenBao its
/// cluster listener): see [`test_support::free_port_pair`].
pub fn free_port_pair() -> anyhow::Result<u16> {
    test_support::free_port_pair()
        .context("no two consecutive free ports on 127.0.0.1 between 20000 and 32000")
}

/// Waits until something accepts TCP connections on `port`, checking `child` stays alive.
pub fn wait_for_port(child: &mut ChildGuard, port: u16, timeout: Duration) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        child.check_alive()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listened on {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
