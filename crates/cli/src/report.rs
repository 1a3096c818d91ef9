//! The report `keyhold doctor` prints: links checked in order, each passed, failed (with
//! its fix) or skipped. A leaf module: the backends build their links with it, and the
//! doctor command prints them; neither reads the other.

use std::fmt;

use crate::error::one_line;

/// The state of one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It works.
    Pass,
    /// It is broken.
    Fail,
    /// It was not checked because an earlier link is broken.
    Skipped,
}

/// One checked link.
#[derive(Debug, serde::Serialize)]
pub struct Link {
    name: String,
    status: Status,
    detail: String,
    fix: Option<String>,
}

impl Link {
    /// A link that works; `detail` says what was found.
    pub fn pass(name: &str, detail: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Pass,
            detail: detail.to_owned(),
            fix: None,
        }
    }

    /// A broken link: what went wrong, and how to fix it.
    pub fn fail(name: &str, error: &(dyn std::error::Error + 'static), fix: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Fail,
            detail: one_line(error),
            fix: Some(fix.to_owned()),
        }
    }

    /// A link not checked.
    pub fn skipped(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Skipped,
            detail: String::new(),
            fix: None,
        }
    }

    /// The link's state.
    pub fn status(&self) -> Status {
        self.status
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.status {
            Status::Pass => "[ ok ]",
            Status::Fail => "[FAIL]",
            Status::Skipped => "[skip]",
        };
        write!(f, "{mark} {}", self.name)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

/// Links of a chain: those before `failed` passed (with their details), `failed` broke with
/// `error`, those after were skipped. `None` means every link passed.
pub fn chain(
    links: &[(&str, &str)],
    details: &[String],
    failed: Option<(usize, &(dyn std::error::Error + 'static))>,
) -> Vec<Link> {
    links
        .iter()
        .enumerate()
        .map(|(i, (name, fix))| {
            let detail = details.get(i).map_or("", String::as_str);
            match failed {
                Some((at, _)) if i < at => Link::pass(name, detail),
                Some((at, error)) if i == at => Link::fail(name, error, fix),
                Some(_) => Link::skipped(name),
                None => Link::pass(name, detail),
            }
        })
        .collect()
}
