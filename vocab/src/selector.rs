//! Kubernetes label selectors: the full string syntax (`a=b`, `a==b`, `a!=b`, `a`, `!a`,
//! `a in (x,y)`, `a notin (x)`, joined by `,`) and matching against labels.
//!
//! Parsed like `k8s.io/apimachinery/pkg/labels` (a lexer, then a parser), so the host's
//! snapshot, the SDK's `FakeCluster` and the simulator accept and reject the same text a
//! real API server does.

use serde_json::{Map, Value};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Eq(String, String),
    /// `key!=value`: also true when the label is missing.
    NotEq(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`: also true when the label is missing.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

impl Requirement {
    pub fn key(&self) -> &str {
        match self {
            Requirement::Eq(k, _)
            | Requirement::NotEq(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::NotExists(k) => k,
        }
    }

    /// Whether a label set answering `label(key)` satisfies this requirement.
    pub fn matches<'v>(&self, label: impl Fn(&str) -> Option<&'v str>) -> bool {
        let value = label(self.key());
        let any_of = |vs: &[String]| value.is_some_and(|l| vs.iter().any(|v| v == l));
        match self {
            Requirement::Eq(_, v) => value == Some(v),
            Requirement::NotEq(_, v) => value != Some(v),
            Requirement::In(_, vs) => any_of(vs),
            Requirement::NotIn(_, vs) => !any_of(vs),
            Requirement::Exists(_) => value.is_some(),
            Requirement::NotExists(_) => value.is_none(),
        }
    }
}

/// A label selector: every requirement must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Why a selector text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

impl Selector {
    /// Parse the string form (`labelSelector=` of a list request, `kubectl -l`).
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: text.to_string(),
            reason,
        };
        let tokens = lex(text);
        let mut parser = Parser { tokens, pos: 0 };
        let requirements = parser.selector().map_err(fail)?;
        for r in &requirements {
            check_requirement(r).map_err(fail)?;
        }
        Ok(Selector { requirements })
    }

    /// A selector of already-structured requirements (e.g. from a `metav1.LabelSelector`).
    pub fn from_requirements(requirements: Vec<Requirement>) -> Selector {
        Selector { requirements }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether labels answering `label(key)` satisfy every requirement.
    pub fn matches<'v>(&self, label: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.requirements.iter().all(|r| r.matches(&label))
    }

    /// Match a JSON label map (`metadata.labels`); `None` is an object without labels.
    pub fn matches_labels(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.matches(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Match a Kubernetes object by its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches_labels(obj.pointer("/metadata/labels").and_then(Value::as_object))
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    In,
    NotIn,
    Not,
    Eq,
    NotEq,
    Open,
    Close,
    Comma,
}

/// Split into tokens as apimachinery's lexer does: `!=(),` are symbols, whitespace
/// separates, anything else is an identifier (`in`/`notin` are keywords).
fn lex(text: &str) -> Vec<Token> {
    let mut tokens = vec![];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '!' if chars.next_if_eq(&'=').is_some() => Token::NotEq,
            '!' => Token::Not,
            '=' => {
                chars.next_if_eq(&'=');
                Token::Eq
            }
            c => {
                let mut word = String::from(c);
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !"!=(),".contains(*c)) {
                    word.push(c);
                }
                match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                }
            }
        };
        tokens.push(token);
    }
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = vec![];
        if self.tokens.is_empty() {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => return Ok(requirements),
                Some(Token::Comma) => {}
                Some(t) => return Err(format!("expected ',' after a requirement, found {t:?}")),
            }
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Ident(k)) => Ok(k),
            other => Err(format!("expected a label key, found {other:?}")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Requirement::NotExists(self.key()?));
        }
        let key = self.key()?;
        match self.peek() {
            None | Some(Token::Comma) => Ok(Requirement::Exists(key)),
            Some(Token::Eq) => {
                self.pos += 1;
                Ok(Requirement::Eq(key, self.value()))
            }
            Some(Token::NotEq) => {
                self.pos += 1;
                Ok(Requirement::NotEq(key, self.value()))
            }
            Some(Token::In) => {
                self.pos += 1;
                Ok(Requirement::In(key, self.set()?))
            }
            Some(Token::NotIn) => {
                self.pos += 1;
                Ok(Requirement::NotIn(key, self.set()?))
            }
            Some(t) => Err(format!(
                "expected =, ==, !=, in or notin after {key:?}, found {t:?}"
            )),
        }
    }

    /// The value after `=`/`!=`; empty when the requirement ends there (`a=`).
    fn value(&mut self) -> String {
        match self.peek() {
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                v
            }
            _ => String::new(),
        }
    }

    /// `(a, b)`: empty items are skipped, an empty set is refused (as the API server does).
    fn set(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Some(Token::Open) {
            return Err("expected '(' after in/notin".into());
        }
        let mut values = vec![];
        loop {
            match self.next() {
                Some(Token::Close) => break,
                Some(Token::Comma) => {}
                Some(Token::Ident(v)) => values.push(v),
                other => return Err(format!("expected a value or ')', found {other:?}")),
            }
        }
        if values.is_empty() {
            return Err("the set of values of in/notin must not be empty".into());
        }
        Ok(values)
    }
}

fn check_requirement(r: &Requirement) -> Result<(), String> {
    if !valid_key(r.key()) {
        return Err(format!("bad key {:?}", r.key()));
    }
    let values: &[String] = match r {
        Requirement::Eq(_, v) | Requirement::NotEq(_, v) => std::slice::from_ref(v),
        Requirement::In(_, vs) | Requirement::NotIn(_, vs) => vs,
        Requirement::Exists(_) | Requirement::NotExists(_) => &[],
    };
    match values.iter().find(|v| !v.is_empty() && !valid_name(v)) {
        Some(v) => Err(format!("bad value {v:?} for key {:?}", r.key())),
        None => Ok(()),
    }
}

/// A label name or value: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn valid_name(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label key: `name` or `prefix/name`, the prefix a DNS subdomain.
fn valid_key(key: &str) -> bool {
    match key.split_once('/') {
        None => valid_name(key),
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    valid_name(part)
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && valid_name(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(selector: &str, labels: Value) -> bool {
        Selector::parse(selector)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches_labels(labels.as_object())
    }

    #[test]
    fn every_operator() {
        let l = || json!({"app": "web", "tier": "fe", "env": "prod"});
        assert!(matches("app=web", l()));
        assert!(matches("app==web", l()));
        assert!(!matches("app!=web", l()));
        assert!(matches("app!=db", l()));
        assert!(matches("missing!=x", l()));
        assert!(matches("env in (prod, staging)", l()));
        assert!(!matches("env in (dev)", l()));
        assert!(matches("env notin (dev,staging)", l()));
        assert!(!matches("env notin (prod)", l()));
        assert!(matches("missing notin (prod)", l()));
        assert!(!matches("missing in (prod)", l()));
        assert!(matches("tier", l()));
        assert!(!matches("missing", l()));
        assert!(matches("!missing", l()));
        assert!(!matches("!tier", l()));
        assert!(matches("app=web,env in (prod,dev),!missing,tier", l()));
        assert!(!matches("app=web,env in (dev)", l()));
        assert!(matches("", l()));
        assert!(matches("  ", l()));
    }

    #[test]
    fn keys_with_prefix_and_empty_values() {
        let l = json!({"app.kubernetes.io/name": "istiod", "istio.io/rev": "", "x": "1-8-6"});
        assert!(matches("app.kubernetes.io/name=istiod", l.clone()));
        assert!(matches("istio.io/rev=", l.clone()));
        assert!(matches("istio.io/rev", l.clone()));
        assert!(matches("x in (1-8-6,1-9-5)", l.clone()));
        assert!(!matches("istio.io/rev!=", l));
    }

    /// Cases where the three old parsers (simulator, host snapshot, SDK fake) disagreed.
    #[test]
    fn cases_the_old_parsers_disagreed_on() {
        let l = || json!({"env": "prod", "app": "web"});
        // The SDK's fake split on every comma and had no in/notin: it answered false here.
        assert!(matches("env in (prod,dev)", l()));
        assert!(matches("env notin (dev),app", l()));
        // The host required a space before '(' ; the simulator and apimachinery do not.
        assert!(matches("env in(prod)", l()));
        assert!(matches("env notin(dev)", l()));
        // The host took `!a=b` as key `!a`; the SDK fake as "label !a equals b".
        assert!(Selector::parse("!a=b").is_err());
        // The SDK fake looked up a label named "a b c" and found none instead of refusing.
        assert!(Selector::parse("a b c").is_err());
        // The host validated keys only for `exists`; an API server refuses them everywhere.
        assert!(Selector::parse("a b=c").is_err());
        assert!(Selector::parse("-a=b").is_err());
        // Empty sets were accepted by all three; an API server refuses them.
        assert!(Selector::parse("a in ()").is_err());
        assert!(Selector::parse("a notin (,)").is_err());
    }

    #[test]
    fn malformed_selectors_say_why() {
        for bad in [
            "a=b,", ",a", "a in x", "a in (x", "a=(", "a=b c", "a b", "!", "=b", "a=b=c", "a=-x",
        ] {
            let e = Selector::parse(bad).expect_err(bad);
            assert!(e.to_string().starts_with("invalid label selector"), "{e}");
            assert_eq!(e.selector, bad);
        }
        let long = "a".repeat(64);
        assert!(Selector::parse(&long).is_err());
        assert!(Selector::parse(&format!("a={long}")).is_err());
    }

    #[test]
    fn parsed_requirements() {
        let s: Selector = "a=b, c!=d, e in (f, g), h notin (i), j, !k"
            .parse()
            .unwrap();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.requirements(),
            &[
                Requirement::Eq("a".into(), "b".into()),
                Requirement::NotEq("c".into(), "d".into()),
                Requirement::In("e".into(), owned(&["f", "g"])),
                Requirement::NotIn("h".into(), owned(&["i"])),
                Requirement::Exists("j".into()),
                Requirement::NotExists("k".into()),
            ]
        );
    }

    #[test]
    fn objects_by_metadata_labels() {
        let s = Selector::parse("app=x").unwrap();
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "x"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(Selector::parse("!app").unwrap().matches_object(&json!({})));
        assert!(Selector::default().matches_object(&json!({})));
    }
}
