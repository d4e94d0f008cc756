//! Simulated webhook backends: what a webhook server would do to an object.
//!
//! The simulator runs no webhook servers. A `MutatingWebhookConfiguration`
//! decides *whether* a webhook is called (see `admission::webhooks`); a
//! backend, given as configuration, says what the server behind it *does*:
//! labels, annotations, containers or volumes it adds, fields of an existing
//! named item (a container) it sets, filled in with facts of the server
//! itself (the image tag or prefix or an environment variable of a container
//! of the Deployment(s) its Service selects). Several backends may serve one
//! webhook, each for the objects carrying its `when` marks (the variants of a
//! server that picks what it does by an object's labels or annotations).
//! Nothing here knows a particular webhook: the definitions come from the
//! simulator's user.

mod mutation;
mod server;

use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub use server::{image_prefix, image_tag};

/// The simulated webhook backends (`SimConfig::webhook_backends`,
/// `--webhook-backends FILE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBackends {
    #[serde(default)]
    pub backends: Vec<WebhookBackend>,
}

/// One simulated webhook server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookBackend {
    /// The `webhooks[].name`s this backend serves (empty: any name).
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// The Service (`clientConfig.service.name`) this backend serves (none: any).
    #[serde(default)]
    pub service: Option<String>,
    /// Serves only objects carrying all of these (none: every object); another
    /// backend serving the same webhook, later in the list, serves the rest.
    #[serde(default)]
    pub when: Marks,
    /// Facts of the server, used as `${name}` in `add`, `set` and `addIfAbsent`.
    #[serde(default)]
    pub vars: BTreeMap<String, ServerFact>,
    /// The server's own opt-out: objects carrying any of these are left unchanged.
    #[serde(default)]
    pub skip_when: Marks,
    /// Merged into the object: maps key by key, lists appended to, other values set.
    #[serde(default)]
    pub add: Value,
    /// Set in the object: maps key by key, a list item with a `name` merged
    /// into the object's item of that name (appended when it has none), other
    /// values (other lists too) replaced.
    #[serde(default)]
    pub set: Value,
    /// Merged like `add` (after `set`), but a value is only set where the
    /// object has none.
    #[serde(default)]
    pub add_if_absent: Value,
}

/// A fact of the webhook server, read from the pod template of the first
/// Deployment (by name) its Service selects that has `container`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerFact {
    /// The container of the server's pod template to read.
    pub container: String,
    /// Read the tag of its image (`latest` when the image names none).
    #[serde(default)]
    pub image_tag: bool,
    /// Read what precedes its image's last name component, the registry and
    /// path (`example.com/team` of `example.com/team/server:2.1`); none when
    /// the image has no `/`.
    #[serde(default)]
    pub image_prefix: bool,
    /// Read the value of this environment variable.
    #[serde(default)]
    pub env: Option<String>,
    /// The value when it cannot be read (no such container or variable).
    #[serde(default)]
    pub default: Option<String>,
    /// The fact is empty when its value is this; a label or annotation whose
    /// value comes out empty is not added.
    #[serde(default)]
    pub empty_if: Option<String>,
}

/// Labels and annotations (key → value) an object may carry: those that make
/// the server skip it (`skipWhen`: any of them), or those it must carry for a
/// backend to serve it (`when`: all of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marks {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Marks {
    /// The marks the object carries (label or annotation present with that value).
    fn carried<'a>(&'a self, object: &'a Value) -> impl Iterator<Item = bool> + 'a {
        let has = move |section: &str, k: &str, v: &str| {
            object
                .pointer(&format!("/metadata/{section}"))
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                == Some(v)
        };
        let labels = self.labels.iter().map(move |(k, v)| has("labels", k, v));
        let annotations = self
            .annotations
            .iter()
            .map(move |(k, v)| has("annotations", k, v));
        labels.chain(annotations)
    }

    /// Whether the object carries any of them (none given: false).
    fn any_on(&self, object: &Value) -> bool {
        self.carried(object).any(|c| c)
    }

    /// Whether the object carries all of them (none given: true).
    fn all_on(&self, object: &Value) -> bool {
        self.carried(object).all(|c| c)
    }
}

/// A backend definition that cannot be used, with where it is wrong. The
/// underlying error is the `source`, not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum BackendConfigError {
    #[error("cannot read the webhook backends file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "webhook backends{origin}: not a valid definition (see sim/README.md, \"Webhook backends\")"
    )]
    Parse {
        origin: String,
        source: serde_yaml::Error,
    },
    #[error("webhook backends{origin}, backend #{index}: {problem}")]
    Invalid {
        origin: String,
        index: usize,
        problem: String,
    },
}

impl WebhookBackends {
    /// Parses and checks a YAML (or JSON) definition.
    pub fn from_yaml(text: &str) -> Result<Self, BackendConfigError> {
        Self::parse(text, String::new())
    }

    /// Reads, parses and checks a definition file.
    pub fn from_file(path: &Path) -> Result<Self, BackendConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| BackendConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, format!(" in {}", path.display()))
    }

    fn parse(text: &str, origin: String) -> Result<Self, BackendConfigError> {
        let backends: WebhookBackends =
            serde_yaml::from_str(text).map_err(|source| BackendConfigError::Parse {
                origin: origin.clone(),
                source,
            })?;
        for (index, b) in backends.backends.iter().enumerate() {
            b.check().map_err(|problem| BackendConfigError::Invalid {
                origin: origin.clone(),
                index,
                problem,
            })?;
        }
        Ok(backends)
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The backend serving a webhook of a configuration for this object, if
    /// any: the first that serves the webhook and whose `when` the object meets.
    pub fn serving(&self, webhook: &Value, object: &Value) -> Option<&WebhookBackend> {
        let name = webhook.get("name").and_then(Value::as_str)?;
        let service = webhook
            .pointer("/clientConfig/service/name")
            .and_then(Value::as_str);
        self.backends.iter().find(|b| {
            (b.webhooks.is_empty() || b.webhooks.iter().any(|w| w == name))
                && b.service.as_deref().is_none_or(|s| Some(s) == service)
                && b.when.all_on(object)
        })
    }
}

impl WebhookBackend {
    /// A definition error caught at load time rather than at the first request.
    fn check(&self) -> Result<(), String> {
        if self.webhooks.is_empty() && self.service.is_none() {
            return Err(
                "names neither `webhooks` nor `service`: it would serve every webhook".into(),
            );
        }
        for (name, fact) in &self.vars {
            let sources = [fact.image_tag, fact.image_prefix, fact.env.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(format!(
                    "var `{name}`: give exactly one of `imageTag: true`, `imagePrefix: true` or `env`"
                ));
            }
        }
        let templates = [&self.add, &self.set, &self.add_if_absent];
        for used in templates.into_iter().flat_map(mutation::placeholders) {
            let name = used?;
            if !self.vars.contains_key(&name) {
                return Err(format!(
                    "`${{{name}}}` is used but not defined under `vars`"
                ));
            }
        }
        Ok(())
    }

    /// Runs the simulated server on `object` (the webhook applies to it).
    /// Returns whether the object changed. An object the server skips, or
    /// would add an already present named item to, is left unchanged; so is
    /// every object while a fact of the server cannot be read (its Service or
    /// Deployment is missing): the simulator treats an unreachable webhook
    /// server as `failurePolicy: Ignore`.
    pub fn mutate(&self, store: &Store, webhook: &Value, object: &mut Value) -> bool {
        if self.skips(object) {
            return false;
        }
        let Some(facts) = server::facts(store, webhook, &self.vars) else {
            return false;
        };
        self.apply(object, &facts)
    }

    /// Runs the backend as a real server would, outside the simulator: with the facts
    /// of its own pod (`server_spec`, the pod spec of the server that was called). An
    /// HTTPS webhook server standing in for the real one on a real API server uses it.
    pub fn mutate_as(&self, server_spec: &Value, object: &mut Value) -> bool {
        if self.skips(object) {
            return false;
        }
        let Some(facts) = server::facts_of(&[server_spec], &self.vars) else {
            return false;
        };
        self.apply(object, &facts)
    }

    fn apply(&self, object: &mut Value, facts: &BTreeMap<String, String>) -> bool {
        let templates = mutation::Templates {
            add: &self.add,
            set: &self.set,
            add_if_absent: &self.add_if_absent,
        };
        mutation::apply(object, &templates, facts)
    }

    fn skips(&self, object: &Value) -> bool {
        self.skip_when.any_on(object)
    }
}
