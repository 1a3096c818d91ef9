//! The Vault backend against an OpenBao of the test's own with raft storage (dev mode keeps
//! nothing and cannot be sealed): a sealed server is named as such, the key signs again once
//! it is unsealed, and the key survives a restart of the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_vault::{Auth, VaultClient, VaultConfig, VaultRootKey};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use test_support::openbao::{self, Bao};
use zeroize::Zeroizing;

/// A raft-backed OpenBao on two free loopback ports, its unseal key and root token.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    addr: String,
    unseal_key: String,
    root_token: String,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let port = test_support::free_port_pair().expect("two free ports");
        std::fs::create_dir_all(dir.join("raft")).unwrap();
        let config = format!(
            "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"n1\"\n  performance_multiplier = 1\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\ndisable_mlock = true\n",
            raft = dir.join("raft").display(),
            cluster = port + 1
        );
        std::fs::write(dir.join("server.hcl"), config).unwrap();
        let mut server = Self {
            child: None,
            dir: dir.to_owned(),
            addr: format!("http://127.0.0.1:{port}"),
            unseal_key: String::new(),
            root_token: String::new(),
        };
        server.launch();
        let init: serde_json::Value = serde_json::from_str(&server.bao("").run(&[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ]))
        .unwrap();
        server.unseal_key = init["unseal_keys_b64"][0].as_str().unwrap().to_owned();
        server.root_token = init["root_token"].as_str().unwrap().to_owned();
        server.unseal();
        server.root().run(&["secrets", "enable", "transit"]);
        server
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        self.child = Some(
            Command::new(openbao::program())
                .args(["server", "-config"])
                .arg(self.dir.join("server.hcl"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let port = self.addr.rsplit(':').next().unwrap().to_owned();
        let start = Instant::now();
        while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "OpenBao did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `bao` against this server with `token`.
    fn bao(&self, token: &str) -> Bao {
        Bao::new(&self.addr, token).home(&self.dir)
    }

    /// `bao` against this server as root.
    fn root(&self) -> Bao {
        self.bao(&self.root_token)
    }

    fn unseal(&self) {
        self.bao("").run(&["operator", "unseal", &self.unseal_key]);
        // Raft elects itself leader shortly after the unseal.
        let start = Instant::now();
        while !self
            .root()
            .try_run(&["read", "sys/leader"])
            .is_ok_and(|out| out.contains("is_self                   true"))
        {
            assert!(start.elapsed() < Duration::from_secs(30), "no raft leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.launch();
        self.unseal();
    }

    fn client(&self) -> VaultClient {
        VaultClient::connect(VaultConfig {
            addr: self.addr.clone(),
            namespace: None,
            ca_pem: None,
            allow_insecure_http: false,
            auth: Auth::Token(SecretString::from(self.root_token.clone())),
        })
        .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_sealed_server_is_named_and_the_key_survives_unseal_and_restart() {
    let dir = std::env::temp_dir().join(format!("keyhold-vault-raft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Server::start(&dir);
    let material = "a-secret-access-key-for-the-raft-tests-00";
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(material.as_bytes().to_vec()));
    let key = "aws".parse().unwrap();
    let client = Arc::new(server.client());
    backend_vault::import(&client, &key, &secret).unwrap();
    let signer = VaultRootKey::open(client, key).unwrap();
    let software = SoftwareRootKey::from_secret_access_key(material);
    let day =
        |n| DateStamp::from_date(time::macros::date!(2026 - 12 - 01) + time::Duration::days(n));
    let signs = |n| {
        signer
            .date_key(&day(n))
            .map(|k| k.as_bytes() == software.date_key(&day(n)).unwrap().as_bytes())
    };
    assert!(signs(0).unwrap());

    server.root().run(&["operator", "seal"]);
    let error = signs(1).unwrap_err();
    let text = test_support::chain(&error);
    assert!(
        text.contains("is sealed") && text.contains("unseal"),
        "{text}"
    );
    assert_eq!(error.kind(), sigv4_core::KeyErrorKind::Unavailable);

    server.unseal();
    assert!(signs(2).unwrap(), "signs again once unsealed");

    server.restart();
    assert!(signs(3).unwrap(), "the key survived the restart");
}
