//! `meshup policy list|inspect|test|replay`: one function per subcommand; the CLI only parses flags.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::base::exit::{Code, Exit};
use crate::base::text::{block, escape, one_line};
use crate::cli::ui::print_json;
use crate::policy::config::Source;
use crate::policy::error::Error;
use crate::policy::runtime::Runtime;
use crate::policy::set::Member;
use crate::policy::{
    Evaluation, Finding, PolicyContext, PolicySet, RuntimeOptions, Snapshot, audit, cache, replay,
};

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

/// `meshup policy list`: the configured policies, digests, grants.
pub fn list(config: Option<&Path>, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let set = PolicySet::load(config, opts)?;
    if json {
        let items: Vec<Value> = set.members().iter().map(member_json).collect();
        print_json(&json!({ "policies": items }))?;
    } else {
        let rows: Vec<Vec<String>> = set.members().iter().map(member_row).collect();
        print!(
            "{}",
            table(
                &[
                    "NAME", "VERSION", "SOURCE", "SHA256", "PHASES", "ENFORCE", "STATUS", "GRANTS"
                ],
                &rows
            )
        );
        for r in set.replacements() {
            println!("note: {}", one_line(&r));
        }
    }
    Ok(Code::Ok)
}

/// One policy of `policy list -o json`.
fn member_json(m: &Member) -> Value {
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
        "replaces": m.replaces.as_ref().map(|b| format!("builtin:{b}")),
        "status": if m.loaded.is_ok() { "ok" } else { "refused" },
        "reason": m.loaded.as_ref().err(),
    })
}

/// One row of the `policy list` table; the policy's own text made one inert line.
fn member_row(m: &Member) -> Vec<String> {
    let (version, phases) = match &m.loaded {
        Ok(l) => (
            one_line(&l.metadata.version),
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
        one_line(
            &m.grants
                .iter()
                .map(|g| g.describe())
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    vec![
        one_line(&m.name),
        version,
        one_line(&m.source.to_string()),
        m.digest.get(..12).unwrap_or("-").to_string(),
        phases,
        if m.enforce_warn { "warn" } else { "block" }.to_string(),
        match &m.loaded {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("REFUSED: {}", one_line(&e.0)),
        },
        grants,
    ]
}

fn read_target(target: &str) -> anyhow::Result<(Source, Vec<u8>)> {
    let source = Source::parse(target, None)?;
    let bytes = source.read().map_err(|reason| Error::Refused {
        policy: target.into(),
        reason,
    })?;
    Ok((source, bytes))
}

/// `meshup policy inspect FILE.wasm|builtin:NAME`.
pub fn inspect(target: &str, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let (source, bytes) = read_target(target)?;
    let rt = Runtime::with_options(&opts)?;
    let digest = cache::sha256_hex(&bytes);
    let refused = |reason| Error::Refused {
        policy: source.to_string(),
        reason,
    };
    let component = rt.compile(&bytes, &digest).map_err(refused)?;
    let (imports, exports) = rt.interface(&component);
    let loaded = rt.load(&bytes, &crate::policy::Limits::default());
    if json {
        let mut doc = json!({
            "source": source.to_string(), "sha256": digest, "size": bytes.len(),
            "imports": imports, "exports": exports,
        });
        match &loaded {
            Ok(l) => doc["metadata"] = serde_json::to_value(&l.metadata)?,
            Err(e) => doc["refused"] = json!(e),
        }
        print_json(&doc)?;
    } else {
        // Everything below but the digest and size came from the component: escaped.
        let mut out = String::new();
        writeln!(out, "source:   {}", one_line(&source.to_string()))?;
        writeln!(out, "sha256:   {digest}")?;
        writeln!(out, "size:     {} bytes", bytes.len())?;
        if let Ok(l) = &loaded {
            let m = &l.metadata;
            writeln!(
                out,
                "name:     {} {}",
                one_line(&m.name),
                one_line(&m.version)
            )?;
            writeln!(
                out,
                "phases:   {}",
                m.phases
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            writeln!(out, "about:    {}", block(&m.description, "          "))?;
            writeln!(out, "config:   {}", one_line(&m.default_config.to_string()))?;
            writeln!(
                out,
                "reads:    {}",
                if m.reads.is_empty() {
                    "none".into()
                } else {
                    one_line(
                        &m.reads
                            .iter()
                            .map(|r| r.describe())
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                }
            )?;
        }
        writeln!(out, "imports:")?;
        for i in &imports {
            writeln!(out, "  {}", one_line(i))?;
        }
        writeln!(out, "exports:")?;
        for e in &exports {
            writeln!(out, "  {}", one_line(e))?;
        }
        print!("{out}");
    }
    match loaded {
        Ok(_) => Ok(Code::Ok),
        Err(reason) => Err(refused(reason).into()),
    }
}

/// Options of `meshup policy test`.
pub struct TestArgs {
    pub target: String,
    pub context: PathBuf,
    pub objects: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

fn read_json<T: serde::de::DeserializeOwned>(what: &'static str, path: &Path) -> Result<T, Error> {
    let file_error = |message: String| Error::File {
        what,
        path: path.to_path_buf(),
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))
}

/// `meshup policy test FILE.wasm --context ctx.json [--objects objs.yaml] [--config cfg.json]`.
pub fn test(args: TestArgs, opts: RuntimeOptions, json: bool) -> anyhow::Result<Code> {
    let ctx: PolicyContext = read_json("context file", &args.context)?;
    let snapshot = match &args.objects {
        Some(p) => Snapshot::from_yaml_file(p)?,
        None => Snapshot::default(),
    };
    let config = args
        .config
        .as_deref()
        .map(|p| read_json::<Value>("config file", p))
        .transpose()?;
    let source = Source::parse(&args.target, None)?;
    let set = PolicySet::single(source, config, opts)?;
    let evals = set.evaluate_all(ctx.phase, &ctx, Arc::new(snapshot));
    let blocked = evals.iter().any(Evaluation::blocks);
    if json {
        let e = evals
            .first()
            .map(serde_json::to_value)
            .transpose()?
            .unwrap_or(Value::Null);
        print_json(&json!({ "evaluation": e, "blocked": blocked }))?;
    } else {
        for e in &evals {
            println!(
                "policy {} ({}): {} in {} µs",
                one_line(&e.policy),
                one_line(&e.source),
                one_line(&e.outcome.describe()),
                e.duration.as_micros()
            );
            if e.findings.is_empty() {
                println!("  no findings");
            }
            for f in &e.findings {
                print!("{}", finding_text(f));
            }
        }
    }
    Ok(if blocked { Code::Blocked } else { Code::Ok })
}

/// One finding of `meshup policy test`, every policy-made field escaped and indented.
fn finding_text(f: &Finding) -> String {
    const INDENT: &str = "           ";
    let mut out = format!(
        "  {:<7}  {}  {}\n",
        f.severity.as_str(),
        one_line(&f.code),
        block(&f.message, INDENT)
    );
    if let Some(s) = &f.subject {
        out += &format!("{INDENT}subject: {}\n", one_line(s));
    }
    if let Some(r) = &f.remediation {
        out += &format!("{INDENT}fix: {}\n", block(r, INDENT));
    }
    out
}

/// `meshup policy replay --audit-log FILE [--line N]`: verify the hash chain, then replay.
pub fn replay(
    log: Option<&Path>,
    line: Option<usize>,
    opts: RuntimeOptions,
    json: bool,
) -> anyhow::Result<Code> {
    let log = log.ok_or_else(|| {
        Exit::bad_input("policy replay needs --audit-log FILE (the log to replay)")
    })?;
    let chain = audit::verify(log)?;
    let (runs, head) = (chain.runs, chain.head.clone());
    let rt = Runtime::with_options(&opts)?;
    let results = replay::replay_records(&rt, log, chain.records, line)?;
    let mismatches = results.iter().filter(|r| !r.identical).count();
    if json {
        print_json(&json!({
            "chain": {"intact": true, "runs": runs, "head": head},
            "replayed": results,
            "identical": mismatches == 0,
        }))?;
    } else {
        println!(
            "hash chain intact: {runs} run(s); head sha256 {head} (keep it to protect the log's end)"
        );
        for r in &results {
            if r.identical {
                println!(
                    "line {}: {} ({}): identical, {} finding(s)",
                    r.line,
                    one_line(&r.policy),
                    r.phase,
                    r.findings
                );
            } else {
                println!(
                    "line {}: {} ({}): MISMATCH: {}",
                    r.line,
                    one_line(&r.policy),
                    r.phase,
                    escape(&r.differences.join("; "))
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
