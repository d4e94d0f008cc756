//! meshup-sim: a Kubernetes API server on loopback with simulated controllers.
//!
//! It speaks only the Kubernetes API and knows nothing of meshup.

pub mod cli;
