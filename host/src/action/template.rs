//! `meshup template`: render the target release with values and print the manifest (no
//! cluster).

use crate::engine::plan;
use crate::release::source::{Inputs, RenderContext};

pub struct Template {
    pub target: crate::release::Target,
    pub inputs: Inputs,
}

impl Template {
    /// The rendered manifest (multi-document YAML).
    pub fn run(&self) -> anyhow::Result<String> {
        let source = self.target.load()?;
        // No cluster: the installer's values for one it cannot see (`template` is offline,
        // as `istioctl manifest generate` is).
        let (_, rendered, _) = plan::values_and_render(
            &*source,
            &self.inputs,
            None,
            RenderContext {
                revision: crate::installed::state::DEFAULT_REVISION,
                kubernetes: None,
                upgrade: false,
            },
            serde_json::json!({}),
        )?;
        Ok(rendered.manifest())
    }
}
