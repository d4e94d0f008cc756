//! Value trees (JSON): the comparison the host and the policies both make of a value
//! someone set and the value that will be in place.

use serde_json::Value;

/// Whether `tree` says nothing `base` does not: every mapping key of `tree` is in `base`
/// with a value it covers in turn; lists and scalars are equal. (An installed-state's
/// `k8s.service` without the `type` the charts default covers nothing new.)
pub fn covers(base: &Value, tree: &Value) -> bool {
    match (base, tree) {
        (Value::Object(b), Value::Object(t)) => t
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|bv| covers(bv, v))),
        (b, t) => b == t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tree_covers_what_it_holds_with_more_beside_it() {
        assert!(covers(&json!({"a": 1, "b": [1]}), &json!({"b": [1]})));
        assert!(!covers(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!covers(&json!({"l": [1, 2]}), &json!({"l": [1]})));
    }
}
