//! Istio (and Kubernetes) version tags: `1.8.6`, `1.9.0-beta.1`, `1.8-dev`, `1.31-dev`,
//! `1.7.4-distroless`, `v1.24.3+k3s1`, and image references such as
//! `docker.io/istio/pilot:1.7.4-distroless` or `istio/pilot:1.8.6@sha256:…`.
//!
//! One parser for the host (plan direction, data-plane versions, bundle Kubernetes
//! ranges) and the policies (skew, Kubernetes support), which used to parse them four
//! ways.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    /// 0 when the tag has only `major.minor` (e.g. `1.8-dev`).
    pub patch: u64,
    /// Pre-release part: `beta.1`, `rc.0`, `alpha`, `dev`.
    pub pre: Option<String>,
    /// Image variant: `distroless`, `debug`. Not part of the version (ignored by ordering).
    pub variant: Option<String>,
}

const VARIANTS: &[&str] = &["distroless", "debug"];

/// The tag of an image reference without its digest (`istio/pilot:1.8.6@sha256:…` →
/// `1.8.6`); `None` when the reference has no tag. A registry port is not a tag.
pub fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

impl Version {
    /// Parse a tag or an image reference. `None` when there is no `major.minor[.patch]` in it.
    pub fn parse(input: &str) -> Option<Version> {
        let s = input.trim();
        let tag = image_tag(s).unwrap_or_else(|| s.split('@').next().unwrap_or(s));
        let tag = tag.strip_prefix('v').unwrap_or(tag);
        // Build metadata (`+k3s1`) is not part of the version.
        let tag = tag.split('+').next().unwrap_or(tag);
        let (nums, suffix) = match tag.split_once('-') {
            Some((n, s)) => (n, Some(s).filter(|s| !s.is_empty())),
            None => (tag, None),
        };
        let mut parts = nums.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        let (pre, variant) = split_variant(suffix);
        Some(Version {
            major,
            minor,
            patch,
            pre,
            variant,
        })
    }

    /// `major.minor`, e.g. `1.8`.
    pub fn minor_line(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// Minor versions from `self` to `other` (positive when `other` is newer);
    /// a major version change counts as 1000 minors.
    pub fn minor_distance(&self, other: &Version) -> i64 {
        (other.major as i64 - self.major as i64) * 1000 + (other.minor as i64 - self.minor as i64)
    }

    /// Same `major.minor` line.
    pub fn same_minor(&self, other: &Version) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

/// `rc.1-debug` → (`rc.1`, `debug`); `distroless` → (none, `distroless`).
fn split_variant(suffix: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(sfx) = suffix else {
        return (None, None);
    };
    for v in VARIANTS {
        if sfx == *v {
            return (None, Some(v.to_string()));
        }
        if let Some(p) = sfx.strip_suffix(&format!("-{v}")) {
            return (Some(p.to_string()), Some(v.to_string()));
        }
    }
    (Some(sfx.to_string()), None)
}

/// Pre-releases compare as semver says (`rc.2` < `rc.10`, numbers before words);
/// text that is not a semver pre-release compares as text.
fn cmp_pre(a: &str, b: &str) -> Ordering {
    match (semver::Prerelease::new(a), semver::Prerelease::new(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// Release order; a pre-release sorts before its release; the variant is ignored.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => cmp_pre(a, b),
            })
    }
}

impl fmt::Display for Version {
    /// `1.8-dev` shows as `1.8.0-dev`; the variant is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

/// Order two tags as versions; tags that do not parse sort first, among themselves by text.
pub fn cmp_tags(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn istio_tags() {
        assert_eq!(
            v("1.8.6"),
            Version {
                major: 1,
                minor: 8,
                patch: 6,
                pre: None,
                variant: None
            }
        );
        assert_eq!(v("1.9.0-beta.1").pre.as_deref(), Some("beta.1"));
        let dev = v("1.8-dev");
        assert_eq!(
            (dev.minor, dev.patch, dev.pre.as_deref()),
            (8, 0, Some("dev"))
        );
        assert_eq!(v("1.31-dev").to_string(), "1.31.0-dev");
        assert_eq!(v("1.8-dev").to_string(), "1.8.0-dev");
        assert_eq!(v(" v1.8.6 ").to_string(), "1.8.6");
        assert!(Version::parse("latest").is_none());
        assert!(Version::parse("istio/pilot").is_none());
        assert!(Version::parse("1").is_none());
        assert!(Version::parse("1.8.x").is_none());
    }

    #[test]
    fn image_references_and_kubernetes_versions() {
        let img = v("docker.io/istio/pilot:1.7.4-distroless");
        assert_eq!(
            (
                img.minor,
                img.patch,
                img.pre.clone(),
                img.variant.as_deref()
            ),
            (7, 4, None, Some("distroless"))
        );
        let rc = v("localhost:5000/istio/pilot:1.9.0-rc.1-debug");
        assert_eq!(
            (rc.pre.as_deref(), rc.variant.as_deref()),
            (Some("rc.1"), Some("debug"))
        );
        assert_eq!(v("istio/pilot:1.8.6@sha256:abcd").patch, 6);
        assert_eq!(v("v1.24.3+k3s1").minor, 24);
        assert_eq!(v("1.28+").minor, 28);
        assert_eq!(v("v1.30.2-gke.1").minor_line(), "1.30");
        assert_eq!(image_tag("localhost:5000/istio/pilot"), None);
        assert_eq!(image_tag("istio/pilot:1.8.6@sha256:ab"), Some("1.8.6"));
    }

    #[test]
    fn ordering_and_distance() {
        assert!(v("1.9.0-beta.1") < v("1.9.0"));
        assert!(v("1.8.6") < v("1.9.0-beta.1"));
        assert!(v("1.8-dev") < v("1.8.0"));
        assert_eq!(v("1.7.8").minor_distance(&v("1.9.0")), 2);
        assert_eq!(v("1.9.0").minor_distance(&v("1.8.6")), -1);
        assert_eq!(v("1.9.0").minor_distance(&v("2.0.0")), 991);
        assert!(v("1.9.5").same_minor(&v("1.9-dev")));
    }

    /// Cases where the host's semver-based parser and the SDK's parser disagreed.
    #[test]
    fn cases_the_old_parsers_disagreed_on() {
        // An image variant is not a pre-release (the host sorted it before 1.7.4).
        assert_eq!(v("1.7.4-distroless").cmp(&v("1.7.4")), Ordering::Equal);
        // Numeric pre-release parts compare as numbers (the SDK compared text: rc.10 < rc.2).
        assert!(v("1.9.0-rc.2") < v("1.9.0-rc.10"));
        assert!(v("1.9.0-alpha.1") < v("1.9.0-beta.0"));
        // Four numbers are not a version (the host took `1.2.3` and dropped the rest).
        assert!(Version::parse("1.2.3.4").is_none());
        // Image references are tags too (the host could not read them).
        assert_eq!(cmp_tags("istio/pilot:1.8.6", "1.8.6"), Ordering::Equal);
    }

    #[test]
    fn tags_that_do_not_parse_sort_first() {
        assert_eq!(cmp_tags("1.7.8", "1.8.6"), Ordering::Less);
        assert_eq!(cmp_tags("latest", "1.8.6"), Ordering::Less);
        assert_eq!(cmp_tags("1.8.6", "latest"), Ordering::Greater);
        assert_eq!(cmp_tags("a", "b"), Ordering::Less);
    }
}
