//! Where the target release comes from: a `Source` gives the engine a release's facts, its
//! values and its rendered objects. The built-in bundles are the first source.

pub mod bundle;
pub mod discovery;
pub mod iop;
pub mod shipped;
