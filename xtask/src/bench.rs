//! `cargo xtask bench`: runs the criterion benchmarks and prints the ratios the project
//! promises, each from one run (keyhold and its baseline measured side by side).

use std::path::Path;

use anyhow::Context;

/// A ratio the README quotes: `numerator / denominator` of mean times, and the target.
struct Ratio {
    what: &'static str,
    /// Mean time of the baseline (criterion id `group/name`).
    baseline: &'static str,
    /// Mean time of keyhold.
    ours: &'static str,
    /// `baseline / ours` must be at least this (or, when `at_most`, at most).
    target: f64,
    at_most: bool,
}

const SIGV4_RATIOS: &[Ratio] = &[
    Ratio {
        what: "warm cache GET-vanilla, x aws-sigv4 throughput",
        baseline: "get-vanilla/aws-sigv4",
        ours: "get-vanilla/keyhold-warm",
        target: 6.0,
        at_most: false,
    },
    Ratio {
        what: "cache off GET-vanilla, x aws-sigv4 throughput",
        baseline: "get-vanilla/aws-sigv4",
        ours: "get-vanilla/keyhold-cache-off",
        target: 3.5,
        at_most: false,
    },
    Ratio {
        what: "warm cache time / limit (crypto floor) time",
        baseline: "get-vanilla/keyhold-warm",
        ours: "get-vanilla/limit",
        target: 2.0,
        at_most: true,
    },
    Ratio {
        what: "STS POST warm, x aws-sigv4 throughput",
        baseline: "sts-post/aws-sigv4",
        ours: "sts-post/keyhold-warm",
        target: 1.0,
        at_most: false,
    },
    Ratio {
        what: "1 MiB PUT, x plain sha2 throughput",
        baseline: "put-1mib/sha256-only",
        ours: "put-1mib/keyhold-warm",
        target: 0.9,
        at_most: false,
    },
];

/// Runs the benchmarks (extra arguments go to criterion) and prints the table.
pub fn run(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    super::run(
        "benchmarking sigv4-core against aws-sigv4 (criterion)",
        super::cargo()
            .args(["bench", "-p", "sigv4-core", "--bench", "sign", "--"])
            .args(extra),
    )?;
    print_table(root, SIGV4_RATIOS)
}

fn mean_ns(root: &Path, id: &str) -> anyhow::Result<f64> {
    let path = root
        .join("target/criterion")
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

fn print_table(root: &Path, ratios: &[Ratio]) -> anyhow::Result<()> {
    println!();
    println!("| ratio | measured | target | ok |");
    println!("|---|---|---|---|");
    let mut misses = 0;
    for r in ratios {
        let value = mean_ns(root, r.baseline)? / mean_ns(root, r.ours)?;
        let ok = if r.at_most {
            value <= r.target
        } else {
            value >= r.target
        };
        misses += usize::from(!ok);
        let bound = if r.at_most { "<=" } else { ">=" };
        let mark = if ok { "yes" } else { "NO" };
        println!(
            "| {} | {value:.2} | {bound} {:.1} | {mark} |",
            r.what, r.target
        );
    }
    println!();
    if misses > 0 {
        println!("{misses} ratio(s) short of target");
    }
    Ok(())
}
