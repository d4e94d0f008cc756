//! Istio version tags as the host orders them (`1.8.6`, `1.9.0-beta.1`, `1.8-dev`;
//! parsed by `meshup_vocab::version`) and the [`Direction`] of a run.

use std::cmp::Ordering;

/// Compare two tags as versions (the shared vocabulary's order: `1.9.0-rc.2` <
/// `1.9.0-rc.10` < `1.9.0`); unparseable tags sort first, then by text.
pub use meshup_vocab::version::cmp_tags as cmp;

/// What moving from `current` to `target` is: the WIT enum a policy's context carries
/// (see `policy::bindings`).
pub use crate::base::wit::Direction;

impl Direction {
    pub fn between(current: Option<&str>, target: &str) -> Direction {
        match current {
            None => Direction::Install,
            // A release-branch build (`1.31-dev`) is the release it becomes (`1.31.0`).
            Some(c) if runs_release(c, target) => Direction::Reinstall,
            Some(c) => match cmp(c, target) {
                Ordering::Less => Direction::Upgrade,
                Ordering::Greater => Direction::Downgrade,
                Ordering::Equal => Direction::Reinstall,
            },
        }
    }
}

/// The tag of an image reference: `docker.io/istio/pilot:1.7.4-distroless` → `1.7.4`.
pub fn image_version(image: &str) -> Option<String> {
    let tag = meshup_vocab::version::image_tag(image)?;
    let tag = tag.strip_suffix("-distroless").unwrap_or(tag);
    Some(tag.to_string())
}

/// Whether an image tag runs the release `version` names: the same tag, or a release-branch
/// build of its minor (`1.31-dev`), which istioctl itself reads as that minor's `.0`.
pub fn runs_release(tag: &str, version: &str) -> bool {
    if tag == version {
        return true;
    }
    let (Some(t), Some(v)) = (
        meshup_vocab::Version::parse(tag),
        meshup_vocab::Version::parse(version),
    ) else {
        return false;
    };
    t.pre.as_deref() == Some("dev")
        && v.pre.is_none()
        && (t.major, t.minor, t.patch) == (v.major, v.minor, v.patch)
        && !tag.contains(&format!("{}.{}.", t.major, t.minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_tags() {
        assert_eq!(cmp("1.8-dev", "1.8.0"), Ordering::Less);
        assert_eq!(cmp("1.9.0-beta.1", "1.9.0"), Ordering::Less);
        assert_eq!(cmp("latest", "1.7.8"), Ordering::Less);
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

    #[test]
    fn a_release_branch_build_runs_the_first_patch_of_its_minor() {
        assert!(runs_release("1.31-dev", "1.31.0"));
        assert_eq!(
            Direction::between(Some("1.31-dev"), "1.31.0"),
            Direction::Reinstall
        );
        assert!(runs_release("1.30.3", "1.30.3"));
        assert!(!runs_release("1.31-dev", "1.31.1"));
        assert!(!runs_release("1.31.0-dev", "1.31.0-rc.0"));
        assert!(!runs_release("1.30.3", "1.31.0"));
    }
}
