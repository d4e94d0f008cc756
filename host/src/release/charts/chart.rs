//! One Helm chart as a release ships it: a chart directory, or a `.tgz` as `helm pull`
//! leaves it. Only what meshup reads is kept: `Chart.yaml`, `values.yaml` and
//! `values.schema.json`; Helm itself renders from the original path.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::base::yaml;

/// A `.tgz` larger than this, or a file in it larger than this, is not a chart.
const MAX_ARCHIVE: u64 = 64 << 20;

/// A chart that cannot be used (the user's input: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: not a Helm chart ({what})", path.display())]
    NotAChart { path: PathBuf, what: String },
    #[error(transparent)]
    Yaml(#[from] yaml::Error),
}

/// `Chart.yaml`, the fields meshup reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub app_version: Option<String>,
}

/// A chart: where it is and what it says.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The directory or `.tgz` Helm renders.
    pub path: PathBuf,
    pub metadata: Metadata,
    /// `values.yaml`, as a tree.
    pub values: Value,
    /// `values.schema.json`, when the chart has one.
    pub schema: Option<Value>,
    /// Istio's compatibility profiles (`files/profile-compatibility-version-<minor>.yaml`),
    /// by minor: what setting `compatibilityVersion` to that minor pins back.
    pub compatibility: BTreeMap<String, Value>,
}

impl Chart {
    /// Read a chart directory or `.tgz`.
    pub fn read(path: &Path) -> Result<Chart, Error> {
        let files = if path.is_dir() {
            Files::dir(path)?
        } else {
            Files::archive(path)?
        };
        let chart_yaml = files.chart.ok_or_else(|| Error::NotAChart {
            path: path.to_path_buf(),
            what: "no Chart.yaml".into(),
        })?;
        let metadata: Metadata = yaml::parse(&path.join("Chart.yaml"), &chart_yaml)?;
        let values = match files.values {
            Some(text) => yaml::parse::<Value>(&path.join("values.yaml"), &text)?,
            None => Value::Null,
        };
        let schema = files
            .schema
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        let mut compatibility = BTreeMap::new();
        for (minor, text) in files.compatibility {
            let at = path.join(format!("files/{COMPAT_PREFIX}{minor}.yaml"));
            compatibility.insert(minor, yaml::parse::<Value>(&at, &text)?);
        }
        Ok(Chart {
            path: path.to_path_buf(),
            metadata,
            values: if values.is_null() {
                Value::Object(Default::default())
            } else {
                values
            },
            schema,
            compatibility,
        })
    }
}

/// Files a chart is made of, read for Helm's release record at most (a chart bigger than
/// this is not Istio's).
const MAX_RECORD_FILES: usize = 2000;

impl Chart {
    /// The chart as Helm stores it in a release record (`chart` in the JSON): `metadata`
    /// (Chart.yaml), `templates` and `files` (each `{name, data}`, data base64 as Go writes
    /// a byte slice, sorted by name), `values` (values.yaml) and `schema`. Helm's loader
    /// sorts a chart's files the same way: Chart.yaml, values.yaml and values.schema.json
    /// are their own fields, `templates/` the templates, a subchart's files (`charts/`)
    /// its own chart, everything else `files`.
    pub fn record(&self) -> Result<Value, Error> {
        use base64::Engine as _;
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let bad = |what: &str| Error::NotAChart {
            path: self.path.clone(),
            what: what.into(),
        };
        let all = if self.path.is_dir() {
            dir_files(&self.path, &self.path)?
        } else {
            archive_files(&self.path)?
        };
        if all.len() > MAX_RECORD_FILES {
            return Err(bad("more than 2000 files"));
        }
        let (mut metadata, mut schema) = (Value::Null, Value::Null);
        let (mut templates, mut files) = (Vec::new(), Vec::new());
        for (name, data) in all {
            match name.as_str() {
                "Chart.yaml" => {
                    metadata = yaml::parse(&self.path.join(&name), &String::from_utf8_lossy(&data))?
                }
                "values.yaml" | "Chart.lock" => {}
                "values.schema.json" => schema = Value::String(b64(&data)),
                n if n.starts_with("charts/") => {}
                n if n.starts_with("templates/") => {
                    templates.push(serde_json::json!({"name": n, "data": b64(&data)}))
                }
                n => files.push(serde_json::json!({"name": n, "data": b64(&data)})),
            }
        }
        let mut out = serde_json::json!({
            "metadata": metadata,
            "lock": null,
            "templates": templates,
            "values": self.values,
            "schema": schema.clone(),
            "files": files,
        });
        // Go leaves a nil schema out of the JSON.
        if schema.is_null()
            && let Some(o) = out.as_object_mut()
        {
            o.remove("schema");
        }
        Ok(out)
    }
}

/// Every regular file under `dir`, named relative to `root` with `/`, sorted.
fn dir_files(root: &Path, dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Read { path, cause }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        if path.is_dir() {
            out.extend(dir_files(root, &path)?);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, std::fs::read(&path).map_err(read_err(&path))?));
        }
        if out.len() > MAX_RECORD_FILES {
            break;
        }
    }
    out.sort();
    Ok(out)
}

/// Every regular file of a chart archive, named without its top folder, sorted.
fn archive_files(path: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let bad = |what: &str| Error::NotAChart {
        path: path.to_path_buf(),
        what: what.into(),
    };
    let file = std::fs::File::open(path).map_err(|cause| Error::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(file)
        .take(MAX_ARCHIVE + 1)
        .read_to_end(&mut tar)
        .map_err(|_| bad("not a gzip archive"))?;
    if tar.len() as u64 > MAX_ARCHIVE {
        return Err(bad("larger than 64 MiB unpacked"));
    }
    let mut out: Vec<(String, Vec<u8>)> = tar_entries(&tar)
        .ok_or_else(|| bad("a broken tar archive"))?
        .into_iter()
        .filter_map(|(name, data)| Some((name.split_once('/')?.1.to_string(), data.to_vec())))
        .collect();
    out.sort();
    Ok(out)
}

const COMPAT_PREFIX: &str = "profile-compatibility-version-";

/// `files/profile-compatibility-version-1.29.yaml` → `1.29`.
fn compat_minor(file: &str) -> Option<String> {
    let name = file.strip_prefix("files/")?.strip_prefix(COMPAT_PREFIX)?;
    Some(name.strip_suffix(".yaml")?.to_string())
}

#[derive(Default)]
struct Files {
    chart: Option<String>,
    values: Option<String>,
    schema: Option<String>,
    compatibility: Vec<(String, String)>,
}

impl Files {
    fn dir(dir: &Path) -> Result<Files, Error> {
        let read = |name: &str| -> Result<Option<String>, Error> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            std::fs::read_to_string(&p)
                .map(Some)
                .map_err(|cause| Error::Read { path: p, cause })
        };
        let mut compatibility = Vec::new();
        for entry in std::fs::read_dir(dir.join("files")).into_iter().flatten() {
            let Ok(entry) = entry else { continue };
            let file = format!("files/{}", entry.file_name().to_string_lossy());
            if let Some(minor) = compat_minor(&file)
                && let Some(text) = read(&file)?
            {
                compatibility.push((minor, text));
            }
        }
        Ok(Files {
            chart: read("Chart.yaml")?,
            values: read("values.yaml")?,
            schema: read("values.schema.json")?,
            compatibility,
        })
    }

    /// A gzipped tar whose top folder is the chart (`istiod/Chart.yaml`), read within
    /// bounds: a huge or broken archive is an error, never a panic.
    fn archive(path: &Path) -> Result<Files, Error> {
        let mut files = Files::default();
        for (name, data) in archive_files(path)? {
            let text = || String::from_utf8_lossy(&data).into_owned();
            // The chart's own top-level files, not those of a subchart (`charts/x/...`).
            match name.as_str() {
                "Chart.yaml" => files.chart = Some(text()),
                "values.yaml" => files.values = Some(text()),
                "values.schema.json" => files.schema = Some(text()),
                file => {
                    if let Some(minor) = compat_minor(file) {
                        files.compatibility.push((minor, text()));
                    }
                }
            }
        }
        Ok(files)
    }
}

/// The regular files of a tar archive (ustar), `None` if a header is broken.
fn tar_entries(tar: &[u8]) -> Option<Vec<(String, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &header[r];
            let end = f.iter().position(|b| *b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).trim().to_string()
        };
        let size = u64::from_str_radix(&field(124..136), 8).ok()? as usize;
        let (name, prefix) = (field(0..100), field(345..500));
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let start = at + 512;
        let end = start.checked_add(size).filter(|e| *e <= tar.len())?;
        // `0` or NUL: a regular file; directories, links and PAX headers are skipped.
        if matches!(header[156], b'0' | 0) {
            out.push((name, &tar[start..end]));
        }
        at = start + size.div_ceil(512) * 512;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_file(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}\0", data.len());
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = b'0';
        let mut out = h;
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn an_archive_is_read_within_bounds() {
        let mut tar = tar_file(
            "istiod/Chart.yaml",
            b"name: istiod\nversion: 1.30.3\nappVersion: 1.30.3\n",
        );
        tar.extend(tar_file("istiod/values.yaml", b"a: 1\n"));
        tar.extend(tar_file("istiod/charts/sub/values.yaml", b"b: 2\n"));
        tar.extend(vec![0u8; 1024]);
        let entries = tar_entries(&tar).unwrap();
        assert_eq!(entries.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("istiod-1.30.3.tgz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let chart = Chart::read(&path).unwrap();
        assert_eq!(chart.metadata.app_version.as_deref(), Some("1.30.3"));
        assert_eq!(chart.values, serde_json::json!({"a": 1}));
        // A truncated archive or a size past its end is an error, not a panic.
        assert!(tar_entries(&tar[..530]).is_none());
        std::fs::write(&path, b"not gzip").unwrap();
        assert!(matches!(Chart::read(&path), Err(Error::NotAChart { .. })));
    }
}
