//! Finding and loading the PKCS#11 module (the shared library) a URI points at.
//!
//! `module-path` is used as given (it must be absolute: a bare name would be searched for on
//! the loader's path, which the URI's author does not control). `module-name` is looked up the
//! way p11-kit does: a `NAME.module` file in p11-kit's config directories whose `module:`
//! line names the library, then `NAME.so` / `libNAME.so` in the PKCS#11 module directories.
//! No module at all means p11-kit's proxy, which loads every module p11-kit is configured with.
//! [`find_module_file`] finds a bare file name a user typed (the AWS signing helper's
//! `--pkcs11-lib opensc-pkcs11.so`): in the module directories, then the loader's.
//!
//! A module is a process-wide singleton inside the library itself, so it is loaded and
//! initialised once per process here too; someone else having initialised it already
//! (`CKR_CRYPTOKI_ALREADY_INITIALIZED`) is fine, and it is never finalised by this crate.
//!
//! Listing slots is serialised per module ([`Module::slots_lock`]): SoftHSM 2.6 adds a slot
//! inside `C_GetSlotList` without a lock, and two threads listing at once abort the process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;

use crate::Error;
use crate::error::rv;
use crate::uri::Pkcs11Uri;

/// A loaded, initialised PKCS#11 module.
#[derive(Clone, Debug)]
pub(crate) struct Module {
    pub(crate) path: PathBuf,
    pub(crate) ctx: Pkcs11,
    slots: Arc<Mutex<()>>,
}

/// Modules loaded by this process, by canonical path.
static LOADED: Mutex<Vec<(PathBuf, Module)>> = Mutex::new(Vec::new());

impl Module {
    /// Resolves, loads and initialises the module the URI names.
    pub(crate) fn for_uri(uri: &Pkcs11Uri) -> Result<Self, Error> {
        let path = resolve(uri)?;
        tracing::info!(module = %path.display(), "PKCS#11 module");
        Self::load(&path)
    }

    /// Loads and initialises the module at `path`, or returns the one already loaded.
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let load_error = |source| Error::ModuleLoad {
            path: path.to_owned(),
            source,
        };
        let canonical = path.canonicalize().map_err(|source| Error::ModuleMissing {
            path: path.to_owned(),
            source,
        })?;
        let mut loaded = LOADED.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, module)) = loaded.iter().find(|(p, _)| *p == canonical) {
            return Ok(Self {
                path: path.to_owned(),
                ..module.clone()
            });
        }
        let ctx = Pkcs11::new(&canonical).map_err(load_error)?;
        let module = Self {
            path: path.to_owned(),
            ctx,
            slots: Arc::default(),
        };
        module.initialize().map_err(load_error)?;
        loaded.push((canonical, module.clone()));
        Ok(module)
    }

    /// Waits for this machine's turn to write keys through this module, and holds it until
    /// the file returned is dropped: an exclusive `flock` on the module file itself, which
    /// every keyhold process using the module can open, and which no one writes. Two
    /// imports of one label at once would otherwise both find it free and leave two keys.
    pub(crate) fn write_turn(path: &Path) -> Result<std::fs::File, Error> {
        let failed = |source: std::io::Error| Error::WriteTurn {
            module: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::ModuleMissing {
                path: path.to_owned(),
                source,
            },
            _ => failed(source),
        })?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| failed(e.into()))?;
        Ok(file)
    }

    /// Held while listing slots and reading slot and token info.
    pub(crate) fn slots_lock(&self) -> MutexGuard<'_, ()> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `C_Initialize`, accepting a library someone in this process already initialised.
    /// Also how the library is brought back after someone finalised it.
    pub(crate) fn initialize(&self) -> Result<(), cryptoki::error::Error> {
        match self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => Ok(()),
            other => other,
        }
    }
}

/// The module path for a URI: `module-path`, else `module-name`, else p11-kit's proxy.
pub(crate) fn resolve(uri: &Pkcs11Uri) -> Result<PathBuf, Error> {
    if let Some(path) = &uri.module_path {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(Error::InvalidUri {
                reason: format!(
                    "module-path must be an absolute path, got '{}'",
                    path.display()
                ),
            });
        }
        return Ok(path);
    }
    if let Some(name) = &uri.module_name {
        return resolve_name(name, &p11kit_config_dirs(), &module_dirs());
    }
    let candidates = proxy_candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::NoModule {
            searched: join_paths(&candidates),
        })
}

/// Looks `name` up in p11-kit module configs, then as a library in the module directories.
pub(crate) fn resolve_name(
    name: &str,
    config_dirs: &[PathBuf],
    module_dirs: &[PathBuf],
) -> Result<PathBuf, Error> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::InvalidUri {
            reason: format!("module-name must be a bare name like 'softhsm2', got '{name}'"),
        });
    }
    let mut searched = Vec::new();
    // p11-kit: the user's config overrides the system's, so the first one found wins.
    for dir in config_dirs {
        let config = dir.join(format!("{name}.module"));
        searched.push(config.clone());
        let Ok(text) = std::fs::read_to_string(&config) else {
            continue;
        };
        let module = text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "module").then(|| value.trim().to_owned())
        });
        match module {
            Some(m) if Path::new(&m).is_absolute() => return Ok(PathBuf::from(m)),
            Some(m) if !m.is_empty() => {
                if let Some(found) = module_dirs.iter().map(|d| d.join(&m)).find(|p| p.is_file()) {
                    return Ok(found);
                }
            }
            _ => {}
        }
    }
    for dir in module_dirs {
        for file in [format!("{name}.so"), format!("lib{name}.so")] {
            let candidate = dir.join(file);
            if candidate.is_file() {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    Err(Error::ModuleNotFound {
        name: name.to_owned(),
        searched: join_paths(&searched),
    })
}

/// The module a bare file name (`opensc-pkcs11.so`, as the AWS signing helper's
/// `--pkcs11-lib` takes it and hands it to the loader) stands for: the first such file in
/// the PKCS#11 module directories, then in the loader's standard library directories.
/// `ModuleNotFound` names where it looked.
pub fn find_module_file(file_name: &str) -> Result<PathBuf, Error> {
    let mut dirs = module_dirs();
    dirs.extend(library_dirs());
    find_in(file_name, &dirs)
}

fn find_in(file_name: &str, dirs: &[PathBuf]) -> Result<PathBuf, Error> {
    if file_name.is_empty() || file_name.contains('/') {
        return Err(Error::ModuleNotFound {
            name: file_name.to_owned(),
            searched: "nowhere: that is no file name".into(),
        });
    }
    let candidates: Vec<PathBuf> = dirs.iter().map(|dir| dir.join(file_name)).collect();
    match candidates.iter().find(|candidate| candidate.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(Error::ModuleNotFound {
            name: file_name.to_owned(),
            searched: join_paths(&candidates),
        }),
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn multiarch_lib() -> PathBuf {
    PathBuf::from(format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH))
}

/// p11-kit's module config directories, user first.
fn p11kit_config_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(user) = user {
        dirs.push(user.join("pkcs11/modules"));
    }
    dirs.push(PathBuf::from("/etc/pkcs11/modules"));
    dirs.push(PathBuf::from("/usr/share/p11-kit/modules"));
    dirs
}

/// Where PKCS#11 modules are installed (p11-kit's default module directory and kin).
fn module_dirs() -> Vec<PathBuf> {
    vec![
        multiarch_lib().join("pkcs11"),
        PathBuf::from("/usr/lib64/pkcs11"),
        PathBuf::from("/usr/lib/pkcs11"),
        PathBuf::from("/usr/local/lib/pkcs11"),
    ]
}

/// The dynamic loader's standard library directories (glibc's defaults and Debian's
/// multiarch ones), where a bare library name is found when no path names it.
fn library_dirs() -> Vec<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    vec![
        PathBuf::from("/usr/local/lib").join(&multiarch),
        PathBuf::from("/usr/local/lib"),
        PathBuf::from("/lib").join(&multiarch),
        multiarch_lib(),
        PathBuf::from("/lib64"),
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/lib"),
        PathBuf::from("/usr/lib"),
    ]
}

fn proxy_candidates() -> Vec<PathBuf> {
    vec![
        multiarch_lib().join("p11-kit-proxy.so"),
        PathBuf::from("/usr/lib64/p11-kit-proxy.so"),
        PathBuf::from("/usr/lib/p11-kit-proxy.so"),
        PathBuf::from("/usr/local/lib/p11-kit-proxy.so"),
        PathBuf::from("/opt/homebrew/lib/p11-kit-proxy.dylib"),
        PathBuf::from("/usr/local/lib/p11-kit-proxy.dylib"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_resolve_like_p11kit() {
        let root = std::env::temp_dir().join(format!("keyhold-modules-{}", std::process::id()));
        let (user, system, libdir) = (root.join("user"), root.join("system"), root.join("lib"));
        for dir in [&user, &system, &libdir] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(libdir.join("libvendor.so"), b"").unwrap();
        std::fs::write(libdir.join("relative.so"), b"").unwrap();
        std::fs::write(libdir.join("bare.so"), b"").unwrap();
        // A system config with an absolute path, overridden by the user's relative one.
        std::fs::write(system.join("vendor.module"), "module: /opt/vendor/lib.so\n").unwrap();
        std::fs::write(user.join("vendor.module"), "# mine\nmodule: relative.so\n").unwrap();
        std::fs::write(
            system.join("abs.module"),
            "module:/opt/abs.so\ncritical: no\n",
        )
        .unwrap();
        let configs = [user.clone(), system.clone()];
        let libs = [libdir.clone()];
        let resolve = |name| resolve_name(name, &configs, &libs);

        assert_eq!(resolve("vendor").unwrap(), libdir.join("relative.so"));
        assert_eq!(resolve("abs").unwrap(), PathBuf::from("/opt/abs.so"));
        assert_eq!(resolve("bare").unwrap(), libdir.join("bare.so"));
        let err = resolve("missing").unwrap_err().to_string();
        assert!(
            err.contains("missing.module") && err.contains("libmissing.so"),
            "{err}"
        );
        for bad in ["", "../x", "a/b"] {
            assert!(resolve(bad).unwrap_err().to_string().contains("bare name"));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_bare_module_file_name_is_found_in_the_first_directory_holding_it() {
        let root = std::env::temp_dir().join(format!("keyhold-module-file-{}", std::process::id()));
        let (modules, libs) = (root.join("pkcs11"), root.join("lib"));
        for dir in [&modules, &libs] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(modules.join("both.so"), b"").unwrap();
        std::fs::write(libs.join("both.so"), b"").unwrap();
        std::fs::write(libs.join("lib-only.so"), b"").unwrap();
        let dirs = [modules.clone(), libs.clone()];
        assert_eq!(find_in("both.so", &dirs).unwrap(), modules.join("both.so"));
        assert_eq!(
            find_in("lib-only.so", &dirs).unwrap(),
            libs.join("lib-only.so")
        );
        let err = find_in("missing.so", &dirs).unwrap_err();
        assert!(
            matches!(&err, Error::ModuleNotFound { searched, .. }
                if searched.contains(&modules.join("missing.so").display().to_string())
                    && searched.contains(&libs.join("missing.so").display().to_string())),
            "{err:?}"
        );
        for bad in ["", "./x.so", "..", "a/b.so"] {
            assert!(find_in(bad, &dirs).is_err(), "{bad}");
        }
        assert!(library_dirs().contains(&multiarch_lib()));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn module_path_must_be_absolute() {
        let uri = Pkcs11Uri::parse("pkcs11:?module-path=libsofthsm2.so").unwrap();
        assert!(resolve(&uri).unwrap_err().to_string().contains("absolute"));
        let uri = Pkcs11Uri::parse("pkcs11:?module-path=/x/y.so").unwrap();
        assert_eq!(resolve(&uri).unwrap(), PathBuf::from("/x/y.so"));
    }
}
