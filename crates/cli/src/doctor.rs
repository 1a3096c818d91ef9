//! `keyhold doctor`: each link from the device to STS, in order, with pass/fail and the fix.
//!
//! The device's links (module or TCTI, token or TPM, login or authorization, the key, one
//! HMAC) come from the backend; then the clock, STS's reachability, and GetCallerIdentity.
//! The first broken link is reported with its fix; links after it are skipped, since they
//! cannot be checked.

use std::io::Write;
use std::time::Duration;

use crate::args::DoctorArgs;
use crate::backend::{self, OpenedKey};
use crate::error::CliError;
use crate::report::{Link, Status};
use crate::sts;

pub(crate) const CLOCK: &str = "clock sane";
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
    if args.roles_anywhere.certificate.is_some() {
        let links = crate::doctor_roles_anywhere::links(args, runtime)?;
        let subject = args
            .roles_anywhere
            .certificate
            .as_deref()
            .unwrap_or_default();
        return report(args, subject, links);
    }
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
        writeln!(stdout, "keyhold doctor: {}", args.key.key()).map_err(CliError::Output)?;
    }
    let (links, key) = backend::doctor(&args.key);
    for link in links {
        show(link, &mut stdout)?;
    }
    for link in runtime.block_on(network_links(&endpoint, key)) {
        show(link, &mut stdout)?;
    }
    conclude(args.json, &args.key.key().to_string(), &all, &mut stdout)
}

/// Prints links checked all at once (or, with `--json`, the JSON document), and fails if
/// any failed.
fn report(args: &DoctorArgs, subject: &str, links: Vec<Link>) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    if !args.json {
        writeln!(stdout, "keyhold doctor: {subject}").map_err(CliError::Output)?;
        for link in &links {
            writeln!(stdout, "{link}").map_err(CliError::Output)?;
        }
    }
    conclude(args.json, subject, &links, &mut stdout)
}

/// The end of every report: with `--json` the whole document (the links were not printed
/// one by one), and a failure if any link failed.
fn conclude(
    json: bool,
    subject: &str,
    links: &[Link],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let failed = links.iter().filter(|l| l.status() == Status::Fail).count();
    if json {
        let report = serde_json::json!({ "key": subject, "ok": failed == 0, "checks": links });
        writeln!(out, "{report:#}").map_err(CliError::Output)?;
    }
    match failed {
        0 => Ok(()),
        _ => Err(CliError::DoctorFailed {
            failed,
            total: links.len(),
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
pub(crate) fn clock_link(now: time::OffsetDateTime, server: Option<time::OffsetDateTime>) -> Link {
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
    use crate::report::chain;
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
