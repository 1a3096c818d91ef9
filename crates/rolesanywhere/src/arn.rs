//! The three ARNs of a `CreateSession`, checked before anything is signed: a trust anchor
//! and a profile (`arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID`,
//! `...:profile/ID`) and an IAM role (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`). The
//! trust anchor's region is where the session is asked for.

use std::fmt;
use std::str::FromStr;

/// Why a string is not the ARN a flag wants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {what} ({expected}): {why}")]
pub struct ArnError {
    value: String,
    what: &'static str,
    expected: &'static str,
    why: &'static str,
}

/// The six `:`-separated fields of an ARN, the last one holding any further `:`.
struct Fields<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn fields(arn: &str) -> Option<Fields<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    Some(Fields {
        partition: parts.next()?,
        service: parts.next()?,
        region: parts.next()?,
        account: parts.next()?,
        resource: parts.next()?,
    })
}

fn is_partition(p: &str) -> bool {
    matches!(
        p,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f"
    )
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-')
}

fn is_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

/// A Roles Anywhere resource ARN of the given type.
fn rolesanywhere_arn(
    value: &str,
    what: &'static str,
    kind: &'static str,
    expected: &'static str,
) -> Result<(String, String), ArnError> {
    let error = |why| ArnError {
        value: value.to_owned(),
        what,
        expected,
        why,
    };
    let f = fields(value).ok_or_else(|| error("it does not have the six fields of an ARN"))?;
    if !is_partition(f.partition) {
        return Err(error("the partition is not an AWS partition"));
    }
    if f.service != "rolesanywhere" {
        return Err(error("the service is not rolesanywhere"));
    }
    if !is_region(f.region) {
        return Err(error("the region is not a region name"));
    }
    if !is_account(f.account) {
        return Err(error("the account is not 12 digits"));
    }
    let id = f
        .resource
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| error("the resource is not of this type"))?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(error("the resource id is not a UUID"));
    }
    Ok((f.partition.to_owned(), f.region.to_owned()))
}

macro_rules! arn_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            arn: String,
            partition: String,
            region: String,
        }

        impl $name {
            /// The ARN as given.
            pub fn as_str(&self) -> &str {
                &self.arn
            }

            /// Its partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
            pub fn partition(&self) -> &str {
                &self.partition
            }

            /// Its region.
            pub fn region(&self) -> &str {
                &self.region
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.arn)
            }
        }
    };
}

arn_type!(
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID`: the CA the certificate
    /// chains to. Its region is where `CreateSession` goes.
    TrustAnchorArn
);
arn_type!(
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/ID`: which roles a session may
    /// take, and their session policies.
    ProfileArn
);

impl FromStr for TrustAnchorArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        const EXPECTED: &str = "arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID";
        let (partition, region) =
            rolesanywhere_arn(s, "a trust anchor ARN", "trust-anchor", EXPECTED)?;
        Ok(Self {
            arn: s.to_owned(),
            partition,
            region,
        })
    }
}

impl FromStr for ProfileArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        const EXPECTED: &str = "arn:aws:rolesanywhere:REGION:ACCOUNT:profile/ID";
        let (partition, region) = rolesanywhere_arn(s, "a profile ARN", "profile", EXPECTED)?;
        Ok(Self {
            arn: s.to_owned(),
            partition,
            region,
        })
    }
}

/// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`: the role the credentials are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn(String);

impl RoleArn {
    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RoleArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let error = |why| ArnError {
            value: s.to_owned(),
            what: "a role ARN",
            expected: "arn:aws:iam::ACCOUNT:role/NAME",
            why,
        };
        let f = fields(s).ok_or_else(|| error("it does not have the six fields of an ARN"))?;
        if !is_partition(f.partition) {
            return Err(error("the partition is not an AWS partition"));
        }
        if f.service != "iam" || !f.region.is_empty() {
            return Err(error("it is not an IAM ARN (service iam, no region)"));
        }
        if !is_account(f.account) {
            return Err(error("the account is not 12 digits"));
        }
        let name = f
            .resource
            .strip_prefix("role/")
            .ok_or_else(|| error("the resource is not a role"))?;
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b);
        if name.is_empty() || name.ends_with('/') || !name.bytes().all(allowed) {
            return Err(error(
                "the role name is empty or has characters IAM refuses",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_anchor_and_profile_arns_give_partition_and_region() {
        let anchor: TrustAnchorArn =
            "arn:aws-cn:rolesanywhere:cn-north-1:111122223333:trust-anchor/0a1b-2c3d"
                .parse()
                .unwrap();
        assert_eq!(
            (anchor.partition(), anchor.region()),
            ("aws-cn", "cn-north-1")
        );
        let profile: ProfileArn = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/abc"
            .parse()
            .unwrap();
        assert_eq!(profile.region(), "eu-west-1");
    }

    #[test]
    fn wrong_arns_say_what_is_wrong() {
        for (value, why) in [
            ("trust-anchor/abc", "six fields"),
            (
                "arn:aws:iam::111122223333:role/x",
                "service is not rolesanywhere",
            ),
            (
                "arn:aws:rolesanywhere:US-EAST-1:111122223333:trust-anchor/a",
                "region",
            ),
            (
                "arn:aws:rolesanywhere:us-east-1:1111:trust-anchor/a",
                "12 digits",
            ),
            (
                "arn:aws:rolesanywhere:us-east-1:111122223333:profile/a",
                "not of this type",
            ),
            (
                "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/",
                "UUID",
            ),
            (
                "arn:evil:rolesanywhere:us-east-1:111122223333:trust-anchor/a",
                "partition",
            ),
        ] {
            let err = value.parse::<TrustAnchorArn>().unwrap_err().to_string();
            assert!(err.contains(why), "{value}: {err}");
            assert!(err.contains("trust-anchor/ID"), "{err}");
        }
    }

    #[test]
    fn role_arns() {
        for good in [
            "arn:aws:iam::111122223333:role/deploy",
            "arn:aws-us-gov:iam::111122223333:role/path/to/ci+runner@x",
        ] {
            assert_eq!(good.parse::<RoleArn>().unwrap().as_str(), good);
        }
        for bad in [
            "arn:aws:iam:us-east-1:111122223333:role/x",
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
            "arn:aws:sts::111122223333:role/x",
        ] {
            assert!(bad.parse::<RoleArn>().is_err(), "{bad}");
        }
    }
}
