//! What a run captured before its first write: every object it was going to create,
//! change or prune, as it was. It is stored in the run's pending history record, so an
//! interrupted run can be put back by whoever comes next (`engine::restore` reads and
//! writes the cluster with it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::object::ObjectKey;

/// One object as it was before the run touched it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    pub key: ObjectKey,
    /// The bundle component the run applied it in (restore keeps the apply order).
    pub component: String,
    /// The live object, server-owned fields removed; `None` when the run created it.
    pub before: Option<Value>,
}

/// The state before a run, as far as the run was going to change it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The control-plane version that ran before (`None`: nothing was installed).
    pub version: Option<String>,
    pub objects: Vec<Captured>,
}

impl Snapshot {
    /// The capture a resumed run keeps: an unfinished earlier run's capture describes the
    /// state before *it* started, which is the one to go back to; this run's own capture
    /// only adds the objects the earlier run did not touch.
    pub fn under(self, earlier: Option<&Snapshot>) -> Snapshot {
        let Some(earlier) = earlier else {
            return self;
        };
        let mut objects = earlier.objects.clone();
        for c in self.objects {
            if !objects.iter().any(|o| o.key == c.key) {
                objects.push(c);
            }
        }
        Snapshot {
            version: earlier.version.clone(),
            objects,
        }
    }

    /// "the previous release (1.7.8)" or, for a first install, "the state before the install".
    pub fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("the previous release ({v})"),
            None => "the state before the install".into(),
        }
    }
}
