//! Where the target release comes from: a `Source` gives the engine a release's facts, its
//! values and its rendered objects. The built-in bundles are the first source.

pub mod bundle;
pub mod components;
pub mod discovery;
pub mod iop;
pub mod shipped;
pub mod source;

pub use source::Source;

/// The built-in bundle at `dir` as the target release, checked whole (every file and every
/// profile renders) before anything touches a cluster.
pub fn load_bundle(dir: &std::path::Path) -> anyhow::Result<Box<dyn Source>> {
    let bundle = bundle::Bundle::load(dir)?;
    bundle::render::lint(&bundle)?;
    Ok(Box::new(bundle))
}
