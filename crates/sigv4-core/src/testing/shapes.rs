//! Ten request shapes of real AWS traffic, each with how it is signed: the benches time them
//! against aws-sigv4 and the differential test checks them byte for byte.

use super::ArbRequest;
use crate::{CachePolicy, Signer, SigningParams, SigningSettings, SoftwareRootKey};

/// A request shape the benches time and the differential test checks against aws-sigv4,
/// with how it is signed.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The bench group's name (`shape-NAME`).
    pub name: &'static str,
    /// The signing name of the service.
    pub service: &'static str,
    /// The request.
    pub request: ArbRequest,
    /// S3's settings (single encoding, no normalization, `x-amz-content-sha256`).
    pub s3: bool,
    /// Signed with temporary credentials (a session token).
    pub session_token: bool,
    /// `UNSIGNED-PAYLOAD` instead of the body's hash.
    pub unsigned_payload: bool,
    /// A presigned URL valid this many seconds, instead of an `Authorization` header.
    pub presign_secs: Option<u64>,
}

/// The session token the shapes that need one sign with (AWS's documentation example).
pub const SHAPE_SESSION_TOKEN: &str =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTw+/=";

/// At least eight request shapes of real AWS traffic, from a bare GET to a presigned S3 URL
/// with its own query, so that speed is measured (and output checked) on each.
pub fn shapes() -> Vec<Shape> {
    let request = |method: &str, uri: String, headers: &[(&str, &str)], body: Vec<u8>| ArbRequest {
        method: method.to_owned(),
        uri,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body,
    };
    let shape = |name, service, request| Shape {
        name,
        service,
        request,
        s3: false,
        session_token: false,
        unsigned_payload: false,
        presign_secs: None,
    };
    // EC2 DescribeInstances with filters: twenty parameters, in no particular order.
    let many = [
        "Version=2016-11-15",
        "Filter.3.Name=tag%3AOwner",
        "MaxResults=100",
        "Filter.1.Value.2=t3.large",
        "Action=DescribeInstances",
        "Filter.2.Name=availability-zone",
        "Filter.1.Value.1=t3.micro",
        "Filter.3.Value.1=platform-team",
        "DryRun=false",
        "Filter.2.Value.1=us-east-1a",
        "Filter.1.Name=instance-type",
        "InstanceId.3=i-0ccc",
        "Filter.4.Name=instance-state-name",
        "InstanceId.1=i-0aaa",
        "Filter.4.Value.1=running",
        "NextToken=eyJ2IjoiMiIsImMiOiJ4In0%3D",
        "InstanceId.2=i-0bbb",
        "Filter.2.Value.2=us-east-1b",
        "Filter.4.Value.2=stopped",
        "IncludeAllInstances=true",
    ];
    let meta: Vec<(String, String)> = (1..=12)
        .map(|i| {
            (
                format!("x-amz-meta-field{i:02}"),
                format!("value {i} of twelve"),
            )
        })
        .collect();
    let mut put_4k = request(
        "PUT",
        "https://bucket.s3.us-east-1.amazonaws.com/data/part-0001.bin".into(),
        &[("content-type", "application/octet-stream")],
        (0..4096u32).map(|i| (i * 7 % 256) as u8).collect(),
    );
    put_4k.headers.extend(meta);
    vec![
        shape(
            "get-vanilla",
            "service",
            request("GET", "https://example.amazonaws.com/".into(), &[], Vec::new()),
        ),
        shape(
            "sts-form-post",
            "sts",
            request(
                "POST",
                "https://sts.us-east-1.amazonaws.com/".into(),
                &[
                    ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
                    ("user-agent", "keyhold-bench"),
                ],
                b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy&RoleSessionName=ci-run-4711&DurationSeconds=3600&Version=2011-06-15".to_vec(),
            ),
        ),
        shape(
            "many-query-params",
            "ec2",
            request(
                "GET",
                format!("https://ec2.us-east-1.amazonaws.com/?{}", many.join("&")),
                &[],
                Vec::new(),
            ),
        ),
        Shape {
            s3: true,
            unsigned_payload: true,
            presign_secs: Some(900),
            ..shape(
                "presigned-with-query",
                "s3",
                request(
                    "GET",
                    "https://bucket.s3.us-east-1.amazonaws.com/reports/2026/q4.pdf?response-content-disposition=attachment%3B%20filename%3Dq4.pdf&versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY&x-id=GetObject".into(),
                    &[],
                    Vec::new(),
                ),
            )
        },
        Shape {
            s3: true,
            ..shape("s3-put-4k-meta", "s3", put_4k)
        },
        shape(
            "json-x-amz-target",
            "dynamodb",
            request(
                "POST",
                "https://dynamodb.us-east-1.amazonaws.com/".into(),
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", "DynamoDB_20120810.GetItem"),
                ],
                br#"{"TableName":"orders","Key":{"pk":{"S":"customer#4711"},"sk":{"S":"order#2026-12-04"}},"ConsistentRead":true}"#.to_vec(),
            ),
        ),
        Shape {
            s3: true,
            ..shape(
                "s3-long-encoded-key",
                "s3",
                request(
                    "GET",
                    "https://bucket.s3.us-east-1.amazonaws.com/archive/2026/12/Quarterly%20Report%20%28final%29%20-%20caf%C3%A9%20%26%20bar/r%C3%A9sum%C3%A9%20v2%2B3%3Dfinal%20copy%20%231.pdf".into(),
                    &[],
                    Vec::new(),
                ),
            )
        },
        shape(
            "repeated-header-names",
            "service",
            request(
                "GET",
                "https://example.amazonaws.com/items".into(),
                &[
                    ("accept", "application/json"),
                    ("x-custom", "first  value"),
                    ("accept", "text/plain"),
                    ("x-custom", "second"),
                    ("x-custom", " third "),
                ],
                Vec::new(),
            ),
        ),
        Shape {
            session_token: true,
            ..shape(
                "session-token",
                "sts",
                request(
                    "POST",
                    "https://sts.us-east-1.amazonaws.com/".into(),
                    &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                    b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
                ),
            )
        },
        Shape {
            s3: true,
            unsigned_payload: true,
            ..shape(
                "unsigned-payload",
                "s3",
                request(
                    "PUT",
                    "https://bucket.s3.us-east-1.amazonaws.com/uploads/stream.log".into(),
                    &[("content-type", "text/plain")],
                    vec![b'x'; 1024],
                ),
            )
        },
    ]
}

impl Shape {
    /// The keyhold signer for this shape, with the documentation's example credentials.
    pub fn signer(&self, cache: CachePolicy) -> Signer {
        let settings = match self.s3 {
            true => SigningSettings::s3(),
            false => SigningSettings::default(),
        };
        let signer = Signer::new(
            "AKIDEXAMPLE",
            SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        )
        .with_settings(settings)
        .with_cache_policy(cache);
        match self.session_token {
            true => signer.with_session_token(SHAPE_SESSION_TOKEN),
            false => signer,
        }
    }

    /// Signs `request` (this shape's, or a copy) with `signer` at `time`, in place.
    pub fn sign(
        &self,
        signer: &Signer,
        request: &mut http::Request<Vec<u8>>,
        time: time::OffsetDateTime,
    ) -> crate::SigningOutput {
        let mut params = SigningParams::new("us-east-1", self.service).at(time);
        if self.unsigned_payload {
            params = params.with_payload(crate::Payload::Unsigned);
        }
        let signed = match self.presign_secs {
            Some(secs) => {
                signer.presign_request(request, &params, std::time::Duration::from_secs(secs))
            }
            None => signer.sign_request(request, &params),
        };
        signed.unwrap_or_else(|e| panic!("shape {}: {e}", self.name))
    }

    /// The same signature from the request's parts (`Signer::sign_signable`), without
    /// setting anything on an `http::Request`: what signing costs apart from the `http`
    /// side.
    pub fn sign_parts(
        &self,
        signer: &Signer,
        parts: &http::request::Parts,
        body: &[u8],
        time: time::OffsetDateTime,
    ) -> crate::SigningOutput {
        let params = SigningParams::new("us-east-1", self.service).at(time);
        let payload = match self.unsigned_payload {
            true => crate::Payload::Unsigned,
            false => crate::Payload::Bytes(body),
        };
        let location = match self.presign_secs {
            Some(secs) => crate::SignatureLocation::QueryParams {
                expires_in: std::time::Duration::from_secs(secs),
            },
            None => crate::SignatureLocation::Headers,
        };
        let request = crate::SignableRequest::from_http(parts);
        signer
            .sign_signable(&request, payload, &params, location)
            .unwrap_or_else(|e| panic!("shape {}: {e}", self.name))
    }
}
