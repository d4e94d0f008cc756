//! The plan: target values and manifests, and how they differ from what runs.
//!
//! Object diffs are computed the way `kubectl diff` does: a server-side dry-run apply
//! gives the object as it would be, compared with the live object, so defaults and
//! other managers' fields do not show up as noise.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::base::object::{ObjectKey, Rendered};
use crate::base::values;
use crate::base::version::Direction;
use crate::cluster::client::without_server_fields;
use crate::cluster::kube::Kube;
use crate::engine::{cluster_specific, describe};
use crate::installed::installer::Previous;
use crate::installed::installers;
use crate::installed::state::Installed;
use crate::release::source::{BehaviourChange, Facts, Inputs, RenderContext, Source, Values};

/// What a run will do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Prune,
    /// What the run would do cannot be told: the caller may not read the live object, or
    /// may not ask the API server for the server-side dry run (a reader's precheck).
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub object: String,
    pub component: String,
    pub action: Action,
    /// Unified diff live → target (updates only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why the API server refuses the change (server-side dry-run), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// An update whose only change is metadata naming the version (`describe`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub version_only: bool,
    /// What an update changes besides that, one short line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
    #[serde(skip)]
    pub key: ObjectKey,
}

/// Which object diffs the plan shows: none (each change described in a line), those of
/// the changes beyond version metadata, or every one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffMode {
    #[default]
    Summary,
    Changes,
    Full,
}

impl Change {
    /// Whether `mode` shows this change's diff.
    pub fn diff_shown(&self, mode: DiffMode) -> bool {
        match mode {
            DiffMode::Summary => false,
            DiffMode::Changes => !self.version_only,
            DiffMode::Full => true,
        }
    }
}

pub use crate::base::values::ValueChange;

/// A value the user set last time, kept by this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptValue {
    pub path: String,
    pub value: Value,
}

/// Everything a run will do, computed before anything is changed.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub bundle: String,
    pub current_version: Option<String>,
    pub target_version: String,
    pub direction: Direction,
    pub namespace: String,
    pub profile: String,
    pub overlay: Value,
    pub values: Value,
    pub profile_defaults: Value,
    pub previous: Option<Previous>,
    pub changes: Vec<Change>,
    /// Profile defaults that changed between the releases and that the user does not set.
    pub profile_default_changes: Vec<ValueChange>,
    /// Values the user set last time that this run would revert.
    pub reverted_values: Vec<ValueChange>,
    /// Values the user set last time that this run keeps (an installer whose upgrade keeps
    /// them, as Helm's `--reset-then-reuse-values`; `--reset-values` drops them), by path
    /// (`istiod.pilot.env.X`: release first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_values: Vec<KeptValue>,
    /// Values the installer chose from the cluster that this run chooses differently.
    pub cluster_specific_changes: Vec<ValueChange>,
    /// Behaviour the target changes since the installed release (Istio's compatibility
    /// profiles), that this run does not pin.
    pub behaviour_changes: Vec<BehaviourChange>,
    /// The spec as istioctl's installed-state records it (profile, cluster, user).
    #[serde(skip)]
    pub installer_spec: Value,
    /// How long rendering the target took.
    pub render_seconds: f64,
    /// Both releases' defaults as templates read them (what policies compare).
    #[serde(skip)]
    pub effective_defaults: Option<EffectiveDefaults>,
    #[serde(skip)]
    pub rendered: Rendered,
}

/// The installed and the target release's defaults as their templates read them: each
/// release's charts' defaults under its profile.
#[derive(Debug, Clone)]
pub struct EffectiveDefaults {
    pub old: Value,
    pub new: Value,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn prunes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action == Action::Prune)
    }
}

/// The values of a run (no cluster I/O; `cluster` holds the values already chosen from
/// it) and the objects they render: the part `--dry-run`, precheck and upgrade share with
/// `meshup template`. The profile: `--profile`, else the one in the user's files, else last
/// run's (when the target has it), else the target's default.
pub fn values_and_render(
    source: &dyn Source,
    inputs: &Inputs,
    previous: Option<&Previous>,
    ctx: RenderContext<'_>,
    cluster: Value,
) -> anyhow::Result<(Values, Rendered, Duration)> {
    let fallback = previous
        .map(|p| p.profile.as_str())
        .filter(|p| source.profile(p).is_some())
        .unwrap_or(source.default_profile());
    let mut values = source.values(inputs, fallback, cluster)?;
    if let Some(p) = previous.filter(|p| p.keeps_values && !inputs.reset_values) {
        let overlay = under(&p.overlay, &values.overlay);
        values = source.layer(&values.profile, values.cluster.clone(), overlay)?;
    }
    let started = std::time::Instant::now();
    let rendered = source.render(&values.merged, ctx)?;
    Ok((values, rendered, started.elapsed()))
}

/// `overlay` over what was set last time, as Helm coalesces values: mappings merge key by
/// key, anything else (a list too) is replaced whole.
fn under(last: &Value, overlay: &Value) -> Value {
    let mut out = last.clone();
    values::merge_with(&mut out, overlay, values::Lists::Replace);
    out
}

/// What was set last time and is applied again as it was (not set anew by this run).
fn kept(previous: Option<&Previous>, inputs: &Inputs, overlay: &Value) -> Vec<KeptValue> {
    let Some(p) = previous.filter(|p| p.keeps_values && !inputs.reset_values) else {
        return vec![];
    };
    let now: std::collections::BTreeMap<String, Value> =
        values::leaves(overlay).into_iter().collect();
    values::leaves(&p.overlay)
        .into_iter()
        .filter(|(path, v)| now.get(path) == Some(v))
        .map(|(path, value)| KeptValue { path, value })
        .collect()
}

/// Build the plan against the live cluster.
pub async fn build(
    cluster: &dyn Kube,
    source: &dyn Source,
    installed: &Installed,
    inputs: &Inputs,
) -> anyhow::Result<Plan> {
    let previous = installers::previous(installed, source)?;
    let chosen = cluster_specific::choose(cluster, source.cluster_specific()).await?;
    let ctx = RenderContext {
        revision: crate::installed::state::DEFAULT_REVISION,
        kubernetes: Some(installed.kubernetes_version.trim_start_matches('v')),
        upgrade: installed.version().is_some(),
    };
    let (values, mut rendered, render_time) =
        values_and_render(source, inputs, previous.as_ref(), ctx, chosen)?;
    if let Some(installer) = installers::owner(installed) {
        installer.stamp(installed, &mut rendered);
    }
    let facts = source.facts();
    let current = installed.version().map(str::to_string);
    let target = facts.version.to_string();
    let mut changes = Vec::new();
    // Each diff is a GET and a dry-run apply; a few at a time, results kept in order.
    let versions = (current.as_deref(), target.as_str());
    let diffs: Vec<anyhow::Result<Change>> = futures::stream::iter(
        rendered
            .objects
            .iter()
            .map(|o| diff_object(cluster, o, versions)),
    )
    .buffered(8)
    .collect()
    .await;
    for d in diffs {
        changes.push(d?);
    }
    changes.extend(prune_candidates(previous.as_ref(), &rendered));
    let known: BTreeSet<ObjectKey> = changes.iter().map(|c| c.key.clone()).collect();
    changes.extend(owned_leftovers(cluster, facts, previous.as_ref(), &rendered, &known).await?);
    let effective_defaults = effective_defaults(source, previous.as_ref(), &values);
    let profile_default_changes = previous
        .as_ref()
        .zip(effective_defaults.as_ref())
        .filter(|(p, _)| p.profile == values.profile)
        .map(|(_, d)| changed_defaults(&d.old, &d.new, &values.overlay))
        .unwrap_or_default();
    let reverted_values = previous
        .as_ref()
        .map(|p| reverted(&p.overlay, &values.overlay, &values.merged))
        .unwrap_or_default();
    let kept_values = kept(previous.as_ref(), inputs, &values.overlay);
    let cluster_specific_changes = previous
        .as_ref()
        .and_then(|p| p.values.as_ref())
        .map(|old| cluster_specific::changed(source.cluster_specific(), old, &values))
        .unwrap_or_default();
    let behaviour_changes = behaviour_changes(source, installed, &values, ctx)?;
    let Values {
        profile,
        defaults,
        overlay,
        merged,
        spec: installer_spec,
        ..
    } = values;
    Ok(Plan {
        bundle: facts.id(),
        direction: Direction::between(current.as_deref(), &target),
        current_version: current,
        target_version: target,
        namespace: facts.namespace.clone(),
        profile,
        overlay,
        values: merged,
        profile_defaults: defaults,
        previous,
        changes,
        profile_default_changes,
        reverted_values,
        kept_values,
        cluster_specific_changes,
        behaviour_changes,
        effective_defaults,
        installer_spec,
        render_seconds: render_time.as_secs_f64(),
        rendered,
    })
}

/// On an upgrade, what the target changes in behaviour since the running release.
fn behaviour_changes(
    source: &dyn Source,
    installed: &Installed,
    values: &Values,
    ctx: RenderContext<'_>,
) -> anyhow::Result<Vec<BehaviourChange>> {
    let running = installed
        .version()
        .and_then(|v| semver::Version::parse(v).ok());
    match running {
        Some(v) if v < source.facts().version => source.behaviour_changes(&v, &values.merged, ctx),
        _ => Ok(vec![]),
    }
}

/// Both releases' defaults as their templates read them (each source's own defaults under
/// its profile): a value Istio moved from a profile into its charts has not changed.
fn effective_defaults(
    source: &dyn Source,
    previous: Option<&Previous>,
    values: &Values,
) -> Option<EffectiveDefaults> {
    let p = previous?;
    let old = p.profile_defaults.as_ref()?;
    let installed = p.version.as_deref().and_then(|v| source.release_of(v));
    let old = match &installed {
        Some(s) => s.effective_defaults(old),
        None => source.effective_defaults(old),
    };
    Some(EffectiveDefaults {
        old,
        new: source.effective_defaults(&values.defaults),
    })
}

async fn diff_object(
    cluster: &dyn Kube,
    o: &crate::base::object::Object,
    (from, to): (Option<&str>, &str),
) -> anyhow::Result<Change> {
    let key = o.key();
    let base = Change {
        object: key.to_string(),
        component: o.component.clone(),
        action: Action::Create,
        diff: None,
        rejected: None,
        version_only: false,
        summary: Vec::new(),
        key: key.clone(),
    };
    let unknown = Change {
        action: Action::Unknown,
        ..base.clone()
    };
    // A custom kind whose CRD this run creates (an install) has nothing of it yet.
    let live = match cluster.get_if_served(&key).await {
        Ok(Some(live)) => live,
        Ok(None) => return Ok(base),
        // The caller may not read it (the permissions finding names the verb).
        Err(e) if e.is_forbidden() => return Ok(unknown),
        Err(e) => return Err(e.into()),
    };
    let manager = installers::field_manager(&o.value);
    let merged = match cluster.apply(&o.value, true, manager).await {
        Ok(m) => m,
        // A dry run is authorized as the write itself: the caller may read, not change.
        Err(e) if e.is_forbidden() => return Ok(unknown),
        // A refusal (immutable field, invalid value) is a finding for the user, not a crash.
        Err(e) => match e.status() {
            Some(s) if e.is_refusal() => {
                return Ok(Change {
                    action: Action::Update,
                    rejected: Some(s.message.clone()),
                    ..base
                });
            }
            _ => return Err(e.into()),
        },
    };
    let (live, merged) = (without_server_fields(&live), without_server_fields(&merged));
    let (before, after) = (yaml(&live), yaml(&merged));
    if before == after {
        return Ok(Change {
            action: Action::Unchanged,
            ..base
        });
    }
    let described = describe::describe(&live, &merged, from, to);
    Ok(Change {
        action: Action::Update,
        diff: Some(unified(&key, &before, &after)),
        version_only: described.version_only,
        summary: described.summary,
        ..base
    })
}

/// Objects the previous release had that the target no longer has (`prune::dropped`).
fn prune_candidates(previous: Option<&Previous>, target: &Rendered) -> Vec<Change> {
    let Some(prev) = previous.and_then(|p| p.manifest.as_ref()) else {
        return vec![];
    };
    let keep: BTreeSet<ObjectKey> = target.objects.iter().map(|o| o.key()).collect();
    let keys: Vec<ObjectKey> = prev.objects.iter().map(|o| o.key()).collect();
    crate::engine::prune::dropped(&keys, &keep)
        .into_iter()
        .map(|key| Change {
            object: key.to_string(),
            component: prev
                .objects
                .iter()
                .find(|o| o.key() == key)
                .map(|o| o.component.clone())
                .unwrap_or_default(),
            action: Action::Prune,
            diff: None,
            rejected: None,
            version_only: false,
            summary: Vec::new(),
            key,
        })
        .collect()
}

/// Objects in the cluster that carry the installer's component label (as the release's
/// components declare it: istioctl's `operator.istio.io/component`), under any component and
/// whatever installer version stamped them, but that neither the target nor the previous
/// release renders: what an older release, or another installer, left. (`istioctl upgrade`
/// prunes only what carries its own version label, so an older release's leftovers stay.)
/// Only kinds the releases render are looked at, in the control-plane namespace or
/// cluster-wide; what an installer marks as never pruned (the revision tag `istioctl
/// install` adds) stays, and what may be removed at all is `prune::removable`'s rule.
async fn owned_leftovers(
    cluster: &dyn Kube,
    facts: &Facts,
    previous: Option<&Previous>,
    target: &Rendered,
    known: &BTreeSet<ObjectKey>,
) -> anyhow::Result<Vec<Change>> {
    let previous_objects = previous
        .and_then(|p| p.manifest.as_ref())
        .map(|m| m.objects.as_slice())
        .unwrap_or_default();
    let kinds: BTreeSet<(String, String)> = target
        .objects
        .iter()
        .chain(previous_objects)
        .filter(|o| !matches!(o.kind(), "CustomResourceDefinition" | "Namespace"))
        .map(|o| (o.api_version().to_string(), o.kind().to_string()))
        .collect();
    let label_keys: BTreeSet<&str> = facts
        .components
        .iter()
        .flat_map(|c| c.labels.keys().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for key in label_keys {
        for (api_version, kind) in &kinds {
            // A kind whose CRD is not there (yet) has no leftovers. The bare key selects
            // every value.
            let live = cluster
                .list_if_served(api_version, kind, None, Some(key))
                .await?;
            for o in live {
                let labels = &o["metadata"]["labels"];
                let key_of = ObjectKey::of(&o);
                let here = key_of
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| ns == facts.namespace);
                // Another control plane's (a canary revision's) objects are not ours.
                let ours = facts.discovery.revision_of(labels)
                    == crate::installed::state::DEFAULT_REVISION;
                let kept = labels[crate::engine::prune::NOT_PRUNED_LABEL] == "true";
                if here
                    && ours
                    && !kept
                    && !known.contains(&key_of)
                    && crate::engine::prune::removable(&key_of)
                    && !out.iter().any(|c: &Change| c.key == key_of)
                {
                    out.push(Change {
                        object: key_of.to_string(),
                        component: component_of(facts, labels, key),
                        action: Action::Prune,
                        diff: None,
                        rejected: None,
                        version_only: false,
                        summary: leftover_summary(labels),
                        key: key_of,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The release's component whose labels an object carries, else the label's own value (a
/// component the target does not have, such as an egress gateway turned off).
fn component_of(facts: &Facts, labels: &Value, key: &str) -> String {
    facts
        .components
        .iter()
        .find(|c| c.labels.iter().all(|(k, v)| labels[k] == v.as_str()))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| labels[key].as_str().unwrap_or_default().to_string())
}

/// Why a leftover goes: the installer version that left it, when its labels say.
fn leftover_summary(labels: &Value) -> Vec<String> {
    match labels["operator.istio.io/version"].as_str() {
        Some(v) => vec![format!(
            "left by istioctl {v}, not rendered by the target (istioctl upgrade prunes only its own version's)"
        )],
        None => vec![],
    }
}

/// Leaves whose default changed between releases and that the overlay does not set. A
/// value one release has and the other has not is a setting added or dropped (or moved
/// between Istio's profiles and its charts), not a changed default.
pub fn changed_defaults(old: &Value, new: &Value, overlay: &Value) -> Vec<ValueChange> {
    let old_leaves: std::collections::BTreeMap<_, _> = values::leaves(old).into_iter().collect();
    let set: BTreeSet<String> = values::leaves(overlay)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    values::leaves(new)
        .into_iter()
        // The image tag is the release itself, not a behaviour change.
        .filter(|(p, _)| !set.contains(p) && p != "tag")
        .filter_map(|(path, new)| {
            let old = old_leaves.get(&path)?.clone();
            (old != new).then_some(ValueChange { path, old, new })
        })
        .collect()
}

/// Values the previous overlay set that the new overlay drops (and so revert to a default).
pub fn reverted(old_overlay: &Value, new_overlay: &Value, merged: &Value) -> Vec<ValueChange> {
    let now: BTreeSet<String> = values::leaves(new_overlay)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let merged: std::collections::BTreeMap<_, _> = values::leaves(merged).into_iter().collect();
    values::leaves(old_overlay)
        .into_iter()
        .filter(|(p, _)| !now.contains(p))
        .filter_map(|(path, old)| {
            let new = merged.get(&path).cloned().unwrap_or(Value::Null);
            (!values::covers(&new, &old)).then_some(ValueChange { path, old, new })
        })
        .collect()
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// A unified diff with kubectl-diff-like headers.
pub fn unified(key: &ObjectKey, before: &str, after: &str) -> String {
    let name = format!(
        "{}.{}.{}.{}",
        key.api_version.replace('/', "."),
        key.kind,
        key.namespace.as_deref().unwrap_or(""),
        key.name
    );
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("LIVE/{name}"), &format!("MERGED/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_defaults_skip_what_the_user_sets() {
        let old = json!({"a": {"x": 1, "y": false}, "tag": "1.7.8"});
        let new = json!({"a": {"x": 2, "y": true}, "tag": "1.8.6"});
        let overlay = json!({"a": {"x": 5}});
        let got = changed_defaults(&old, &new, &overlay);
        assert_eq!(
            got,
            vec![ValueChange {
                path: "a.y".into(),
                old: json!(false),
                new: json!(true)
            }]
        );
    }

    fn helm_previous(overlay: Value) -> Previous {
        Previous {
            version: Some("1.29.6".into()),
            profile: "default".into(),
            profile_defaults: None,
            overlay,
            values: None,
            manifest: None,
            keeps_values: true,
        }
    }

    #[test]
    fn values_set_last_time_are_kept_under_this_runs_as_helm_coalesces_them() {
        let last = json!({"istiod": {"pilot": {"env": {"A": "1", "B": "2"}}, "tolerations": [{"key": "x"}]}});
        let now = json!({"istiod": {"pilot": {"env": {"B": "3"}}, "tolerations": [{"key": "y"}]}});
        let merged = under(&last, &now);
        // Mappings merge; a list is replaced whole, as Helm replaces it.
        assert_eq!(
            merged,
            json!({"istiod": {"pilot": {"env": {"A": "1", "B": "3"}}, "tolerations": [{"key": "y"}]}})
        );
        let p = helm_previous(last);
        let kept_paths: Vec<String> = kept(Some(&p), &Inputs::default(), &merged)
            .into_iter()
            .map(|k| k.path)
            .collect();
        assert_eq!(kept_paths, vec!["istiod.pilot.env.A".to_string()]);
        let reset = Inputs {
            reset_values: true,
            ..Default::default()
        };
        assert!(kept(Some(&p), &reset, &merged).is_empty());
    }

    #[test]
    fn reverted_values_are_found() {
        let old = json!({"values": {"pilot": {"traceSampling": 5.0}}, "meshConfig": {"accessLogFile": "/dev/stdout"}});
        let new = json!({"meshConfig": {"accessLogFile": "/dev/stdout"}});
        let merged = json!({"values": {"pilot": {"traceSampling": 1.0}}, "meshConfig": {"accessLogFile": "/dev/stdout"}});
        let got = reverted(&old, &new, &merged);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "values.pilot.traceSampling");
        assert_eq!(got[0].new, json!(1.0));
    }

    #[test]
    fn diffs_read_like_kubectl_diff() {
        let key = ObjectKey {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("istio-system".into()),
            name: "istiod".into(),
        };
        let d = unified(&key, "image: pilot:1.7.8\n", "image: pilot:1.8.6\n");
        assert!(
            d.contains("--- LIVE/apps.v1.Deployment.istio-system.istiod"),
            "{d}"
        );
        assert!(
            d.contains("-image: pilot:1.7.8") && d.contains("+image: pilot:1.8.6"),
            "{d}"
        );
    }
}
