//! Istio (and Kubernetes) version tags: `1.8.6`, `1.9.0-beta.1`, `1.8-dev`,
//! `1.7.4-distroless`, `v1.24.3+k3s1`, and image references like
//! `docker.io/istio/pilot:1.7.4-distroless` or `istio/pilot:1.8.6@sha256:…`.

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
    /// Image variant: `distroless`, `debug`.
    pub variant: Option<String>,
}

const VARIANTS: &[&str] = &["distroless", "debug"];

impl Version {
    /// Parse a tag or an image reference. `None` when there is no `major.minor` in it.
    pub fn parse(input: &str) -> Option<Version> {
        let s = input.trim();
        // Image reference: drop any digest, then take the tag after the last ':' of the last path segment.
        let s = s.split('@').next().unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        let tag = match last.rsplit_once(':') {
            Some((_, tag)) => tag,
            None => last,
        };
        let tag = tag.strip_prefix('v').unwrap_or(tag);
        let tag = tag.split('+').next().unwrap_or(tag);
        let (nums, suffix) = match tag.split_once('-') {
            Some((n, s)) => (n, Some(s)),
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
        let mut variant = None;
        let mut pre = suffix.map(str::to_string);
        if let Some(sfx) = suffix {
            for v in VARIANTS {
                if sfx == *v {
                    variant = Some(v.to_string());
                    pre = None;
                } else if let Some(p) = sfx.strip_suffix(&format!("-{v}")) {
                    variant = Some(v.to_string());
                    pre = Some(p.to_string());
                }
            }
        }
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
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
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
        assert_eq!(
            v("localhost:5000/istio/pilot:1.9.0-rc.1-debug")
                .pre
                .as_deref(),
            Some("rc.1")
        );
        assert_eq!(v("istio/pilot:1.8.6@sha256:abcd").patch, 6);
        assert_eq!(v("v1.24.3+k3s1").minor, 24);
        assert!(Version::parse("latest").is_none());
        assert!(Version::parse("istio/pilot").is_none());
    }

    #[test]
    fn ordering_and_distance() {
        assert!(v("1.9.0-beta.1") < v("1.9.0"));
        assert!(v("1.8.6") < v("1.9.0-beta.1"));
        assert!(
            v("1.7.4-distroless") == v("1.7.4")
                || v("1.7.4-distroless").cmp(&v("1.7.4")) == Ordering::Equal
        );
        assert_eq!(v("1.7.8").minor_distance(&v("1.9.0")), 2);
        assert_eq!(v("1.9.0").minor_distance(&v("1.8.6")), -1);
        assert_eq!(v("1.9.0").minor_distance(&v("2.0.0")), 991);
        assert_eq!(v("1.8.6").to_string(), "1.8.6");
    }
}
