//! `set_profile` and `get` on the INI shapes AWS credentials files come in.

use super::*;

const KEYS: [(&str, &str); 2] = [
    ("aws_access_key_id", "AKIANEW"),
    ("aws_secret_access_key", "new"),
];

#[test]
fn new_file() {
    assert_eq!(
        set_profile("", "default", &KEYS),
        "[default]\naws_access_key_id = AKIANEW\naws_secret_access_key = new\n"
    );
    assert_eq!(set_profile("", "p", &[]), "[p]\n");
}

#[test]
fn new_profile_after_others_with_comments() {
    let text = "# managed by hand\n[default]\naws_access_key_id = AKIADEFAULT\n\
                aws_secret_access_key = s1\n; trailing comment\n";
    assert_eq!(
        set_profile(text, "work", &KEYS),
        format!("{text}\n[work]\naws_access_key_id = AKIANEW\naws_secret_access_key = new\n")
    );
    // A file already ending with a blank line gets no second one.
    assert_eq!(
        set_profile("[a]\nx = 1\n\n", "b", &[("y", "2")]),
        "[a]\nx = 1\n\n[b]\ny = 2\n"
    );
}

#[test]
fn replaces_keys_in_middle_section_keeping_everything_else() {
    let text = "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n\
                # the work account\n[work]\nregion = eu-west-1\naws_access_key_id=AKIAOLD\n\
                # rotated by keyhold\naws_secret_access_key = old\naws_session_token = tok\n\n\
                [other]\naws_access_key_id = AKIAOTHER\n";
    let expected = "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n\
                    # the work account\n[work]\nregion = eu-west-1\n\
                    aws_access_key_id = AKIANEW\n# rotated by keyhold\n\
                    aws_secret_access_key = new\naws_session_token = tok\n\n\
                    [other]\naws_access_key_id = AKIAOTHER\n";
    assert_eq!(set_profile(text, "work", &KEYS), expected);
    assert_eq!(set_profile(expected, "work", &KEYS), expected);
}

#[test]
fn crlf_file() {
    assert_eq!(
        set_profile(
            "[default]\r\naws_access_key_id = A\r\nregion = us-east-1\r\n",
            "default",
            &[("aws_access_key_id", "B"), ("aws_secret_access_key", "S")]
        ),
        "[default]\r\naws_access_key_id = B\r\nregion = us-east-1\r\naws_secret_access_key = S\r\n"
    );
    assert_eq!(
        set_profile("[default]\r\nx = 1\r\n", "work", &[("k", "v")]),
        "[default]\r\nx = 1\r\n\r\n[work]\r\nk = v\r\n"
    );
}

#[test]
fn missing_trailing_newline() {
    let text = "[default]\naws_access_key_id = A";
    assert_eq!(
        set_profile(text, "default", &[("aws_secret_access_key", "S")]),
        "[default]\naws_access_key_id = A\naws_secret_access_key = S\n"
    );
    assert_eq!(
        set_profile(text, "default", &[("aws_access_key_id", "B")]),
        "[default]\naws_access_key_id = B"
    );
    assert_eq!(
        set_profile("[default]\nx = 1", "work", &[("k", "v")]),
        "[default]\nx = 1\n\n[work]\nk = v\n"
    );
    assert_eq!(
        set_profile("[default]", "default", &[("k", "v")]),
        "[default]\nk = v\n"
    );
}

#[test]
fn continuation_lines_of_a_replaced_key_are_dropped() {
    let text = "[default]\naws_access_key_id = A\n  continued\n\tmore\nregion = r\n";
    assert_eq!(
        get(text, "default", "aws_access_key_id").as_deref(),
        Some("A\ncontinued\nmore")
    );
    assert_eq!(
        set_profile(text, "default", &[("aws_access_key_id", "B")]),
        "[default]\naws_access_key_id = B\nregion = r\n"
    );
    // Comments and blank lines inside a value stay; its continuation lines go.
    assert_eq!(
        set_profile("[d]\nk = a\n# c\n\n  b\nz = 1\n", "d", &[("k", "new")]),
        "[d]\nk = new\n# c\n\nz = 1\n"
    );
    // New keys go after the continuation lines of the last key, not inside its value.
    let text = "[default]\nregion = r\n  x\n[b]\n";
    assert_eq!(
        set_profile(text, "default", &[("k", "v")]),
        "[default]\nregion = r\n  x\nk = v\n[b]\n"
    );
}

#[test]
fn only_the_first_of_duplicate_sections_is_edited() {
    let text = "[default]\nk = 1\n[other]\nk = 2\n[default]\nk = 3\n";
    let out = set_profile(text, "default", &[("k", "9"), ("n", "8")]);
    assert_eq!(
        out,
        "[default]\nk = 9\nn = 8\n[other]\nk = 2\n[default]\nk = 3\n"
    );
    assert_eq!(get(&out, "default", "k").as_deref(), Some("9"));
}

#[test]
fn new_keys_go_right_after_the_last_key_line() {
    let text = "[default]\naws_access_key_id = A\n\n# next one is work\n[work]\nk = v\n";
    assert_eq!(
        set_profile(text, "default", &[("aws_secret_access_key", "S")]),
        "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n\
         # next one is work\n[work]\nk = v\n"
    );
    // A section without keys gets them right after its header.
    assert_eq!(
        set_profile("[default]\n# empty\n\n[work]\n", "default", &[("k", "v")]),
        "[default]\nk = v\n# empty\n\n[work]\n"
    );
}

#[test]
fn get_reads_values() {
    let text = "[default]\naws_access_key_id=AKIA1\naws_secret_access_key   =   spaced value  \n\
                [ work ]\nregion = eu\n";
    assert_eq!(
        get(text, "default", "aws_access_key_id").as_deref(),
        Some("AKIA1")
    );
    assert_eq!(
        get(text, "default", "aws_secret_access_key").as_deref(),
        Some("spaced value")
    );
    assert_eq!(get(text, "work", "region").as_deref(), Some("eu"));
    assert_eq!(get(text, "default", "region"), None);
    assert_eq!(
        get(text, "default", "AWS_ACCESS_KEY_ID").as_deref(),
        Some("AKIA1")
    );
    assert_eq!(get(text, "missing", "region"), None);
    assert_eq!(get("", "default", "region"), None);
    assert_eq!(
        set_profile("[ work ]\nregion = eu\n", "work", &[("region", "us")]),
        "[ work ]\nregion = us\n"
    );
}

#[test]
fn structural_characters_are_dropped_and_bad_keys_skipped() {
    assert_eq!(
        set_profile("", " a\nb] ", &[("k", "x\r\ny")]),
        "[ab]\nk = xy\n"
    );
    assert_eq!(
        set_profile("", "p", &[("", "1"), ("#c", "2"), ("[s", "3"), ("k", "4")]),
        "[p]\nk = 4\n"
    );
    assert_eq!(
        set_profile("", "p", &[("k", "1"), ("j", "2"), ("k", "3")]),
        "[p]\nk = 3\nj = 2\n"
    );
}

#[test]
fn odd_inputs_do_not_panic() {
    let texts = [
        "\r",
        "[\r",
        "x\r",
        "[]",
        "[ ]\n=\r\n",
        "\u{feff}[default]\n",
    ];
    for text in texts {
        for profile in ["default", "", "x"] {
            let out = set_profile(text, profile, &KEYS);
            for (key, value) in KEYS {
                assert_eq!(get(&out, profile, key).as_deref(), Some(value), "{text:?}");
            }
        }
    }
}

/// The lines of `text` (without endings) outside the first `[profile]` section.
fn lines_outside<'a>(text: &'a str, profile: &str) -> Vec<&'a str> {
    let mut inside = false;
    let mut seen = false;
    let mut outside = Vec::new();
    for line in text.lines() {
        let header = line
            .trim()
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::trim);
        if let Some(name) = header {
            inside = !seen && name == profile;
            seen |= inside;
        }
        if !inside {
            outside.push(line);
        }
    }
    outside
}

#[test]
fn set_values_read_back_and_other_lines_are_kept() {
    const TEXTS: &[&str] = &[
        "",
        "\n",
        "\r\n",
        "[default]",
        "[default]\n",
        "[default]\naws_access_key_id = A",
        "# c\n[default]\naws_access_key_id = A\n  cont\n\n; x\n[work]\nregion=eu\n",
        "[work]\r\nregion = eu\r\n[default]\r\nk = v\r\n",
        "[default]\nk = 1\n[default]\nk = 2\n",
        "[",
        "[default\nk = v\n",
        "]\n[\n=\n==\n  = x\n",
        "a\rb\n\r\nc\rd",
        "  indented = 1\n[ default ]\n  aws_access_key_id = old\n\tmore\nother\n",
        "[default]\n[work]\n",
        "é = ü\n[ünï]\nk = v\n",
        "[default]\n# only a comment",
        "[work]\naws_session_token = a\naws_session_token = b\n\n[default]\nx = y\n",
    ];
    const PROFILES: &[&str] = &["default", "work", "new one", "ünï"];
    const ENTRIES: &[(&str, &str)] = &[
        ("aws_access_key_id", "AKIANEW"),
        ("aws_secret_access_key", "new/secret+value="),
        ("aws_session_token", "tok"),
    ];
    for text in TEXTS {
        for profile in PROFILES {
            let context = format!("{text:?} [{profile}]");
            let out = set_profile(text, profile, ENTRIES);
            for (key, value) in ENTRIES {
                assert_eq!(
                    get(&out, profile, key).as_deref(),
                    Some(*value),
                    "{key} in {context} -> {out:?}"
                );
            }
            let mut output_lines = out.lines();
            for line in lines_outside(text, profile) {
                assert!(
                    output_lines.any(|candidate| candidate == line),
                    "{line:?} of {context} missing or moved in {out:?}"
                );
            }
            assert_eq!(set_profile(&out, profile, ENTRIES), out, "{context}");
        }
    }
}

/// The `credentials-file` fuzz target: whatever the file holds, setting a profile never
/// panics, the values read back, and every line outside the profile is kept in order.
#[test]
fn fuzz_credentials_files() {
    let dictionary: &[&[u8]] = &[
        b"[default]",
        b"[work]",
        b"[ work ]",
        b"\n",
        b"\r\n",
        b"\r",
        b" = ",
        b"aws_access_key_id",
        b"AWS_SESSION_TOKEN",
        b"  continued",
        b"# ",
        b"; ",
        b"[",
        b"]",
    ];
    let runs = test_support::fuzz::runs(20_000);
    let entries = [
        ("aws_access_key_id", "AKIANEW"),
        ("aws_session_token", "tok"),
    ];
    test_support::fuzz::run("credentials-file", 0x5eed_0013, runs, dictionary, |input| {
        let text = String::from_utf8_lossy(input);
        let out = set_profile(&text, "work", &entries);
        for (key, value) in entries {
            assert_eq!(
                get(&out, "work", key).as_deref(),
                Some(value),
                "{text:?} -> {out:?}"
            );
        }
        // A last line ending in a lone \r gains the \n the file lacked: compare without it.
        let mut output_lines = out.lines().map(|l| l.trim_end_matches('\r'));
        for line in lines_outside(&text, "work") {
            let line = line.trim_end_matches('\r');
            assert!(
                output_lines.any(|o| o == line),
                "{line:?} of {text:?} lost: {out:?}"
            );
        }
        true
    });
}
