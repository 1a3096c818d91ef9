//! Interop with tpm2-tools on swtpm: a key imported with `tpm2_import` + `tpm2_encodeobject`
//! signs in keyhold; keyhold's persistent key and key file work with `tpm2_hmac`.

mod common;

use std::os::unix::fs::OpenOptionsExt;

use backend_tpm::{ImportOptions, KeyAuth, TpmKeyFile};
use common::*;
use sigv4_core::RootKey;

fn expected_k_date(day: &str) -> Vec<u8> {
    software_key()
        .date_key(&date(day))
        .expect("software")
        .as_bytes()
        .to_vec()
}

#[test]
fn tpm2_tools_key_file_signs_in_keyhold() {
    let _one = serial();
    let tcti = tcti();
    let dir = scratch("tools-import");
    let path = |f: &str| dir.join(f).display().to_string();
    // The secret goes to tpm2_import in a file only this user can read, never on argv.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("secret.bin"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, root_secret().expose()))
        .expect("write secret file");
    test_support::tpm::create_primary(&tcti, &path("prim.ctx"));
    tpm2(
        &tcti,
        "tpm2_import",
        &[
            "-C",
            &path("prim.ctx"),
            "-G",
            "hmac",
            "-i",
            &path("secret.bin"),
            "-u",
            &path("k.pub"),
            "-r",
            &path("k.priv"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    tpm2(
        &tcti,
        "tpm2_encodeobject",
        &[
            "-C",
            &path("prim.ctx"),
            "-u",
            &path("k.pub"),
            "-r",
            &path("k.priv"),
            "-o",
            &path("k.pem"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    std::fs::remove_file(dir.join("secret.bin")).expect("remove secret file");

    let tpm = connect();
    let key = tpm
        .load_pem_file(dir.join("k.pem"), KeyAuth::none())
        .expect("load tools key");
    for day in ["20150830", "20240229"] {
        assert_eq!(
            key.date_key(&date(day)).expect("HMAC").as_bytes().to_vec(),
            expected_k_date(day)
        );
    }
}

#[test]
fn keyhold_keys_work_with_tpm2_hmac() {
    let _one = serial();
    let tcti = tcti();
    let handle = handle(3);
    evict_if_present(&tcti, handle);
    let dir = scratch("tools-hmac");
    let tpm = connect();
    let imported = tpm
        .import(
            &root_secret(),
            &ImportOptions::new(ACCESS_KEY_ID).persist_at(handle),
        )
        .expect("import");
    let pem_path = dir.join("keyhold.pem");
    std::fs::write(&pem_path, imported.key_file.to_pem()).expect("write PEM");
    tpm.disconnect();

    std::fs::write(dir.join("date"), "20150830").expect("write date");
    let date_path = dir.join("date").display().to_string();
    let handle_text = format!("{handle:#010x}");
    let from_persistent = tpm2(
        &tcti,
        "tpm2_hmac",
        &["-c", &handle_text, "-g", "sha256", &date_path],
    );
    assert_eq!(from_persistent, expected_k_date("20150830"));

    // tpm2_load reads keyhold's PEM (parent 0x40000001, access key id line before the armor).
    let ctx_path = dir.join("k.ctx").display().to_string();
    tpm2(
        &tcti,
        "tpm2_load",
        &["-r", &pem_path.display().to_string(), "-c", &ctx_path],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    let from_file = tpm2(
        &tcti,
        "tpm2_hmac",
        &["-c", &ctx_path, "-g", "sha256", &date_path],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    assert_eq!(from_file, expected_k_date("20150830"));

    let reread =
        TpmKeyFile::from_pem(&std::fs::read_to_string(&pem_path).expect("read")).expect("parse");
    assert_eq!(reread.access_key_id(), Some(ACCESS_KEY_ID));
    tpm.evict_persistent(handle).expect("evict");
}
