//! The demo's own lines (its numbered steps, where the simulator listens, how it ended),
//! printed here like every command's output so the demo has no printing path of its own.

use std::path::Path;
use std::time::Duration;

use crate::cli::ui::{Color, Ui};

/// `[3] Deploy workloads ...`: the heading of one narrated step.
pub fn step(ui: &Ui, n: u32, text: &str) {
    ui.say(format!(
        "\n{} {}",
        ui.paint(&format!("[{n}]"), Color::Cyan),
        ui.paint(text, Color::Bold)
    ));
}

/// Where the simulator listens, and how to look at it with kubectl meanwhile.
pub fn simulator(ui: &Ui, url: &str, kubeconfig: &Path) {
    ui.say(format!(
        "   listening on {url}; kubeconfig {}",
        kubeconfig.display()
    ));
    ui.say(format!(
        "   try it with: kubectl --kubeconfig {} get pods -A",
        kubeconfig.display()
    ));
}

/// A step that failed as its story says it must (on stderr, as errors are).
pub fn as_expected(error: &anyhow::Error) {
    eprintln!("   (as expected) {error:#}");
}

pub fn complete(ui: &Ui, took: Duration) {
    ui.say(format!(
        "\n{} in {:.1} s. Every step above is a meshup command you can run against a real cluster.",
        ui.paint("Demo complete", Color::Green),
        took.as_secs_f64()
    ));
}

/// `--keep`: the simulator stays up until Ctrl-C.
pub fn kept(ui: &Ui, url: &str, kubeconfig: &Path) {
    ui.say(format!(
        "The simulator keeps running at {url} (kubeconfig {}); Ctrl-C to stop.",
        kubeconfig.display()
    ));
}
