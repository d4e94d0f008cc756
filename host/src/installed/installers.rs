//! The installers meshup knows, and which one's records describe what runs.

use crate::installed::installer::{Installer, Previous};
use crate::installed::istioctl::Istioctl;
use crate::installed::meshup::Meshup;
use crate::installed::state::{InstallMethod, Installed};
use crate::release::source::Source;

/// The installer whose records say what the user set: meshup's history once meshup has
/// run (it keeps this run's inputs), else the one that installed.
pub fn owner(installed: &Installed) -> Option<&'static dyn Installer> {
    if installed.release.is_some() {
        return Some(&Meshup);
    }
    match installed.method {
        InstallMethod::Istioctl { .. } => Some(&Istioctl),
        _ => None,
    }
}

/// Every installer whose record a verified run keeps true (meshup's history is written by
/// the run itself, as its journal).
pub fn all() -> [&'static dyn Installer; 2] {
    [&Meshup, &Istioctl]
}

/// What the previous run used, as the owner's records tell.
pub fn previous(installed: &Installed, target: &dyn Source) -> anyhow::Result<Option<Previous>> {
    match owner(installed) {
        Some(installer) => installer.previous(installed, target),
        None => Ok(None),
    }
}
