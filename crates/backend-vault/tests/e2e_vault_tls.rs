//! The Vault backend over TLS with a private CA (`VAULT_CACERT`) and in a namespace
//! (`VAULT_NAMESPACE`), against an OpenBao of the test's own in `-dev-tls` mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_vault::{Auth, VaultClient, VaultConfig, VaultError, VaultRootKey};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use test_support::openbao::{self, Bao};
use zeroize::Zeroizing;

const ROOT_TOKEN: &str = "root-token-of-the-tls-test";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(addr: &str, ca_pem: Option<Vec<u8>>, namespace: Option<&str>) -> VaultConfig {
    VaultConfig {
        addr: addr.to_owned(),
        namespace: namespace.map(str::to_owned),
        ca_pem,
        allow_insecure_http: false,
        auth: Auth::Token(SecretString::from(ROOT_TOKEN.to_owned())),
    }
}

#[test]
fn tls_with_a_private_ca_and_a_namespace() {
    let dir = std::env::temp_dir().join(format!("keyhold-vault-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = test_support::free_port_pair().expect("two free ports");
    let _server = Killed(
        Command::new(openbao::program())
            .args(["server", "-dev", "-dev-tls", "-dev-no-store-token"])
            .arg(format!("-dev-tls-cert-dir={}", dir.display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let ca = dir.join("vault-ca.pem");
    let start = Instant::now();
    while !ca.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "OpenBao did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = format!("https://127.0.0.1:{port}");
    let bao = Bao::new(&addr, ROOT_TOKEN).home(&dir).ca_cert(&ca);
    bao.run(&["namespace", "create", "team"]);
    bao.namespace("team").run(&["secrets", "enable", "transit"]);
    let pem = std::fs::read(&ca).unwrap();

    // Without the CA the server's certificate is not trusted: refused, nothing sent.
    let untrusted = VaultClient::connect(config(&addr, None, Some("team")));
    assert!(
        matches!(untrusted, Err(VaultError::Unreachable { .. })),
        "{untrusted:?}"
    );
    // A file that holds no certificate is a configuration error.
    let bad = VaultClient::connect(config(&addr, Some(b"not a certificate".to_vec()), None));
    assert!(matches!(bad, Err(VaultError::Config(_))), "{bad:?}");

    // With it, in the namespace: import, sign.
    let client =
        Arc::new(VaultClient::connect(config(&addr, Some(pem.clone()), Some("team"))).unwrap());
    let material = "a-secret-access-key-for-the-tls-test-0000";
    let key = "aws".parse().unwrap();
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(material.as_bytes().to_vec()));
    backend_vault::import(&client, &key, &secret).unwrap();
    let signer = VaultRootKey::open(client, key).unwrap();
    let date = DateStamp::from_date(time::macros::date!(2026 - 12 - 04));
    let software = SoftwareRootKey::from_secret_access_key(material);
    assert_eq!(
        signer.date_key(&date).unwrap().as_bytes(),
        software.date_key(&date).unwrap().as_bytes()
    );

    // The key is the namespace's: outside it there is no transit engine at all.
    let root_namespace = Arc::new(VaultClient::connect(config(&addr, Some(pem), None)).unwrap());
    let outside = VaultRootKey::open(root_namespace, "aws".parse().unwrap());
    assert!(
        matches!(outside, Err(VaultError::NotFound { .. })),
        "{outside:?}"
    );
}
