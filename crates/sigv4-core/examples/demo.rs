//! What `cargo xtask demo` shows for now: one request signed with a software key, stage by
//! stage. The key is AWS's documented example key, not a real one.

#![allow(clippy::print_stdout)] // the demo's output is its point

use sigv4_core::{Signer, SigningParams, SoftwareRootKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let signer = Signer::new(
        "AKIDEXAMPLE",
        SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    );
    let mut request = http::Request::post("https://sts.us-east-1.amazonaws.com/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())?;
    let out = signer.sign_request(&mut request, &SigningParams::new("us-east-1", "sts"))?;

    let say = |title: &str, body: &dyn std::fmt::Display| {
        println!("== {title}\n{body}\n");
    };
    say(
        "canonical request (step 1: the request in one exact form)",
        &out.canonical_request(),
    );
    say(
        "string to sign (step 2: its SHA-256, dated and scoped)",
        &out.string_to_sign(),
    );
    say(
        "Authorization header (step 3: HMAC with the derived key)",
        &request.headers()["authorization"].to_str()?,
    );
    println!(
        "root key calls: {} (the device is asked once per day, region and service)",
        signer.root_key_calls()
    );
    Ok(())
}
