//! The tidy test: every Rust file starts with a `//!` doc saying what it is for, no
//! secret-looking literal appears outside tests and test data, no file grows past 600 lines,
//! and no test reaches into another crate's files with `#[path = "../..`: what tests share
//! lives in `crates/test-support`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether a file (or the part of it before `#[cfg(test)]`) is production code.
fn is_test_path(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "testdata" | "benches" | "testing.rs")
        )
    })
}

/// Words that look like credentials: an AWS secret access key (40 base64 characters with
/// mixed case and digits), an access key id (`AKIA`/`ASIA` + 16), or a PEM private key (a
/// `PRIVATE KEY-----` marker followed by a base64 body line; the marker alone, as a parser's
/// constant, is fine). AWS's documented example values (containing `EXAMPLE`) are not secrets.
pub fn secret_like(line: &str, next_line: &str) -> Option<String> {
    let body = next_line.trim().trim_matches(|c| c == '"' || c == '\\');
    let base64_body = body.len() >= 40
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    // The marker is split so that this line does not match itself.
    if line.contains(concat!("PRIVATE", " KEY-----")) && base64_body {
        return Some("PEM private key".into());
    }
    let words = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '/' || c == '+'));
    for word in words {
        if word.contains("EXAMPLE") {
            continue;
        }
        let mixed = word.bytes().any(|b| b.is_ascii_lowercase())
            && word.bytes().any(|b| b.is_ascii_uppercase())
            && word.bytes().any(|b| b.is_ascii_digit());
        if word.len() == 40 && mixed {
            return Some(format!("40-character key-like literal {word:.6}..."));
        }
        if word.len() == 20
            && (word.starts_with("AKIA") || word.starts_with("ASIA"))
            && word
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Some(format!("access key id {word:.8}..."));
        }
    }
    None
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&super::workspace_root(), &mut files);
    assert!(files.len() > 5, "found only {} .rs files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let text = text.trim_start();
            !(text.starts_with("//!") || text.starts_with("#![doc"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

#[test]
fn no_secret_looking_literals_outside_tests() {
    let mut files = Vec::new();
    rust_files(&super::workspace_root(), &mut files);
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !is_test_path(f)) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break; // the rest of the file is its unit tests
            }
            let next = lines.get(n + 1).copied().unwrap_or("");
            if let Some(what) = secret_like(line, next) {
                found.push(format!("{}:{}: {what}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secret-looking literals:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_detector_detects() {
    // Built at run time so this file holds no such literal itself.
    let key: String = "aB3".repeat(13) + "x";
    assert!(secret_like(&format!("let k = \"{key}\";"), "").is_some());
    let akid = format!("AKIA{}", "Q7".repeat(8));
    assert!(secret_like(&akid, "").is_some());
    let marker = format!("-----BEGIN RSA {}-----", "PRIVATE KEY");
    assert!(secret_like(&marker, &"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".repeat(2)).is_some());
    assert!(secret_like(&marker, "const END: &str = \"-----END\";").is_none());
    assert!(secret_like("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "").is_none());
    assert!(secret_like("fn main() { let a_perfectly_normal_identifier = 1; }", "").is_none());
}

/// The longest a Rust file may be: past it, a reader loses the thread.
const MAX_LINES: usize = 600;

/// Each workspace Rust file, as a path relative to the root, with its text.
fn workspace_files() -> Vec<(String, String)> {
    let root = super::workspace_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .map(|f| {
            let relative = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
            (relative, std::fs::read_to_string(&f).unwrap_or_default())
        })
        .collect()
}

#[test]
fn no_file_over_600_lines() {
    let mut too_long = Vec::new();
    for (path, text) in workspace_files() {
        let lines = text.lines().count();
        if lines > MAX_LINES {
            too_long.push(format!("{path}: {lines} lines (split it)"));
        }
    }
    assert!(too_long.is_empty(), "{}", too_long.join("\n"));
}

#[test]
fn no_test_includes_another_crates_files() {
    let mut found = Vec::new();
    for (path, text) in workspace_files() {
        let includes = text
            .lines()
            .any(|l| l.trim_start().starts_with("#[path = \"../.."));
        if includes {
            found.push(format!(
                "{path}: #[path = \"../..\"] reaches into another crate; share it through crates/test-support"
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
