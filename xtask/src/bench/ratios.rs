//! The ratios `cargo xtask bench` reports, suite by suite: which two criterion rows, and
//! the target (or "reported").

use std::borrow::Cow;

/// A ratio the README quotes: `numerator / denominator` of mean times, and the target. When
/// the rows ran in rounds (criterion ids `group/row/1`, `group/row/2`, ...), the ratio is
/// taken per round and the median reported (`per_round` in bench.rs).
pub struct Ratio {
    /// What is compared, as the table says it.
    pub what: Cow<'static, str>,
    /// Mean time of the baseline (criterion id `group/name`).
    pub baseline: Cow<'static, str>,
    /// Mean time of keyhold.
    pub ours: Cow<'static, str>,
    /// What `baseline / ours` must be.
    pub target: Target,
}

/// The promise a ratio is held to.
pub enum Target {
    /// At least this.
    AtLeast(f64),
    /// At most this.
    AtMost(f64),
    /// Reported, not judged (a cost worth knowing, e.g. of an encrypted session).
    Report,
}

pub const SIGV4_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed("warm cache GET-vanilla, x aws-sigv4 throughput"),
        baseline: Cow::Borrowed("get-vanilla/aws-sigv4"),
        ours: Cow::Borrowed("get-vanilla/keyhold-warm"),
        target: Target::AtLeast(6.0),
    },
    Ratio {
        what: Cow::Borrowed("cache off GET-vanilla, x aws-sigv4 throughput"),
        baseline: Cow::Borrowed("get-vanilla/aws-sigv4"),
        ours: Cow::Borrowed("get-vanilla/keyhold-cache-off"),
        target: Target::AtLeast(3.5),
    },
    Ratio {
        what: Cow::Borrowed("warm cache time / limit (crypto floor) time"),
        baseline: Cow::Borrowed("get-vanilla/keyhold-warm"),
        ours: Cow::Borrowed("get-vanilla/limit"),
        target: Target::AtMost(2.0),
    },
    Ratio {
        what: Cow::Borrowed("1 MiB PUT, x plain sha2 throughput"),
        baseline: Cow::Borrowed("put-1mib/sha256-only"),
        ours: Cow::Borrowed("put-1mib/keyhold-warm"),
        target: Target::AtLeast(0.9),
    },
];

pub const PKCS11_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed("PKCS#11 cache off, x bare C_Sign loop throughput"),
        baseline: Cow::Borrowed("pkcs11-cache-off/bare-c-sign"),
        ours: Cow::Borrowed("pkcs11-cache-off/keyhold"),
        target: Target::AtLeast(0.9),
    },
    Ratio {
        what: Cow::Borrowed(
            "PKCS#11 cache off, x the same signer on a minimal RootKey (one locked session)",
        ),
        baseline: Cow::Borrowed("pkcs11-cache-off/minimal-root-key"),
        ours: Cow::Borrowed("pkcs11-cache-off/keyhold"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed(
            "PKCS#11 cache off on the minimal RootKey, x bare C_Sign loop throughput",
        ),
        baseline: Cow::Borrowed("pkcs11-cache-off/bare-c-sign"),
        ours: Cow::Borrowed("pkcs11-cache-off/minimal-root-key"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed(
            "PKCS#11 cache off, the signature without setting headers on an http::Request, x bare C_Sign loop",
        ),
        baseline: Cow::Borrowed("pkcs11-cache-off/bare-c-sign"),
        ours: Cow::Borrowed("pkcs11-cache-off/no-http-request"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed("PKCS#11 kDate alone, x bare C_Sign loop throughput"),
        baseline: Cow::Borrowed("pkcs11-date-key/bare-c-sign"),
        ours: Cow::Borrowed("pkcs11-date-key/keyhold"),
        target: Target::AtLeast(0.9),
    },
    Ratio {
        what: Cow::Borrowed("PKCS#11 cache on, x software signer throughput"),
        baseline: Cow::Borrowed("pkcs11-cache-on/software"),
        ours: Cow::Borrowed("pkcs11-cache-on/keyhold"),
        target: Target::AtLeast(0.9),
    },
];

pub const TPM_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed("TPM cache off, x bare tss-esapi HMAC loop throughput"),
        baseline: Cow::Borrowed("tpm-cache-off/bare-tss-esapi-hmac"),
        ours: Cow::Borrowed("tpm-cache-off/keyhold-cleartext"),
        target: Target::AtLeast(0.9),
    },
    Ratio {
        what: Cow::Borrowed("TPM cache off, salted encrypted session: time x cleartext session's"),
        baseline: Cow::Borrowed("tpm-salted/keyhold-salted"),
        ours: Cow::Borrowed("tpm-salted/keyhold-cleartext"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed("TPM cache on, x software signer throughput"),
        baseline: Cow::Borrowed("tpm-cache-on/software-signer"),
        ours: Cow::Borrowed("tpm-cache-on/keyhold-tpm"),
        target: Target::AtLeast(0.9),
    },
];

/// The ratio of a Roles Anywhere signing group (issue #18): CreateSession signed by keyhold
/// against the key's bare sign call, target 0.9x.
pub const fn roles_anywhere(
    what: &'static str,
    baseline: &'static str,
    ours: &'static str,
) -> Ratio {
    Ratio {
        what: Cow::Borrowed(what),
        baseline: Cow::Borrowed(baseline),
        ours: Cow::Borrowed(ours),
        target: Target::AtLeast(0.9),
    }
}

pub const ROLES_ANYWHERE_FILE_RATIOS: &[Ratio] = &[
    roles_anywhere(
        "Roles Anywhere CreateSession, P-256 file key, x bare ECDSA sign throughput",
        "ra-file-p256/bare-sign",
        "ra-file-p256/keyhold",
    ),
    roles_anywhere(
        "Roles Anywhere CreateSession, RSA-2048 file key, x bare RSA sign throughput",
        "ra-file-rsa2048/bare-sign",
        "ra-file-rsa2048/keyhold",
    ),
];

pub const ROLES_ANYWHERE_PKCS11_RATIOS: &[Ratio] = &[
    roles_anywhere(
        "Roles Anywhere CreateSession, P-256 in SoftHSM, x bare C_Sign loop throughput",
        "ra-pkcs11-p256/bare-c-sign",
        "ra-pkcs11-p256/keyhold",
    ),
    roles_anywhere(
        "Roles Anywhere CreateSession, RSA-2048 in SoftHSM, x bare C_Sign loop throughput",
        "ra-pkcs11-rsa2048/bare-c-sign",
        "ra-pkcs11-rsa2048/keyhold",
    ),
];

pub const ROLES_ANYWHERE_TPM_RATIOS: &[Ratio] = &[
    roles_anywhere(
        "Roles Anywhere CreateSession, P-256 in swtpm, x bare TPM2_Sign loop throughput",
        "ra-tpm-p256/bare-tss-esapi-sign",
        "ra-tpm-p256/keyhold",
    ),
    roles_anywhere(
        "Roles Anywhere CreateSession, RSA-2048 in swtpm, x bare TPM2_Sign loop throughput",
        "ra-tpm-rsa2048/bare-tss-esapi-sign",
        "ra-tpm-rsa2048/keyhold",
    ),
];

/// A whole credential-process run against Python's iam-rolesanywhere-session (reported).
pub const fn python_against(what: &'static str, ours: &'static str) -> Ratio {
    Ratio {
        what: Cow::Borrowed(what),
        baseline: Cow::Borrowed("ra-process/python-iam-rolesanywhere-session"),
        ours: Cow::Borrowed(ours),
        target: Target::Report,
    }
}

pub const ROLES_ANYWHERE_PROCESS_RATIOS: &[Ratio] = &[
    python_against(
        "keyhold credential-process run, file key, x Python iam-rolesanywhere-session",
        "ra-process/keyhold-file",
    ),
    python_against(
        "keyhold credential-process run, SoftHSM key, x Python iam-rolesanywhere-session (file key)",
        "ra-process/keyhold-pkcs11",
    ),
    python_against(
        "keyhold credential-process run, swtpm key (salted sessions), x Python iam-rolesanywhere-session (file key)",
        "ra-process/keyhold-tpm",
    ),
];

pub const SERVE_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed(
            "keyhold serve, ECS endpoint, requests/s x a bare hyper server (16 clients)",
        ),
        baseline: Cow::Borrowed("serve/bare-hyper"),
        ours: Cow::Borrowed("serve/keyhold-ecs"),
        target: Target::AtLeast(0.8),
    },
    Ratio {
        what: Cow::Borrowed("keyhold serve, IMDSv2 credentials, requests/s x a bare hyper server"),
        baseline: Cow::Borrowed("serve/bare-hyper"),
        ours: Cow::Borrowed("serve/keyhold-imds"),
        target: Target::AtLeast(0.8),
    },
];

pub const PROCESS_CACHE_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed("credential-process from the cache, time / keyhold --version"),
        baseline: Cow::Borrowed("process-cache/keyhold-warm"),
        ours: Cow::Borrowed("process-cache/keyhold-version"),
        target: Target::AtMost(1.5),
    },
    Ratio {
        what: Cow::Borrowed("credential-process from the cache, TPM key, time / keyhold --version"),
        baseline: Cow::Borrowed("process-cache/keyhold-warm-tpm"),
        ours: Cow::Borrowed("process-cache/keyhold-version"),
        target: Target::AtMost(1.5),
    },
    Ratio {
        what: Cow::Borrowed(
            "credential-process from the cache x without it (SoftHSM, AssumeRole at moto)",
        ),
        baseline: Cow::Borrowed("process-cache/keyhold-cold"),
        ours: Cow::Borrowed("process-cache/keyhold-warm"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed("credential-process from the cache x aws sts assume-role (same moto)"),
        baseline: Cow::Borrowed("process-cache/aws-sts-assume-role"),
        ours: Cow::Borrowed("process-cache/keyhold-warm"),
        target: Target::Report,
    },
];

pub const VAULT_RATIOS: &[Ratio] = &[
    Ratio {
        what: Cow::Borrowed(
            "Vault date_key over HTTP, x the same request from a bare reqwest client",
        ),
        baseline: Cow::Borrowed("vault-date-key/bare-http"),
        ours: Cow::Borrowed("vault-date-key/keyhold"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed("Vault: the HTTP-thread hop alone, time / the bare HTTP request"),
        baseline: Cow::Borrowed("vault-date-key/thread-hop"),
        ours: Cow::Borrowed("vault-date-key/bare-http"),
        target: Target::Report,
    },
    Ratio {
        what: Cow::Borrowed("Vault cache warm, whole signature, x software signer"),
        baseline: Cow::Borrowed("vault-warm/software"),
        ours: Cow::Borrowed("vault-warm/keyhold"),
        target: Target::AtLeast(0.9),
    },
];
