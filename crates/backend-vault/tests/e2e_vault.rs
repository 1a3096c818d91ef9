//! The Vault backend against a real OpenBao (`cargo xtask e2e` starts it in dev mode with a
//! transit engine): import, the known answer, STS through moto, least privilege, the errors
//! a user meets, AppRole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use backend_vault::{Auth, KeyPath, VaultClient, VaultConfig, VaultError, VaultRootKey};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};
use test_support::env;
use test_support::openbao::Bao;
use zeroize::Zeroizing;

fn var(name: &str) -> String {
    test_support::moto::env(name)
}

/// A token whose policy is `policy` (HCL), made by root.
fn token_with(name: &str, policy: &str) -> String {
    let file =
        std::env::temp_dir().join(format!("keyhold-vault-{name}-{}.hcl", std::process::id()));
    std::fs::write(&file, policy).unwrap();
    let root = Bao::dev_root();
    root.run(&["policy", "write", name, file.to_str().unwrap()]);
    root.run(&[
        "token", "create", "-policy", name, "-ttl", "1h", "-field", "token",
    ])
    .trim()
    .to_owned()
}

/// A client of `addr` logging in with `auth`.
fn connect(addr: &str, auth: Auth) -> Result<VaultClient, VaultError> {
    VaultClient::connect(VaultConfig {
        addr: addr.to_owned(),
        namespace: None,
        ca_pem: None,
        allow_insecure_http: false,
        auth,
    })
}

fn client(token: &str) -> Result<VaultClient, VaultError> {
    connect(
        &var(env::VAULT_ADDR),
        Auth::Token(SecretString::from(token.to_owned())),
    )
}

fn unique(name: &str) -> KeyPath {
    format!("{name}-{}", std::process::id()).parse().unwrap()
}

fn secret(text: &str) -> RootSecret {
    RootSecret::from_secret_access_key(Zeroizing::new(text.as_bytes().to_vec()))
}

/// An AppRole whose tokens have `policy` and the `ttl` settings given; its role id and a
/// new secret id.
fn approle(policy: &str, ttl: &[&str]) -> (String, String) {
    let root = Bao::dev_root();
    // Enabled already by another test: refused, and that is fine.
    let _ = root.try_run(&["auth", "enable", "approle"]);
    let role = format!("auth/approle/role/{policy}");
    let mut write = vec![
        "write".to_owned(),
        role.clone(),
        format!("token_policies={policy}"),
    ];
    write.extend(ttl.iter().map(|s| (*s).to_owned()));
    root.run(&write.iter().map(String::as_str).collect::<Vec<_>>());
    let role_id = root.run(&["read", "-field", "role_id", &format!("{role}/role-id")]);
    let secret_id = root.run(&[
        "write",
        "-f",
        "-field",
        "secret_id",
        &format!("{role}/secret-id"),
    ]);
    (role_id.trim().to_owned(), secret_id.trim().to_owned())
}

fn hmac_policy(key: &KeyPath) -> String {
    format!(
        "path \"{}/hmac/{}/sha2-256\" {{ capabilities = [\"update\"] }}\n",
        key.mount, key.name
    )
}

#[test]
fn an_imported_key_gives_the_known_answer_and_signs_sts_calls_moto_accepts() {
    let root = client(&var(env::VAULT_ROOT_TOKEN)).unwrap();
    // The AWS SigV4 suite's secret: kDate for 20150830 is 0138c7a6cbd60aa7...a7cd.
    let suite = unique("suite");
    backend_vault::import(
        &root,
        &suite,
        &secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    )
    .unwrap();
    let key = VaultRootKey::open(
        Arc::new(client(&var(env::VAULT_ROOT_TOKEN)).unwrap()),
        suite.clone(),
    )
    .unwrap();
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    let k_date = key.date_key(&date).unwrap();
    let hex: String = k_date
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        hex.starts_with("0138c7a6cbd60aa7") && hex.ends_with("a7cd"),
        "{hex}"
    );
    let software =
        SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    assert_eq!(
        k_date.as_bytes(),
        software.date_key(&date).unwrap().as_bytes()
    );

    // The test user's secret in Vault signs GetCallerIdentity and AssumeRole that moto checks.
    let user = unique("user");
    backend_vault::import(&root, &user, &secret(&var(env::AWS_SECRET_ACCESS_KEY))).unwrap();
    let token = token_with(&format!("hmac-{}", user.name), &hmac_policy(&user));
    let key = VaultRootKey::open(Arc::new(client(&token).unwrap()), user).unwrap();
    let sts = test_support::moto::moto_client(&var(env::AWS_ACCESS_KEY_ID), Arc::new(key));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identity = runtime.block_on(sts.get_caller_identity()).unwrap();
    assert_eq!(identity.arn, var(env::USER_ARN));
    let role = runtime
        .block_on(sts.assume_role(sts_client::AssumeRole::new(var(env::ROLE_ARN), "vault")))
        .unwrap();
    assert!(role.credentials.access_key_id.starts_with("ASIA"));
}

#[test]
fn a_least_privilege_token_can_hmac_and_nothing_else_and_the_key_never_leaves() {
    let root_token = var(env::VAULT_ROOT_TOKEN);
    let root = client(&root_token).unwrap();
    let key = unique("leastpriv");
    backend_vault::import(
        &root,
        &key,
        &secret("a-secret-access-key-for-least-privilege-0"),
    )
    .unwrap();
    let token = token_with(&format!("lp-{}", key.name), &hmac_policy(&key));
    let signer = VaultRootKey::open(Arc::new(client(&token).unwrap()), key.clone()).unwrap();
    signer
        .date_key(&DateStamp::from_date(time::macros::date!(2026 - 12 - 04)))
        .unwrap();

    let name = format!("{}/keys/{}", key.mount, key.name);
    for args in [
        vec!["read".to_owned(), name.clone()],
        vec![
            "read".to_owned(),
            format!("{}/export/hmac-key/{}", key.mount, key.name),
        ],
        vec![
            "read".to_owned(),
            format!("{}/backup/{}", key.mount, key.name),
        ],
        vec![
            "write".to_owned(),
            "-f".to_owned(),
            format!("{name}/rotate"),
        ],
        vec![
            "write".to_owned(),
            format!("{name}/config"),
            "exportable=true".to_owned(),
        ],
        vec!["delete".to_owned(), name.clone()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let refused = Bao::dev_root()
            .with_token(&token)
            .try_run(&args)
            .expect_err(&format!("{args:?} was allowed"));
        assert!(refused.stderr.contains("permission denied"), "{refused}");
    }
    // Through the device itself: the key is not exportable and has no plaintext backup, so
    // not even root can export it as imported.
    let settings = root.key_info(&key).unwrap().unwrap();
    assert!(!settings.exportable && !settings.allow_plaintext_backup && settings.imported_key);
    let export = Bao::dev_root().try_run(&[
        "read",
        &format!("{}/export/hmac-key/{}", key.mount, key.name),
    ]);
    assert!(
        export.is_err_and(|e| e.stderr.contains("not exportable")),
        "root exported the key"
    );
    let backup = Bao::dev_root().try_run(&["read", &format!("{}/backup/{}", key.mount, key.name)]);
    assert!(backup.is_err(), "a plaintext backup was made");
}

#[test]
fn each_failure_is_named() {
    let root = client(&var(env::VAULT_ROOT_TOKEN)).unwrap();
    let key = unique("errors");
    backend_vault::import(
        &root,
        &key,
        &secret("a-secret-access-key-for-the-error-tests-0"),
    )
    .unwrap();
    let date = DateStamp::from_date(time::macros::date!(2026 - 12 - 04));

    // Importing over it is refused, naming the way out.
    let again = backend_vault::import(
        &root,
        &key,
        &secret("another-secret-access-key-000000000000000"),
    );
    assert!(
        matches!(again, Err(VaultError::KeyExists { .. })),
        "{again:?}"
    );

    // A token without the capability: 403 with the capability and path named.
    let other = token_with(
        &format!("other-{}", key.name),
        "path \"transit/hmac/someone-else/sha2-256\" { capabilities = [\"update\"] }\n",
    );
    let signer = VaultRootKey::open(Arc::new(client(&other).unwrap()), key.clone()).unwrap();
    let denied = signer.date_key(&date).unwrap_err();
    let text = test_support::chain(&denied);
    assert!(
        text.contains(&format!(
            "may not update on {}/hmac/{}/sha2-256",
            key.mount, key.name
        )),
        "{text}"
    );

    // A revoked token: said so, not "permission denied".
    let token = token_with(&format!("revoked-{}", key.name), &hmac_policy(&key));
    let signer = VaultRootKey::open(Arc::new(client(&token).unwrap()), key.clone()).unwrap();
    signer.date_key(&date).unwrap();
    Bao::dev_root().run(&["token", "revoke", &token]);
    let text = test_support::chain(&signer.date_key(&date).unwrap_err());
    assert!(text.contains("expired or revoked"), "{text}");
    assert!(matches!(client(&token), Err(VaultError::TokenInvalid)));

    // No such key; no server.
    let missing = VaultRootKey::open(
        Arc::new(client(&var(env::VAULT_ROOT_TOKEN)).unwrap()),
        unique("missing"),
    );
    assert!(
        matches!(missing, Err(VaultError::NotFound { .. })),
        "{missing:?}"
    );
    let nobody = connect(
        "http://127.0.0.1:9",
        Auth::Token(SecretString::from("t".to_owned())),
    );
    assert!(
        matches!(nobody, Err(VaultError::Unreachable { .. })),
        "{nobody:?}"
    );
    // Plain http to another machine is refused before any call.
    let remote = connect(
        "http://vault.example.com:8200",
        Auth::Token(SecretString::from("t".to_owned())),
    );
    assert!(matches!(remote, Err(VaultError::Config(_))), "{remote:?}");
    // No error or Debug output holds a token.
    let root_token = var(env::VAULT_ROOT_TOKEN);
    assert!(!format!("{root:?} {signer:?}").contains(&root_token));
}

#[test]
fn approle_logs_in_and_signs() {
    let root = client(&var(env::VAULT_ROOT_TOKEN)).unwrap();
    let key = unique("approle");
    backend_vault::import(
        &root,
        &key,
        &secret("a-secret-access-key-for-the-approle-test0"),
    )
    .unwrap();
    let policy = format!("approle-{}", key.name);
    let file = std::env::temp_dir().join(format!("{policy}.hcl"));
    std::fs::write(&file, hmac_policy(&key)).unwrap();
    Bao::dev_root().run(&["policy", "write", &policy, file.to_str().unwrap()]);
    let (role_id, secret_id) = approle(&policy, &["token_ttl=2m"]);
    let client = connect(
        &var(env::VAULT_ADDR),
        Auth::AppRole {
            mount: "approle".into(),
            role_id,
            secret_id: SecretString::from(secret_id.clone()),
        },
    )
    .unwrap();
    assert!(!format!("{client:?}").contains(&secret_id));
    let info = client.lookup_self().unwrap();
    assert!(info.policies.contains(&policy), "{info:?}");
    assert!(info.ttl > 0 && info.ttl <= 120, "{info:?}");
    let signer = VaultRootKey::open(Arc::new(client), key).unwrap();
    let date = DateStamp::from_date(time::macros::date!(2026 - 12 - 04));
    let software =
        SoftwareRootKey::from_secret_access_key("a-secret-access-key-for-the-approle-test0");
    assert_eq!(
        signer.date_key(&date).unwrap().as_bytes(),
        software.date_key(&date).unwrap().as_bytes()
    );
}

#[test]
fn tokens_are_renewed_and_approle_logs_in_again_for_long_running_use() {
    let root = client(&var(env::VAULT_ROOT_TOKEN)).unwrap();
    let key = unique("renewal");
    let material = "a-secret-access-key-for-the-renewal-tests";
    backend_vault::import(&root, &key, &secret(material)).unwrap();
    let software = SoftwareRootKey::from_secret_access_key(material);
    let policy = format!("renewal-{}", key.name);
    let file = std::env::temp_dir().join(format!("{policy}.hcl"));
    std::fs::write(&file, hmac_policy(&key)).unwrap();
    Bao::dev_root().run(&["policy", "write", &policy, file.to_str().unwrap()]);
    let day =
        |n| DateStamp::from_date(time::macros::date!(2026 - 12 - 01) + time::Duration::days(n));

    // A renewable token good for 6 s: after 5 s keyhold has renewed it, and it keeps working.
    let token = Bao::dev_root().run(&[
        "token",
        "create",
        "-policy",
        &policy,
        "-ttl",
        "6s",
        "-explicit-max-ttl",
        "1h",
        "-field",
        "token",
    ]);
    let signer = VaultRootKey::open(Arc::new(client(token.trim()).unwrap()), key.clone()).unwrap();
    for n in 0..3 {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let got = signer.date_key(&day(n)).expect("the token was renewed");
        assert_eq!(
            got.as_bytes(),
            software.date_key(&day(n)).unwrap().as_bytes()
        );
    }

    // AppRole tokens that cannot be renewed past 4 s: keyhold logs in again.
    let (role_id, secret_id) = approle(&policy, &["token_ttl=4s", "token_max_ttl=4s"]);
    let approle = Auth::AppRole {
        mount: "approle".into(),
        role_id,
        secret_id: SecretString::from(secret_id),
    };
    let signer = VaultRootKey::open(
        Arc::new(connect(&var(env::VAULT_ADDR), approle).unwrap()),
        key,
    )
    .unwrap();
    for n in 0..3 {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let got = signer.date_key(&day(n)).expect("a new login");
        assert_eq!(
            got.as_bytes(),
            software.date_key(&day(n)).unwrap().as_bytes()
        );
    }
}

#[test]
fn an_exportable_key_is_refused() {
    let key = unique("exportable");
    Bao::dev_root().run(&[
        "write",
        &format!("{}/keys/{}", key.mount, key.name),
        "type=hmac",
        "key_size=32",
        "exportable=true",
    ]);
    let opened = VaultRootKey::open(Arc::new(client(&var(env::VAULT_ROOT_TOKEN)).unwrap()), key);
    let Err(error) = opened else {
        panic!("an exportable key was accepted");
    };
    assert!(matches!(error, VaultError::Unsuitable { .. }), "{error:?}");
    assert!(error.to_string().contains("can be exported"), "{error}");
}
