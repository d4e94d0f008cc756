//! Object identity: what a rendered or live object is (`ObjectKey`), a rendered object with
//! the component it belongs to, a release's rendered set, and the labels meshup stamps.

use serde::Deserialize;
use serde_json::Value;

/// Labels meshup puts on everything it applies.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "meshup";
pub const COMPONENT_LABEL: &str = "meshup.dev/component";

/// One rendered object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub component: String,
    /// `component/file.yaml`
    pub source: String,
    pub value: Value,
}

impl Object {
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    /// `Deployment istio-system/istiod`
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(&self.value)
    }
}

/// Identity of an object: apiVersion's group, kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of(v: &Value) -> ObjectKey {
        ObjectKey {
            api_version: v["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: v["kind"].as_str().unwrap_or_default().to_string(),
            namespace: v["metadata"]["namespace"].as_str().map(str::to_string),
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The result of rendering a bundle.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Objects in apply order (component order, then file order, then document order).
    pub objects: Vec<Object>,
}

impl Rendered {
    /// The manifest as one multi-document YAML text, with `# Source:` lines.
    pub fn manifest(&self) -> String {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n# Source: ");
            out.push_str(&o.source);
            out.push('\n');
            out.push_str(&serde_yaml::to_string(&o.value).unwrap_or_default());
        }
        out
    }

    pub fn component<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| o.component == name)
    }

    /// Parse a manifest produced by `manifest()` back into objects (history re-apply).
    pub fn from_manifest(text: &str) -> anyhow::Result<Rendered> {
        let mut objects = Vec::new();
        for doc in text
            .split("\n---\n")
            .flat_map(|d| d.strip_prefix("---\n").or(Some(d)))
        {
            let source = doc
                .lines()
                .find_map(|l| l.strip_prefix("# Source: "))
                .unwrap_or_default()
                .to_string();
            let value: Value = serde_yaml::from_str(doc)?;
            if value.is_null() {
                continue;
            }
            let component = source.split('/').next().unwrap_or_default().to_string();
            objects.push(Object {
                component,
                source,
                value,
            });
        }
        Ok(Rendered { objects })
    }
}
