//! The terminal side of asking before changing anything, and of hearing Ctrl-C while
//! changing it (`present::Narrator` answers `Progress::confirm` and
//! `Progress::interrupt_flag` with these).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::base::exit::Code;
use crate::cli::ui::Ui;
use crate::engine::progress::no_one_to_ask;

/// `Proceed? [y/N]` on the terminal; without one, the refusal (never waiting on a
/// missing terminal).
pub fn ask(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(no_one_to_ask().into());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// A flag set by the first SIGINT/SIGTERM; the second one exits at once (leaving a
/// `pending` record that the next run detects).
pub fn interrupt_flag(ui: &Ui) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let quiet = ui.json();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if f.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "second interrupt: stopping now; the next meshup run will find this revision pending and offer to resume or roll back"
                );
                std::process::exit(Code::NotRestored as i32);
            }
            if !quiet {
                eprintln!(
                    "interrupt: finishing the component in progress, then rolling back (interrupt again to stop at once)"
                );
            }
        }
    });
    flag
}
