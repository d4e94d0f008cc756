//! Helm as the installer of Istio. Helm is Istio's recommended install method, and Helm
//! users must be able to go on using `helm list`, `history`, `get values`, `upgrade` and
//! `rollback` after meshup upgraded their releases, so meshup reads and writes Helm's own
//! release records exactly as Helm does (`record`), rather than a record of its own;
//! `releases` finds the Helm releases an Istio install is made of.

pub mod installer;
pub mod ledger;
pub mod record;
pub mod releases;
