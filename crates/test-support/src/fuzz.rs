//! A seeded mutation fuzzer on stable Rust, for the parsers that read files or the network.
//!
//! A target is a function over bytes that must return and never panic; it says whether
//! its parser accepted the input, so that a run can show it reached past the first check. [`run`] feeds it every file of its corpus (`testdata/fuzz/TARGET/`), then
//! mutations of them: bit flips, byte changes, truncations, duplicated and deleted runs,
//! splices of two inputs, and tokens from the target's dictionary. The mutations are drawn
//! from a fixed seed, so a failure repeats; its message holds the input, in hex, to add to
//! the corpus once fixed. Coverage does not steer it (that needs a nightly toolchain); the
//! corpus and dictionaries do: each holds the shapes its parser cares about.

use std::path::{Path, PathBuf};

/// SplitMix64: a small, fast generator with a fixed sequence per seed.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `base` changed by one to four random mutations; `other` is a second input to splice in,
/// `dictionary` tokens to insert.
pub fn mutate(rng: &mut SplitMix, base: &[u8], other: &[u8], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = |rng: &mut SplitMix, len: usize| rng.below(len + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0, 0xff, 0x7f, 0x80, b'<', b'"', b'%', b'\n'][rng.below(8)];
            }
            2 => {
                let cut = at(rng, out.len());
                out.truncate(cut);
            }
            3 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(16)).min(out.len());
                out.drain(start..end);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let run = out[start..end].to_vec();
                let to = at(rng, out.len());
                out.splice(to..to, run);
            }
            5 if !other.is_empty() => {
                let cut = at(rng, out.len());
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            6 if !dictionary.is_empty() => {
                let token = dictionary[rng.below(dictionary.len())];
                let to = at(rng, out.len());
                out.splice(to..to, token.iter().copied());
            }
            _ => {
                let to = at(rng, out.len());
                out.insert(to, (rng.next_u64() & 0xff) as u8);
            }
        }
    }
    out
}

/// The corpus directory of `target`: `testdata/fuzz/TARGET/` at the workspace root.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fuzz")
        .join(target)
}

/// How many mutated inputs a run tries: `KEYHOLD_FUZZ_RUNS` when set (for a longer run
/// by hand), else `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("KEYHOLD_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `target` on its corpus, then on `runs` mutations of it (seed `seed`); returns how
/// many inputs `check` accepted. A panic in the target fails with the input that caused it.
pub fn run(
    target: &str,
    seed: u64,
    runs: usize,
    dictionary: &[&[u8]],
    check: impl Fn(&[u8]) -> bool,
) -> usize {
    let dir = corpus_dir(target);
    let mut corpus: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    corpus.sort();
    assert!(!corpus.is_empty(), "fuzz corpus {} is empty", dir.display());
    let try_one = |input: &[u8], what: &str| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input))).unwrap_or_else(
            |_| {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                panic!("fuzz target {target} panicked on {what}; input (hex): {hex}");
            },
        )
    };
    let mut accepted = 0;
    for (path, bytes) in &corpus {
        accepted += usize::from(try_one(bytes, &path.display().to_string()));
    }
    let mut rng = SplitMix(seed);
    for i in 0..runs {
        let base = &corpus[rng.below(corpus.len())].1;
        let other = &corpus[rng.below(corpus.len())].1;
        let input = mutate(&mut rng, base, other, dictionary);
        accepted += usize::from(try_one(&input, &format!("mutation {i} of seed {seed}")));
    }
    accepted
}
