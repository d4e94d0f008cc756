//! `meshup template`: render the target release with values and print the manifest (no
//! cluster).

use std::path::PathBuf;

use crate::engine::plan;
use crate::release::source::Inputs;

pub struct Template {
    pub bundle: PathBuf,
    pub inputs: Inputs,
}

impl Template {
    /// The rendered manifest (multi-document YAML).
    pub fn run(&self) -> anyhow::Result<String> {
        let source = crate::release::load_bundle(&self.bundle)?;
        // No cluster: the installer's values for one it cannot see (`template` is offline,
        // as `istioctl manifest generate` is).
        let (_, rendered) = plan::values_and_render(
            &*source,
            &self.inputs,
            None,
            crate::installed::state::DEFAULT_REVISION,
            serde_json::json!({}),
        )?;
        Ok(rendered.manifest())
    }
}
