//! `keyhold doctor`: each link from the device to STS, in order, with pass/fail and the fix.
//!
//! The device's links (module or TCTI, token or TPM, login or authorization, the key, one
//! HMAC) come from the backend; then the clock, STS's reachability, and GetCallerIdentity.
//! The first broken link is reported with its fix; links after it are skipped, since they
//! cannot be checked.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::args::DoctorArgs;
use crate::backend::{self, OpenedKey};
use crate::error::{CliError, one_line};
use crate::sts;

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

const CLOCK: &str = "clock sane";
const CLOCK_FIX: &str =
    "set the clock right (timedatectl set-ntp true); SigV4 allows 5 minutes of skew";
const REACHABLE: &str = "STS reachable";
const REACHABLE_FIX: &str =
    "check --endpoint-url / AWS_ENDPOINT_URL_STS, --region, the network and any proxy";
const IDENTITY: &str = "GetCallerIdentity signed by the device";

/// The clock differs from the server's by more than SigV4 allows.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClockProblem(String);

/// Runs every check, prints each as it is decided (or, with `--json`, all at the end), and
/// fails if any failed.
pub fn run(args: &DoctorArgs, runtime: &tokio::runtime::Runtime) -> Result<(), CliError> {
    // A malformed or refused endpoint is a command-line error, found before the device.
    let endpoint = sts::endpoint(&args.sts, &args.key)?;
    let mut stdout = std::io::stdout().lock();
    let mut all = Vec::new();
    let mut show = |link: Link, out: &mut dyn Write| -> Result<(), CliError> {
        if !args.json {
            writeln!(out, "{link}").map_err(CliError::Output)?;
        }
        all.push(link);
        Ok(())
    };
    if !args.json {
        writeln!(stdout, "keyhold doctor: {}", args.key.key).map_err(CliError::Output)?;
    }
    let (links, key) = backend::doctor(&args.key);
    for link in links {
        show(link, &mut stdout)?;
    }
    for link in runtime.block_on(network_links(&endpoint, key)) {
        show(link, &mut stdout)?;
    }
    let failed = all.iter().filter(|l| l.status() == Status::Fail).count();
    if args.json {
        let report = serde_json::json!({
            "key": args.key.key.to_string(),
            "ok": failed == 0,
            "checks": all,
        });
        writeln!(stdout, "{report:#}").map_err(CliError::Output)?;
    }
    match failed {
        0 => Ok(()),
        _ => Err(CliError::DoctorFailed {
            failed,
            total: all.len(),
        }),
    }
}

async fn network_links(endpoint: &sts::Endpoint, key: Option<OpenedKey>) -> Vec<Link> {
    let mut links = Vec::new();
    let url = &endpoint.url;
    // Reachability first, since the clock check reads its Date.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let answer = match http {
        Ok(client) => client.get(url).send().await,
        Err(e) => Err(e),
    };
    let now = time::OffsetDateTime::now_utc();
    let reachable = match &answer {
        Ok(response) => {
            let server = response
                .headers()
                .get(http::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                        .ok()
                });
            links.push(clock_link(now, server));
            // Any HTTP answer means the endpoint is up (moto, like some proxies, answers an
            // unsigned request with HTTP 500); whether it is STS is the next check's verdict.
            let status = response.status().as_u16();
            let detail = format!("{url} (from {}) answered HTTP {status}", endpoint.from);
            links.push(Link::pass(REACHABLE, &detail));
            true
        }
        Err(e) => {
            links.push(clock_link(now, None));
            links.push(Link::fail(REACHABLE, e, REACHABLE_FIX));
            false
        }
    };
    let Some(key) = key.filter(|_| reachable) else {
        links.push(Link::skipped(IDENTITY));
        return links;
    };
    let identity = match sts::client(&key, endpoint) {
        Ok(client) => client
            .get_caller_identity()
            .await
            .map_err(|e| (e.kind().cloned(), CliError::Sts(e))),
        Err(e) => Err((None, e)),
    };
    links.push(match identity {
        Ok(identity) => Link::pass(IDENTITY, &identity.arn),
        Err((kind, e)) => {
            let fix = match kind {
                Some(sts_client::ServiceErrorKind::SignatureDoesNotMatch) => {
                    "the device holds a different secret than AWS has for this access key id: import the right secret with `keyhold import --replace`"
                }
                Some(sts_client::ServiceErrorKind::InvalidClientTokenId) => {
                    "check the access key id (--access-key-id) and that the key is active in IAM"
                }
                _ => "see the message from STS",
            };
            Link::fail(IDENTITY, &e, fix)
        }
    });
    links
}

/// The clock against the server's `Date`, or (unreachable) against a plausible floor.
fn clock_link(now: time::OffsetDateTime, server: Option<time::OffsetDateTime>) -> Link {
    let floor = time::macros::datetime!(2025-01-01 0:00 UTC);
    match server {
        Some(server) => {
            let skew = (now - server).whole_seconds();
            let detail = format!("{} UTC, {skew:+} s from STS's clock", now.date());
            if skew.abs() > 300 {
                Link::fail(CLOCK, &ClockProblem(detail), CLOCK_FIX)
            } else {
                Link::pass(CLOCK, &detail)
            }
        }
        None if now < floor => Link::fail(
            CLOCK,
            &ClockProblem(format!(
                "the local clock says {now}, before this program was built"
            )),
            CLOCK_FIX,
        ),
        None => Link::pass(CLOCK, &format!("{now} (not compared: STS gave no Date)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn skew_beyond_five_minutes_fails() {
        let now = datetime!(2026-03-01 12:00 UTC);
        let ok = clock_link(now, Some(datetime!(2026-03-01 12:04 UTC)));
        assert_eq!(ok.status(), Status::Pass);
        assert!(ok.to_string().contains("-240 s"), "{ok}");
        let off = clock_link(now, Some(datetime!(2026-03-01 12:06 UTC)));
        assert_eq!(off.status(), Status::Fail);
        assert!(
            off.to_string().contains("fix: set the clock right"),
            "{off}"
        );
        let ancient = clock_link(datetime!(2001-01-01 0:00 UTC), None);
        assert_eq!(ancient.status(), Status::Fail);
    }

    #[test]
    fn a_chain_passes_until_the_failure_and_skips_after() {
        let error = std::io::Error::other("no such token");
        let links = chain(
            &[("a", "fix a"), ("b", "fix b"), ("c", "fix c")],
            &["found".into()],
            Some((1, &error)),
        );
        let shown: Vec<String> = links.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "[ ok ] a: found");
        assert_eq!(shown[1], "[FAIL] b: no such token\n       fix: fix b");
        assert_eq!(shown[2], "[skip] c");
    }
}
