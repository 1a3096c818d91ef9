//! `cargo xtask bench`: runs the criterion benchmarks and prints the ratios the project
//! promises, each from one run (keyhold and its baseline measured side by side).

use std::path::Path;

use anyhow::{Context, bail};

mod ratios;

use ratios::*;

/// One benchmark binary and the ratios it feeds.
struct Suite {
    name: &'static str,
    package: &'static str,
    bench: &'static str,
    /// Needs SoftHSM and swtpm running.
    devices: bool,
    ratios: &'static [Ratio],
    /// Also the two ratios of every request-shape group (`shape-NAME`) the bench made.
    shapes: bool,
    /// Needs the Python virtualenv (its `bin/` in `KEYHOLD_TEST_PYTHON_BIN`).
    python: bool,
    /// Needs moto (and SoftHSM, swtpm: `devices` too).
    moto: bool,
    /// Needs OpenBao (and SoftHSM, swtpm: `devices` too).
    openbao: bool,
}

/// The criterion groups of request shapes (`shape-NAME`) in the results.
fn shape_groups(root: &Path) -> Vec<String> {
    let dir = super::target_dir(root).join("criterion");
    let mut groups: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with("shape-"))
                .collect()
        })
        .unwrap_or_default();
    groups.sort();
    groups
}

/// Per shape: at least 6x aws-sigv4, and at most twice its crypto floor (issue #17).
fn shape_ratios(root: &Path) -> Vec<Ratio> {
    // Per shape: against aws-sigv4 and against the floor (the targets); reported: the
    // signer apart from the `http` side, and the floor plus the cost of writing a signature
    // on an `http::Request` (header values and inserts, or the new URI), which any signer
    // pays: aws-sigv4's time over it is the most any signer could be x aws-sigv4.
    shape_groups(root)
        .into_iter()
        .flat_map(|group| {
            let shape = group.trim_start_matches("shape-").to_owned();
            [
                Ratio {
                    what: format!("{shape}, warm, x aws-sigv4 throughput").into(),
                    baseline: format!("{group}/aws-sigv4").into(),
                    ours: format!("{group}/keyhold-warm").into(),
                    target: Target::AtLeast(6.0),
                },
                Ratio {
                    what: format!("{shape}, warm, time / its crypto floor").into(),
                    baseline: format!("{group}/keyhold-warm").into(),
                    ours: format!("{group}/limit").into(),
                    target: Target::AtMost(2.0),
                },
                Ratio {
                    what: format!("{shape}, from parts (no http::Request), time / floor").into(),
                    baseline: format!("{group}/keyhold-parts").into(),
                    ours: format!("{group}/limit").into(),
                    target: Target::Report,
                },
                Ratio {
                    what: format!("{shape}, warm, time / (floor + writing it on the request)")
                        .into(),
                    baseline: format!("{group}/keyhold-warm").into(),
                    ours: format!("{group}/limit-with-http").into(),
                    target: Target::Report,
                },
                Ratio {
                    what: format!(
                        "{shape}, the most any signer could be x aws-sigv4 (its floor + http)"
                    )
                    .into(),
                    baseline: format!("{group}/aws-sigv4").into(),
                    ours: format!("{group}/limit-with-http").into(),
                    target: Target::Report,
                },
            ]
        })
        .collect()
}

const SUITES: &[Suite] = &[
    Suite {
        name: "sigv4",
        package: "sigv4-core",
        bench: "sign",
        devices: false,
        ratios: SIGV4_RATIOS,
        shapes: true,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "pkcs11",
        package: "backend-pkcs11",
        bench: "pkcs11_sign",
        devices: true,
        ratios: PKCS11_RATIOS,
        shapes: false,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "tpm",
        package: "backend-tpm",
        bench: "tpm",
        devices: true,
        ratios: TPM_RATIOS,
        shapes: false,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "rolesanywhere",
        package: "rolesanywhere",
        bench: "create_session",
        devices: false,
        ratios: ROLES_ANYWHERE_FILE_RATIOS,
        shapes: false,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "pkcs11-x509",
        package: "backend-pkcs11",
        bench: "pkcs11_x509",
        devices: true,
        ratios: ROLES_ANYWHERE_PKCS11_RATIOS,
        shapes: false,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "tpm-x509",
        package: "backend-tpm",
        bench: "tpm_x509",
        devices: true,
        ratios: ROLES_ANYWHERE_TPM_RATIOS,
        shapes: false,
        python: false,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "ra-process",
        package: "cli",
        bench: "credential_process",
        devices: true,
        ratios: ROLES_ANYWHERE_PROCESS_RATIOS,
        shapes: false,
        python: true,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "serve",
        package: "cli",
        bench: "serve",
        devices: false,
        ratios: SERVE_RATIOS,
        shapes: false,
        python: true,
        moto: false,
        openbao: false,
    },
    Suite {
        name: "process-cache",
        package: "cli",
        bench: "process_cache",
        devices: true,
        ratios: PROCESS_CACHE_RATIOS,
        shapes: false,
        python: true,
        moto: true,
        openbao: false,
    },
    Suite {
        name: "vault",
        package: "backend-vault",
        bench: "vault",
        devices: true,
        ratios: VAULT_RATIOS,
        shapes: false,
        python: true,
        moto: false,
        openbao: true,
    },
];

/// Runs the benchmarks and prints the table.
///
/// `args`: optional suite names (`sigv4`, `pkcs11`, `tpm`, `rolesanywhere`, `pkcs11-x509`,
/// `tpm-x509`, `ra-process`, `serve`, `process-cache`, `vault`;
/// all when none), then optionally
/// `--` and arguments for criterion. SoftHSM and swtpm are started for the device suites.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let (names, criterion) = match args.iter().position(|a| a == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &args[args.len()..]),
    };
    if let Some(unknown) = names.iter().find(|n| !SUITES.iter().any(|s| s.name == *n)) {
        let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
        bail!(
            "unknown bench suite {unknown:?}; choose from {}",
            names.join(", ")
        );
    }
    let chosen: Vec<&Suite> = SUITES
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect();
    let services = if chosen.iter().any(|s| s.devices) {
        super::setup::run(root)?;
        let mut which: Vec<super::services::StartFn> = vec![
            super::services::softhsm::start,
            super::services::swtpm::start,
        ];
        if chosen.iter().any(|s| s.moto) {
            which.push(super::services::moto::start);
        }
        if chosen.iter().any(|s| s.openbao) {
            which.push(super::services::openbao::start);
        }
        Some(super::services::start(root, &which)?)
    } else {
        None
    };
    for suite in &chosen {
        if criterion.is_empty() {
            // A whole run: clear the suite's old results, so that no round from an earlier
            // run (with more rounds, say) is counted with this run's.
            let mut groups: Vec<String> = suite
                .ratios
                .iter()
                .flat_map(|r| [&r.baseline, &r.ours])
                .map(|id| id.split('/').next().unwrap_or(id).to_owned())
                .collect();
            if suite.shapes {
                groups.extend(shape_groups(root));
            }
            for group in groups {
                let dir = super::target_dir(root).join("criterion").join(group);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("clearing {}", dir.display()))?;
                }
            }
        }
        let mut cmd = super::cargo();
        cmd.args(["bench", "-p", suite.package, "--bench", suite.bench, "--"])
            .args(criterion);
        if let Some(services) = &services {
            cmd.envs(services.env());
        }
        if suite.python {
            cmd.env(
                test_support::env::PYTHON_BIN,
                super::setup::python_venv(root)?,
            );
        }
        super::run(
            &format!("benchmarking {} (criterion)", suite.package),
            &mut cmd,
        )?;
    }
    drop(services);
    let shapes = match chosen.iter().any(|s| s.shapes) {
        true => shape_ratios(root),
        false => Vec::new(),
    };
    let ratios: Vec<&Ratio> = chosen
        .iter()
        .flat_map(|s| s.ratios)
        .chain(&shapes)
        .collect();
    print_table(root, &ratios)
}

/// `baseline / ours` for a ratio: once per round when the rows ran in rounds, once otherwise.
/// Rounds pair up by number: each round measured both rows within a few seconds, so drift in
/// the machine's speed over a run cancels within a round (and the median drops the rounds it
/// spoiled).
fn per_round(root: &Path, r: &Ratio) -> anyhow::Result<Vec<f64>> {
    let dir = super::target_dir(root).join("criterion").join(&*r.baseline);
    let mut rounds: Vec<u32> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if rounds.is_empty() {
        return Ok(vec![mean_ns(root, &r.baseline)? / mean_ns(root, &r.ours)?]);
    }
    rounds.sort_unstable();
    rounds
        .iter()
        .map(|n| {
            let baseline = mean_ns(root, &format!("{}/{n}", r.baseline))?;
            Ok(baseline / mean_ns(root, &format!("{}/{n}", r.ours))?)
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() % 2 {
        1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

fn mean_ns(root: &Path, id: &str) -> anyhow::Result<f64> {
    let path = super::target_dir(root)
        .join("criterion")
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no criterion result at {}", path.display()))?;
    // The file is small JSON; the one number needed follows `"mean":{"confidence_interval":
    // {...},"point_estimate":`. Parsed by hand to keep xtask free of a JSON dependency.
    let mean = text
        .find("\"mean\"")
        .and_then(|at| text[at..].find("\"point_estimate\":").map(|p| at + p + 17))
        .context("no mean in estimates.json")?;
    let number: String = text[mean..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    number
        .parse()
        .with_context(|| format!("bad mean {number:?} in {}", path.display()))
}

fn print_table(root: &Path, ratios: &[&Ratio]) -> anyhow::Result<()> {
    println!();
    println!("| ratio | measured | target | ok |");
    println!("|---|---|---|---|");
    let mut misses = 0;
    for r in ratios {
        let rounds = per_round(root, r)?;
        let value = median(&rounds);
        let (bound, ok) = match r.target {
            Target::AtLeast(t) => (format!(">= {t:.1}"), value >= t),
            Target::AtMost(t) => (format!("<= {t:.1}"), value <= t),
            Target::Report => ("(reported)".to_owned(), true),
        };
        misses += usize::from(!ok);
        let mark = match (&r.target, ok) {
            (Target::Report, _) => "-",
            (_, true) => "yes",
            (_, false) => "NO",
        };
        let spread = match rounds.len() {
            1 => String::new(),
            n => {
                let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
                let high = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(" (median of {n} rounds, {low:.2}-{high:.2})")
            }
        };
        println!("| {} | {value:.2}{spread} | {bound} | {mark} |", r.what);
    }
    println!();
    if misses > 0 {
        println!(
            "{misses} ratio(s) short of target (NO above); BENCHMARKING.md says, with figures, why \
             the misses it documents are not met (and the most any signer could reach, the \
             \"floor + http\" rows); a miss it does not document is a regression"
        );
    }
    Ok(())
}
