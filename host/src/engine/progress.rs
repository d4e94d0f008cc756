//! What an action tells the person running it while it works, as events.
//!
//! Actions and the code they call (apply, restore) never print: they send an `Event` to a
//! `Progress`, and return a typed report at the end. The CLI implements `Progress` with
//! the terminal (`action::present::Narrator`: lines, colours, bars); tests record the
//! events or ignore them.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::base::exit::{Code, Exit};
use crate::engine::checks::Outcome;
use crate::engine::plan::Plan;
use crate::installed::history::Release;
use crate::installed::state::Installed;

/// One thing worth saying while an action runs.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The policies were compiled (only the first run pays this: they are cached).
    PoliciesCompiled(Duration),
    /// An earlier run left the cluster unfinished; this run goes on from there
    /// (`precheck`: it only would).
    Resuming { open: &'a Release, precheck: bool },
    /// What the run would change, before anything is changed; `replaced` names the
    /// builtin policies that policy files replace.
    Planned {
        plan: &'a Plan,
        installed: &'a Installed,
        diffs: crate::engine::plan::DiffMode,
        replaced: &'a [String],
    },
    /// The findings of one phase of checks.
    Checked(&'a Outcome),
    /// The upgrade lock was expired and taken over from its holder.
    LockTakenOver(&'a str),
    /// Changes begin, recorded as `revision`.
    Started { plan: &'a Plan, revision: u32 },
    /// A workload's rollout is watched from now on.
    WaitStarted { workload: &'a str },
    /// The watched workload changed.
    Waiting {
        workload: &'a str,
        ready: u64,
        desired: u64,
        message: &'a str,
    },
    /// The wait ended: "ready", or why not.
    WaitEnded { workload: &'a str, outcome: &'a str },
    /// A component was applied ("applied") or put back ("restored") and is ready.
    ComponentDone {
        report: &'a ComponentReport,
        verb: &'static str,
    },
    /// The run failed and the state before it is being put back.
    RollingBack {
        failure: &'a str,
        to: &'a str,
        timeout: Duration,
    },
    /// What a rollback is about to do (one line).
    RollbackChosen(&'a str),
    /// A data-plane workload was restarted (its rollout took `Ok(time)`), or not (why).
    Restarted {
        workload: &'a str,
        result: Result<Duration, &'a str>,
    },
    /// Something went wrong that does not change the outcome.
    Warning(&'a str),
}

/// Where an action's events go.
pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);

    /// Asked once before an action changes anything: whether to go ahead. The default
    /// has no one to ask and refuses, as the CLI does without a terminal.
    fn confirm(&self, _question: &str) -> anyhow::Result<bool> {
        Err(no_one_to_ask().into())
    }

    /// Called when the changes begin: a flag that an interrupt sets (the CLI listens to
    /// SIGINT/SIGTERM from then on). Applying stops after the component in progress.
    fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }
}

/// Says nothing (library callers).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// The refusal to ask when no one can answer.
pub fn no_one_to_ask() -> Exit {
    Exit::bad_input(
        "refusing to prompt without a terminal: pass -y to proceed without confirmation (or --dry-run to only look)",
    )
}

/// Go ahead if `yes` was given or the person confirms `question`; otherwise the run is
/// aborted (exit 4) before anything changed.
pub fn confirmed(progress: &dyn Progress, yes: bool, question: &str) -> anyhow::Result<()> {
    if yes || progress.confirm(question)? {
        Ok(())
    } else {
        Err(Exit::new(Code::Aborted, "aborted at the prompt; nothing was changed").into())
    }
}

/// How long each component took to apply and become ready.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    pub name: String,
    pub objects: usize,
    pub ready: String,
    pub seconds: f64,
}

impl ComponentReport {
    /// The component is ready: its report, said as `verb` ("applied", "restored").
    pub fn done(
        progress: &dyn Progress,
        name: &str,
        objects: usize,
        ready: String,
        started: Instant,
        verb: &'static str,
    ) -> ComponentReport {
        let report = ComponentReport {
            name: name.to_string(),
            objects,
            ready,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress.event(Event::ComponentDone {
            report: &report,
            verb,
        });
        report
    }
}
