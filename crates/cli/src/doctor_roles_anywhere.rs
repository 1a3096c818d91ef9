//! `keyhold doctor --certificate ...`: each link from the private key to CreateSession, in
//! order: the certificate and key open, the certificate is in date, the key is the
//! certificate's, the chain names its issuers in order, the clock, the endpoint, and one
//! CreateSession. The first broken link is reported with its fix; the rest are skipped.

use std::time::Duration;

use crate::args::DoctorArgs;
use crate::commands::roles_anywhere;
use crate::error::CliError;
use crate::report::Link;

const OPEN: &str = "certificate and private key open";
const VALID: &str = "certificate valid now";
const PAIR: &str = "private key is the certificate's";
const CHAIN: &str = "chain names its issuers in order";
const REACHABLE: &str = "Roles Anywhere reachable";
const SESSION: &str = "CreateSession signed by the private key";

/// A problem found by a check, shown as its link's detail.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Problem(String);

/// The links, checked in order.
pub fn links(args: &DoctorArgs, runtime: &tokio::runtime::Runtime) -> Result<Vec<Link>, CliError> {
    // Flag mistakes are command-line errors, found before any device.
    let request = roles_anywhere::request(&args.roles_anywhere, args.role_arn.as_deref())?;
    let mut links = Vec::new();
    let names = [
        OPEN,
        VALID,
        PAIR,
        CHAIN,
        super::doctor::CLOCK,
        REACHABLE,
        SESSION,
    ];
    let skip_rest = |links: &mut Vec<Link>| {
        let done = links.len();
        links.extend(names[done..].iter().map(|name| Link::skipped(name)));
    };
    let (chain, key) = match roles_anywhere::load(&args.roles_anywhere, &args.key) {
        Ok(loaded) => loaded,
        Err(e) => {
            links.push(Link::fail(
                OPEN,
                &e,
                "check --certificate and --private-key (for a token: its module, PIN and \
                 object; for a TPM: --tcti and the key file)",
            ));
            skip_rest(&mut links);
            return Ok(links);
        }
    };
    let info = chain.info();
    links.push(Link::pass(
        OPEN,
        &format!(
            "{} (serial {}), {} key",
            info.subject, info.serial_number, info.public_key
        ),
    ));
    let now = time::OffsetDateTime::now_utc();
    if let Err(e) = chain.check_validity(now) {
        links.push(Link::fail(
            VALID,
            &e,
            "renew the certificate with your CA (keyhold cert csr)",
        ));
        skip_rest(&mut links);
        return Ok(links);
    }
    links.push(Link::pass(VALID, &format!("until {}", info.not_after)));
    if let Err(e) = chain.check_key(key.as_ref()) {
        links.push(Link::fail(
            PAIR,
            &e,
            "give the private key the certificate was issued for (keyhold cert show names it)",
        ));
        skip_rest(&mut links);
        return Ok(links);
    }
    links.push(Link::pass(
        PAIR,
        "a signature by the key verifies with the certificate",
    ));
    match chain.issuers_in_order() {
        Ok(top) => links.push(Link::pass(
            CHAIN,
            &format!(
                "{} intermediate(s); the trust anchor must hold {top}",
                chain.intermediates_der().len()
            ),
        )),
        Err(why) => {
            links.push(Link::fail(
                CHAIN,
                &Problem(why),
                "give the intermediates (--intermediates FILE), the one that issued the leaf first",
            ));
            skip_rest(&mut links);
            return Ok(links);
        }
    }
    let client = roles_anywhere::client(&request, &chain, key, &args.sts, &args.key)?;
    let endpoint = client.endpoint();
    let answer = runtime.block_on(async {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?
            .get(&endpoint)
            .send()
            .await
    });
    let server_time = answer.as_ref().ok().and_then(|response| {
        let date = response.headers().get(http::header::DATE)?.to_str().ok()?;
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822).ok()
    });
    links.push(super::doctor::clock_link(
        time::OffsetDateTime::now_utc(),
        server_time,
    ));
    match answer {
        Ok(response) => links.push(Link::pass(
            REACHABLE,
            &format!("{endpoint} answered HTTP {}", response.status().as_u16()),
        )),
        Err(e) => {
            links.push(Link::fail(
                REACHABLE,
                &e,
                "check --endpoint-url / AWS_ENDPOINT_URL_ROLESANYWHERE, the trust anchor's \
                 region, the network and any proxy",
            ));
            links.push(Link::skipped(SESSION));
            return Ok(links);
        }
    }
    links.push(match runtime.block_on(client.create_session(&request)) {
        Ok(credentials) => Link::pass(
            SESSION,
            &format!(
                "{} until {}",
                credentials.access_key_id, credentials.expiration
            ),
        ),
        Err(e) => Link::fail(
            SESSION,
            &CliError::RolesAnywhere(e),
            "see the service's reason: the trust anchor must hold the CA, the profile must \
             list the role, and the role must trust rolesanywhere.amazonaws.com",
        ),
    });
    Ok(links)
}
