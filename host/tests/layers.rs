//! The host's layers only look down, and no module imports itself in a circle.
//!
//! `host/src` is arranged in folders by layer (README.md, "Layout"). This test reads every
//! module's `crate::`/`super::` paths (its code before `#[cfg(test)]`, as text, the way
//! `cargo-modules` would see them) and fails on:
//! - a module outside the layers (every file lives in one of `LAYERS`, or is `lib.rs`/`main.rs`);
//! - a layer that uses one above it (`cluster` using `engine`);
//! - an import cycle between modules, inside a layer or across.
//!
//! Test-only modules (a `tests` module or folder) are left out: a test may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first: each layer may use the ones before it (and itself).
const LAYERS: [&str; 8] = [
    "base",
    "policy",
    "cluster",
    "release",
    "installed",
    "engine",
    "action",
    "cli",
];

type Module = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(path: &Path) -> Module {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code a module compiles outside its tests.
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// `crate::a::b::{c, d}` and `super::x` paths, resolved to the longest known module.
fn imports(module: &Module, text: &str, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    for (i, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        // Skip identifiers that merely end in `crate`/`super` (`my_crate::`), and the inner
        // `super::` of `super::super::` (read with the first).
        if text[..i].ends_with("::")
            || text[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &text[i..];
        let segs: Vec<&str> = rest
            .split("::")
            .take_while(|s| !s.is_empty())
            .map(|s| {
                s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            })
            .collect();
        let mut path: Module = if segs[0] == "super" {
            let mut base = module.clone();
            let mut k = 0;
            while segs.get(k) == Some(&"super") {
                base.pop();
                k += 1;
            }
            base.extend(segs[k..].iter().map(|s| s.to_string()));
            base
        } else {
            segs[1..].iter().map(|s| s.to_string()).collect()
        };
        path.retain(|s| !s.is_empty());
        while !path.is_empty() && !known.contains(&path) {
            path.pop();
        }
        if !path.is_empty() && &path != module {
            out.insert(path);
        }
    }
    out
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    // Test-only modules (`tests`, `action/tests/`) may use anything.
    files.retain(|f| !module_of(f).iter().any(|s| s == "tests"));
    let known: BTreeSet<Module> = files.iter().map(|f| module_of(f)).collect();
    files
        .iter()
        .map(|f| {
            let m = module_of(f);
            let text = std::fs::read_to_string(f).unwrap();
            let deps = imports(&m, code(&text), &known);
            (m, deps)
        })
        .collect()
}

fn layer(m: &Module) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| m.first().map(String::as_str) == Some(*l))
}

fn name(m: &Module) -> String {
    m.join("::")
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else {
                continue;
            };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(name(w));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn every_module_lives_in_a_layer() {
    let outside: Vec<String> = graph()
        .keys()
        .filter(|m| !m.is_empty() && layer(m).is_none())
        .map(name)
        .collect();
    assert!(
        outside.is_empty(),
        "modules outside the layers {LAYERS:?}: {outside:?}"
    );
}

#[test]
fn layers_only_look_down() {
    let mut wrong = Vec::new();
    for (m, deps) in graph() {
        let Some(lm) = layer(&m) else { continue };
        for d in deps {
            if layer(&d).is_some_and(|ld| ld > lm) {
                wrong.push(format!("{} uses {}", name(&m), name(&d)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layers look up:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_module_imports_itself_in_a_circle() {
    let found = cycles(&graph());
    assert!(
        found.is_empty(),
        "module import cycles:\n  {}",
        found
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The check itself sees a cycle and an upward use.
#[test]
fn the_checks_see_what_they_look_for() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Module>();
    let known: BTreeSet<Module> = [m("base::a"), m("engine::b"), m("engine"), m("base")]
        .into_iter()
        .collect();
    let deps = imports(
        &m("base::a"),
        "use crate::engine::b::{X, Y};\nfn f() { super::super::engine::b::g(); my_crate::x(); }",
        &known,
    );
    assert_eq!(deps, [m("engine::b")].into_iter().collect());
    let g: BTreeMap<Module, BTreeSet<Module>> = [
        (m("base::a"), [m("engine::b")].into_iter().collect()),
        (m("engine::b"), [m("base::a")].into_iter().collect()),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        cycles(&g),
        vec![vec!["base::a".to_string(), "engine::b".to_string()]]
    );
    assert!(layer(&m("engine::b")) > layer(&m("base::a")));
}
