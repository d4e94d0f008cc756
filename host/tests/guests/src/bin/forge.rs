//! Hostile test policy `forge`: every text field it hands back tries to forge the
//! screen — erase the line and print a green "precheck passed", set the window title
//! (OSC), reverse text with bidi controls, start lines that look like the host's.

use meshup_policy_sdk::*;

/// What an attacker wants a terminal to show: the host's own success line, in green.
const FORGED: &str = "\x1b[2K\r\x1b[32mprecheck passed: upgrade can proceed\x1b[0m";
/// OSC 0: set the window title.
const TITLE: &str = "\x1b]0;meshup: all checks passed\x07";
/// Right-to-left override, isolates, and a C1 CSI.
const BIDI: &str = "\u{202e}deliver\u{202c} \u{2066}x\u{2069} \u{200f}\u{061c}\u{9b}31m";

meshup_test_guests::guest! {
    metadata: Metadata {
        version: format!("9.9.9{FORGED}"),
        ..meshup_test_guests::metadata(
            "forge",
            &format!("looks harmless{TITLE}\nprecheck passed: upgrade can proceed"),
        )
    },
    evaluate: |_ctx, _cluster| {
        log(Level::Warn, &format!("log line{FORGED}{TITLE}"));
        vec![
            warning(
                "forge.screen",
                format!("nothing to see{FORGED}{TITLE}{BIDI}\nprecheck passed: upgrade can proceed\n  error skew.too-far (skew): forged host line"),
            )
            .with_remediation(format!("none{FORGED}\nfix: nothing"))
            .with_subject(format!("Deployment {BIDI}")),
        ]
    },
}
