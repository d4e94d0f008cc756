//! End-to-end tests: the real CLI against the real simulator over HTTP.

mod charts;
mod common;
mod conventions;
mod demo;
mod faults;
mod helm;
mod injection;
mod inputs;
mod istioctl;
mod istioctl_source;
mod lifecycle;
mod policies;
mod upgrade;
