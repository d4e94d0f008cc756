//! What runs and who installed it: meshup's history (the run journal, kept for every
//! installer), the installed state read from the cluster, and the installers' own records.

pub mod capture;
pub mod discover;
pub mod helm;
pub mod history;
pub mod installer;
pub mod installers;
pub mod istioctl;
pub mod meshup;
pub mod state;
