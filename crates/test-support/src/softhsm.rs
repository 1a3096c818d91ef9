//! SoftHSM for the PKCS#11 tests and benches (backend-pkcs11's and sdk-credentials'): where
//! the module is, and a fresh token. Feature `softhsm`.
//!
//! `cargo xtask e2e` exports `SOFTHSM2_CONF` (a private token directory) and
//! `KEYHOLD_TEST_PKCS11_MODULE` (the SoftHSM module). Each test makes its own token with a
//! unique label, so tests in parallel processes share nothing but the directory.
//!
//! Within one process, tests take turns ([`serial`]): SoftHSM 2.6's `C_GetSlotList` and
//! `C_InitToken` change its slot table without a lock, so a test creating a token while
//! another lists slots can abort the process. nextest runs each test in its own process, so
//! this only matters under plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use backend_pkcs11::{ImportOptions, Pkcs11Uri, import_key};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

/// The security officer's PIN of test tokens (they hold test keys only).
pub const SO_PIN: &str = "so-pin-for-tests";
/// The user PIN of test tokens.
pub const USER_PIN: &str = "user-pin-for-tests";

/// The secret access key of the AWS SigV4 test suite, and its access key id.
pub const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The access key id of the AWS SigV4 test suite.
pub const SUITE_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";

/// A SoftHSM configuration of its own under `dir` (an empty token directory beside it), for
/// a process that must see only the tokens a test makes: point `SOFTHSM2_CONF` at it.
pub fn private_conf(dir: &std::path::Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).expect("softhsm2.conf");
    conf
}

/// The SoftHSM module path, or a panic saying how to run these tests.
pub fn module_path() -> PathBuf {
    for var in ["SOFTHSM2_CONF", crate::env::PKCS11_MODULE] {
        if std::env::var_os(var).is_none() {
            panic!(
                "{var} is not set: run the PKCS#11 tests through `cargo xtask e2e`, which points \
                 SoftHSM at a private token directory and sets KEYHOLD_TEST_PKCS11_MODULE"
            );
        }
    }
    PathBuf::from(std::env::var_os(crate::env::PKCS11_MODULE).unwrap())
}

/// A cryptoki context on the module, initialised (or already initialised by this process).
pub fn context() -> Pkcs11 {
    let ctx = Pkcs11::new(module_path()).expect("loading the SoftHSM module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => ctx,
        Err(e) => panic!("C_Initialize: {e}"),
    }
}

/// A freshly initialised token of this test's own.
pub struct TestToken {
    /// The token's unique label.
    pub label: String,
    /// A cryptoki context on the module.
    pub ctx: Pkcs11,
}

static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Held for the whole of a test that touches SoftHSM; see the module docs.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Token creation takes turns across test processes: SoftHSM writes a new token's files
/// one by one, and a process listing slots meanwhile fails on the half-made token
/// (`softhsm2-util`: "Could not get info about the token in slot N"). Every test helper that
/// creates tokens in the shared directory holds this lock (a file beside `SOFTHSM2_CONF`).
pub fn token_init_lock() -> std::fs::File {
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").expect("SOFTHSM2_CONF"));
    let lock = std::fs::File::create(conf.with_file_name("token-init.lock")).unwrap();
    lock.lock().unwrap();
    lock
}

impl TestToken {
    /// Initialises a new token labelled from `name` (made unique), with SO and user PINs.
    pub fn new(name: &str) -> Self {
        let ctx = context();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut label = format!("{}-{:x}-{n}", name, std::process::id());
        if label.len() > 32 {
            label = label[label.len() - 32..].to_owned();
        }
        // The lock is held until the user PIN is set: that rewrites the token's files too.
        let lock = token_init_lock();
        // A slot whose token can't be read is being written by another process right now
        // (not every writer takes the lock): it is not the free one.
        let free = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|info| !info.token_initialized())
            })
            .expect("SoftHSM offers a free slot");
        ctx.init_token(free, &SecretString::from(SO_PIN), &label)
            .unwrap();
        let token = Self { label, ctx };
        let session = token.ctx.open_rw_session(token.slot()).unwrap();
        session
            .login(UserType::So, Some(&SecretString::from(SO_PIN)))
            .unwrap();
        session.init_pin(&SecretString::from(USER_PIN)).unwrap();
        drop(session);
        drop(lock);
        token
    }

    /// The token's slot (SoftHSM renumbers a slot when its token is initialised).
    pub fn slot(&self) -> Slot {
        // Tokens other test processes are creating may not be readable yet: skip those.
        self.ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                self.ctx
                    .get_token_info(*s)
                    .is_ok_and(|info| info.label() == self.label)
            })
            .expect("the test token is present")
    }

    /// A URI for `object` on this token, with the module path and (unless `pin` is None)
    /// the user PIN as pin-value.
    pub fn uri_with_pin(&self, object: &str, pin: Option<&str>) -> Pkcs11Uri {
        let mut uri = Pkcs11Uri::default();
        uri.token = Some(self.label.clone());
        uri.object = Some(object.to_owned());
        uri.module_path = Some(module_path().display().to_string());
        uri.pin_value = pin.map(SecretString::from);
        uri
    }

    /// A URI for `object` on this token, with the module path and the user PIN.
    pub fn uri(&self, object: &str) -> Pkcs11Uri {
        self.uri_with_pin(object, Some(USER_PIN))
    }

    /// A read-write session logged in as the user, for poking at the token directly.
    pub fn user_session(&self) -> Session {
        let session = self.ctx.open_rw_session(self.slot()).unwrap();
        match session.login(UserType::User, Some(&SecretString::from(USER_PIN))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => session,
            Err(e) => panic!("C_Login: {e}"),
        }
    }

    /// Imports `secret` as `object` with access key id `akid`, and returns the key's URI.
    pub fn import(&self, object: &str, secret: &str, akid: &str) -> Pkcs11Uri {
        import_key(
            &self.uri(object),
            &root_secret(secret),
            akid,
            ImportOptions::new(),
        )
        .unwrap()
    }
}

/// `"AWS4" + secret` as the import API takes it.
pub fn root_secret(secret: &str) -> RootSecret {
    RootSecret::from_secret_access_key(Zeroizing::new(secret.as_bytes().to_vec()))
}

/// A secret key holding `"AWS4" + secret`, made directly (not by keyhold's import): the
/// usages DERIVE, ENCRYPT, DECRYPT, WRAP and UNWRAP off (SoftHSM turns some on when not
/// told), and `extra` added or overriding.
pub fn raw_key(token: &TestToken, label: &str, id: &[u8], secret: &str, extra: &[Attribute]) {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Value(format!("AWS4{secret}").into_bytes()),
        Attribute::Derive(false),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
    ];
    template.retain(|a| {
        !extra
            .iter()
            .any(|e| e.attribute_type() == a.attribute_type())
    });
    template.extend_from_slice(extra);
    token.user_session().create_object(&template).unwrap();
}
