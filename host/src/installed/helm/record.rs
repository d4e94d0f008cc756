//! Helm's release records: one Secret per revision, `sh.helm.release.v1.<release>.v<N>`.
//!
//! meshup reads them to learn what Helm installed (the chart, the values the user set, the
//! manifest applied, the status) and writes new revisions so that Helm afterwards sees an
//! upgrade it could have made itself. The format is Helm's Secret storage driver, the same
//! in v3 and v4 (`pkg/storage/driver/{secrets,util,labels}.go`, `pkg/release/v1`): type
//! `helm.sh/release.v1`, labels `owner=helm,name,status,version`, and `data.release` =
//! base64(gzip(JSON)), which the API shows base64-encoded once more.
//!
//! A record comes from the cluster, and anyone who may write a Secret in the namespace can
//! shape it: `decode` bounds every size before it allocates, never panics, and says which
//! Secret is wrong, what is wrong and what was expected. Whatever meshup does not interpret
//! is kept as it was read, so a record it rewrites (`deployed` → `superseded`) loses
//! nothing Helm stored. Pure functions over the Secret's JSON; the cluster I/O is elsewhere.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::base::text;

/// The Secret `type` of every Helm 3 and Helm 4 release record ("incremented only between
/// major versions"; v4 kept it).
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// Helm's `HelmStorageType` plus the dot before the release name (`makeKey`).
pub const NAME_PREFIX: &str = "sh.helm.release.v1.";
/// The `owner` label of every record; Helm lists releases with `owner=helm`.
pub const OWNER: &str = "helm";
/// The annotation meshup puts on the records it writes (Helm copies labels from revision
/// to revision, never annotations): a pending revision so marked is meshup's own hold.
pub const WRITTEN_BY: &str = "meshup.dev/written-by";
pub const MESHUP: &str = "meshup";
/// The labels Helm sets itself (`reservedLabels`); the rest are the release's own labels.
const SYSTEM_LABELS: [&str; 6] = [
    "createdAt",
    "modifiedAt",
    "name",
    "owner",
    "status",
    "version",
];
/// `data.release` as the API returns it. A Secret holds at most 1 MiB of data (here Helm's
/// base64 string), 1.33 MiB in the API's base64; anything longer is not from the API.
pub const MAX_DATA_CHARS: usize = 2 * 1024 * 1024;
/// The release JSON after decompression. Istio's largest record (istio-base: every CRD in
/// the chart's files and again in the manifest) should be a few MiB, and text that fits
/// 1 MiB gzipped rarely exceeds 20; a gzip bomb stops here.
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;
/// `config`, the values the user set, as JSON. meshup carries them into the next revision
/// and shows them in the plan; Istio values that users write are kilobytes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The gzip magic and deflate method: Helm gunzips only a payload that starts so (older
/// records were stored as plain JSON, and are still read).
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Go's `base64.StdEncoding`: padded standard alphabet, and (unlike the crate's default)
/// lenient about the unused bits of the last symbol, as Go's decoder is.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A release's status, as Helm names it (`pkg/release/common/status.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Unknown,
    Deployed,
    Uninstalled,
    Superseded,
    Failed,
    Uninstalling,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Unknown,
        Status::Deployed,
        Status::Uninstalled,
        Status::Superseded,
        Status::Failed,
        Status::Uninstalling,
        Status::PendingInstall,
        Status::PendingUpgrade,
        Status::PendingRollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }

    /// An operation is under way, or was interrupted: Helm refuses every later upgrade and
    /// rollback while the newest revision is pending (`IsPending`).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How Helm applied the release's objects (Helm 4's `apply_method`). A record without one
/// (every Helm 3 record) is client-side, and `helm upgrade` keeps it so by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyMethod {
    /// Client-side: three-way strategic merge patches.
    Csa,
    /// Server-side apply under field manager `helm`.
    Ssa,
}

/// `info`: when, what happened, and the status Helm prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Times as Helm wrote them (RFC 3339 with nanoseconds). Helm 3 writes `""` for an
    /// unset time and Helm 4 leaves it out; both read as `None` and are written left out,
    /// which both read back as unset.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_deployed: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_deployed: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted: Option<String>,
    /// "Install complete", "Upgrade complete", "Rollback to 3", "Preparing upgrade", …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(deserialize_with = "status")]
    pub status: Status,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Anything else (`resources`), kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The chart a revision was made from, kept whole as Helm stored it (metadata, templates,
/// values, files, schema, lock and v4's modification times) so a rewritten record keeps it;
/// the accessors read what meshup needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Chart(pub Map<String, Value>);

impl Chart {
    /// Chart.yaml as Helm parsed it.
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.0.get("metadata")?.as_object()
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata()?.get(key)?.as_str()
    }

    /// `istiod`, `base`, `gateway`.
    pub fn name(&self) -> Option<&str> {
        self.metadata_str("name")
    }

    /// The chart's version (Istio stamps the Istio version into it).
    pub fn version(&self) -> Option<&str> {
        self.metadata_str("version")
    }

    pub fn app_version(&self) -> Option<&str> {
        self.metadata_str("appVersion")
    }

    /// The chart's default values (its values.yaml).
    pub fn values(&self) -> Option<&Map<String, Value>> {
        self.0.get("values")?.as_object()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One revision of a Helm release: the JSON Helm stores, in the field order Helm writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub info: Info,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Chart::is_empty"
    )]
    pub chart: Chart,
    /// The values the user set (`-f`, `--set`), not merged with the chart's: what
    /// `helm get values` prints and what a later upgrade must set again.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub config: Map<String, Value>,
    /// Every rendered non-hook object, `---\n# Source: <chart>/templates/<file>\n…`. Helm's
    /// next upgrade deletes what is here and not in its own render.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    /// Istio's charts have none; kept as stored.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hooks: Vec<Value>,
    /// The revision (Helm calls it `version`).
    #[serde(rename = "version")]
    pub revision: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(
        default,
        deserialize_with = "apply_method",
        skip_serializing_if = "Option::is_none"
    )]
    pub apply_method: Option<ApplyMethod>,
    /// The release's own labels (`helm install --labels`), which live on the Secret, not
    /// in the JSON; Helm's system labels are left out, as Helm's `Get` leaves them out.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    /// Top-level keys a newer Helm may add, kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Release {
    /// Whether Helm applied it server-side (Helm 4's default); `helm upgrade
    /// --server-side=auto` follows this.
    pub fn server_side(&self) -> bool {
        self.apply_method == Some(ApplyMethod::Ssa)
    }
}

/// Helm 3 writes `""` for an unset time.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Go writes a nil map, slice or pointer as `null` when it has no `omitempty`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A status Helm knows, or an error that names the field and the choices.
fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
    let found = String::deserialize(d)?;
    Status::ALL
        .into_iter()
        .find(|s| s.as_str() == found)
        .ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            serde::de::Error::custom(format!(
                "info.status is {}, expected one of {}",
                shown(&found),
                known.join(", ")
            ))
        })
}

/// Helm treats an empty `apply_method` as unset.
fn apply_method<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ApplyMethod>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some("csa") => Ok(Some(ApplyMethod::Csa)),
        Some("ssa") => Ok(Some(ApplyMethod::Ssa)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "apply_method is {}, expected \"ssa\" or \"csa\"",
            shown(other)
        ))),
    }
}

/// The Secret of revision `revision` of release `release`.
pub fn secret_name(release: &str, revision: u32) -> String {
    format!("{NAME_PREFIX}{release}.v{revision}")
}

/// The label selector of one release's records (Helm's `History` query).
pub fn history_selector(release: &str) -> String {
    format!("name={release},owner={OWNER}")
}

/// The release and revision a Secret name stands for: `sh.helm.release.v1.istiod.v3` →
/// (`istiod`, 3). Release names may contain dots, so the revision is after the last `.v`;
/// it is written as Helm writes it (decimal, no sign, no leading zero).
pub fn parse_secret_name(name: &str) -> Option<(&str, u32)> {
    let (release, revision) = name.strip_prefix(NAME_PREFIX)?.rsplit_once(".v")?;
    let canonical = !revision.is_empty()
        && revision.bytes().all(|b| b.is_ascii_digit())
        && !revision.starts_with('0');
    if release.is_empty() || !canonical {
        return None;
    }
    Some((release, revision.parse().ok()?))
}

/// The revision of a Helm record, from its metadata alone (to list and order a release's
/// history before decoding any of it): `None` unless it is typed and labelled as Helm's,
/// and its name and `version` label agree.
pub fn revision_of(secret: &Value) -> Option<u32> {
    if secret.get("type")?.as_str()? != SECRET_TYPE {
        return None;
    }
    let labels = Labels::of(secret);
    if labels.get("owner") != Some(OWNER) {
        return None;
    }
    let (release, revision) = parse_secret_name(secret.pointer("/metadata/name")?.as_str()?)?;
    let agree = labels.get("name") == Some(release)
        && labels.get("version") == Some(revision.to_string().as_str());
    agree.then_some(revision)
}

/// Which Secret a record came from, for messages: `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
}

impl SecretRef {
    fn of(secret: &Value) -> SecretRef {
        let field = |key: &str| {
            secret
                .get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(|s| text::truncate(text::escape(s).into_owned(), 253))
                .unwrap_or_else(|| "?".to_string())
        };
        SecretRef {
            namespace: field("namespace"),
            name: field("name"),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret {}/{}", self.namespace, self.name)
    }
}

/// Which base64 layer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The API's encoding of the Secret's bytes.
    Api,
    /// Helm's own encoding of the gzip inside.
    Helm,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Api => "`data.release` (the API's base64 of the Secret's bytes)",
            Layer::Helm => "the Secret's bytes (Helm's base64 of the gzipped release)",
        })
    }
}

/// Why a Secret is not a Helm record meshup can use. Each names the Secret.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("Helm record {secret}: its type is {}, expected {SECRET_TYPE:?}", shown_opt(.found))]
    WrongType {
        secret: SecretRef,
        found: Option<String>,
    },
    #[error("Helm record {secret}: `data.release` is {found}, expected a string (Helm's record)")]
    NoData {
        secret: SecretRef,
        found: &'static str,
    },
    #[error(
        "Helm record {secret}: `data.release` is {size} bytes, over the {} MiB a Secret can \
         hold", mib(*.limit)
    )]
    DataTooLarge {
        secret: SecretRef,
        size: usize,
        limit: usize,
    },
    #[error("Helm record {secret}: {layer} is not base64: {source}")]
    NotBase64 {
        secret: SecretRef,
        layer: Layer,
        #[source]
        source: base64::DecodeError,
    },
    #[error(
        "Helm record {secret}: the release is gzip (it starts with 1f 8b 08) but does not \
         decompress (corrupt or truncated): {source}"
    )]
    Gzip {
        secret: SecretRef,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Helm record {secret}: the release decompresses to more than {} MiB; refused (a Helm \
         record of Istio is a few MiB)", mib(*.limit)
    )]
    Inflated { secret: SecretRef, limit: usize },
    #[error("Helm record {secret}: {}: {source}", if *.gzipped {
        "the decompressed release is not JSON"
    } else {
        "the release is neither gzip (no 1f 8b 08 header) nor JSON"
    })]
    NotJson {
        secret: SecretRef,
        gzipped: bool,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "Helm record {secret}: the JSON is not a Helm release ({source}); expected Helm's \
         release object (name, version, info.status, chart, config, manifest)"
    )]
    NotRelease {
        secret: SecretRef,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "Helm record {secret}: `config` (the values the user set) is {found}, expected an object"
    )]
    ConfigNotObject {
        secret: SecretRef,
        found: &'static str,
    },
    #[error(
        "Helm record {secret}: `config` (the values the user set) is {size} bytes of JSON, \
         over the {} MiB meshup accepts", mib(*.limit)
    )]
    ConfigTooLarge {
        secret: SecretRef,
        size: usize,
        limit: usize,
    },
    #[error(
        "Helm record {secret}: label `{label}` is {}, but the release it holds says {}",
        shown_opt(.found), shown(.expected)
    )]
    LabelMismatch {
        secret: SecretRef,
        label: &'static str,
        found: Option<String>,
        expected: String,
    },
    #[error(
        "Helm record {secret}: it holds revision {revision} of release {}, which Helm stores \
         as {}", shown(.release), shown(.expected)
    )]
    NameMismatch {
        secret: SecretRef,
        release: String,
        revision: u32,
        expected: String,
    },
    #[error(
        "Helm record {secret}: it holds a release of namespace {}; Helm stores a release's \
         records in its own namespace", shown(.release_namespace)
    )]
    NamespaceMismatch {
        secret: SecretRef,
        release_namespace: String,
    },
}

/// Text from the cluster, quoted, escaped and bounded for a message.
fn shown(s: &str) -> String {
    format!("\"{}\"", text::truncate(text::escape(s).into_owned(), 120))
}

fn mib(bytes: usize) -> usize {
    bytes / (1024 * 1024)
}

fn shown_opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "missing".to_string(), shown)
}

/// The release a Helm record Secret holds (`secret` as the API returns it, JSON), checked
/// to be what Helm would have written: type, both base64 layers, gzip (or Helm's older
/// plain JSON), the release JSON, and labels and name that agree with it.
pub fn decode(secret: &Value) -> Result<Release, RecordError> {
    let at = SecretRef::of(secret);
    check_type(secret, &at)?;
    let payload = payload(secret, &at)?;
    let gzipped = payload.get(..GZIP_MAGIC.len()) == Some(&GZIP_MAGIC[..]);
    let json = if gzipped {
        inflate(&payload, &at)?
    } else {
        payload
    };
    let mut release = parse(&json, gzipped, &at)?;
    drop(json);
    release.labels = agree(secret, &release, &at)?;
    Ok(release)
}

fn check_type(secret: &Value, at: &SecretRef) -> Result<(), RecordError> {
    let found = secret.get("type").and_then(Value::as_str);
    if found == Some(SECRET_TYPE) {
        return Ok(());
    }
    Err(RecordError::WrongType {
        secret: at.clone(),
        found: found.map(str::to_string),
    })
}

/// The bytes Helm encoded: both base64 layers off, the API's length bounded first.
fn payload(secret: &Value, at: &SecretRef) -> Result<Vec<u8>, RecordError> {
    let data = secret.pointer("/data/release");
    let Some(encoded) = data.and_then(Value::as_str) else {
        return Err(RecordError::NoData {
            secret: at.clone(),
            found: data.map_or("missing", kind),
        });
    };
    if encoded.len() > MAX_DATA_CHARS {
        return Err(RecordError::DataTooLarge {
            secret: at.clone(),
            size: encoded.len(),
            limit: MAX_DATA_CHARS,
        });
    }
    let not_base64 = |layer| {
        let secret = at.clone();
        move |source| RecordError::NotBase64 {
            secret,
            layer,
            source,
        }
    };
    let helm = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(not_base64(Layer::Api))?;
    GO_STD.decode(&helm).map_err(not_base64(Layer::Helm))
}

/// Gunzips at most `MAX_JSON_BYTES`, and never holds more: a stream that goes on past the
/// cap stops there (`take`), and the buffer grows by doubling up to the cap, not past it.
/// Go's gzip reader reads concatenated members, so this does too.
fn inflate(gz: &[u8], at: &SecretRef) -> Result<Vec<u8>, RecordError> {
    let mut limited = flate2::read::MultiGzDecoder::new(gz).take(MAX_JSON_BYTES as u64 + 1);
    let mut json = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match limited.read(&mut chunk) {
            Ok(0) => return Ok(json),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(RecordError::Gzip {
                    secret: at.clone(),
                    source,
                });
            }
        };
        if json.len() + n > MAX_JSON_BYTES {
            return Err(RecordError::Inflated {
                secret: at.clone(),
                limit: MAX_JSON_BYTES,
            });
        }
        if json.capacity() - json.len() < n {
            json.reserve_exact(json.capacity().max(n).min(MAX_JSON_BYTES - json.len()));
        }
        json.extend_from_slice(&chunk[..n]);
    }
}

/// The release JSON, with `config` checked (an object, bounded) before it is typed.
fn parse(json: &[u8], gzipped: bool, at: &SecretRef) -> Result<Release, RecordError> {
    let value: Value = serde_json::from_slice(json).map_err(|source| RecordError::NotJson {
        secret: at.clone(),
        gzipped,
        source,
    })?;
    check_config(&value, at)?;
    serde_json::from_value(value).map_err(|source| RecordError::NotRelease {
        secret: at.clone(),
        source,
    })
}

fn check_config(release: &Value, at: &SecretRef) -> Result<(), RecordError> {
    let config = match release.get("config") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(config)) => config,
        Some(other) => {
            return Err(RecordError::ConfigNotObject {
                secret: at.clone(),
                found: kind(other),
            });
        }
    };
    let size = json_len(config);
    if size > MAX_CONFIG_BYTES {
        return Err(RecordError::ConfigTooLarge {
            secret: at.clone(),
            size,
            limit: MAX_CONFIG_BYTES,
        });
    }
    Ok(())
}

/// The labels must say what the JSON says: Helm finds records by their labels (`owner`,
/// `name`, `version`; `status=deployed` for the deployed one) and prints the JSON, so a
/// record whose two halves disagree would make meshup and Helm see different releases.
/// Returns the release's own labels.
fn agree(
    secret: &Value,
    release: &Release,
    at: &SecretRef,
) -> Result<BTreeMap<String, String>, RecordError> {
    let labels = Labels::of(secret);
    let revision = release.revision.to_string();
    let expected = [
        ("owner", OWNER),
        ("name", release.name.as_str()),
        ("version", revision.as_str()),
        ("status", release.info.status.as_str()),
    ];
    for (label, want) in expected {
        let found = labels.get(label);
        if found != Some(want) {
            return Err(RecordError::LabelMismatch {
                secret: at.clone(),
                label,
                found: found.map(str::to_string),
                expected: want.to_string(),
            });
        }
    }
    let name = secret.pointer("/metadata/name").and_then(Value::as_str);
    let key = secret_name(&release.name, release.revision);
    if name != Some(key.as_str()) {
        return Err(RecordError::NameMismatch {
            secret: at.clone(),
            release: release.name.clone(),
            revision: release.revision,
            expected: key,
        });
    }
    let namespace = secret
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    if let Some(namespace) = namespace
        && !release.namespace.is_empty()
        && release.namespace != namespace
    {
        return Err(RecordError::NamespaceMismatch {
            secret: at.clone(),
            release_namespace: release.namespace.clone(),
        });
    }
    Ok(labels.custom())
}

/// A Secret's labels (string values only; the API allows no others).
struct Labels<'a>(Option<&'a Map<String, Value>>);

impl<'a> Labels<'a> {
    fn of(secret: &'a Value) -> Labels<'a> {
        Labels(
            secret
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        )
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0?.get(key)?.as_str()
    }

    /// All but Helm's own.
    fn custom(&self) -> BTreeMap<String, String> {
        self.0
            .into_iter()
            .flatten()
            .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()
    }
}

/// When a record is written, as Helm's driver stamps it: `createdAt` on Create,
/// `modifiedAt` on Update (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Created(i64),
    Modified(i64),
}

/// The Secret Helm would write for `release` (JSON for the API, so `data.release` carries
/// the API's base64 over Helm's): its name, namespace, type, the release's own labels, then
/// Helm's (`owner`, `name`, `status` from the JSON so the two agree, `version`, the stamp),
/// and base64(gzip at best compression(JSON)).
pub fn encode(release: &Release, stamp: Stamp) -> Value {
    let mut labels: Map<String, Value> = release
        .labels
        .iter()
        .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let (stamp_label, at) = match stamp {
        Stamp::Created(at) => ("createdAt", at),
        Stamp::Modified(at) => ("modifiedAt", at),
    };
    for (k, v) in [
        (stamp_label, at.to_string()),
        ("name", release.name.clone()),
        ("owner", OWNER.to_string()),
        ("status", release.info.status.as_str().to_string()),
        ("version", release.revision.to_string()),
    ] {
        labels.insert(k.to_string(), Value::String(v));
    }
    let mut metadata = json!({
        "name": secret_name(&release.name, release.revision),
        "labels": labels,
    });
    if !release.namespace.is_empty() {
        metadata["namespace"] = Value::String(release.namespace.clone());
    }
    let helm = GO_STD.encode(gzip(release));
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": SECRET_TYPE,
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(helm)},
    })
}

/// Helm's `encodeRelease` before its base64: the JSON, gzipped at best compression.
fn gzip(release: &Release) -> Vec<u8> {
    // Neither step can fail: every map in a Release has string keys, and the gzip writes
    // to memory.
    let json = serde_json::to_vec(release).expect("a Release always serializes");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// JSON's name for the kind of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The length of `v` as compact JSON, without building the text.
fn json_len(v: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Counting cannot fail: the writer never does, and the keys are strings.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four revisions written by real Helm v4.3.2 (testdata/README.md): 1 and 2 superseded,
    /// 3 deployed, 4 left `pending-upgrade` by a SIGKILL.
    const REAL: &str = include_str!("testdata/istiod-helm-v4.3.2.json");
    const API: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn real(revision: u32) -> Value {
        let list: Value = serde_json::from_str(REAL).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["metadata"]["labels"]["version"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    == Some(revision)
            })
            .unwrap()
            .clone()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// The bytes Helm stored in a Secret, both base64 layers off (tests read trusted data).
    fn stored(secret: &Value) -> Vec<u8> {
        let helm = API
            .decode(secret["data"]["release"].as_str().unwrap())
            .unwrap();
        API.decode(helm).unwrap()
    }

    fn stored_json(secret: &Value) -> Value {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&stored(secret)[..])
            .read_to_end(&mut json)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    /// `secret` holding `payload` as Helm's bytes (before Helm's base64).
    fn holding(secret: &Value, payload: &[u8]) -> Value {
        let mut s = secret.clone();
        s["data"]["release"] = Value::String(API.encode(API.encode(payload)));
        s
    }

    /// Revision 3 with its release JSON changed by `edit`, stored as Helm stores it.
    fn edited(edit: impl FnOnce(&mut Value)) -> Value {
        let secret = real(3);
        let mut json = stored_json(&secret);
        edit(&mut json);
        holding(&secret, &gz(&serde_json::to_vec(&json).unwrap()))
    }

    /// The error for `secret`, checked to name it.
    fn refused(secret: &Value) -> RecordError {
        let err = decode(secret).expect_err("a hostile record must be refused");
        let name = secret["metadata"]["name"].as_str().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("Secret istio-system/{name}")),
            "{err}"
        );
        err
    }

    #[test]
    fn reads_what_real_helm_wrote() {
        let expected = [
            (1, Status::Superseded, "1.29.6", "Install complete"),
            (2, Status::Superseded, "1.30.3", "Upgrade complete"),
            (3, Status::Deployed, "1.31.0-rc.0", "Upgrade complete"),
            (
                4,
                Status::PendingUpgrade,
                "1.31.0-rc.0",
                "Preparing upgrade",
            ),
        ];
        for (revision, status, version, description) in expected {
            let r = decode(&real(revision)).unwrap();
            assert_eq!((r.name.as_str(), r.revision), ("istiod", revision));
            assert_eq!(r.namespace, "istio-system");
            assert_eq!(r.info.status, status);
            assert_eq!(r.info.description, description);
            assert_eq!(r.chart.name(), Some("istiod"));
            assert_eq!(r.chart.version(), Some(version));
            assert_eq!(r.chart.app_version(), Some(version));
            assert_eq!(
                r.chart.values().unwrap()["_internal_defaults_do_not_set"]["global"]["tag"],
                version
            );
            assert_eq!(r.config["pilot"]["resources"]["requests"]["cpu"], "250m");
            assert_eq!(r.config["global"]["proxy"]["logLevel"], "debug");
            assert!(r.server_side(), "Helm 4 installs server-side");
            assert!(
                r.manifest
                    .starts_with("---\n# Source: istiod/templates/configmap.yaml\n")
            );
            assert!(r.info.first_deployed.is_some() && r.info.last_deployed.is_some());
            assert_eq!(r.info.deleted, None);
            // `--labels team=mesh` at install, carried by every revision; Helm's own are not
            // the release's.
            assert_eq!(
                r.labels,
                BTreeMap::from([("team".to_string(), "mesh".to_string())])
            );
            assert_eq!(r.hooks.len(), usize::from(revision == 4));
        }
    }

    #[test]
    fn the_interrupted_upgrade_is_pending() {
        let r = decode(&real(4)).unwrap();
        assert!(r.info.status.is_pending());
        assert!(!decode(&real(3)).unwrap().info.status.is_pending());
        let all = [
            ("unknown", false),
            ("deployed", false),
            ("uninstalled", false),
            ("superseded", false),
            ("failed", false),
            ("uninstalling", false),
            ("pending-install", true),
            ("pending-upgrade", true),
            ("pending-rollback", true),
        ];
        for (name, pending) in all {
            let status: Status = serde_json::from_value(json!(name)).unwrap();
            assert_eq!((status.as_str(), status.is_pending()), (name, pending));
            assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
        }
    }

    #[test]
    fn a_rewritten_record_keeps_everything_helm_stored() {
        for revision in 1..=4 {
            let secret = real(revision);
            let r = decode(&secret).unwrap();
            let again = encode(&r, Stamp::Modified(1_796_471_300));
            // The JSON inside, compared as values: every key Helm wrote (lock, schema,
            // modtime, schemamodtime, hooks' last_run, …) is there with its value.
            assert_eq!(
                stored_json(&again),
                stored_json(&secret),
                "revision {revision}"
            );
            assert_eq!(decode(&again).unwrap(), r);
        }
    }

    #[test]
    fn encode_writes_the_secret_helm_writes() {
        let mut r = decode(&real(3)).unwrap();
        r.info.status = Status::Superseded;
        // A system label in the release's own must not override Helm's.
        r.labels.insert("modifiedAt".into(), "1".into());
        let s = encode(&r, Stamp::Modified(1_796_471_300));
        assert_eq!(s["metadata"]["name"], "sh.helm.release.v1.istiod.v3");
        assert_eq!(s["metadata"]["namespace"], "istio-system");
        assert_eq!(s["type"], SECRET_TYPE);
        assert_eq!(
            s["metadata"]["labels"],
            json!({"modifiedAt": "1796471300", "name": "istiod", "owner": "helm",
                   "status": "superseded", "team": "mesh", "version": "3"})
        );
        let s = encode(&r, Stamp::Created(1_796_471_301));
        assert_eq!(s["metadata"]["labels"]["createdAt"], "1796471301");
        assert!(s["metadata"]["labels"].get("modifiedAt").is_none());
        assert_eq!(s["data"].as_object().unwrap().len(), 1);
        // gzip at best compression, as Go writes it: no name, no mtime, XFL 2, OS unknown
        // (real Helm's records start 1f 8b 08 00 00 00 00 00 02 ff).
        let inner = stored(&s);
        assert_eq!(inner[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
        assert_eq!(stored(&real(3))[..10], inner[..10]);
        // JSON and labels agree, so it reads back.
        assert_eq!(stored_json(&s)["info"]["status"], "superseded");
        assert_eq!(decode(&s).unwrap().info.status, Status::Superseded);
    }

    #[test]
    fn plain_json_records_are_read_as_helm_reads_them() {
        // Records stored before Helm compressed them: no gzip header, plain JSON.
        let secret = real(2);
        let json = serde_json::to_vec(&stored_json(&secret)).unwrap();
        let r = decode(&holding(&secret, &json)).unwrap();
        assert_eq!(r, decode(&secret).unwrap());
    }

    #[test]
    fn helm3_shapes_read_as_unset() {
        // Helm 3 writes `"deleted": ""` and no `apply_method`; Go may write null for nil.
        let secret = edited(|j| {
            j["info"]["deleted"] = json!("");
            j["info"]["resources"] = json!({"v1/ConfigMap": []});
            j.as_object_mut().unwrap().remove("apply_method");
            j["hooks"] = Value::Null;
            j["future_field"] = json!({"kept": true});
        });
        let r = decode(&secret).unwrap();
        assert_eq!(r.info.deleted, None);
        assert_eq!(r.apply_method, None);
        assert!(!r.server_side(), "a Helm 3 release stays client-side");
        let again = stored_json(&encode(&r, Stamp::Modified(0)));
        assert!(again["info"].get("deleted").is_none());
        assert_eq!(again["info"]["resources"], json!({"v1/ConfigMap": []}));
        assert_eq!(again["future_field"], json!({"kept": true}));
        assert!(again.get("apply_method").is_none());
    }

    #[test]
    fn secret_names_and_revisions() {
        assert_eq!(secret_name("istiod", 3), "sh.helm.release.v1.istiod.v3");
        assert_eq!(history_selector("istiod"), "name=istiod,owner=helm");
        assert_eq!(
            parse_secret_name("sh.helm.release.v1.istiod.v12"),
            Some(("istiod", 12))
        );
        // Release names may hold dots and `.v`.
        assert_eq!(
            parse_secret_name("sh.helm.release.v1.my.v2.gw.v3"),
            Some(("my.v2.gw", 3))
        );
        for bad in [
            "sh.helm.release.v1.istiod.v",
            "sh.helm.release.v1.istiod.v03",
            "sh.helm.release.v1.istiod.v+3",
            "sh.helm.release.v1.istiod.v3x",
            "sh.helm.release.v1.istiod.v99999999999",
            "sh.helm.release.v1..v3",
            "sh.helm.release.v2.istiod.v3",
            "meshup.istio.v3",
        ] {
            assert_eq!(parse_secret_name(bad), None, "{bad}");
        }
        for revision in 1..=4 {
            assert_eq!(revision_of(&real(revision)), Some(revision));
        }
        let mut s = real(2);
        s["metadata"]["labels"]["version"] = json!("3");
        assert_eq!(revision_of(&s), None, "name and label disagree");
        let mut s = real(2);
        s["type"] = json!("Opaque");
        assert_eq!(revision_of(&s), None, "not Helm's type");
        let mut s = real(2);
        s["metadata"]["labels"]["owner"] = json!("meshup");
        assert_eq!(revision_of(&s), None, "not Helm's");
        assert_eq!(revision_of(&json!("nonsense")), None);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 200 MiB of zeros, 200 KiB compressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..200 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let t = std::time::Instant::now();
        let err = refused(&holding(&real(3), &bomb));
        assert!(
            matches!(err, RecordError::Inflated { limit, .. } if limit == MAX_JSON_BYTES),
            "{err}"
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(60));
        // Exactly at the cap is not over it: it fails as JSON, not as a bomb.
        let err = refused(&holding(&real(3), &gz_of_zeros(MAX_JSON_BYTES)));
        assert!(
            matches!(err, RecordError::NotJson { gzipped: true, .. }),
            "{err}"
        );
    }

    fn gz_of_zeros(len: usize) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![0u8; len]).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_truncated_or_corrupt_gzip_is_refused() {
        let secret = real(3);
        let gz = stored(&secret);
        for cut in [10, gz.len() / 2, gz.len() - 4] {
            let err = refused(&holding(&secret, &gz[..cut]));
            assert!(
                matches!(err, RecordError::Gzip { .. }),
                "cut at {cut}: {err}"
            );
        }
        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 0xff;
        let err = refused(&holding(&secret, &bad_crc));
        assert!(matches!(err, RecordError::Gzip { .. }), "{err}");
        // Only the magic: a header that ends at once.
        let err = refused(&holding(&secret, &GZIP_MAGIC));
        assert!(matches!(err, RecordError::Gzip { .. }), "{err}");
    }

    #[test]
    fn neither_gzip_nor_json_is_refused() {
        let secret = real(3);
        for garbage in [&b"PK\x03\x04 a zip file"[..], b"", b"\x1f", b"\x1f\x8b"] {
            let err = refused(&holding(&secret, garbage));
            assert!(
                matches!(err, RecordError::NotJson { gzipped: false, .. }),
                "{garbage:?}: {err}"
            );
            assert!(err.to_string().contains("neither gzip"), "{err}");
        }
        // Gzip of something that is not JSON, and JSON nested past serde_json's depth limit.
        for inner in [b"not json".to_vec(), "[".repeat(100_000).into_bytes()] {
            let err = refused(&holding(&secret, &gz(&inner)));
            assert!(
                matches!(err, RecordError::NotJson { gzipped: true, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn base64_is_checked_at_both_layers() {
        let mut s = real(3);
        s["data"]["release"] = json!("*not base64*");
        let err = refused(&s);
        assert!(
            matches!(
                err,
                RecordError::NotBase64 {
                    layer: Layer::Api,
                    ..
                }
            ),
            "{err}"
        );
        s["data"]["release"] = json!(API.encode("*not base64 either*"));
        let err = refused(&s);
        assert!(
            matches!(
                err,
                RecordError::NotBase64 {
                    layer: Layer::Helm,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn only_helm_typed_secrets_with_data_are_read() {
        let mut s = real(3);
        s["type"] = json!("Opaque");
        let err = refused(&s);
        assert!(
            matches!(&err, RecordError::WrongType { found: Some(t), .. } if t == "Opaque"),
            "{err}"
        );
        assert!(err.to_string().contains("expected \"helm.sh/release.v1\""));
        s.as_object_mut().unwrap().remove("type");
        assert!(matches!(
            refused(&s),
            RecordError::WrongType { found: None, .. }
        ));

        let mut s = real(3);
        s["data"] = json!({});
        assert!(matches!(
            refused(&s),
            RecordError::NoData {
                found: "missing",
                ..
            }
        ));
        s["data"]["release"] = json!(42);
        assert!(matches!(
            refused(&s),
            RecordError::NoData {
                found: "a number",
                ..
            }
        ));
        s["data"]["release"] = json!("A".repeat(MAX_DATA_CHARS + 4));
        assert!(matches!(refused(&s), RecordError::DataTooLarge { .. }));
        // A Secret that is not even an object names what it can.
        let err = decode(&json!(null)).unwrap_err();
        assert!(err.to_string().contains("Secret ?/?"), "{err}");
    }

    #[test]
    fn json_that_is_not_a_release_is_refused() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: [(&str, Edit); 8] = [
            ("name not a string", Box::new(|j| j["name"] = json!(5))),
            (
                "no info",
                Box::new(|j| drop(j.as_object_mut().unwrap().remove("info"))),
            ),
            (
                "unknown status",
                Box::new(|j| j["info"]["status"] = json!("paused")),
            ),
            (
                "status not a string",
                Box::new(|j| j["info"]["status"] = json!(1)),
            ),
            (
                "no revision",
                Box::new(|j| drop(j.as_object_mut().unwrap().remove("version"))),
            ),
            ("negative revision", Box::new(|j| j["version"] = json!(-3))),
            (
                "unknown apply method",
                Box::new(|j| j["apply_method"] = json!("magic")),
            ),
            ("not an object", Box::new(|j| *j = json!([1, 2, 3]))),
        ];
        for (what, edit) in cases {
            let err = refused(&edited(edit));
            assert!(
                matches!(err, RecordError::NotRelease { .. }),
                "{what}: {err}"
            );
        }
        let err = refused(&edited(|j| j["info"]["status"] = json!("paused")));
        assert!(
            err.to_string()
                .contains("info.status is \"paused\", expected one of unknown, deployed,"),
            "{err}"
        );
    }

    #[test]
    fn config_must_be_a_bounded_object() {
        let err = refused(&edited(|j| j["config"] = json!("global.tag=1.30")));
        assert!(
            matches!(
                err,
                RecordError::ConfigNotObject {
                    found: "a string",
                    ..
                }
            ),
            "{err}"
        );
        let err = refused(&edited(|j| j["config"] = json!([1])));
        assert!(matches!(
            err,
            RecordError::ConfigNotObject {
                found: "an array",
                ..
            }
        ));
        // 2 MiB of one value: small once gzipped, so only the config bound stops it.
        let err = refused(&edited(|j| {
            j["config"]["meshConfig"]["huge"] = json!("x".repeat(2 * MAX_CONFIG_BYTES))
        }));
        assert!(
            matches!(err, RecordError::ConfigTooLarge { size, limit, .. }
                if size > 2 * MAX_CONFIG_BYTES && limit == MAX_CONFIG_BYTES),
            "{err}"
        );
        // No config (the user set nothing) is an empty one.
        let r = decode(&edited(|j| {
            drop(j.as_object_mut().unwrap().remove("config"))
        }))
        .unwrap();
        assert!(r.config.is_empty());
        let r = decode(&edited(|j| j["config"] = Value::Null)).unwrap();
        assert!(r.config.is_empty());
    }

    #[test]
    fn labels_and_name_must_agree_with_the_json() {
        let label_cases = [
            ("version", json!("2"), "\"2\""),
            ("name", json!("istio-base"), "\"istio-base\""),
            ("status", json!("superseded"), "\"superseded\""),
            ("owner", json!("meshup"), "\"meshup\""),
        ];
        for (label, value, shown) in label_cases {
            let mut s = real(3);
            s["metadata"]["labels"][label] = value;
            let err = refused(&s);
            assert!(
                matches!(&err, RecordError::LabelMismatch { label: l, .. } if *l == label),
                "{label}: {err}"
            );
            assert!(err.to_string().contains(shown), "{err}");
        }
        let mut s = real(3);
        s["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        let err = refused(&s);
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(err.to_string().contains("says \"deployed\""), "{err}");

        // JSON revision 2 in the Secret of revision 3, labels edited to match the JSON.
        let mut s = edited(|j| j["version"] = json!(2));
        s["metadata"]["labels"]["version"] = json!("2");
        let err = refused(&s);
        assert!(
            matches!(&err, RecordError::NameMismatch { expected, .. }
                if expected == "sh.helm.release.v1.istiod.v2"),
            "{err}"
        );

        let err = refused(&edited(|j| j["namespace"] = json!("default")));
        assert!(
            matches!(err, RecordError::NamespaceMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn hostile_text_is_escaped_and_bounded_in_messages() {
        let name = format!("\u{1b}[31mistiod\u{202e}{}", "x".repeat(10_000));
        let err = refused(&edited(|j| j["name"] = json!(name)));
        let msg = err.to_string();
        assert!(
            !msg.contains('\u{1b}') && !msg.contains('\u{202e}'),
            "{msg}"
        );
        assert!(msg.len() < 1_000, "{} bytes", msg.len());
    }
}
