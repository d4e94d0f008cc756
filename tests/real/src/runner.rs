//! A small test runner: one cluster for every test of the binary, torn down at the end even
//! when a test fails; output and exit code like libtest's, so `cargo test` reads it as usual.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use crate::cluster::{Cluster, Unavailable};

pub struct Test {
    pub name: &'static str,
    pub run: fn(&Cluster),
}

/// Run the tests matching the command line's filters (substrings) in order, then the
/// on-demand ones (benchmarks) that a filter names; exit non-zero if any failed or if the
/// tier could not run under `CI=true`.
pub fn main(tests: &[Test], on_demand: &[Test]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for t in tests.iter().chain(on_demand) {
            println!("{}: test", t.name);
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let named = |t: &&Test| filters.iter().any(|f| t.name.contains(f.as_str()));
    let mut selected: Vec<&Test> = tests
        .iter()
        .filter(|t| filters.is_empty() || named(t))
        .collect();
    let wanted: Vec<&Test> = on_demand.iter().filter(named).collect();
    for t in on_demand.iter().filter(|t| !named(t)) {
        println!(
            "test {} ... ignored (on demand: cargo test -p meshup-real-tests -- {})",
            t.name, t.name
        );
    }
    selected.extend(wanted);
    let filtered_out = tests.len() + on_demand.len() - selected.len();
    let start = Instant::now();
    if selected.is_empty() {
        summary(0, 0, 0, filtered_out, start);
        return;
    }
    let cluster = match Cluster::up() {
        Ok(c) => c,
        Err(Unavailable::Missing(why)) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("SKIPPED: real Kubernetes tier: {why}");
            summary(0, 0, selected.len(), filtered_out, start);
            return;
        }
        Err(Unavailable::Missing(why) | Unavailable::Broken(why)) => {
            eprintln!("real Kubernetes tier cannot run: {why}");
            println!("test result: FAILED. 0 passed; {} failed", selected.len());
            std::process::exit(101);
        }
    };
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for t in &selected {
        let t0 = Instant::now();
        let ok = catch_unwind(AssertUnwindSafe(|| (t.run)(&cluster))).is_ok();
        println!(
            "test {} ... {} ({:.1}s)",
            t.name,
            if ok { "ok" } else { "FAILED" },
            t0.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(t.name);
        }
    }
    drop(cluster);
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            println!("    {f}");
        }
    }
    let passed = selected.len() - failed.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

fn summary(passed: usize, failed: usize, ignored: usize, filtered_out: usize, start: Instant) {
    println!(
        "\ntest result: ok. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s\n",
        start.elapsed().as_secs_f64()
    );
}
