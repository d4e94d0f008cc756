//! Istio version tags as the host sees them (`1.8.6`, `1.9.0-beta.1`, `1.8-dev`).

use std::cmp::Ordering;

/// Parse a tag leniently into semver: a missing patch is 0 and a suffix becomes a pre-release.
pub fn parse(tag: &str) -> Option<semver::Version> {
    let tag = tag.trim().trim_start_matches('v');
    if let Ok(v) = semver::Version::parse(tag) {
        return Some(v);
    }
    let (core, pre) = match tag.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (tag, None),
    };
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().transpose().ok()?.unwrap_or(0);
    let mut v = semver::Version::new(major, minor, patch);
    if let Some(p) = pre {
        v.pre = semver::Prerelease::new(p).ok()?;
    }
    Some(v)
}

/// Compare two tags; unparseable tags sort first, then by text.
pub fn cmp(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// What moving from `current` to `target` is (also what a policy's context says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Install,
    /// The default of a policy context read from a file that leaves it out.
    #[default]
    Upgrade,
    Downgrade,
    Reinstall,
}

impl Direction {
    pub fn between(current: Option<&str>, target: &str) -> Direction {
        match current {
            None => Direction::Install,
            Some(c) => match cmp(c, target) {
                Ordering::Less => Direction::Upgrade,
                Ordering::Greater => Direction::Downgrade,
                Ordering::Equal => Direction::Reinstall,
            },
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Install => "install",
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
            Direction::Reinstall => "reinstall",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_tags() {
        assert_eq!(parse("1.8.6").unwrap().to_string(), "1.8.6");
        assert_eq!(parse("1.8-dev").unwrap().to_string(), "1.8.0-dev");
        assert_eq!(parse("1.9.0-beta.1").unwrap().to_string(), "1.9.0-beta.1");
        assert!(parse("latest").is_none());
        assert_eq!(
            Direction::between(Some("1.7.8"), "1.8.6"),
            Direction::Upgrade
        );
        assert_eq!(
            Direction::between(Some("1.8.6"), "1.7.8"),
            Direction::Downgrade
        );
        assert_eq!(
            Direction::between(Some("1.8.6"), "1.8.6"),
            Direction::Reinstall
        );
        assert_eq!(Direction::between(None, "1.8.6"), Direction::Install);
    }
}
