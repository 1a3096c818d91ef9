//! Editing the text of an AWS shared credentials file (`~/.aws/credentials`) in memory: no
//! I/O here, the caller reads and (atomically) writes the file.
//!
//! [`set_profile`] sets some keys of one profile and keeps every other byte of the file as
//! it was; `get` (for tests) reads one value back. The INI dialect followed is the one botocore
//! (Python's `configparser`) and the other SDKs read:
//!
//! - A line is split at `\n`; a `\r` right before the `\n` is part of the line ending
//!   (`\r\n`), any other `\r` is an ordinary character. The last line may lack a newline.
//! - A line whose trimmed form is empty is blank; one whose trimmed form starts with `#` or
//!   `;` is a comment (there are no inline comments: `key = a # b` has the value `a # b`).
//! - A line whose trimmed form is `[name]` starts a section; the name is trimmed, so
//!   `[ default ]` is `default`. In a credentials file the section name is the profile
//!   name itself, without the `profile ` prefix of `~/.aws/config`. A `[` without a closing
//!   `]` is not a section header.
//! - Any other line that starts with whitespace and follows a `key = value` line (possibly
//!   with blank and comment lines in between) continues that key's value, as in
//!   `configparser` (which, unlike this module, would also take an indented `[name]` there).
//! - Any other line containing `=` is `key = value`: the key is the trimmed text before the
//!   first `=`, compared without regard to ASCII case (`configparser` lowercases keys); the value is the trimmed text after it. Lines
//!   that are none of the above (no `=`, or an empty key) are kept but mean nothing here.
//! - A profile is the first section with its name; later sections with the same name are
//!   neither read nor edited.
//!
//! Values, keys and profile names are written as given, except that characters which would
//! change the structure of the file are dropped (see [`set_profile`]); the caller is
//! expected to have rejected them already.

/// One physical line of the file.
#[derive(Debug)]
struct Line<'a> {
    /// The whole line as it is in the file, line ending included.
    raw: &'a str,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a newline.
    ending: &'a str,
    /// What the line means.
    kind: Kind<'a>,
}

/// What a line of the file means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    /// Empty or only whitespace.
    Blank,
    /// A `#` or `;` comment.
    Comment,
    /// A `[name]` section header, holding the trimmed name.
    Section(&'a str),
    /// A `key = value` line: the trimmed text before the first `=` (never empty), and the
    /// trimmed text after it.
    Property(&'a str, &'a str),
    /// An indented line continuing the value of the property before it (trimmed).
    Continuation(&'a str),
    /// Anything else (no `=`, an empty key, a `[` without `]`, ...).
    Other,
}

/// Returns `text` with profile `profile`'s `entries` (`(key, value)` pairs) set, every other
/// line of the file unchanged, byte for byte and in order.
///
/// - If the section `[profile]` exists (the first one, if repeated): each key of `entries`
///   found in it has its line (every such line, should the key be repeated in the section)
///   replaced by `key = value` with the original line ending, and the key's continuation
///   lines are dropped. Keys not found are added, in the order given, right after the
///   section's last `key = value` line (and its continuation lines), before any blank lines
///   or comments that separate it from the next section; right after the header if the
///   section has no key yet. Later sections with the same name are left alone.
/// - Otherwise `[profile]` and `key = value` lines are appended at the end of the file,
///   after a newline if the file does not end with one and a blank line if the file is not
///   empty and does not already end with one.
/// - Added lines end with `\r\n` if the file's first line does, `\n` otherwise.
///
/// Values must not contain newlines and profile names must not contain `]`: `\n` and `\r`
/// are removed from values, keys and the profile name, `]` from the profile name and `=`
/// from keys; profile names and keys are trimmed. An entry whose key is then empty or
/// starts with `#`, `;` or `[` (it would not read back as a key) is skipped. Should a key
/// be given twice, the last value wins. Whitespace around a value does not survive a read.
///
/// Never panics, whatever `text` holds.
pub fn set_profile(text: &str, profile: &str, entries: &[(&str, &str)]) -> String {
    let profile = clean_profile(profile);
    let entries = clean_entries(entries);
    let newline = newline_of(text);
    let lines = parse(text);
    let Some(start) = find_section(&lines, &profile) else {
        return append_section(text, &profile, &entries, newline);
    };
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, line)| matches!(line.kind, Kind::Section(_)))
        .map_or(lines.len(), |(index, _)| index);

    // Which entries the section already has, and where the others go: after its last
    // property or continuation line; without one, after its last other line (an indented
    // line there would otherwise continue the first new value), else right after its header.
    let section = lines.get(start + 1..end).unwrap_or_default();
    let found: Vec<bool> = entries
        .iter()
        .map(|(key, _)| {
            section
                .iter()
                .any(|line| matches!(line.kind, Kind::Property(name, _) if name.eq_ignore_ascii_case(key)))
        })
        .collect();
    let insert_after = section
        .iter()
        .rposition(|line| matches!(line.kind, Kind::Property(..) | Kind::Continuation(_)))
        .or_else(|| section.iter().rposition(|line| line.kind == Kind::Other))
        .map_or(start, |index| start + 1 + index);

    let mut out = String::with_capacity(text.len() + 64 * entries.len());
    // Whether continuation lines are those of a replaced property, to be dropped.
    let mut dropping = false;
    for (index, line) in lines.iter().enumerate() {
        if index > start && index < end {
            match line.kind {
                Kind::Property(key, _) => match entries
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(key))
                {
                    Some((key, value)) => {
                        push_property(&mut out, key, value, line.ending);
                        dropping = true;
                    }
                    None => {
                        out.push_str(line.raw);
                        dropping = false;
                    }
                },
                Kind::Continuation(_) if dropping => {}
                _ => out.push_str(line.raw),
            }
        } else {
            out.push_str(line.raw);
        }
        if index == insert_after {
            push_missing(&mut out, &entries, &found, newline);
        }
    }
    out
}

/// The value of `key` in section `profile`, if any (for tests and `keyhold update` logs).
///
/// Reads the first section named `profile` (names trimmed, `[ default ]` is `default`); if
/// the key is repeated in it, the last occurrence wins. The value is trimmed; a value with
/// continuation lines is returned as its first line and its non-blank continuation lines,
/// each trimmed, joined with `\n`. `profile` and `key` are cleaned as by [`set_profile`].
#[cfg(test)]
pub fn get(text: &str, profile: &str, key: &str) -> Option<String> {
    let profile = clean_profile(profile);
    let key = clean_key(key)?;
    let lines = parse(text);
    let start = find_section(&lines, &profile)?;
    let mut value: Option<String> = None;
    // Whether continuation lines belong to `key`.
    let mut collecting = false;
    for line in lines.iter().skip(start + 1) {
        match line.kind {
            Kind::Section(_) => break,
            Kind::Property(found, first) => {
                collecting = found.eq_ignore_ascii_case(&key);
                if collecting {
                    value = Some(first.to_owned());
                }
            }
            Kind::Continuation(more) if collecting => {
                if let Some(current) = value.as_mut() {
                    current.push('\n');
                    current.push_str(more);
                }
            }
            Kind::Blank | Kind::Comment | Kind::Continuation(_) | Kind::Other => {}
        }
    }
    value
}

/// Splits `text` into lines and says what each means.
fn parse(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    // Whether an indented line here would continue a property's value.
    let mut in_value = false;
    for raw in text.split_inclusive('\n') {
        let (content, ending) = if let Some(content) = raw.strip_suffix("\r\n") {
            (content, "\r\n")
        } else if let Some(content) = raw.strip_suffix('\n') {
            (content, "\n")
        } else {
            (raw, "")
        };
        let kind = classify(content, in_value);
        in_value = match kind {
            Kind::Property(..) | Kind::Continuation(_) => true,
            Kind::Blank | Kind::Comment => in_value,
            Kind::Section(_) | Kind::Other => false,
        };
        lines.push(Line { raw, ending, kind });
    }
    lines
}

/// What a line (without its ending) means; `in_value` says whether it follows a property.
fn classify(content: &str, in_value: bool) -> Kind<'_> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Kind::Blank;
    }
    if trimmed.starts_with(['#', ';']) {
        return Kind::Comment;
    }
    if let Some(name) = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return Kind::Section(name.trim());
    }
    if in_value && content.starts_with(char::is_whitespace) {
        return Kind::Continuation(trimmed);
    }
    match content.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Kind::Property(key.trim(), value.trim()),
        _ => Kind::Other,
    }
}

/// The index of the first header of section `profile`.
fn find_section(lines: &[Line<'_>], profile: &str) -> Option<usize> {
    lines
        .iter()
        .position(|line| matches!(line.kind, Kind::Section(name) if name == profile))
}

/// The line ending of `text`'s first line, `"\n"` if it has none.
fn newline_of(text: &str) -> &'static str {
    match text.split_once('\n') {
        Some((first, _)) if first.ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// The profile name as written in its header: no `\n`, `\r` or `]`, trimmed.
fn clean_profile(profile: &str) -> String {
    profile.replace(['\n', '\r', ']'], "").trim().to_owned()
}

/// The key as written: no `\n`, `\r` or `=`, trimmed; `None` if it would not read back as
/// a key (empty, or starting with `#`, `;` or `[`).
fn clean_key(key: &str) -> Option<String> {
    let key = key.replace(['\n', '\r', '='], "");
    let key = key.trim();
    if key.is_empty() || key.starts_with(['#', ';', '[']) {
        None
    } else {
        Some(key.to_owned())
    }
}

/// The entries as written: cleaned keys (invalid ones skipped), values without `\n` or
/// `\r`, each key once (first position, last value).
fn clean_entries(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut cleaned: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for &(key, value) in entries {
        let Some(key) = clean_key(key) else {
            continue;
        };
        let value = value.replace(['\n', '\r'], "");
        match cleaned.iter_mut().find(|(known, _)| *known == key) {
            Some(slot) => slot.1 = value,
            None => cleaned.push((key, value)),
        }
    }
    cleaned
}

/// Appends `key = value` and `ending` to `out`.
fn push_property(out: &mut String, key: &str, value: &str, ending: &str) {
    out.push_str(key);
    out.push_str(" = ");
    out.push_str(value);
    out.push_str(ending);
}

/// Appends the entries not `found` in the section, after a newline if `out` lacks one.
fn push_missing(out: &mut String, entries: &[(String, String)], found: &[bool], newline: &str) {
    let mut missing = entries
        .iter()
        .zip(found)
        .filter(|(_, was_found)| !**was_found)
        .map(|(entry, _)| entry)
        .peekable();
    if missing.peek().is_some() && !out.is_empty() && !out.ends_with('\n') {
        out.push_str(newline);
    }
    for (key, value) in missing {
        push_property(out, key, value, newline);
    }
}

/// `text` with a new section `[profile]` holding `entries` appended.
fn append_section(
    text: &str,
    profile: &str,
    entries: &[(String, String)],
    newline: &str,
) -> String {
    let mut out = String::with_capacity(text.len() + profile.len() + 64 * (entries.len() + 1));
    out.push_str(text);
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push_str(newline);
        }
        if !ends_with_blank_line(&out) {
            out.push_str(newline);
        }
    }
    out.push('[');
    out.push_str(profile);
    out.push(']');
    out.push_str(newline);
    for (key, value) in entries {
        push_property(&mut out, key, value, newline);
    }
    out
}

/// Whether the last line of `text` (which ends with `\n`) is blank.
fn ends_with_blank_line(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let last = body.rsplit_once('\n').map_or(body, |(_, last)| last);
    last.trim().is_empty()
}

#[cfg(test)]
mod tests;
