//! The plan: target values and manifests, and how they differ from what runs.
//!
//! Object diffs are computed the way `kubectl diff` does: a server-side dry-run apply
//! gives the object as it would be, compared with the live object, so defaults and
//! other managers' fields do not show up as noise.

use std::collections::BTreeSet;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::base::object::{ObjectKey, Rendered};
use crate::base::values;
use crate::base::version::Direction;
use crate::cluster::client::without_server_fields;
use crate::cluster::kube::Kube;
use crate::installed::history::Release;
use crate::installed::state::Installed;
use crate::release::bundle::Bundle;
use crate::release::bundle::render;

/// What a run will do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Prune,
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
    #[serde(skip)]
    pub key: ObjectKey,
}

/// A value that differs between two trees.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueChange {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// The previous release's inputs, as far as they are known.
#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub version: Option<String>,
    pub profile: String,
    pub profile_defaults: Option<Value>,
    pub overlay: Value,
    pub values: Option<Value>,
    #[serde(skip)]
    pub manifest: Option<Rendered>,
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
    /// Values the installer chose from the cluster that this run chooses differently.
    pub cluster_specific_changes: Vec<ValueChange>,
    /// The spec as istioctl's installed-state records it (profile, cluster, user).
    #[serde(skip)]
    pub installer_spec: Value,
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

/// The user's inputs for a run.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub profile: Option<String>,
    pub value_files: Vec<std::path::PathBuf>,
    pub set: Vec<String>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn prunes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action == Action::Prune)
    }
}

/// What the previous run used, from meshup history or istioctl's installed-state.
pub fn previous(installed: &Installed, target: &Bundle) -> anyhow::Result<Option<Previous>> {
    if let Some(r) = &installed.release {
        return from_release(r, installed.version().map(str::to_string)).map(Some);
    }
    Ok(match &installed.method {
        crate::installed::state::InstallMethod::Istioctl { profile, spec } => Some(from_istioctl(
            installed.version().map(str::to_string),
            profile,
            spec,
            target,
        )),
        _ => None,
    })
}

/// istioctl stores the fully expanded spec: its profile merged with what the user set, its
/// own hub and tag, and the values it chose from the cluster. What the user set is that
/// spec minus Istio's expansion of the installed release's profile (the bundle of the
/// installed minor beside the target, whatever its patch), read in that release's spelling
/// (its aliases), without the release's hub and tag and the cluster-specific values. With
/// no bundle of the installed minor at hand, what the user set cannot be told apart from
/// what the profile set: the overlay is left unknown (`None` profile defaults).
pub fn from_istioctl(
    running: Option<String>,
    profile: &str,
    spec: &Value,
    target: &Bundle,
) -> Previous {
    let installed_bundle = running.as_deref().and_then(|v| bundle_of_minor(target, v));
    let Some(installed_bundle) = installed_bundle else {
        return Previous {
            version: running,
            profile: profile.to_string(),
            profile_defaults: None,
            overlay: Value::Object(Default::default()),
            values: None,
            manifest: None,
        };
    };
    let profile_tree = installed_bundle
        .profile(profile)
        .or_else(|_| installed_bundle.profile(crate::release::bundle::DEFAULT_PROFILE))
        .cloned()
        .unwrap_or_default();
    let mut spec = crate::release::iop::normalize(
        spec,
        &installed_bundle.manifest.aliases,
        crate::release::iop::Source::InstalledState,
    );
    let cluster = take_cluster_specific(&mut spec, &installed_bundle);
    drop_release_image(&mut spec, &profile_tree, running.as_deref());
    if let Some(m) = spec.as_object_mut() {
        m.remove("profile");
    }
    // What the charts default and the profile leaves unset is no more the user's than what
    // the profile sets (a `meshConfig.accessLogFile` of the profile's is a user's value).
    let mut unset_by_user = installed_bundle.charts.clone();
    installed_bundle
        .manifest
        .merge
        .merge(&mut unset_by_user, &profile_tree);
    let overlay = values::subtract(&spec, &unset_by_user, &crate::release::iop::is_free_form);
    let merged = layered(&installed_bundle, &profile_tree, &cluster, &overlay);
    let manifest = render::render(
        &installed_bundle,
        &merged,
        crate::installed::state::DEFAULT_REVISION,
    )
    .ok();
    Previous {
        version: running,
        profile: profile.to_string(),
        profile_defaults: Some(profile_tree),
        overlay,
        values: Some(merged),
        manifest,
    }
}

/// Rendering values, layer over layer: the charts' defaults under the installer's spec
/// (`installer_spec`).
fn layered(bundle: &Bundle, profile: &Value, cluster: &Value, overlay: &Value) -> Value {
    bundle.with_charts(&installer_spec(bundle, profile, cluster, overlay))
}

/// The spec as the installer merges it: the profile, the values chosen from the cluster,
/// the user's; each merged the installer's way.
fn installer_spec(bundle: &Bundle, profile: &Value, cluster: &Value, overlay: &Value) -> Value {
    let rule = &bundle.manifest.merge;
    let mut spec = profile.clone();
    rule.merge(&mut spec, cluster);
    rule.merge(&mut spec, overlay);
    spec
}

/// Remove the bundle's cluster-specific paths from `spec`, returning them as a tree: the
/// installer chose them from the cluster, the user did not.
fn take_cluster_specific(spec: &mut Value, bundle: &Bundle) -> Value {
    let mut taken = Value::Object(Default::default());
    for c in &bundle.manifest.cluster_specific {
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
        .and_then(|t| crate::installed::state::image_version(&format!("image:{t}")));
    if tag_version.is_some() && tag_version.as_deref() == running {
        m.remove("tag");
    }
}

/// The bundle of `version`'s minor release beside `target` (the newest patch there), or
/// `target` itself when it is of that minor.
fn bundle_of_minor(target: &Bundle, version: &str) -> Option<Bundle> {
    let minor = crate::release::bundle::parse_minor(version)?;
    let same_minor = |b: &Bundle| (b.version().major, b.version().minor) == minor;
    let siblings = std::fs::read_dir(target.dir.parent()?).ok()?;
    let newest = siblings
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(crate::release::bundle::MANIFEST_FILE).is_file())
        .filter_map(|p| Bundle::load(&p).ok())
        .filter(|b| b.manifest.name == target.manifest.name && same_minor(b))
        .max_by(|a, b| a.version().cmp(b.version()));
    newest.or_else(|| same_minor(target).then(|| target.clone()))
}

/// A recorded release as the previous one. Its manifest says what a run may prune, so an
/// unreadable one is an error, not a silent "nothing to prune".
pub fn from_release(r: &Release, running: Option<String>) -> anyhow::Result<Previous> {
    let manifest = Rendered::from_manifest(&r.manifest).map_err(|e| {
        anyhow::anyhow!(
            "the manifest recorded in revision {} is unreadable ({e:#}); see `meshup history`, or `meshup rollback --to N` to a readable revision",
            r.revision
        )
    })?;
    Ok(Previous {
        version: running.or_else(|| Some(r.version.clone())),
        profile: r.profile.clone(),
        profile_defaults: Some(r.profile_defaults.clone()),
        overlay: r.overlay.clone(),
        values: Some(r.values.clone()),
        manifest: Some(manifest),
    })
}

/// One run's values, layer by layer.
#[derive(Debug, Clone)]
pub struct Values {
    pub profile: String,
    /// The profile, expanded as the release's installer expands it.
    pub defaults: Value,
    /// The values the installer would choose from this cluster (cluster-specific).
    pub cluster: Value,
    /// What the user set in this run (`-f`, `--set`).
    pub overlay: Value,
    /// What templates render from: charts' defaults, profile, cluster, user.
    pub merged: Value,
}

/// Compute values and rendered objects (no cluster I/O; `cluster` holds the values already
/// chosen from it): the part `--dry-run`, precheck and upgrade share with `meshup template`.
pub fn values_and_render(
    bundle: &Bundle,
    inputs: &Inputs,
    previous: Option<&Previous>,
    revision: &str,
    cluster: Value,
) -> anyhow::Result<(Values, Rendered)> {
    let input = crate::release::iop::overlay_from(
        bundle.schema(),
        &bundle.manifest.aliases,
        &bundle.manifest.merge,
        &inputs.value_files,
        &inputs.set,
    )?;
    // --profile, else the IstioOperator's `profile`, else last run's, else `default`.
    let profile = inputs
        .profile
        .clone()
        .or(input.profile)
        .or_else(|| {
            previous
                .map(|p| p.profile.clone())
                .filter(|p| bundle.profiles.contains_key(p))
        })
        .unwrap_or_else(|| crate::release::bundle::DEFAULT_PROFILE.to_string());
    let defaults = bundle.profile(&profile)?.clone();
    let overlay = input.overlay;
    let merged = layered(bundle, &defaults, &cluster, &overlay);
    let rendered = render::render(bundle, &merged, revision).map_err(|e| {
        crate::base::exit::Exit::bad_input(format!(
            "rendering {} with these values: {e:#}",
            bundle.id()
        ))
    })?;
    let values = Values {
        profile,
        defaults,
        cluster,
        overlay,
        merged,
    };
    Ok((values, rendered))
}

/// The values the bundle's installer chooses from the cluster (istioctl's cluster-specific
/// settings), as it would choose them for this cluster.
pub async fn cluster_specific(cluster: &dyn Kube, bundle: &Bundle) -> anyhow::Result<Value> {
    let mut out = Value::Object(Default::default());
    for c in &bundle.manifest.cluster_specific {
        let holds = match (&c.if_served, &c.if_kubernetes_at_least) {
            (Some(s), _) => cluster.serves(&s.api_version, &s.resource).await?,
            (None, Some(min)) => {
                let running = crate::release::bundle::parse_minor(&cluster.server_version().await?);
                running.is_some() && running >= crate::release::bundle::parse_minor(min)
            }
            (None, None) => false,
        };
        let value = if holds {
            Some(&c.then)
        } else {
            c.otherwise.as_ref()
        };
        if let Some(v) = value {
            let path: Vec<&str> = c.path.split('.').collect();
            values::insert(&mut out, &path, v.clone());
        }
    }
    Ok(out)
}

/// Build the plan against the live cluster.
pub async fn build(
    cluster: &dyn Kube,
    bundle: &Bundle,
    installed: &Installed,
    inputs: &Inputs,
) -> anyhow::Result<Plan> {
    let previous = previous(installed, bundle)?;
    let revision = crate::installed::state::DEFAULT_REVISION;
    let chosen = cluster_specific(cluster, bundle).await?;
    let (values, rendered) =
        values_and_render(bundle, inputs, previous.as_ref(), revision, chosen)?;
    let current = installed.version().map(str::to_string);
    let target = bundle.version().to_string();
    let mut changes = Vec::new();
    // Each diff is a GET and a dry-run apply; a few at a time, results kept in order.
    let diffs: Vec<anyhow::Result<Change>> =
        futures::stream::iter(rendered.objects.iter().map(|o| diff_object(cluster, o)))
            .buffered(8)
            .collect()
            .await;
    for d in diffs {
        changes.push(d?);
    }
    changes.extend(prune_candidates(previous.as_ref(), &rendered));
    let known: BTreeSet<ObjectKey> = changes.iter().map(|c| c.key.clone()).collect();
    changes.extend(owned_leftovers(cluster, bundle, previous.as_ref(), &rendered, &known).await?);
    // Defaults as they reach the templates (the charts' under the profile), on both sides:
    // a value Istio moved from a profile into its charts has not changed.
    let effective_defaults = previous.as_ref().and_then(|p| {
        let old = p.profile_defaults.as_ref()?;
        let old_bundle = p
            .version
            .as_deref()
            .and_then(|v| bundle_of_minor(bundle, v));
        let old = old_bundle.as_ref().unwrap_or(bundle).with_charts(old);
        Some(EffectiveDefaults {
            old,
            new: bundle.with_charts(&values.defaults),
        })
    });
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
    let cluster_specific_changes = previous
        .as_ref()
        .and_then(|p| p.values.as_ref())
        .map(|old| changed_cluster_specific(bundle, old, &values))
        .unwrap_or_default();
    let installer_spec = installer_spec(bundle, &values.defaults, &values.cluster, &values.overlay);
    let Values {
        profile,
        defaults,
        overlay,
        merged,
        ..
    } = values;
    Ok(Plan {
        bundle: bundle.id(),
        direction: Direction::between(current.as_deref(), &target),
        current_version: current,
        target_version: target,
        namespace: bundle.namespace().to_string(),
        profile,
        overlay,
        values: merged,
        profile_defaults: defaults,
        previous,
        changes,
        profile_default_changes,
        reverted_values,
        cluster_specific_changes,
        effective_defaults,
        installer_spec,
        rendered,
    })
}

/// Cluster-specific values that differ from what runs and that the user does not set now:
/// the installer chose them from the cluster once, and this run chooses again.
fn changed_cluster_specific(bundle: &Bundle, old: &Value, values: &Values) -> Vec<ValueChange> {
    bundle
        .manifest
        .cluster_specific
        .iter()
        .filter_map(|c| {
            let path: Vec<&str> = c.path.split('.').collect();
            let set_now = values::lookup(&values.overlay, &path).is_some();
            let old = values::lookup(old, &path)?.clone();
            let new = values::lookup(&values.merged, &path)
                .cloned()
                .unwrap_or(Value::Null);
            (!set_now && old != new).then(|| ValueChange {
                path: c.path.clone(),
                old,
                new,
            })
        })
        .collect()
}

async fn diff_object(
    cluster: &dyn Kube,
    o: &crate::base::object::Object,
) -> anyhow::Result<Change> {
    let key = o.key();
    let base = Change {
        object: key.to_string(),
        component: o.component.clone(),
        action: Action::Create,
        diff: None,
        rejected: None,
        key: key.clone(),
    };
    // A custom kind whose CRD this run creates (an install) has nothing of it yet.
    let Some(live) = cluster.get_if_served(&key).await? else {
        return Ok(base);
    };
    let merged = match cluster.apply(&o.value, true).await {
        Ok(m) => m,
        // A refusal (immutable field, invalid value) is a finding for the user, not a crash.
        Err(e) => match e.status() {
            Some(s) if e.is_client_error() => {
                return Ok(Change {
                    action: Action::Update,
                    rejected: Some(s.message.clone()),
                    ..base
                });
            }
            _ => return Err(e.into()),
        },
    };
    let (before, after) = (
        yaml(&without_server_fields(&live)),
        yaml(&without_server_fields(&merged)),
    );
    if before == after {
        return Ok(Change {
            action: Action::Unchanged,
            ..base
        });
    }
    Ok(Change {
        action: Action::Update,
        diff: Some(unified(&key, &before, &after)),
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
            key,
        })
        .collect()
}

/// Objects in the cluster that carry a component's ownership labels (the installer's
/// component label, as the bundle declares it) but that neither the target nor the previous release
/// renders: what an older release, or another installer, left of a component this bundle
/// owns. Only kinds the releases render are looked at, in the control-plane namespace or
/// cluster-wide; what may be removed at all is `prune::removable`'s rule.
async fn owned_leftovers(
    cluster: &dyn Kube,
    bundle: &Bundle,
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
    let mut out = Vec::new();
    for c in bundle
        .manifest
        .components
        .iter()
        .filter(|c| !c.labels.is_empty())
    {
        let selector: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let selector = selector.join(",");
        for (api_version, kind) in &kinds {
            // A kind whose CRD is not there (yet) has no leftovers.
            let live = cluster
                .list_if_served(api_version, kind, None, Some(&selector))
                .await?;
            for o in live {
                let key = ObjectKey::of(&o);
                let here = key
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| ns == bundle.namespace());
                // Another control plane's (a canary revision's) objects are not ours.
                let ours = bundle
                    .manifest
                    .discovery
                    .revision_of(&o["metadata"]["labels"])
                    == crate::installed::state::DEFAULT_REVISION;
                if here && ours && !known.contains(&key) && crate::engine::prune::removable(&key) {
                    out.push(Change {
                        object: key.to_string(),
                        component: c.name.clone(),
                        action: Action::Prune,
                        diff: None,
                        rejected: None,
                        key,
                    });
                }
            }
        }
    }
    Ok(out)
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

    #[test]
    fn istioctl_overlay_is_the_installed_state_minus_the_installed_profile() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.8.6")).unwrap();
        let installed = Bundle::load(&dir.join("istio-1.7.8")).unwrap();
        // What istioctl 1.7 stores: the expanded profile, legacy duplicates, chart values
        // meshup does not model, and the two values the user set.
        let mut spec = installed.profile("default").unwrap().clone();
        spec["profile"] = json!("default");
        spec["values"]["global"]["hub"] = spec["hub"].clone();
        spec["values"]["pilot"]["replicaCount"] = json!(1);
        spec["values"]["pilot"]["autoscaleMax"] = json!(5);
        spec["values"]["global"]["arch"] = json!({"amd64": 2});
        spec["values"]["pilot"]["traceSampling"] = json!(5.0);
        spec["components"]["pilot"]["k8s"]["resources"] = json!({"requests": {"cpu": "1"}});
        let prev = from_istioctl(Some("1.7.8".into()), "default", &spec, &target);
        assert_eq!(
            prev.overlay,
            json!({"values": {"pilot": {"traceSampling": 5.0}},
                   "components": {"pilot": {"k8s": {"resources": {"requests": {"cpu": "1"}}}}}})
        );
        assert_eq!(
            prev.profile_defaults.as_ref(),
            Some(installed.profile("default").unwrap())
        );
        // Its manifest is 1.7.8's: the binding 1.8 renamed is there to be pruned.
        let manifest = prev.manifest.unwrap();
        assert!(
            manifest
                .objects
                .iter()
                .any(|o| o.name() == "istiod-pilot-istio-system")
        );
    }

    /// What a real istioctl 1.8.4 leaves for `--set profile=demo` and one value of the
    /// user's on a cluster without third-party tokens: only that value is the user's.
    #[test]
    fn an_installed_state_of_another_patch_holds_only_the_users_values() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.9.5")).unwrap();
        let installed = Bundle::load(&dir.join("istio-1.8.6")).unwrap();
        let mut spec = installed.profile("demo").unwrap().clone();
        spec["profile"] = json!("demo");
        spec["tag"] = json!("1.8.4");
        spec["installPackagePath"] = json!("");
        spec["values"]["global"]["jwtPolicy"] = json!("first-party-jwt");
        spec["values"]["pilot"]["env"] = json!({"ENABLE_LEGACY_FSGROUP_INJECTION": false});
        spec["values"]["pilot"]["traceSampling"] = json!(5.0);
        let prev = from_istioctl(Some("1.8.4".into()), "demo", &spec, &target);
        assert_eq!(
            prev.overlay,
            json!({"values": {"pilot": {"traceSampling": 5.0}}})
        );
        // 1.8's demo, not the target's: the installed minor's bundle, whatever its patch.
        assert_eq!(
            prev.profile_defaults.as_ref(),
            installed.profiles.get("demo")
        );
        // What istioctl chose from the cluster is what runs, not what the user set.
        let values = prev.values.unwrap();
        assert_eq!(values["values"]["global"]["jwtPolicy"], "first-party-jwt");
        assert_eq!(
            values["values"]["pilot"]["env"]["ENABLE_LEGACY_FSGROUP_INJECTION"],
            false
        );
    }

    /// Without a bundle of the installed minor, profile values cannot be told from the
    /// user's: nothing is taken for the user's.
    #[test]
    fn an_installed_state_of_an_unknown_minor_claims_no_user_values() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.9.5")).unwrap();
        let spec = json!({"tag": "1.5.10", "values": {"pilot": {"traceSampling": 5.0}}});
        let prev = from_istioctl(Some("1.5.10".into()), "default", &spec, &target);
        assert_eq!(prev.overlay, json!({}));
        assert!(prev.profile_defaults.is_none() && prev.manifest.is_none());
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
