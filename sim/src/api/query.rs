//! Query strings: decoding, selectors, continue tokens.

use crate::error::{ApiError, ApiResult};
use crate::selector::{FieldSelector, LabelSelector};
use std::collections::HashMap;

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for part in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        m.insert(pct_decode(k), pct_decode(v));
    }
    m
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A list continue token: the (namespace, name) the next page starts after.
pub(super) fn continue_token(after: &(String, String)) -> String {
    hex(&format!("{}\0{}", after.0, after.1))
}

pub(super) fn parse_continue(q: &HashMap<String, String>) -> ApiResult<Option<(String, String)>> {
    let Some(tok) = q.get("continue").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let s = unhex(tok).ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
    let (n, m) = s
        .split_once('\0')
        .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
    Ok(Some((n.to_string(), m.to_string())))
}

pub(super) fn selectors(q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

/// `dryRun=All` (the only value Kubernetes accepts).
pub(super) fn dry_run(q: &HashMap<String, String>) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Cenv+in+%28a%29&limit=5"));
        assert_eq!(q["labelSelector"], "app=web,env in (a)");
        assert_eq!(q["limit"], "5");
        assert_eq!(unhex(&hex("a\0b")).unwrap(), "a\0b");
    }

    #[test]
    fn continue_tokens_round_trip() {
        let after = ("ns".to_string(), "name".to_string());
        let q = HashMap::from([("continue".to_string(), continue_token(&after))]);
        assert_eq!(parse_continue(&q).unwrap(), Some(after));
        let bad = HashMap::from([("continue".to_string(), "zz".to_string())]);
        assert!(parse_continue(&bad).is_err());
        assert_eq!(parse_continue(&HashMap::new()).unwrap(), None);
    }
}
