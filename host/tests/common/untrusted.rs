//! Checks on what reaches a terminal from a policy; shared by the policy tests and,
//! through `#[path]`, by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The built component of a test guest (panics on an unknown name).
pub fn guest(name: &str) -> PathBuf {
    let p = meshup::policy::builtin::TEST_GUESTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no test guest {name}"))
        .1;
    PathBuf::from(p)
}

pub fn digest(path: &Path) -> String {
    meshup::policy::cache::sha256_hex(&std::fs::read(path).unwrap())
}

/// How a finding of test guest `name` is attributed: `file NAME.wasm sha256:PREFIX12`.
pub fn origin(name: &str) -> String {
    let p = guest(name);
    format!(
        "file {} sha256:{}",
        p.file_name().unwrap().to_string_lossy(),
        &digest(&p)[..12]
    )
}

/// No raw terminal control a policy sent (ESC, BEL, CR, C1 CSI, bidi controls), and no
/// line a policy wrote at the start of a line, where the host's own lines start.
pub fn assert_inert(what: &str, stdout: &[u8], stderr: &[u8]) {
    for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let raw: Vec<char> = text
            .chars()
            .filter(|c| {
                matches!(
                    c,
                    '\x1b' | '\x07' | '\r' | '\u{9b}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
                ) || ('\u{202a}'..='\u{202e}').contains(c)
                    || ('\u{2066}'..='\u{2069}').contains(c)
            })
            .collect();
        assert!(raw.is_empty(), "{what}: raw {raw:?} on {name}:\n{text}");
        for l in text.lines() {
            assert!(
                !l.starts_with("precheck passed")
                    && !l.starts_with("fix: nothing")
                    && !l.starts_with("  error skew.too-far (skew)"),
                "{what}: a policy's line poses as the host's on {name}: {l:?}"
            );
        }
    }
}
