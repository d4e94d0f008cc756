//! The Kubernetes versions each Istio minor is published to support (1.24 onwards), for
//! the `k8s-version` policy. A minor missing here has no range: the policy then says it
//! cannot tell (a warning), rather than guess.
//!
//! Sources: the release announcements on istio.io ("officially supported on Kubernetes
//! versions X to Y"; istio/istio.io `content/en/news/releases/1.N.x/announcing-1.N`): 1.24
//! (1.28–1.31), 1.25 (1.29–1.32), 1.26 (1.29–1.32; it expected 1.33 to follow in a patch,
//! which the range here does not assume), 1.27 (1.29–1.33), 1.30 and 1.31 (1.32–1.36); 1.28
//! (1.29–1.35) and 1.29 (1.31–1.35) from the announcement drafts in istio/istio.io.

use crate::release::source::KubeRange;

const SUPPORT: &[((u64, u64), &str, &str)] = &[
    ((1, 24), "1.28", "1.31"),
    ((1, 25), "1.29", "1.32"),
    ((1, 26), "1.29", "1.32"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ranges_from_1_24_and_none_before() {
        let range =
            |v: &str| kubernetes(&semver::Version::parse(v).unwrap()).map(|r| (r.min, r.max));
        assert_eq!(range("1.24.6"), Some(("1.28".into(), "1.31".into())));
        assert_eq!(range("1.30.3"), Some(("1.32".into(), "1.36".into())));
        // A minor without published data has no range: the policy warns, never guesses.
        assert_eq!(range("1.23.0"), None);
        assert_eq!(range("1.32.0"), None);
    }
}
