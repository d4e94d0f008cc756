//! `meshup policy list|inspect|test|replay`: one function per subcommand; the CLI only parses flags.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::config::Source;
use super::runtime::Runtime;
use super::{Evaluation, PolicyContext, PolicySet, RuntimeOptions, Snapshot, cache, replay};
use crate::exit::{Code, Exit};

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let all = std::iter::once(header.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for r in all {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `meshup policy list`: the configured policies, digests, grants.
pub fn list(config: Option<&Path>, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let set = PolicySet::load(config, opts)?;
    if json {
        let items: Vec<Value> = set
            .members()
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "source": m.source.to_string(),
                    "sha256": m.digest,
                    "version": m.loaded.as_ref().ok().map(|l| l.metadata.version.clone()),
                    "phases": m.loaded.as_ref().ok().map(|l| l.metadata.phases.clone()).unwrap_or_default(),
                    "grants": m.grants.as_ref(),
                    "config": m.config,
                    "enforce": if m.enforce_warn { "warn" } else { "block" },
                    "limits": m.limits,
                    "status": if m.loaded.is_ok() { "ok" } else { "refused" },
                    "reason": m.loaded.as_ref().err(),
                })
            })
            .collect();
        print_json(&json!({ "policies": items }));
    } else {
        let rows: Vec<Vec<String>> = set
            .members()
            .iter()
            .map(|m| {
                let (version, phases) = match &m.loaded {
                    Ok(l) => (
                        l.metadata.version.clone(),
                        l.metadata
                            .phases
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    Err(_) => ("-".into(), "-".into()),
                };
                let grants = if m.grants.is_empty() {
                    "-".to_string()
                } else {
                    m.grants
                        .iter()
                        .map(|g| g.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                vec![
                    m.name.clone(),
                    version,
                    m.source.to_string(),
                    m.digest.get(..12).unwrap_or("-").to_string(),
                    phases,
                    if m.enforce_warn { "warn" } else { "block" }.to_string(),
                    match &m.loaded {
                        Ok(_) => "ok".to_string(),
                        Err(e) => format!("REFUSED: {e}"),
                    },
                    grants,
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &[
                    "NAME", "VERSION", "SOURCE", "SHA256", "PHASES", "ENFORCE", "STATUS", "GRANTS"
                ],
                &rows
            )
        );
    }
    Ok(Code::Ok)
}

fn read_target(target: &str) -> anyhow::Result<(Source, Vec<u8>)> {
    let source = Source::parse(target, None).map_err(Exit::bad_input)?;
    let bytes = source
        .read()
        .map_err(|e| Exit::bad_input(format!("policy {target}: {e}")))?;
    Ok((source, bytes))
}

fn runtime(opts: &RuntimeOptions) -> anyhow::Result<Runtime> {
    let dir = if opts.no_cache {
        None
    } else {
        opts.cache_dir.clone().or_else(cache::default_dir)
    };
    Runtime::new(dir.as_deref())
}

/// `meshup policy inspect FILE.wasm|builtin:NAME`.
pub fn inspect(target: &str, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let (source, bytes) = read_target(target)?;
    let rt = runtime(&opts)?;
    let digest = cache::sha256_hex(&bytes);
    let component = rt
        .compile(&bytes, &digest)
        .map_err(|e| Exit::bad_input(format!("policy {source} refused: {e}")))?;
    let (imports, exports) = rt.interface(&component);
    let loaded = rt.load(&bytes);
    if json {
        let mut doc = json!({
            "source": source.to_string(), "sha256": digest, "size": bytes.len(),
            "imports": imports, "exports": exports,
        });
        match &loaded {
            Ok(l) => doc["metadata"] = serde_json::to_value(&l.metadata)?,
            Err(e) => doc["refused"] = json!(e),
        }
        print_json(&doc);
    } else {
        let mut out = String::new();
        writeln!(out, "source:   {source}")?;
        writeln!(out, "sha256:   {digest}")?;
        writeln!(out, "size:     {} bytes", bytes.len())?;
        if let Ok(l) = &loaded {
            let m = &l.metadata;
            writeln!(out, "name:     {} {}", m.name, m.version)?;
            writeln!(
                out,
                "phases:   {}",
                m.phases
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            writeln!(out, "about:    {}", m.description)?;
            writeln!(out, "config:   {}", m.default_config)?;
            writeln!(
                out,
                "reads:    {}",
                if m.reads.is_empty() {
                    "none".into()
                } else {
                    m.reads
                        .iter()
                        .map(|r| r.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            )?;
        }
        writeln!(out, "imports:")?;
        for i in &imports {
            writeln!(out, "  {i}")?;
        }
        writeln!(out, "exports:")?;
        for e in &exports {
            writeln!(out, "  {e}")?;
        }
        print!("{out}");
    }
    match loaded {
        Ok(_) => Ok(Code::Ok),
        Err(e) => Err(Exit::bad_input(format!("policy {source} refused: {e}")).into()),
    }
}

/// Options of `meshup policy test`.
pub struct TestArgs {
    pub target: String,
    pub context: PathBuf,
    pub objects: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

fn read_json(what: &str, path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Exit::bad_input(format!("cannot read {what} {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Exit::bad_input(format!("{what} {}: {e}", path.display())).into())
}

/// `meshup policy test FILE.wasm --context ctx.json [--objects objs.yaml] [--config cfg.json]`.
pub fn test(args: TestArgs, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let ctx: PolicyContext = serde_json::from_value(read_json("context file", &args.context)?)
        .map_err(|e| Exit::bad_input(format!("context file {}: {e}", args.context.display())))?;
    let snapshot = match &args.objects {
        Some(p) => Snapshot::from_yaml_file(p)?,
        None => Snapshot::default(),
    };
    let config = args
        .config
        .as_deref()
        .map(|p| read_json("config file", p))
        .transpose()?;
    let source = Source::parse(&args.target, None).map_err(Exit::bad_input)?;
    let set = PolicySet::single(source, config, opts)?;
    let evals = set.evaluate_all(ctx.phase, &ctx, &snapshot);
    let blocked = evals.iter().any(Evaluation::blocks);
    if json {
        let e = evals
            .first()
            .map(serde_json::to_value)
            .transpose()?
            .unwrap_or(Value::Null);
        print_json(&json!({ "evaluation": e, "blocked": blocked }));
    } else {
        for e in &evals {
            println!(
                "policy {} ({}): {} in {} µs",
                e.policy,
                &e.digest.get(..12).unwrap_or(""),
                e.outcome.describe(),
                e.duration.as_micros()
            );
            if e.findings.is_empty() {
                println!("  no findings");
            }
            for f in &e.findings {
                println!("  {:<7}  {}  {}", f.severity.as_str(), f.code, f.message);
                if let Some(s) = &f.subject {
                    println!("           subject: {s}");
                }
                if let Some(r) = &f.remediation {
                    println!("           fix: {r}");
                }
            }
        }
    }
    Ok(if blocked { Code::Blocked } else { Code::Ok })
}

/// `meshup policy replay --audit-log FILE [--line N]`.
pub fn replay(
    log: Option<&Path>,
    line: Option<usize>,
    opts: RuntimeOptions,
    json: bool,
) -> anyhow::Result<Code> {
    let log = log.ok_or_else(|| {
        Exit::bad_input("policy replay needs --audit-log FILE (the log to replay)")
    })?;
    let rt = runtime(&opts)?;
    let results = replay::replay(&rt, log, line)?;
    let mismatches = results.iter().filter(|r| !r.identical).count();
    if json {
        print_json(&json!({ "replayed": results, "identical": mismatches == 0 }));
    } else {
        for r in &results {
            if r.identical {
                println!(
                    "line {}: {} ({}): identical, {} finding(s)",
                    r.line, r.policy, r.phase, r.findings
                );
            } else {
                println!(
                    "line {}: {} ({}): MISMATCH: {}",
                    r.line,
                    r.policy,
                    r.phase,
                    r.differences.join("; ")
                );
            }
        }
    }
    if mismatches > 0 {
        anyhow::bail!(
            "replay: {mismatches} of {} evaluation(s) differ from the audit log",
            results.len()
        );
    }
    Ok(Code::Ok)
}
