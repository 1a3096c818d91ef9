//! Rows that take turns in rounds: the one way every criterion bench in the workspace runs.
//!
//! This machine's speed drifts by tens of percent over seconds, which made single rows
//! disagree by as much as the margins at stake. So each group runs in [`ROUNDS`] short rounds
//! (criterion ids `group/row/round`), every row in turn within a round, and `cargo xtask
//! bench` takes each ratio per round (both rows measured within the same few seconds) and
//! reports the median over the rounds.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, BenchmarkId, Criterion};

/// Rounds per group.
pub const ROUNDS: usize = 5;

/// A benchmark group on the wall clock.
pub type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// What measures a row: adds a bench function with the given id to the group, with any
/// set-up it needs around it (a device connection, say).
pub type Measure<'a> = &'a mut dyn FnMut(&mut Group<'_>, BenchmarkId);

/// A row: its name and what measures it.
pub type Row<'a> = (&'static str, Measure<'a>);

/// A row that is one bench function, with no set-up around it.
pub fn plain<'a>(
    run: &'a mut dyn FnMut(&mut Bencher<'_>),
) -> impl FnMut(&mut Group<'_>, BenchmarkId) + 'a {
    move |group, id| {
        group.bench_function(id, |b| run(b));
    }
}

/// The set-up of every group: one second of warm-up, three of measurement per row.
pub fn three_seconds(group: &mut Group<'_>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Round `n` of a group: `configure` sets the group up (times, throughput), then each row runs,
/// starting at a different row each round, so that no row always runs first (just after
/// criterion's analysis of the group before) or last.
pub fn round(
    c: &mut Criterion,
    group: &str,
    n: usize,
    configure: fn(&mut Group<'_>),
    rows: &mut [Row<'_>],
) {
    let mut group = c.benchmark_group(group);
    configure(&mut group);
    let count = rows.len();
    for i in 0..count {
        let (name, measure) = &mut rows[(n + i) % count];
        measure(&mut group, BenchmarkId::new(*name, n));
    }
    group.finish();
}
