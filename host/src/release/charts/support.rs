//! The Kubernetes versions each Istio minor is published to support (1.27 onwards), for
//! the `k8s-version` policy. A minor missing here has no range: the policy then says it
//! cannot tell (a warning), rather than guess.
//!
//! Sources: the release announcements on istio.io ("officially supported on Kubernetes
//! versions X to Y"): 1.27 (1.29–1.33), 1.30 and 1.31 (1.32–1.36); 1.28 (1.29–1.35) and
//! 1.29 (1.31–1.35) from the announcement drafts in istio/istio.io.

use crate::release::source::KubeRange;

const SUPPORT: &[((u64, u64), &str, &str)] = &[
    ((1, 27), "1.29", "1.33"),
    ((1, 28), "1.29", "1.35"),
    ((1, 29), "1.31", "1.35"),
    ((1, 30), "1.32", "1.36"),
    ((1, 31), "1.32", "1.36"),
];

/// The published range of `version`'s minor, if it is known.
pub fn kubernetes(version: &semver::Version) -> Option<KubeRange> {
    SUPPORT
        .iter()
        .find(|(minor, _, _)| *minor == (version.major, version.minor))
        .map(|(_, min, max)| KubeRange {
            min: min.to_string(),
            max: max.to_string(),
        })
}
