//! `cargo bench -p meshup --bench policy`: policy runtime costs. Prints figures; asserts nothing.
//!
//! Targets: cold load+compile of all defaults < 1 s; from cache < 10 ms; one evaluation
//! in a fresh store with a realistic context < 100 µs median; all defaults warm < 2 ms.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshup::policy::runtime::Runtime;
use meshup::policy::{
    Limits, Phase, PolicyContext, PolicySet, RuntimeOptions, Snapshot, builtin, grants,
};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<R>(n: usize, mut f: impl FnMut() -> R) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn fmt(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else if d >= Duration::from_micros(100) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

fn main() {
    let ctx: PolicyContext = serde_json::from_value(common::context_json()).unwrap();
    let snapshot = Arc::new(Snapshot::from_yaml_str(common::HEALTHY_OBJECTS).unwrap());
    let all: Vec<(&str, &[u8])> = builtin::BUILTIN.to_vec();

    // Cold: a fresh engine, no cache, compile + link + metadata of every default policy.
    let cold = time(3, || {
        let rt = Runtime::new(None).unwrap();
        all.iter()
            .map(|(_, b)| rt.load(b, &Limits::default()).unwrap())
            .collect::<Vec<_>>()
    });
    println!(
        "cold load+compile, all {} defaults (no cache): {}   (target < 1 s)",
        all.len(),
        fmt(cold)
    );

    // Warm: from the precompiled-artifact cache.
    let dir = std::env::temp_dir().join(format!("meshup-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = Runtime::new(Some(&dir)).unwrap();
    for (_, b) in &all {
        rt.load(b, &Limits::default()).unwrap();
    }
    let warm = time(20, || {
        all.iter()
            .map(|(_, b)| rt.load(b, &Limits::default()).unwrap())
            .collect::<Vec<_>>()
    });
    println!(
        "warm load from cache, all defaults: {}   (target < 10 ms)",
        fmt(warm)
    );

    // Per policy: instantiate in a fresh Store + evaluate, realistic context and snapshot.
    println!("median evaluate per policy (fresh store, realistic context):");
    let mut skew_wasm = Duration::ZERO;
    let mut worst = Duration::ZERO;
    for (name, b) in &all {
        let loaded = rt.load(b, &Limits::default()).unwrap();
        let g = Arc::new(grants::default_grants(&loaded.metadata.reads));
        let mut c = ctx.clone();
        c.config = loaded.metadata.default_config.clone();
        let wit = c.to_wit();
        let limits = Limits::default();
        let calls = rt
            .evaluate(&loaded, g.clone(), &limits, &wit, Some(snapshot.clone()))
            .calls
            .len();
        let d = time(2000, || {
            rt.evaluate(&loaded, g.clone(), &limits, &wit, Some(snapshot.clone()))
                .findings
                .len()
        });
        worst = worst.max(d);
        if *name == "skew" {
            skew_wasm = d;
        }
        let kind = if calls == 0 {
            "no host calls".to_string()
        } else {
            format!("{calls} host calls")
        };
        println!("  {name:<17} {:>9}   ({kind})", fmt(d));
    }
    println!("  slowest: {}   (target < 100 µs)", fmt(worst));

    // All defaults together, as the upgrade flow calls them.
    let set = PolicySet::load(
        None,
        RuntimeOptions {
            cache_dir: Some(dir.clone()),
            audit_log: None,
        },
    )
    .unwrap();
    let together = time(500, || {
        set.evaluate(Phase::Precheck, &ctx, snapshot.clone()).len()
    });
    println!(
        "all defaults warm together (PolicySet::evaluate, precheck): {}   (target < 2 ms)",
        fmt(together)
    );

    // Sandbox overhead: the same skew check as plain native Rust.
    let mut sdk_ctx = meshup_policy_sdk::testing::context();
    sdk_ctx.current_version = ctx.current_version.clone();
    sdk_ctx.target_version = ctx.target_version.clone();
    sdk_ctx.config = r#"{"max_minor":1}"#.into();
    let native = time(20000, || {
        meshup_policy_skew::check(std::hint::black_box(&sdk_ctx)).len()
    });
    println!(
        "skew native: {}   sandboxed: {}   overhead ratio: {:.0}x",
        fmt(native),
        fmt(skew_wasm),
        skew_wasm.as_secs_f64() / native.as_secs_f64().max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
