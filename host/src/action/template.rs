//! `meshup template`: render a bundle with values and print the manifest (no cluster).

use std::path::PathBuf;

use crate::engine::plan::{self, Inputs};
use crate::release::bundle::Bundle;

pub struct Template {
    pub bundle: PathBuf,
    pub inputs: Inputs,
}

impl Template {
    /// The rendered manifest (multi-document YAML).
    pub fn run(&self) -> anyhow::Result<String> {
        let bundle = Bundle::load(&self.bundle)?;
        crate::release::bundle::render::lint(&bundle)?;
        // No cluster: the installer's values for one it cannot see (`template` is offline,
        // as `istioctl manifest generate` is).
        let (_, rendered) = plan::values_and_render(
            &bundle,
            &self.inputs,
            None,
            crate::installed::state::DEFAULT_REVISION,
            serde_json::json!({}),
        )?;
        Ok(rendered.manifest())
    }
}
