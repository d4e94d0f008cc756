//! The installers meshup knows, and which one's records describe what runs.

use crate::cluster::client::FIELD_MANAGER;
use crate::installed::helm::installer::{self as helm, Helm};
use crate::installed::installer::{Installer, Previous};
use crate::installed::istioctl::Istioctl;
use crate::installed::meshup::Meshup;
use crate::installed::state::{InstallMethod, Installed};
use crate::release::source::Source;

/// The installer whose records say what the user set. Helm's records stay the truth for a
/// Helm install even after meshup ran (a user may `helm upgrade` in between, and meshup
/// keeps Helm's records true); otherwise meshup's history once meshup has run (it keeps
/// this run's inputs), else the one that installed.
pub fn owner(installed: &Installed) -> Option<&'static dyn Installer> {
    if let InstallMethod::Helm { .. } = installed.method {
        return Some(&Helm);
    }
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
pub fn all() -> [&'static dyn Installer; 3] {
    [&Meshup, &Istioctl, &Helm]
}

/// What the previous run used, as the owner's records tell.
pub fn previous(installed: &Installed, target: &dyn Source) -> anyhow::Result<Option<Previous>> {
    match owner(installed) {
        Some(installer) => installer.previous(installed, target),
        None => Ok(None),
    }
}

/// The field manager `object` is applied (and restored) under: its installer's when it
/// carries another installer's ownership marks, else meshup's.
pub fn field_manager(object: &serde_json::Value) -> &'static str {
    helm::field_manager(object).unwrap_or(FIELD_MANAGER)
}
