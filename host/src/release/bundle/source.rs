//! A built-in bundle as a `Source`: IstioOperator inputs (`iop`), Istio's own profiles
//! merged the way that release's istioctl merges them, the charts' defaults under them, and
//! minijinja templates.

use serde_json::Value;

use super::{Bundle, ClusterSpecific, DEFAULT_PROFILE, MANIFEST_FILE, parse_minor, render};
use crate::base::exit::Exit;
use crate::base::object::Rendered;
use crate::base::values;
use crate::release::iop;
use crate::release::source::{Facts, Inputs, Kind, RenderContext, Source, UserSet, Values};

impl Source for Bundle {
    fn facts(&self) -> &Facts {
        &self.facts
    }

    fn kind(&self) -> Kind {
        Kind::Bundle
    }

    fn profile(&self, name: &str) -> Option<&Value> {
        self.profiles.get(name)
    }

    fn default_profile(&self) -> &str {
        DEFAULT_PROFILE
    }

    fn values(&self, inputs: &Inputs, profile: &str, cluster: Value) -> anyhow::Result<Values> {
        let input = iop::overlay_from(
            self.schema(),
            &self.manifest.aliases,
            &self.manifest.merge,
            &inputs.value_files,
            &inputs.set,
        )?;
        // --profile, else the IstioOperator's `profile`, else the one the engine chose.
        let chosen = inputs.profile.clone().or(input.profile);
        self.layer(chosen.as_deref().unwrap_or(profile), cluster, input.overlay)
    }

    fn layer(&self, profile: &str, cluster: Value, overlay: Value) -> anyhow::Result<Values> {
        let defaults = Bundle::profile(self, profile)?.clone();
        let rule = &self.manifest.merge;
        let mut spec = defaults.clone();
        rule.merge(&mut spec, &cluster);
        rule.merge(&mut spec, &overlay);
        let merged = self.with_charts(&spec);
        Ok(Values {
            profile: profile.to_string(),
            defaults,
            cluster,
            overlay,
            spec,
            merged,
        })
    }

    fn effective_defaults(&self, profile: &Value) -> Value {
        self.with_charts(profile)
    }

    fn cluster_specific(&self) -> &[ClusterSpecific] {
        &self.manifest.cluster_specific
    }

    /// istioctl stores the fully expanded spec: its profile merged with what the user set,
    /// its own hub and tag, and the values it chose from the cluster. What the user set is
    /// that spec, read in this release's spelling (its aliases), minus the profile over the
    /// charts' defaults, without the release's hub and tag and the cluster's values.
    fn user_set(&self, profile: &str, spec: &Value, running: Option<&str>) -> UserSet {
        let profile_tree = Bundle::profile(self, profile)
            .or_else(|_| Bundle::profile(self, DEFAULT_PROFILE))
            .cloned()
            .unwrap_or_default();
        let mut spec = iop::normalize(spec, &self.manifest.aliases, iop::Source::InstalledState);
        let cluster = take_cluster_specific(&mut spec, &self.manifest.cluster_specific);
        drop_release_image(&mut spec, &profile_tree, running);
        if let Some(m) = spec.as_object_mut() {
            m.remove("profile");
        }
        // What the charts default and the profile leaves unset is no more the user's than
        // what the profile sets.
        let mut unset_by_user = self.charts.clone();
        self.manifest.merge.merge(&mut unset_by_user, &profile_tree);
        let overlay = values::subtract(&spec, &unset_by_user, &iop::is_free_form);
        UserSet { overlay, cluster }
    }

    fn render(&self, merged: &Value, ctx: RenderContext<'_>) -> anyhow::Result<Rendered> {
        render::render(self, merged, ctx.revision).map_err(|e| {
            Exit::bad_input(format!("rendering {} with these values: {e:#}", self.id())).into()
        })
    }

    /// The bundle of `version`'s minor release beside this one (the newest patch there),
    /// or this one when it is of that minor.
    fn release_of(&self, version: &str) -> Option<Box<dyn Source>> {
        let minor = parse_minor(version)?;
        let same_minor = |b: &Bundle| (b.version().major, b.version().minor) == minor;
        let siblings = std::fs::read_dir(self.dir.parent()?).ok()?;
        let newest = siblings
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(MANIFEST_FILE).is_file())
            .filter_map(|p| Bundle::load(&p).ok())
            .filter(|b| b.manifest.name == self.manifest.name && same_minor(b))
            .max_by(|a, b| a.version().cmp(b.version()));
        let found = newest.or_else(|| same_minor(self).then(|| self.clone()))?;
        Some(Box::new(found))
    }
}

/// Remove the cluster-specific paths from `spec`, returning them as a tree: the installer
/// chose them from the cluster, the user did not.
fn take_cluster_specific(spec: &mut Value, rules: &[ClusterSpecific]) -> Value {
    let mut taken = Value::Object(Default::default());
    for c in rules {
        let path: Vec<&str> = c.path.split('.').collect();
        if let Some(v) = values::remove(spec, &path) {
            values::insert(&mut taken, &path, v);
        }
    }
    taken
}

/// The release's own image registry and tag are never the user's: `hub` as the profile
/// has it, `tag` naming the installed version (`1.8.4`, `1.8.4-distroless`).
fn drop_release_image(spec: &mut Value, profile: &Value, running: Option<&str>) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    if m.get("hub") == profile.get("hub") {
        m.remove("hub");
    }
    let tag_version = m
        .get("tag")
        .and_then(Value::as_str)
        .and_then(|t| crate::base::version::image_version(&format!("image:{t}")));
    if tag_version.is_some() && tag_version.as_deref() == running {
        m.remove("tag");
    }
}
