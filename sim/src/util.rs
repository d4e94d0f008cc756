//! Small helpers: timestamps, base64, hashing, random names.

use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC timestamp (seconds precision), like the API server's `metav1.Time`.
/// Time is formatted and parsed by `meshup-vocab` (jiff): see `selector.rs` for why the
/// simulator may use that crate.
pub fn now_rfc3339() -> String {
    meshup_vocab::time::now()
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn format_rfc3339(secs: i64) -> String {
    meshup_vocab::time::format_unix(secs).unwrap_or_default()
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`, with fractional seconds or another offset).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    meshup_vocab::time::parse(s)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' || c == b'\n' || c == b'\r' {
            continue;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// FNV-1a over the canonical (key-sorted) JSON of a value.
pub fn stable_hash(v: &Value) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    fn feed(h: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *h ^= *b as u64;
            *h = h.wrapping_mul(0x100000001b3);
        }
    }
    fn walk(h: &mut u64, v: &Value) {
        match v {
            Value::Object(m) => {
                feed(h, b"{");
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    feed(h, k.as_bytes());
                    feed(h, b":");
                    walk(h, &m[k]);
                }
                feed(h, b"}");
            }
            Value::Array(a) => {
                feed(h, b"[");
                for x in a {
                    walk(h, x);
                    feed(h, b",");
                }
                feed(h, b"]");
            }
            other => feed(h, other.to_string().as_bytes()),
        }
    }
    walk(&mut h, v);
    h
}

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Kubernetes-style "safe" string of `len` characters from a number.
pub fn safe_encode(mut n: u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(SAFE[(n % SAFE.len() as u64) as usize] as char);
        n /= SAFE.len() as u64;
        if n == 0 {
            n = n.wrapping_add(0x9e3779b97f4a7c15);
        }
    }
    s
}

static RNG: AtomicU64 = AtomicU64::new(0x2545F4914F6CDD1D);

pub fn rand_u64() -> u64 {
    let seed = RNG.fetch_add(0x9e3779b97f4a7c15, Ordering::Relaxed);
    let mut z = seed ^ (std::process::id() as u64) << 17;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// A random 5-character suffix as used by `generateName`.
pub fn rand_suffix() -> String {
    safe_encode(rand_u64(), 5)
}

pub fn new_uid() -> String {
    let a = rand_u64();
    let b = rand_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        ((b >> 48) as u16 & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Navigation helpers over JSON.
pub fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_path(v, path)?.as_str()
}

pub fn get_i64(v: &Value, path: &[&str]) -> Option<i64> {
    get_path(v, path)?.as_i64()
}

/// Returns a mutable map at `path`, creating empty objects on the way.
pub fn ensure_map<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for p in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("object");
        cur = m
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut().expect("object")
}

pub fn labels(v: &Value) -> Option<&Map<String, Value>> {
    get_path(v, &["metadata", "labels"])?.as_object()
}

pub fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get_path(v, &["metadata", "annotations", key])?.as_str()
}

/// Resolves an int-or-percent value against `total`.
pub fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.trim().parse().unwrap_or(0);
                if round_up {
                    (p * total + 99) / 100
                } else {
                    p * total / 100
                }
            } else {
                s.parse().unwrap_or(default)
            }
        }
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_roundtrip() {
        let s = format_rfc3339(1_700_000_000);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339(&s), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn b64() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_encode(b""), "");
    }

    #[test]
    fn percent() {
        assert_eq!(int_or_percent(Some(&Value::from("25%")), 3, true, 0), 1);
        assert_eq!(int_or_percent(Some(&Value::from("25%")), 3, false, 0), 0);
        assert_eq!(int_or_percent(Some(&Value::from(2)), 3, false, 0), 2);
    }
}
